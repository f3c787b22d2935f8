"""A real MinIO server for the S3 end-to-end tests and benchmarks.

MinIO is built once by scripts/minio.sh (``go install`` of a pinned version into
~/.cache/arc/minio/bin, see $ARC_CACHE_DIR). MinioServer starts it on 127.0.0.1 with a free port, a temp
data directory and fresh random root credentials, waits for
``/minio/health/live``, and can be stopped and restarted on the same port and
data directory (the outage test). ``minio`` is a pytest fixture (one server per
test module); tests are skipped when the binary cannot be built.

    srv = MinioServer(tmp_path / "minio").start()
    srv.endpoint, srv.access_key, srv.secret_key
    srv.stop(); srv.start()          # same port, same data
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from pathlib import Path
from typing import Optional

import pytest
import requests

from arc_server import REPO_ROOT, free_port

MINIO_SCRIPT = REPO_ROOT / "scripts" / "minio.sh"


def minio_bin() -> Optional[Path]:
    """Path of the MinIO binary ($MINIO_BIN, else built/reused by scripts/minio.sh)."""
    if os.environ.get("MINIO_BIN"):
        return Path(os.environ["MINIO_BIN"])
    p = subprocess.run([str(MINIO_SCRIPT)], capture_output=True, text=True, timeout=3600)
    if p.returncode != 0:
        return None
    return Path(p.stdout.strip().splitlines()[-1])


class MinioServer:
    def __init__(self, data_dir: os.PathLike, binary: Optional[Path] = None):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.binary = binary or minio_bin()
        if self.binary is None:
            raise RuntimeError("MinIO binary not available (scripts/minio.sh failed)")
        self.port = free_port()
        self.console_port = free_port()
        self.access_key = "arc" + secrets.token_hex(6)
        self.secret_key = secrets.token_urlsafe(24)
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = self.data_dir.parent / ("minio-%d.log" % self.port)
        self._logf = None

    @property
    def endpoint(self) -> str:
        return "http://127.0.0.1:%d" % self.port

    def start(self, timeout: float = 60) -> "MinioServer":
        env = dict(os.environ)
        env.update({"MINIO_ROOT_USER": self.access_key,
                    "MINIO_ROOT_PASSWORD": self.secret_key,
                    "MINIO_BROWSER": "off",
                    "MINIO_UPDATE": "off",
                    "MINIO_CI_CD": "1"})
        self._logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(self.binary), "server", "--quiet",
             "--address", "127.0.0.1:%d" % self.port,
             "--console-address", "127.0.0.1:%d" % self.console_port,
             str(self.data_dir / "data")],
            env=env, stdin=subprocess.DEVNULL, stdout=self._logf, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                r = requests.get(self.endpoint + "/minio/health/live", timeout=1)
                if r.status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("minio exited with %s; log:\n%s"
                                   % (self.proc.returncode, self.log_path.read_text()))
            if time.monotonic() > deadline:
                raise RuntimeError("minio not live after %.0fs" % timeout)
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self._logf:
            self._logf.close()
            self._logf = None

    def boto_like(self):
        """A pyarrow S3FileSystem on this server."""
        from pyarrow import fs
        return fs.S3FileSystem(endpoint_override="127.0.0.1:%d" % self.port, scheme="http",
                               access_key=self.access_key, secret_key=self.secret_key,
                               region="us-east-1")


@pytest.fixture(scope="module")
def minio(tmp_path_factory):
    b = minio_bin()
    if b is None:
        pytest.skip("MinIO could not be built (scripts/minio.sh)")
    srv = MinioServer(tmp_path_factory.mktemp("minio"), b).start()
    yield srv
    srv.stop()
