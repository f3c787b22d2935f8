"""Start and stop a real `arc serve` process for end-to-end tests.

Every e2e test talks to the real binary over loopback: ArcServer starts it on a
free port (``--port 0``; the port is read from the ``msg="arc ready"`` log
line), captures stderr to a file in the test's temp directory, waits for
``GET /ready`` == 200, and on stop checks that the process exited and that the
AddressSanitizer / UndefinedBehaviorSanitizer / LeakSanitizer printed nothing.

The binary comes from $ARC_BIN (the Makefile sets it), else
build/release/src/arc relative to the repository root.

Typical use (the `arc` fixture in conftest.py does this for you)::

    srv = ArcServer(tmp_path)
    srv.start()
    r = srv.session().get(srv.url("/api/v1/auth/verify"))
    assert srv.stop() == 0

Other e2e suites import this module: ``from arc_server import ArcServer``.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterable, Mapping, Optional

import msgpack
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO_ROOT / "build" / "release" / "src" / "arc"

# Lines that mean a sanitizer found a bug. Checked in the server log after stop.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
                     "ERROR: ThreadSanitizer", "WARNING: ThreadSanitizer")

SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
    "TSAN_OPTIONS": "halt_on_error=1 suppressions=%s" % (
        Path(__file__).resolve().parents[1] / "tsan.supp"),
}

READY_RE = re.compile(r'msg="arc ready".*?\bport=(\d+)')


def arc_bin() -> Path:
    """Path of the server binary under test."""
    return Path(os.environ.get("ARC_BIN") or DEFAULT_BIN).resolve()


_SANITIZED: Optional[bool] = None


def is_sanitized() -> bool:
    """True when the binary is built with ASan/TSan (slower: use longer timeouts)."""
    global _SANITIZED
    if _SANITIZED is None:
        try:
            data = arc_bin().read_bytes()
            _SANITIZED = b"__asan_init" in data or b"__tsan_init" in data
        except OSError:
            _SANITIZED = False
    return _SANITIZED


def slow(seconds: float) -> float:
    """Scale a timeout for sanitizer builds."""
    return seconds * (4 if is_sanitized() else 1)


def free_port() -> int:
    """A TCP port that was free a moment ago (for tests that need a fixed port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(extra: Optional[Mapping[str, str]] = None) -> dict:
    """The environment for an arc process: ours minus any ARC_* / seed config
    variables (so the developer's shell cannot change a test), plus sanitizer
    options, plus extra."""
    seed_prefixes = ("MINIO_", "S3_", "GCS_", "WAL_", "QUERY_CACHE_", "STORAGE_")
    env = {k: v for k, v in os.environ.items()
           if (not k.startswith("ARC_") or k == "ARC_BIN")
           and not k.startswith(seed_prefixes)}
    env.pop("LOG_LEVEL", None)
    env.update(SANITIZER_ENV)
    if extra:
        env.update(extra)
    return env


def sanitizer_findings(text: str) -> list:
    """Lines of text that report a sanitizer error."""
    return [ln for ln in text.splitlines() if any(m in ln for m in SANITIZER_MARKERS)]


def run_arc(args: Iterable[str], env: Optional[Mapping[str, str]] = None,
            timeout: float = 60, cwd: Optional[os.PathLike] = None,
            check_sanitizers: bool = True) -> subprocess.CompletedProcess:
    """Run `arc ARGS...` to completion (CLI subcommands), capturing output as text."""
    p = subprocess.run([str(arc_bin()), *args], env=base_env(env), cwd=cwd,
                       capture_output=True, text=True, timeout=slow(timeout))
    if check_sanitizers:
        found = sanitizer_findings(p.stderr)
        assert not found, "sanitizer errors in `arc %s`:\n%s" % (" ".join(args), p.stderr)
    return p


class ArcError(RuntimeError):
    pass


class ArcServer:
    """One `arc serve` process.

    data_dir   server.data_dir (kept across restart())
    token      the admin token (ARC_AUTH_BOOTSTRAP_TOKEN); random per server
    args       extra command-line arguments for every start (e.g. ["--set", "k=v"])
    env        extra environment for every start
    port       None = --port 0 (the real port comes from the ready line); an int =
               --port N; False = no --port flag (config file or environment decides)
    """

    def __init__(self, data_dir: os.PathLike, *, token: Optional[str] = None,
                 args: Iterable[str] = (), env: Optional[Mapping[str, str]] = None,
                 port=None, host: str = "127.0.0.1",
                 no_config: bool = True, bootstrap: bool = True,
                 log_dir: Optional[os.PathLike] = None):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.token = token if token is not None else (
            "arc-e2e-" + secrets.token_urlsafe(24) if bootstrap else None)
        self.args = list(args)
        self.env = dict(env or {})
        self.fixed_port = port
        self.host = host
        self.no_config = no_config
        self.log_dir = Path(log_dir) if log_dir else self.data_dir.parent
        self.proc: Optional[subprocess.Popen] = None
        self.port: Optional[int] = None
        self.starts = 0
        self.log_path: Optional[Path] = None
        self._logf = None
        self._sessions: list = []
        self.exit_code: Optional[int] = None

    # ------------------------------------------------------------ lifecycle

    def command(self, extra_args: Iterable[str] = ()) -> list:
        cmd = [str(arc_bin()), "serve"]
        if self.no_config:
            cmd.append("--no-config")
        cmd += ["--host", self.host, "--data-dir", str(self.data_dir)]
        extra = list(extra_args)
        if self.fixed_port is False:
            pass
        elif self.fixed_port is not None:
            cmd += ["--port", str(self.fixed_port)]
        elif "--port" not in self.args and "--port" not in extra:
            cmd += ["--port", "0"]
        # the hourly compaction schedule would merge files under tests that count or
        # read them; tests of compaction turn it on or use POST /api/v1/compaction/trigger
        if not any(a.startswith("compaction.enabled=") for a in self.args + extra):
            cmd += ["--set", "compaction.enabled=false"]
        return cmd + self.args + extra

    def start(self, extra_args: Iterable[str] = (), env: Optional[Mapping[str, str]] = None,
              wait: bool = True, timeout: float = 30) -> "ArcServer":
        """Start the server; with wait, block until it is ready (ready log line and
        GET /ready == 200). Raises ArcError with the log if it exits or times out."""
        if self.proc is not None and self.proc.poll() is None:
            raise ArcError("server already running")
        if not arc_bin().exists():
            raise ArcError("server binary %s not found (set ARC_BIN)" % arc_bin())
        self.starts += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.log_dir / ("arc-%s-%d.log" % (self.data_dir.name, self.starts))
        e = dict(self.env)
        if self.token is not None:
            e.setdefault("ARC_AUTH_BOOTSTRAP_TOKEN", self.token)
        if env:
            e.update(env)
        self._logf = open(self.log_path, "wb")
        self.port = None
        self.exit_code = None
        self.proc = subprocess.Popen(self.command(extra_args), env=base_env(e),
                                     stdin=subprocess.DEVNULL, stdout=self._logf,
                                     stderr=subprocess.STDOUT, cwd=str(self.data_dir))
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + slow(timeout)
        while self.port is None:
            m = READY_RE.search(self.log)
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                raise ArcError("arc exited with %s before ready; log:\n%s"
                               % (self.proc.returncode, self.log))
            if time.monotonic() > deadline:
                raise ArcError("arc not ready after %.0fs; log:\n%s" % (slow(timeout), self.log))
            time.sleep(0.02)
        while True:
            try:
                r = requests.get(self.url("/ready"), timeout=2)
                if r.status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.proc.poll() is not None:
                raise ArcError("arc exited with %s; log:\n%s" % (self.proc.returncode, self.log))
            if time.monotonic() > deadline:
                raise ArcError("GET /ready not 200 after %.0fs; log:\n%s"
                               % (slow(timeout), self.log))
            time.sleep(0.05)

    def _close_sessions(self) -> None:
        for s in self._sessions:
            s.close()
        self._sessions = []

    def _finish(self) -> int:
        self.exit_code = self.proc.returncode
        if self._logf:
            self._logf.close()
            self._logf = None
        return self.exit_code

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30,
             check_sanitizers: bool = True) -> int:
        """Send sig and wait for the exit; returns the exit code (negative =
        killed by a signal). SIGKILL after timeout (and then ArcError).
        Asserts that no sanitizer reported anything."""
        if self.proc is None:
            return self.exit_code if self.exit_code is not None else 0
        self._close_sessions()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(slow(timeout))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._finish()
                raise ArcError("arc did not exit within %.0fs of signal %d; log:\n%s"
                               % (slow(timeout), sig, self.log))
        code = self._finish()
        if check_sanitizers:
            self.assert_no_sanitizer_errors()
        return code

    def kill(self) -> int:
        """SIGKILL (no cleanup, no sanitizer leak report)."""
        if self.proc is None:
            return 0
        self._close_sessions()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        return self._finish()

    def restart(self, extra_args: Iterable[str] = (), env: Optional[Mapping[str, str]] = None,
                sig: int = signal.SIGTERM) -> "ArcServer":
        """Stop (expecting exit code 0 on SIGTERM) and start again on the same data dir.
        The port changes unless a fixed port was given."""
        code = self.stop(sig)
        if sig == signal.SIGTERM and code != 0:
            raise ArcError("arc exited with %d on SIGTERM; log:\n%s" % (code, self.log))
        return self.start(extra_args, env)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        return self.proc.pid

    # ------------------------------------------------------------------ logs

    @property
    def log(self) -> str:
        """Everything the current (or last) process wrote to stderr/stdout."""
        if not self.log_path or not self.log_path.exists():
            return ""
        return self.log_path.read_bytes().decode("utf-8", "replace")

    def all_logs(self) -> str:
        out = []
        for i in range(1, self.starts + 1):
            p = self.log_dir / ("arc-%s-%d.log" % (self.data_dir.name, i))
            if p.exists():
                out.append(p.read_bytes().decode("utf-8", "replace"))
        return "".join(out)

    def assert_no_sanitizer_errors(self) -> None:
        found = sanitizer_findings(self.log)
        assert not found, "sanitizer errors in the server log %s:\n%s" % (self.log_path, self.log)

    def wait_log(self, pattern: str, timeout: float = 10) -> re.Match:
        """Wait until the log matches the regex pattern; returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + slow(timeout)
        while True:
            m = rx.search(self.log)
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError("log never matched %r:\n%s" % (pattern, self.log))
            time.sleep(0.05)

    # ---------------------------------------------------------------- clients

    @property
    def base_url(self) -> str:
        return "http://%s:%d" % (self.host, self.port)

    def url(self, path: str = "/") -> str:
        if not path.startswith("/"):
            path = "/" + path
        return self.base_url + path

    def session(self, token: Optional[str] = "admin", scheme: str = "Bearer") -> requests.Session:
        """A requests.Session; token "admin" (default) = the admin token, None = no
        auth header, anything else is used as given."""
        s = requests.Session()
        if token == "admin":
            token = self.token
        if token is not None:
            s.headers["Authorization"] = "%s %s" % (scheme, token)
        self._sessions.append(s)
        return s

    def auth_headers(self, token: Optional[str] = None) -> dict:
        return {"Authorization": "Bearer %s" % (token or self.token)}

    def request(self, method: str, path: str, token: Optional[str] = "admin",
                **kw) -> requests.Response:
        """One request on a fresh connection (closed afterwards). token as in session()."""
        kw.setdefault("timeout", slow(10))
        with requests.Session() as s:
            if token == "admin":
                token = self.token
            if token is not None:
                s.headers["Authorization"] = "Bearer %s" % token
            r = s.request(method, self.url(path), **kw)
            r.content  # read the body before the connection goes away
            return r

    def get(self, path: str, token: Optional[str] = "admin", **kw) -> requests.Response:
        return self.request("GET", path, token, **kw)

    def post(self, path: str, token: Optional[str] = "admin", **kw) -> requests.Response:
        return self.request("POST", path, token, **kw)

    def create_token(self, name: str, permissions=None, databases=None,
                     **extra) -> dict:
        """POST /api/v1/auth/tokens as admin; returns the JSON answer (asserts 201)."""
        body = {"name": name}
        if permissions is not None:
            body["permissions"] = permissions
        if databases is not None:
            body["databases"] = databases
        body.update(extra)
        r = self.post("/api/v1/auth/tokens", json=body)
        assert r.status_code == 201, (r.status_code, r.text)
        j = r.json()
        assert j["success"] is True and j["token"], j
        return j

    def connect(self, timeout: float = 10) -> socket.socket:
        """A raw TCP connection to the server."""
        s = socket.create_connection((self.host, self.port), timeout=slow(timeout))
        return s

    def __repr__(self) -> str:
        return "<ArcServer %s port=%s pid=%s>" % (
            self.data_dir, self.port, self.proc.pid if self.proc else None)


def read_http_response(sock: socket.socket, timeout: float = 10) -> Optional[tuple]:
    """Read one HTTP response from a raw socket: (status, headers dict lower-case,
    body bytes); None if the server closed the connection without an answer."""
    sock.settimeout(slow(timeout))
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            if not data:
                return None
            raise AssertionError("connection closed inside the response head: %r" % data)
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(body) < n:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                break
            body += chunk
        body = body[:n]
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while not body.endswith(b"0\r\n\r\n"):
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                break
            body += chunk
        body = _dechunk(body)
    return status, headers, body


def _dechunk(raw: bytes) -> bytes:
    out = b""
    while raw:
        size_line, _, rest = raw.partition(b"\r\n")
        n = int(size_line.split(b";")[0], 16)
        if n == 0:
            break
        out += rest[:n]
        raw = rest[n + 2:]
    return out


class Answer:
    """A /api/v1/query JSON answer: status, columns, data (or error), and the
    x-arc-profile header as a dict."""

    def __init__(self, r):
        self.status = r.status_code
        self.profile = {}
        if "x-arc-profile" in r.headers:
            self.profile = dict(kv.split("=", 1) for kv in r.headers["x-arc-profile"].split(";"))
        j = r.json()
        if self.status == 200:
            assert j["success"] is True, j
            self.columns = j["columns"]
            self.data = j["data"]
            self.error = None
        else:
            self.columns = self.data = None
            self.error = j.get("error", "")

    def files(self):
        return int(self.profile.get("files", 0))

    def hot(self):
        return int(self.profile.get("hot_files", -1))

    @property
    def native(self):
        return self.profile.get("native") == "1"


def write_lp(srv, body, db):
    """POST line protocol to database db; 204 expected."""
    r = srv.post("/api/v1/write", params={"db": db}, data=body.encode(), timeout=slow(60))
    assert r.status_code == 204, (r.status_code, r.text)


def write_mp(srv, payload, db):
    """POST a MessagePack payload to database db; 204 expected."""
    r = srv.post("/api/v1/write/msgpack", data=msgpack.packb(payload, use_bin_type=True),
                 headers={"Content-Type": "application/msgpack", "x-arc-database": db},
                 timeout=slow(60))
    assert r.status_code == 204, (r.status_code, r.text)


def flush(srv):
    """Flush every buffered row to Parquet."""
    r = srv.post("/api/v1/write/flush", timeout=slow(120))
    assert r.status_code == 200, r.text
