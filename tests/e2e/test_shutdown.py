"""Graceful shutdown: SIGTERM/SIGINT stop accepting, answer what is in flight,
exit 0 and log msg="stopped"; a hard kill leaves a data dir that starts again."""

from __future__ import annotations

import json
import signal
import socket
import time

import pytest
import requests

from arc_server import read_http_response, slow

TOKENS = "/api/v1/auth/tokens"


def _refused(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except (ConnectionRefusedError, socket.timeout, OSError):
        return True


@pytest.mark.parametrize("sig,name", [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")])
def test_signal_exits_zero(arc, sig, name):
    assert requests.get(arc.url("/health"), timeout=slow(5)).status_code == 200
    t0 = time.monotonic()
    code = arc.stop(sig)
    assert code == 0, arc.log
    assert time.monotonic() - t0 < slow(10)
    assert 'msg="shutting down" signal=%s' % name in arc.log
    assert 'msg="stopped"' in arc.log


def test_idle_keepalive_connection_does_not_delay_exit(arc):
    s = arc.connect()
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_http_response(s)[0] == 200
    # connection stays open and idle
    t0 = time.monotonic()
    code = arc.stop()
    assert code == 0, arc.log
    assert time.monotonic() - t0 < slow(5), "an idle keep-alive connection held up shutdown"
    assert 'msg="stopped"' in arc.log
    s.close()


def test_inflight_request_is_answered(arc):
    """A request whose body is still arriving when SIGTERM comes is completed and
    answered; meanwhile new connections are refused and /ready says 503 on an
    existing keep-alive connection."""
    body = json.dumps({"name": "inflight"}).encode()
    # an existing keep-alive connection, used before the signal
    ka = arc.connect()
    ka.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_http_response(ka)[0] == 200

    s = arc.connect(timeout=30)
    s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
               % (TOKENS, arc.token, len(body))).encode())
    s.sendall(body[:5])
    time.sleep(0.3)
    arc.proc.send_signal(signal.SIGTERM)
    arc.wait_log(r'msg="shutting down"')

    # no new connections once shutdown started
    deadline = time.monotonic() + slow(5)
    while not _refused(arc.port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _refused(arc.port), "still accepting connections after SIGTERM"

    # readiness flips to 503 for load balancers
    ka.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
    resp = read_http_response(ka)
    assert resp is not None, "keep-alive connection closed before the in-flight request ended"
    st, hdrs, rb = resp
    assert st == 503
    assert json.loads(rb) == {"success": False, "error": "shutting down"}
    assert hdrs.get("connection", "").lower() == "close"
    ka.close()

    assert arc.running, "exited with a request in flight"
    s.sendall(body[5:])
    resp = read_http_response(s, timeout=30)
    assert resp is not None, "in-flight request was not answered"
    st, _, rb = resp
    assert st == 201, rb
    assert json.loads(rb)["success"] is True
    s.close()
    arc.proc.wait(slow(30))
    assert arc.stop() == 0, arc.log
    assert 'msg="stopped"' in arc.log
    assert "shutdown timeout" not in arc.log


def test_stuck_request_hits_shutdown_timeout(arc_factory):
    srv = arc_factory("--set", "server.shutdown_timeout_seconds=1")
    s = srv.connect()
    s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
               "Content-Length: 100\r\n\r\n{" % (TOKENS, srv.token)).encode())
    time.sleep(0.3)
    t0 = time.monotonic()
    code = srv.stop()
    elapsed = time.monotonic() - t0
    s.close()
    assert code == 0, srv.log
    assert 1 <= elapsed < 1 + slow(5), elapsed
    assert "shutdown timeout" in srv.log
    assert 'msg="stopped"' in srv.log


def test_kill9_then_restart(arc):
    tok = arc.create_token("before-crash")["token"]
    assert arc.kill() == -signal.SIGKILL
    arc.start()
    assert arc.get("/api/v1/auth/verify", token=tok).status_code == 200
    assert arc.stop() == 0, arc.log


def test_repeated_restarts(arc):
    for _ in range(3):
        arc.restart()
        assert arc.get("/api/v1/auth/verify").status_code == 200
    assert arc.log.count('msg="arc ready"') == 1  # one log file per start
    assert arc.all_logs().count('msg="stopped"') == 3
