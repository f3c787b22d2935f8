"""Configuration through the real binary: arc.conf errors with file:LINE:,
environment and flag precedence on the port, and the CLI's help and version."""

from __future__ import annotations

import re
import socket
import subprocess
import time

import pytest
import requests

from arc_server import arc_bin, base_env, free_port, run_arc, sanitizer_findings, slow


def serve_fails(args, env=None, cwd=None):
    """Run `arc serve ...` expecting it to refuse to start; returns the process."""
    p = run_arc(["serve", *args], env=env, cwd=cwd, timeout=30)
    assert p.returncode != 0, "arc serve started with %r:\n%s" % (args, p.stderr)
    assert 'msg="arc ready"' not in p.stderr
    return p


def write_conf(tmp_path, text, name="arc.conf"):
    f = tmp_path / name
    f.write_text(text)
    return f


# ------------------------------------------------------------ arc.conf errors

@pytest.mark.parametrize("text,line,msg", [
    ("[server]\nprot = 8000\n", 2, "unknown key 'server.prot'"),
    ("[server]\nhost = \"127.0.0.1\"\nport = \"abc\"\n", 3,
     "server.port: expected integer, got string"),
    ("[server]\n\n\nport = 70000\n", 4, "server.port"),
    ("[wal]\nsync_mode = \"fast\"\n", 2, "wal.sync_mode: 'fast' is not one of fsync|fdatasync|async"),
    ("[auth]\nenabled = \"yes please\"\n", 2, "auth.enabled"),
    ("[nosuchsection]\nx = 1\n", None, "nosuchsection"),
])
def test_bad_config_file(tmp_path, text, line, msg):
    conf = write_conf(tmp_path, text)
    p = serve_fails(["--config", str(conf), "--data-dir", str(tmp_path / "d"), "--port", "0"])
    assert p.returncode == 2, (p.returncode, p.stderr)
    if line is not None:
        prefix = "%s:%d: " % (conf, line)
        lines = [ln for ln in p.stderr.splitlines() if prefix in ln]
        assert lines, "no line with %r in:\n%s" % (prefix, p.stderr)
        # the message starts with file:LINE: (after the program name)
        assert re.match(r"^(arc: )?" + re.escape(prefix), lines[0]), lines[0]
        assert msg in lines[0], lines[0]
    else:
        assert re.search(re.escape(str(conf)) + r":\d+:", p.stderr), p.stderr
        assert msg in p.stderr
    # no server state was created from a config that was refused
    assert not (tmp_path / "d" / "arc.db").exists()


def test_syntax_error_has_line_and_column(tmp_path):
    conf = write_conf(tmp_path, "[server]\nport = 8000\nhost = \"unterminated\n")
    p = serve_fails(["--config", str(conf), "--port", "0"])
    assert re.search(re.escape(str(conf)) + r":3:\d+: ", p.stderr), p.stderr


def test_missing_config_file(tmp_path):
    missing = tmp_path / "nope.conf"
    p = serve_fails(["--config", str(missing), "--port", "0"])
    assert p.returncode == 2
    assert str(missing) in p.stderr


def test_bad_flags(tmp_path):
    p = serve_fails(["--no-config", "--bogus"])
    assert p.returncode == 2
    assert "unknown option '--bogus' (see arc serve --help)" in p.stderr
    p = serve_fails(["--no-config", "--set", "server.nope=1"])
    assert "--set: unknown key 'server.nope'" in p.stderr
    p = serve_fails(["--no-config", "--set", "novalue"])
    assert "--set needs KEY=VALUE" in p.stderr
    p = serve_fails(["--no-config", "--port", "notaport"])
    assert "server.port" in p.stderr
    p = serve_fails(["--no-config", "--port"])
    assert "--port needs a value" in p.stderr


def test_bad_env_value(tmp_path):
    p = serve_fails(["--no-config", "--data-dir", str(tmp_path / "d")],
                    env={"ARC_SERVER_PORT": "abc"})
    assert p.returncode == 2
    assert "ARC_SERVER_PORT: server.port: expected integer, got 'abc'" in p.stderr


def test_host_must_be_an_address(tmp_path):
    p = serve_fails(["--no-config", "--host", "not-an-ip", "--port", "0",
                     "--data-dir", str(tmp_path / "d")])
    assert "server.host: 'not-an-ip' is not an IPv4 address" in p.stderr


def test_port_in_use_fails(arc_factory):
    """A second server on a port that is already taken must fail, not share it."""
    port = free_port()
    first = arc_factory(port=port)
    assert first.port == port
    second = arc_factory(port=port, start=False)
    second.start(wait=False)
    deadline = time.monotonic() + slow(20)
    while second.running and 'msg="arc ready"' not in second.log:
        assert time.monotonic() < deadline, second.log
        time.sleep(0.05)
    if second.running:
        pytest.fail("a second server started on port %d, which the first one holds:\n%s"
                    % (port, second.log))
    assert second.proc.returncode == 1, second.log
    assert "cannot listen on 127.0.0.1:%d" % port in second.log


# ----------------------------------------------------------------- precedence

def _listens(port):
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_config_file_sets_port(arc_factory, tmp_path):
    port = free_port()
    conf = write_conf(tmp_path, "[server]\nport = %d\n" % port)
    srv = arc_factory("--config", str(conf), port=False, no_config=False)
    assert srv.port == port
    assert requests.get(srv.url("/health"), timeout=slow(5)).status_code == 200


