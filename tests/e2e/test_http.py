"""HTTP front door: public endpoints, errors, body caps and decoding, hostile
clients (garbage, huge headers, slow loris), CORS, metrics."""

from __future__ import annotations

import gzip
import json
import re
import socket
import threading
import time

import pytest
import requests
import zstandard

from arc_server import read_http_response, slow

PUBLIC_PATHS = {"/", "/health", "/api/v1/health", "/ready", "/api/v1/ready", "/ping", "/metrics"}
AUTH_REQUIRED = {"success": False, "error": "Authentication required"}
TOKENS = "/api/v1/auth/tokens"
MiB = 1 << 20


def endpoints(srv):
    r = requests.get(srv.url("/"), timeout=slow(10))
    assert r.status_code == 200
    eps = r.json()["endpoints"]
    out = []
    for e in eps:
        method, _, pattern = e.partition(" ")
        out.append((method, pattern))
    return out


def concrete(pattern):
    """A path that matches the route pattern: {x} -> 1."""
    return re.sub(r"\{[^}/]*\}", "1", pattern)


def metric_value(text, name, **labels):
    """Value of one Prometheus sample, or None."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)$', line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(4))
    return None


# --------------------------------------------------------------- public routes

def test_root_describes_the_server(shared):
    r = requests.get(shared.url("/"), timeout=slow(10))
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    j = r.json()
    assert j["name"] == "Arc"
    assert re.match(r"^\d+\.\d+\.\d+", j["version"]), j["version"]
    eps = j["endpoints"]
    for e in ("GET /", "GET /health", "GET /ready", "GET /ping", "GET /metrics",
              "GET /api/v1/auth/verify", "POST /api/v1/auth/tokens", "GET /auth/verify"):
        assert e in eps, (e, eps)
    assert r.headers["X-Arc-Version"] == j["version"]


@pytest.mark.parametrize("path", ["/health", "/api/v1/health", "/health/"])
def test_health_shape(shared, path):
    r = requests.get(shared.url(path), timeout=slow(10))
    assert r.status_code == 200
    j = r.json()
    assert j["status"] == "ok"
    assert isinstance(j["uptime_sec"], int) and j["uptime_sec"] >= 0
    assert j["uptime"] == "%ds" % j["uptime_sec"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", j["time"]), j["time"]
    assert j["version"] == requests.get(shared.url("/"), timeout=10).json()["version"]


def test_health_uptime_advances(shared):
    a = requests.get(shared.url("/health"), timeout=10).json()["uptime_sec"]
    time.sleep(1.1)
    b = requests.get(shared.url("/health"), timeout=10).json()["uptime_sec"]
    assert b >= a + 1


@pytest.mark.parametrize("path", ["/ready", "/api/v1/ready"])
def test_ready(shared, path):
    r = requests.get(shared.url(path), timeout=slow(10))
    assert r.status_code == 200
    assert r.json() == {"status": "ready"}


@pytest.mark.parametrize("method", ["GET", "POST", "HEAD"])
def test_ping_is_influx_compatible(shared, method):
    r = requests.request(method, shared.url("/ping"), timeout=slow(10))
    assert r.status_code == 204
    assert r.headers["X-Influxdb-Version"] == "1.8.10"
    assert r.content == b""


def test_unknown_path_is_404_json(shared):
    r = requests.get(shared.url("/no/such/thing"), timeout=slow(10))
    assert r.status_code == 404
    assert r.json() == {"success": False, "error": "GET /no/such/thing: no such endpoint"}


def test_wrong_method_is_405_json(shared):
    r = requests.delete(shared.url("/health"), timeout=slow(10))
    assert r.status_code == 405
    assert r.json() == {"success": False, "error": "DELETE /health: method not allowed"}


def test_keep_alive_reuses_the_connection(shared):
    with shared.connect() as s:
        for _ in range(3):
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            st, hdrs, body = read_http_response(s)
            assert st == 200
            assert json.loads(body)["status"] == "ok"


# ------------------------------------------------------------------------ auth

def test_every_private_route_needs_a_token(shared):
    """Iterates over the endpoints GET / lists, so new routes are covered too."""
    checked = []
    for method, pattern in endpoints(shared):
        if pattern in PUBLIC_PATHS:
            continue
        path = concrete(pattern)
        kw = {"timeout": slow(10)}
        if method in ("POST", "PUT", "PATCH"):
            kw["data"] = b"{}"
            kw["headers"] = {"Content-Type": "application/json"}
        r = requests.request(method, shared.url(path), **kw)
        assert (r.status_code, r.json()) == (401, AUTH_REQUIRED), (method, path, r.text)
        kw.setdefault("headers", {})["Authorization"] = "Bearer not-a-valid-token"
        r = requests.request(method, shared.url(path), **kw)
        assert (r.status_code, r.json()) == (401, {"success": False,
                                                   "error": "Invalid or expired token"}), \
            (method, path, r.text)
        checked.append((method, pattern))
    # the auth routes exist in both families: the sweep must have seen them
    assert ("GET", "/api/v1/auth/verify") in checked and ("GET", "/auth/verify") in checked
    assert ("POST", "/api/v1/auth/tokens") in checked, checked


def test_private_metrics_need_read(arc_factory):
    srv = arc_factory("--set", "server.public_metrics=false")
    r = requests.get(srv.url("/metrics"), timeout=slow(10))
    assert (r.status_code, r.json()) == (401, AUTH_REQUIRED)
    reader = srv.create_token("metrics-reader", permissions=["read"])["token"]
    writer = srv.create_token("metrics-writer", permissions=["write"])["token"]
    r = srv.get("/metrics", token=reader)
    assert r.status_code == 200
    assert "arc_http_requests_total" in r.text
    r = srv.get("/metrics", token=writer)
    assert (r.status_code, r.json()) == (403, {"success": False,
                                               "error": "Permission denied: read required"})


# --------------------------------------------------------------------- metrics

def test_metrics_content_and_counting(shared):
    r = requests.get(shared.url("/metrics"), timeout=slow(10))
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = r.text
    assert "# TYPE arc_http_requests_total counter" in text
    rss = metric_value(text, "arc_process_resident_memory_bytes")
    assert rss is not None and rss > 1 * MiB, rss
    assert metric_value(text, "arc_ready") == 1
    labels = {"method": "GET", "route": "/health", "status": "200"}
    before = metric_value(text, "arc_http_requests_total", **labels) or 0
    n = 7
    for _ in range(n):
        assert requests.get(shared.url("/health"), timeout=slow(10)).status_code == 200
    # the counter is bumped when the request completes, just after the answer
    deadline = time.monotonic() + slow(5)
    while True:
        text = requests.get(shared.url("/metrics"), timeout=slow(10)).text
        after = metric_value(text, "arc_http_requests_total", **labels)
        if after == before + n or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert after == before + n, (before, after)
    assert metric_value(text, "arc_http_request_duration_seconds_count",
                        method="GET", route="/health") >= n


def test_metrics_count_errors_by_status(shared):
    requests.get(shared.url("/api/v1/auth/verify"), timeout=slow(10))  # 401
    deadline = time.monotonic() + slow(5)
    while True:
        text = requests.get(shared.url("/metrics"), timeout=slow(10)).text
        v = metric_value(text, "arc_http_requests_total", method="GET",
                         route="/api/v1/auth/verify", status="401")
        if v or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert v is not None and v >= 1


# ------------------------------------------------------------- hostile clients

def _still_serves(srv):
    r = requests.get(srv.url("/health"), timeout=slow(5))
    assert r.status_code == 200 and r.json()["status"] == "ok"


@pytest.mark.parametrize("garbage", [b"GARBAGE\r\n\r\n", b"GET\r\n\r\n",
                                     b"GET /health HTTP/9.9\r\n\r\n",
                                     b"\x00\x01\x02\xff\xfe\r\n\r\n",
                                     b"GET /health HTTP/1.1\r\nNoColonHeader\r\n\r\n"])
def test_malformed_request(arc_factory, garbage):
    # garbage the HTTP parser cannot even frame (a NUL-led request line is taken
    # for blank lines) is cut off by the header deadline instead of an answer
    srv = arc_factory("--set", "server.header_timeout_seconds=2")
    with srv.connect() as s:
        s.sendall(garbage)
        resp = read_http_response(s)
    if resp is not None:
        st, _, _ = resp
        assert 400 <= st < 600 and st != 500, resp
    _still_serves(srv)


def test_huge_header_rejected(shared):
    with shared.connect() as s:
        try:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 +
                      b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed on us mid-send: acceptable
        try:
            resp = read_http_response(s)
        except (ConnectionResetError, BrokenPipeError):
            resp = None
    if resp is not None:
        assert resp[0] in (400, 413, 431), resp
    _still_serves(shared)


def test_many_headers_rejected(shared):
    hdrs = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 50) for i in range(5000))
    with shared.connect() as s:
        try:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n" + hdrs + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            resp = read_http_response(s)
        except (ConnectionResetError, BrokenPipeError):
            resp = None
    if resp is not None:
        assert resp[0] in (400, 413, 431), resp
    _still_serves(shared)


def _trickle(sock, data, interval, stop):
    try:
        for b in data:
            if stop.is_set():
                return
            sock.sendall(bytes([b]))
            time.sleep(interval)
    except OSError:
        pass


def test_slow_loris_does_not_block_others(shared):
    stop = threading.Event()
    socks, threads = [], []
    try:
        for _ in range(16):
            s = shared.connect()
            socks.append(s)
            t = threading.Thread(target=_trickle, daemon=True,
                                 args=(s, b"GET /health HTTP/1.1\r\nHost: slow\r\nX-A: b", 0.5,
                                       stop))
            t.start()
            threads.append(t)
        time.sleep(1.0)
        for _ in range(5):
            t0 = time.monotonic()
            r = requests.get(shared.url("/health"), timeout=5)
            assert r.status_code == 200
            assert time.monotonic() - t0 < 1.0
            time.sleep(0.3)
    finally:
        stop.set()
        for s in socks:
            s.close()
        for t in threads:
            t.join(5)


def test_stalled_headers_are_cut_off(arc_factory):
    """server.header_timeout_seconds bounds the time to receive the request
    headers: a client trickling one byte every 0.5 s is disconnected."""
    srv = arc_factory("--set", "server.header_timeout_seconds=2",
                      "--set", "server.idle_timeout_seconds=30")
    stop = threading.Event()
    s = srv.connect()
    t = threading.Thread(target=_trickle, daemon=True,
                         args=(s, b"GET /health HTTP/1.1\r\n" + b"X-Slow: " + b"a" * 100, 0.5,
                               stop))
    t0 = time.monotonic()
    t.start()
    try:
        s.settimeout(slow(15))
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            data = b""
        except socket.timeout:
            data = None
        elapsed = time.monotonic() - t0
        assert data is not None, "still connected after %.1fs of trickled headers" % elapsed
        # closed (b"") or answered with a 408, within the header timeout plus slack
        assert data == b"" or data.startswith(b"HTTP/1.1 408"), data[:200]
        assert elapsed < 2 + slow(4), elapsed
    finally:
        stop.set()
        s.close()
        t.join(5)


# ---------------------------------------------------------- body caps, decoding

@pytest.fixture
def capped(arc_factory):
    return arc_factory("--set", "server.max_payload_mb=1", "--set", "server.max_decompressed_mb=8")


def test_announced_body_over_cap_is_413_before_upload(capped):
    with capped.connect() as s:
        s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                   % (TOKENS, capped.token, 2 * MiB)).encode())
        resp = read_http_response(s)  # no body byte was sent
    assert resp is not None
    st, _, body = resp
    assert st == 413
    assert json.loads(body) == {
        "success": False,
        "error": "request body of 2097152 bytes exceeds the limit of 1048576 bytes "
                 "(server.max_payload_mb)"}
    _still_serves(capped)


def test_chunked_body_over_cap_is_413(capped):
    with capped.connect() as s:
        s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                   % (TOKENS, capped.token)).encode())
        chunk = b"x" * 65536
        try:
            for _ in range(40):  # 2.5 MiB
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered early and closed: the answer is in the socket buffer
        resp = read_http_response(s, timeout=30)
    assert resp is not None
    st, _, body = resp
    assert st == 413
    assert json.loads(body) == {"success": False,
                                "error": "request body exceeds server.max_payload_mb"}
    _still_serves(capped)


def test_body_just_under_cap_is_read(capped):
    # a valid JSON object padded with spaces to exactly the cap reaches the handler
    body = json.dumps({"name": "padded"}).encode()
    body = body[:-1] + b" " * (MiB - len(body)) + b"}"
    assert len(body) == MiB
    r = capped.post(TOKENS, data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_decompression_bomb_is_413(capped, kind):
    raw = bytes(64 * MiB)
    if kind == "gzip":
        comp = gzip.compress(raw, 9)
    else:
        comp = zstandard.ZstdCompressor(level=19).compress(raw)
    assert len(comp) < MiB
    r = capped.post(TOKENS, data=comp, headers={"Content-Encoding": kind,
                                                "Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json() == {"success": False, "error": "decompressed body exceeds 8388608 bytes"}
    _still_serves(capped)


@pytest.mark.parametrize("kind,header", [("gzip", "gzip"), ("zstd", "zstd"),
                                         ("gzip", None), ("zstd", None)])
def test_compressed_body_is_decoded(arc, kind, header):
    body = json.dumps({"name": "compressed-%s-%s" % (kind, header)}).encode()
    comp = gzip.compress(body) if kind == "gzip" else zstandard.ZstdCompressor().compress(body)
    hdrs = {"Content-Type": "application/json"}
    if header:
        hdrs["Content-Encoding"] = header
    r = arc.post(TOKENS, data=comp, headers=hdrs)
    assert r.status_code == 201, r.text
    j = r.json()
    assert j["success"] is True
    r = arc.get("/api/v1/auth/verify", token=j["token"])
    assert r.status_code == 200, r.text


def test_corrupt_gzip_is_400(arc):
    comp = bytearray(gzip.compress(json.dumps({"name": "x" * 100}).encode()))
    comp[12:20] = b"\xff" * 8
    r = arc.post(TOKENS, data=bytes(comp), headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400
    assert r.json()["error"].startswith("gzip: corrupt data"), r.text


def test_unknown_content_encoding_is_415(arc):
    r = arc.post(TOKENS, data=b'{"name":"br"}', headers={"Content-Encoding": "br"})
    assert (r.status_code, r.json()) == (415, {"success": False,
                                               "error": "unsupported Content-Encoding"})


def test_invalid_content_length_is_400(shared):
    with shared.connect() as s:
        s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Content-Length: 12abc\r\n\r\n" % (TOKENS, shared.token)).encode())
        resp = read_http_response(s)
    # MHD itself may reject the header first; either way a 400, never a crash
    assert resp is None or resp[0] == 400, resp
    _still_serves(shared)


def test_response_compression(shared):
    r = requests.get(shared.url("/metrics"), headers={"Accept-Encoding": "gzip"},
                     timeout=slow(10))
    assert r.status_code == 200
    # requests decodes gzip transparently; the header says it was used
    assert r.headers.get("Content-Encoding") == "gzip"
    assert "arc_http_requests_total" in r.text


# ------------------------------------------------------------------------ CORS

def test_cors_preflight(shared):
    r = requests.options(shared.url("/api/v1/auth/tokens"),
                         headers={"Origin": "https://grafana.example",
                                  "Access-Control-Request-Method": "POST",
                                  "Access-Control-Request-Headers": "authorization"},
                         timeout=slow(10))
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    assert "authorization" in r.headers["Access-Control-Allow-Headers"].lower()


def test_cors_on_normal_answers(shared):
    r = requests.get(shared.url("/health"), headers={"Origin": "https://x.example"},
                     timeout=slow(10))
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    r = requests.get(shared.url("/health"), timeout=slow(10))
    assert "Access-Control-Allow-Origin" not in r.headers
    # errors carry it too, or browsers cannot read the message
    r = requests.get(shared.url("/api/v1/auth/verify"), headers={"Origin": "https://x.example"},
                     timeout=slow(10))
    assert r.status_code == 401
    assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_cors_origin_list(arc_factory):
    srv = arc_factory("--set", "server.cors_origins=https://a.example,https://b.example")
    r = requests.get(srv.url("/health"), headers={"Origin": "https://b.example"}, timeout=10)
    assert r.headers["Access-Control-Allow-Origin"] == "https://b.example"
    assert "Origin" in r.headers["Vary"]
    r = requests.get(srv.url("/health"), headers={"Origin": "https://evil.example"}, timeout=10)
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r.headers
