"""Crash tests for the write-ahead log (issue 5): SIGKILL while writing.

The promise under test (docs/wal.md, DESIGN.md): with the WAL on, every write
answered 204 survives `kill -9`, and no row is ever stored twice -- not by the
WAL replay, not by a flush that was interrupted between writing its Parquet file
and committing it to the catalog. Rows whose request got no answer (connection
reset by the kill, 503 while starting) may be stored or not, but at most once.

How: writer threads send line-protocol batches in which every row carries a
unique integer field `id` and a unique time; each writer remembers which ids
were acknowledged (204) and which were merely attempted. The server runs on a
fixed port so the writers need not follow restarts; they retry connection
errors and 503 with *new* ids (re-sending the same ids after an unanswered
request could legitimately store them twice). A killer thread SIGKILLs the
server at random moments and restarts it. At the end the ids are read back
through the query API (read-your-writes: buffered rows included) and compared
as sets: every acknowledged id present, nothing never sent, nothing twice.

Durations scale down under sanitizers (the spec's 20 s / 10 kills still holds:
kills come every ~2 s) so every test stays under a minute on 2 cores.

The helpers here (LoadWriters, ids_of, check_ids, ...) are also used by
test_wal.py.
"""

from __future__ import annotations

import collections
import os
import random
import threading
import time

import numpy as np
import pyarrow as pa
import requests

from arc_server import ArcServer, free_port, slow

# time of id 0, µs; ids are µs offsets, so every row's time is distinct
BASE_US = 1_790_000_000_000_000
ID_SPAN = 10_000_000  # ids of writer w: w*ID_SPAN .. (w+1)*ID_SPAN-1
DB = "waltest"

WAL_ON = ("--set", "wal.enabled=true")


# ------------------------------------------------------------------ helpers

def lp_body(first: int, n: int, measurements=("m",), pad: int = 0) -> bytes:
    """n rows with ids first..first+n-1; row i goes to measurements[id % len].
    pad adds a string field of that many bytes per row (bigger WAL records)."""
    out = []
    k = len(measurements)
    extra = ',p="%s"' % ("x" * pad) if pad else ""
    for i in range(first, first + n):
        out.append("%s,w=%d id=%di,v=%d.5%s %d" % (measurements[i % k], i // ID_SPAN, i, i % 1000,
                                                 extra, (BASE_US + i) * 1000))
    return ("\n".join(out) + "\n").encode()


def write_ids(url: str, token: str, first: int, n: int, measurements=("m",), pad: int = 0,
              session=None, timeout: float = 30) -> requests.Response:
    s = session or requests
    return s.post(url + "/api/v1/write/line-protocol", data=lp_body(first, n, measurements, pad),
                  headers={"Authorization": "Bearer " + token, "x-arc-database": DB,
                           "Content-Type": "text/plain"},
                  timeout=slow(timeout))


def query(srv: ArcServer, sql: str, fmt: str = "json", db: str = DB) -> requests.Response:
    return srv.post("/api/v1/query", json={"sql": sql, "format": fmt},
                    headers={"x-arc-database": db}, timeout=slow(120))


def union_sql(cols: str, measurements) -> str:
    return " UNION ALL ".join("SELECT %s FROM %s" % (cols, m) for m in measurements)


def ids_of(srv: ArcServer, measurements=("m",)) -> np.ndarray:
    """Every stored id (buffered rows included), sorted, duplicates kept; read as
    Arrow (fast for millions of ids). Also asserts that SQL's count(*) and
    count(DISTINCT id) agree with it."""
    r = query(srv, "SELECT count(*), count(DISTINCT id) FROM (%s)" % union_sql("id", measurements))
    assert r.status_code == 200, (r.status_code, r.text)
    total, distinct = r.json()["data"][0]
    r = srv.post("/api/v1/query/arrow", json={"sql": union_sql("id", measurements)},
                 headers={"x-arc-database": DB}, timeout=slow(120))
    assert r.status_code == 200, (r.status_code, r.text[:500])
    t = pa.ipc.open_stream(r.content).read_all()
    assert t.schema.names == ["id"], t.schema
    ids = np.sort(t.column("id").to_numpy())
    assert len(ids) == total, "arrow has %d ids, count(*) says %d" % (len(ids), total)
    ndist = len(sorted_unique(ids)[0])
    assert ndist == distinct, "arrow has %d distinct ids, SQL says %d" % (ndist, distinct)
    return ids