@pytest.mark.parametrize("var", ["ARC_SERVER_PORT", "ARC_PORT"])
def test_env_sets_port(arc_factory, var):
    port = free_port()
    srv = arc_factory(port=False, env={var: str(port)})
    assert srv.port == port
    assert re.search(r'msg="arc ready".* port=%d\b' % port, srv.log)
    assert requests.get("http://127.0.0.1:%d/health" % port, timeout=slow(5)).status_code == 200


def test_arc_name_beats_seed_name(arc_factory):
    p1, p2 = free_port(), free_port()
    srv = arc_factory(port=False, env={"ARC_SERVER_PORT": str(p1), "ARC_PORT": str(p2)})
    assert srv.port == p1


def test_flag_beats_env_beats_file(arc_factory, tmp_path):
    pf, pe, pflag = free_port(), free_port(), free_port()
    conf = write_conf(tmp_path, "[server]\nport = %d\n" % pf)
    srv = arc_factory("--config", str(conf), port=False, no_config=False,
                      env={"ARC_SERVER_PORT": str(pe)})
    assert srv.port == pe
    assert not _listens(pf)
    srv2 = arc_factory("--config", str(conf), "--port", str(pflag), port=False, no_config=False,
                       env={"ARC_SERVER_PORT": str(pe)})
    assert srv2.port == pflag
    assert _listens(pflag)


def test_set_flag_beats_env(arc_factory):
    srv = arc_factory("--set", "server.public_metrics=false", env={
        "ARC_SERVER_PUBLIC_METRICS": "true"})
    assert requests.get(srv.url("/metrics"), timeout=slow(5)).status_code == 401


def test_arc_conf_in_working_dir_is_read(arc_factory, tmp_path):
    """Without --config and --no-config, ./arc.conf is used (the server runs with
    its data dir as the working directory in these tests)."""
    data = tmp_path / "cwdconf"
    data.mkdir()
    (data / "arc.conf").write_text("[server]\npublic_metrics = false\n")
    srv = arc_factory(data_dir=data, no_config=False)
    assert requests.get(srv.url("/metrics"), timeout=slow(5)).status_code == 401


def test_print_config_reflects_sources(tmp_path):
    conf = write_conf(tmp_path, "[server]\nport = 1234\nmax_payload_mb = 7\n")
    p = run_arc(["serve", "--config", str(conf), "--print-config", "--set",
                 "server.max_payload_mb=9"], env={"ARC_SERVER_PORT": "4321",
                                                  "ARC_AUTH_BOOTSTRAP_TOKEN": "sekrit-value"})
    assert p.returncode == 0, p.stderr
    assert re.search(r"^port = 4321$", p.stdout, re.M), p.stdout
    assert re.search(r"^max_payload_mb = 9$", p.stdout, re.M), p.stdout
    assert "sekrit-value" not in p.stdout
    # what it prints reads back as a valid config
    again = write_conf(tmp_path, p.stdout, "dumped.conf")
    p2 = run_arc(["serve", "--config", str(again), "--print-config"])
    assert p2.returncode == 0, p2.stderr
    assert re.search(r"^port = 4321$", p2.stdout, re.M)


# ----------------------------------------------------------- help and version

@pytest.mark.parametrize("args,needle", [
    (["--help"], "usage: arc <command>"),
    (["help"], "usage: arc <command>"),
    (["serve", "--help"], "usage: arc serve"),
    (["token", "--help"], "usage: arc token"),
    (["token", "create", "--help"], "usage: arc token create NAME"),
    (["version", "--help"], "usage: arc version"),
])
def test_help(args, needle, tmp_path):
    p = run_arc(args, cwd=tmp_path)
    assert p.returncode == 0, (args, p.stderr)
    assert needle in p.stdout, p.stdout
    # help never creates state
    assert not (tmp_path / "data").exists()


def test_version_matches_server(shared):
    p = run_arc(["version"])
    assert p.returncode == 0
    m = re.fullmatch(r"arc (\S+)\n", p.stdout)
    assert m, p.stdout
    assert m.group(1) == requests.get(shared.url("/"), timeout=10).json()["version"]


def test_no_command_and_unknown_command():
    p = run_arc([])
    assert p.returncode == 2
    assert "usage: arc <command>" in p.stderr
    p = run_arc(["frobnicate"])
    assert p.returncode == 2
    assert "arc: unknown command 'frobnicate'" in p.stderr


def test_default_data_dir_is_created(tmp_path):
    """With no --data-dir the server keeps its state in ./data (the seed's default)."""
    logp = tmp_path / "default.log"
    with open(logp, "wb") as log:
        proc = subprocess.Popen([str(arc_bin()), "serve", "--no-config", "--host", "127.0.0.1",
                                 "--port", "0"], cwd=tmp_path, stdout=log,
                                stderr=subprocess.STDOUT,
                                env=base_env({"ARC_AUTH_BOOTSTRAP_TOKEN": "x" * 32}))
        try:
            deadline = time.monotonic() + slow(30)
            while 'msg="arc ready"' not in logp.read_text():
                assert proc.poll() is None, logp.read_text()
                assert time.monotonic() < deadline, logp.read_text()
                time.sleep(0.05)
            assert (tmp_path / "data" / "arc.db").exists()
        finally:
            proc.terminate()
            code = proc.wait(slow(30))
    assert code == 0, logp.read_text()
    assert not sanitizer_findings(logp.read_text()), logp.read_text()
