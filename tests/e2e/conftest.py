"""Shared fixtures for the end-to-end suite (see docs/testing.md).

  arc          a fresh server per test, data dir in tmp_path, random admin token
  arc_factory  start servers with custom args/env: arc_factory("--set", "k=v", env={...})
  shared_arc   one server per test module, for read-only tests (keeps the suite fast)

Every server is stopped with SIGTERM at teardown; the teardown fails the test if
the exit code is not 0 or a sanitizer reported anything in the log. When a test
fails, the logs of its servers are attached to the report ("arc log" section).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from arc_server import ArcServer, arc_bin, sanitizer_findings  # noqa: E402

_LOG_TAIL = 20000


def pytest_report_header(config):
    return "arc binary: %s%s" % (arc_bin(), "" if arc_bin().exists() else " (MISSING)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for srv in getattr(item, "_arc_servers", []):
            text = srv.all_logs()
            if len(text) > _LOG_TAIL:
                text = "...\n" + text[-_LOG_TAIL:]
            rep.sections.append(("arc log %s" % srv.data_dir, text))


def _register(request, srv):
    node = request.node
    if not hasattr(node, "_arc_servers"):
        node._arc_servers = []
    node._arc_servers.append(srv)


def _teardown(servers):
    problems = []
    for srv in servers:
        if srv.proc is None:
            continue
        was_running = srv.running
        try:
            code = srv.stop(signal.SIGTERM, check_sanitizers=False)
        except Exception as e:  # noqa: BLE001 - report every server
            problems.append("%r: %s" % (srv, e))
            continue
        if was_running and code != 0:
            problems.append("%r exited with %d on SIGTERM; log:\n%s" % (srv, code, srv.log))
        found = sanitizer_findings(srv.all_logs())
        if found:
            problems.append("%r: sanitizer errors:\n%s\nlog:\n%s"
                            % (srv, "\n".join(found), srv.all_logs()))
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def arc(tmp_path, request):
    """A fresh, ready server with its own data dir; stopped (and checked) after the test."""
    srv = ArcServer(tmp_path / "data", log_dir=tmp_path)
    _register(request, srv)
    srv.start()
    yield srv
    _teardown([srv])


@pytest.fixture
def arc_factory(tmp_path, request):
    """make(*args, env=None, start=True, name=None, **ArcServer kwargs) -> ArcServer.

    Each call gets its own data dir (tmp_path/name, default data1, data2, ...)
    unless data_dir= is given. With start=False the server is created but not
    started (call .start() yourself, e.g. to expect a failure)."""
    servers = []

    def make(*args, env=None, start=True, name=None, **kw):
        name = name or "data%d" % (len(servers) + 1)
        data_dir = kw.pop("data_dir", tmp_path / name)
        srv = ArcServer(data_dir, args=args, env=env, log_dir=tmp_path, **kw)
        servers.append(srv)
        _register(request, srv)
        if start:
            srv.start()
        return srv

    yield make
    _teardown(servers)


@pytest.fixture(scope="module")
def shared_arc(tmp_path_factory, request):
    """One server for a whole module: use it only for tests that change nothing
    another test could observe."""
    base = tmp_path_factory.mktemp("shared")
    srv = ArcServer(base / "data", log_dir=base)
    srv.start()
    yield srv
    _teardown([srv])


@pytest.fixture
def shared(shared_arc, request):
    """shared_arc, with its log attached to this test's report on failure."""
    _register(request, shared_arc)
    return shared_arc