def as_ids(x) -> np.ndarray:
    return np.asarray(sorted(x) if isinstance(x, (set, frozenset)) else x, dtype=np.int64)


def sorted_unique(a: np.ndarray):
    """(sorted distinct values, the values that occur more than once). Sort-based:
    numpy's hash-based np.unique is slow on millions of ids."""
    a = np.sort(a)
    if len(a) == 0:
        return a, a
    same = a[1:] == a[:-1]
    keep = np.concatenate(([True], ~same))
    return a[keep], np.unique(a[1:][same]) if same.any() else a[:0]


def check_ids(stored, acked, attempted, what: str) -> None:
    """Never twice, every acknowledged id present, nothing that was never sent.
    Arguments: numpy arrays or sets of ids."""
    uniq, dup = sorted_unique(as_ids(stored))
    acked, attempted = sorted_unique(as_ids(acked))[0], sorted_unique(as_ids(attempted))[0]
    assert len(dup) == 0, "%s: %d ids stored more than once, e.g. %s" % (
        what, len(dup), dup[:10].tolist())
    missing = np.setdiff1d(acked, uniq, assume_unique=True)
    assert len(missing) == 0, "%s: %d of %d acknowledged ids lost, e.g. %s" % (
        what, len(missing), len(acked), missing[:10].tolist())
    extra = np.setdiff1d(uniq, attempted, assume_unique=True)
    assert len(extra) == 0, "%s: %d ids stored that were never sent, e.g. %s" % (
        what, len(extra), extra[:10].tolist())


def flush(srv: ArcServer) -> None:
    r = srv.post("/api/v1/write/flush", timeout=slow(120))
    assert r.status_code == 200, (r.status_code, r.text)


def wal_status(srv: ArcServer) -> dict:
    r = srv.get("/api/wal/status")
    assert r.status_code == 200, (r.status_code, r.text)
    j = r.json()
    assert j["success"] is True and j["enabled"] is True, j
    return j


class LoadWriters:
    """n writer threads against a fixed URL (survives restarts on the same port).

    Every row id is used at most once. 204: the batch's ids are acknowledged.
    Connection errors and 503 (killed, starting, overloaded): back off briefly
    and go on with new ids. Any other status is recorded as unexpected."""

    def __init__(self, url: str, token: str, n: int = 8, batch: int = 100,
                 measurements=("m",), pad: int = 0):
        self.url, self.token, self.batch = url, token, batch
        self.measurements, self.pad = measurements, pad
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.acked_ranges: list = []
        self.tried_ranges: list = []
        self.statuses = collections.Counter()
        self.conn_errors = 0
        self.unexpected: list = []
        self.threads = [threading.Thread(target=self._run, args=(w,), daemon=True)
                        for w in range(n)]

    def start(self) -> "LoadWriters":
        for t in self.threads:
            t.start()
        return self

    def stop(self) -> None:
        self.stop_ev.set()
        for t in self.threads:
            t.join(slow(60))
            assert not t.is_alive(), "writer thread did not stop"

    def _run(self, w: int) -> None:
        s = requests.Session()
        nxt = w * ID_SPAN
        while not self.stop_ev.is_set() and nxt + self.batch <= (w + 1) * ID_SPAN:
            first = nxt
            nxt += self.batch
            with self.lock:
                self.tried_ranges.append((first, self.batch))
            try:
                r = write_ids(self.url, self.token, first, self.batch, self.measurements,
                              self.pad, session=s, timeout=30)
            except requests.RequestException:
                with self.lock:
                    self.conn_errors += 1
                s.close()
                s = requests.Session()
                time.sleep(0.02)
                continue
            with self.lock:
                self.statuses[r.status_code] += 1
                if r.status_code == 204:
                    self.acked_ranges.append((first, self.batch))
                elif r.status_code != 503:
                    self.unexpected.append((r.status_code, r.text[:300]))
            if r.status_code == 503:
                time.sleep(0.02)
        s.close()

    @staticmethod
    def _expand(ranges) -> np.ndarray:
        if not ranges:
            return np.zeros(0, dtype=np.int64)
        return np.sort(np.concatenate([np.arange(f, f + n, dtype=np.int64) for f, n in ranges]))

    @property
    def acked(self) -> np.ndarray:
        with self.lock:
            return self._expand(self.acked_ranges)

    @property
    def attempted(self) -> np.ndarray:
        with self.lock:
            return self._expand(self.tried_ranges)

    def summary(self) -> str:
        with self.lock:
            return "acked batches=%d tried=%d statuses=%s conn_errors=%d" % (
                len(self.acked_ranges), len(self.tried_ranges), dict(self.statuses),
                self.conn_errors)


def kill_loop(srv: ArcServer, writers: LoadWriters, duration: float, kills: int,
              rng: random.Random) -> list:
    """SIGKILL the server `kills` times at random moments spread over `duration`
    seconds, restarting it each time. Returns the acked-batch count at each kill."""
    t0 = time.monotonic()
    slot = duration / kills
    progress = []
    for i in range(kills):
        lo = max(time.monotonic() + 0.1, t0 + i * slot)
        hi = max(lo + 0.05, t0 + (i + 1) * slot)
        time.sleep(max(0.0, rng.uniform(lo, hi) - time.monotonic()))
        with writers.lock:
            progress.append(len(writers.acked_ranges))
        assert srv.kill() == -9
        assert not writers.unexpected, writers.unexpected[:5]
        srv.start(timeout=60)
    return progress


def crash_server(arc_factory, *args, env=None) -> ArcServer:
    """A WAL server on a fixed port (writers keep their URL across restarts)."""
    return arc_factory(*WAL_ON, *args, env=env, port=free_port())


def run_crash_test(arc_factory, *, args=(), measurements=("m",), batch=100, writers=8,
                   duration=20.0, kills=10, env=None) -> None:
    seed = int(os.environ.get("ARC_TEST_SEED", "0")) or random.randrange(1, 1 << 30)
    rng = random.Random(seed)
    srv = crash_server(arc_factory, *args, env=env)
    url = srv.base_url
    lw = LoadWriters(url, srv.token, n=writers, batch=batch, measurements=measurements).start()
    try:
        progress = kill_loop(srv, lw, duration, kills, rng)
        time.sleep(1.0)  # let the writers reach the last incarnation
    finally:
        lw.stop()
    what = "seed %d, %s" % (seed, lw.summary())
    assert not lw.unexpected, "%s: unexpected answers %s" % (what, lw.unexpected[:5])
    acked, attempted = lw.acked, lw.attempted
    # the load was real and kept going across the kills
    assert len(acked) >= 20 * batch, what
    assert progress == sorted(progress) and progress[-1] > progress[0], (what, progress)
    check_ids(ids_of(srv, measurements), acked, attempted, "after the last restart (" + what + ")")
    # once more: a kill with nothing in flight, replay from a quiet WAL
    srv.kill()
    srv.start(timeout=60)
    check_ids(ids_of(srv, measurements), acked, attempted, "after a quiet kill (" + what + ")")
    # everything into Parquet, then a clean restart: still exactly once
    flush(srv)
    srv.restart()
    check_ids(ids_of(srv, measurements), acked, attempted, "after flush + restart (" + what + ")")


# -------------------------------------------------------------------- tests

def test_kill9_fdatasync_every_ack_survives_exactly_once(arc_factory):
    """Issue 5, crash test 1: 8 writers, 10 random SIGKILLs over 20 s, fdatasync.
    Flushes happen during the run (buffer_size 20 000 rows, 1 s age)."""
    run_crash_test(arc_factory,
                   args=("--set", "wal.sync_mode=fdatasync",
                         "--set", "ingestion.buffer_size=20000",
                         "--set", "ingestion.buffer_age_seconds=1"),
                   duration=20.0, kills=10)


def test_kill9_async_every_ack_survives_process_death(arc_factory):
    """async: an acknowledged record is in the OS page cache, which survives the
    death of the process (not of the machine). So kill -9 loses nothing either."""
    run_crash_test(arc_factory,
                   args=("--set", "wal.sync_mode=async",
                         "--set", "ingestion.buffer_size=20000",
                         "--set", "ingestion.buffer_age_seconds=1"),
                   duration=10.0, kills=5)


def test_kill9_during_frequent_flushes_never_duplicates(arc_factory):
    """Issue 5, crash test 2: flushes every 500 rows of a measurement, rows of one
    request spread over three measurements (so one WAL record can be half in
    Parquet, half in the buffers at the kill), killed repeatedly. The dangerous
    window: a Parquet file renamed into place but not yet in the catalog --
    start-up must delete it (orphan) and let the WAL replay its rows, once.
    No delay hook is needed: at these flush rates most restarts log
    "removed files left by an interrupted flush" (10 of 12 in a release run)."""
    ms = ("m0", "m1", "m2")
    run_crash_test(arc_factory,
                   args=("--set", "ingestion.buffer_size=500",
                         "--set", "ingestion.buffer_age_seconds=1"),
                   measurements=ms, batch=150, writers=6, duration=16.0, kills=12)


def test_kill9_wal_off_after_flush_keeps_flushed_rows(arc_factory, tmp_path):
    """Issue 5, crash test 5: WAL off. Everything written before a completed
    POST /write/flush is in Parquet and survives kill -9, exactly once; rows
    written after it are in the documented loss window (may vanish, never double)."""
    srv = arc_factory()
    r = srv.get("/api/wal/status")
    assert r.status_code == 200 and r.json()["enabled"] is False, r.text
    flushed = set()
    for k in range(20):
        r = write_ids(srv.base_url, srv.token, k * 1000, 1000, ("a", "b"))
        assert r.status_code == 204, (r.status_code, r.text)
        flushed.update(range(k * 1000, k * 1000 + 1000))
    flush(srv)
    later = set()
    for k in range(20, 25):
        r = write_ids(srv.base_url, srv.token, k * 1000, 1000, ("a", "b"))
        assert r.status_code == 204, (r.status_code, r.text)
        later.update(range(k * 1000, k * 1000 + 1000))
    assert srv.kill() == -9
    srv.start()
    stored = ids_of(srv, ("a", "b"))
    check_ids(stored, flushed, flushed | later, "WAL off, kill -9 after flush")
    # and the restart twice more, without writes: no change
    for _ in range(2):
        assert srv.kill() == -9
        srv.start()
        assert ids_of(srv, ("a", "b")).tolist() == stored.tolist()


def test_rotation_and_cleanup_under_load_never_delete_the_active_segment(arc_factory):
    """Go Arc bug: the active WAL file was deleted during rotation. Here segments
    rotate every ~1 MiB while 4 writers write, flushes are frequent and a thread
    calls POST /api/wal/cleanup in a loop; the active segment must exist on disk
    at every look, and after kill -9 every acknowledged id is back exactly once."""
    srv = crash_server(arc_factory, "--set", "wal.max_size_mb=1",
                       "--set", "ingestion.buffer_size=3000",
                       "--set", "ingestion.buffer_age_seconds=1")
    wal_dir = srv.data_dir / "wal"
    lw = LoadWriters(srv.base_url, srv.token, n=4, batch=200, pad=200).start()
    deleted = 0
    looks = 0
    problems = []
    deadline = time.monotonic() + slow(5)
    try:
        while time.monotonic() < deadline:
            r = srv.post("/api/wal/cleanup")
            assert r.status_code == 200, (r.status_code, r.text)
            deleted += r.json()["segments_deleted"]
            r = srv.get("/api/wal/files")
            assert r.status_code == 200, (r.status_code, r.text)
            files = r.json()["files"]
            active = [f["name"] for f in files if f["active"]]
            looks += 1
            if len(active) != 1:
                problems.append("active segments %s in %s" % (active, files))
            elif not (wal_dir / active[0]).exists():
                # it may have been rotated away between the two looks: ask again
                files2 = srv.get("/api/wal/files").json()["files"]
                if any(f["name"] == active[0] and f["active"] for f in files2):
                    problems.append("active segment %s missing on disk; dir has %s" % (
                        active[0], sorted(os.listdir(wal_dir))))
            time.sleep(0.05)
        assert srv.kill() == -9
        srv.start(timeout=60)
        time.sleep(0.5)
    finally:
        lw.stop()
    assert not problems, problems[:5]
    assert not lw.unexpected, lw.unexpected[:5]
    st = wal_status(srv)
    # the scenario really rotated and deleted segments
    assert deleted > 0, "no segment was ever deleted (%d looks, %s, status %s)" % (
        looks, lw.summary(), st)
    check_ids(ids_of(srv), lw.acked, lw.attempted, "rotation + cleanup + kill (%s)" % lw.summary())
    flush(srv)
    r = srv.post("/api/wal/cleanup")
    assert r.status_code == 200, (r.status_code, r.text)
    files = srv.get("/api/wal/files").json()["files"]
    assert [f["active"] for f in files].count(True) == 1, files
    for f in files:
        assert (wal_dir / f["name"]).exists(), (f, sorted(os.listdir(wal_dir)))
