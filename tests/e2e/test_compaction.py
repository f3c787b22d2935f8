"""Compaction end to end (docs/maint.md): small files of one hour become one, the
answers do not change, a running query keeps its files, and a kill -9 in either
crash window (before or after the catalog swap) never shows a row twice or loses
one, with the WAL off (orphans adopted) and on.

The Go Arc's bug list has "compaction wrote the merged file, crashed before deleting
inputs -> every row twice": test_kill_in_both_windows is that test."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from arc_server import slow

T0 = 1767225600  # 2026-01-01T00:00:00Z
NS = 1_000_000_000
COMPACT = ("--set", "compaction.min_age_hours=0", "--set", "compaction.min_files=2")


def write(srv, body, db="cdb"):
    r = srv.post("/api/v1/write", params={"db": db}, data=body.encode())
    assert r.status_code == 204, (r.status_code, r.text)


def flush(srv):
    r = srv.post("/api/v1/write/flush")
    assert r.status_code == 200, r.text


def query(srv, sql, db="cdb"):
    r = srv.post("/api/v1/query", json={"sql": sql}, headers={"x-arc-database": db},
                 timeout=slow(60))
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()["data"]


def trigger(srv):
    r = srv.post("/api/v1/compaction/trigger", timeout=slow(120))
    assert r.status_code == 200, r.text
    return r.json()


def files(srv, db="cdb", m="cpu"):
    return sorted((srv.data_dir / db / m).rglob("*.parquet"))


def metric(srv, name):
    for line in srv.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def small_files(srv, hours=3, per_hour=4):
    """per_hour flushes into each of `hours` past hours; the schema grows midway
    (field `extra` from the third flush on) and `v` is missing on some rows."""
    n = 0
    for k in range(per_hour):
        lines = []
        for h in range(hours):
            for i in range(5):
                t = (T0 + h * 3600 + k * 60 + i) * NS
                fields = "v=%d.5" % n if n % 7 else "w=%di" % n
                if k >= 2:
                    fields += ",extra=\"x%d\"" % n
                lines.append("cpu,host=h%d,dc=d%d %s %d" % (i % 3, h, fields, t))
                n += 1
        write(srv, "\n".join(lines) + "\n")
        flush(srv)
    return n


def snapshot(srv):
    return query(srv, "SELECT time, host, dc, v, w, extra FROM cpu ORDER BY time, host")


def test_merge_keeps_every_row_and_value(arc_factory):
    srv = arc_factory(*COMPACT)
    n = small_files(srv)
    before = snapshot(srv)
    assert len(before) == n and len(files(srv)) == 12
    # the current hour is never compacted (still being written)
    now_ns = time.time_ns()
    write(srv, "cpu,host=now,dc=n v=1 %d\n" % now_ns)
    flush(srv)
    write(srv, "cpu,host=now,dc=n v=2 %d\n" % (now_ns + 1000))
    flush(srv)
    cands = srv.get("/api/v1/compaction/candidates").json()["candidates"]
    assert sorted(c["hour"] for c in cands) == [
        "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"]
    assert all(c["files"] == 4 and c["database"] == "cdb" for c in cands)

    res = trigger(srv)
    assert res["jobs"] == 3 and res["files_in"] == 12 and res["files_out"] == 3, res
    assert res["rows"] == n
    after = snapshot(srv)
    assert after[:n] == before and len(after) == n + 2
    fs = files(srv)
    past = [f for f in fs if "/2026/01/01/" in str(f)]
    assert len(past) == 3 and all(f.name.startswith("c-") for f in past)
    assert len(fs) == 3 + 2  # the current hour's two files are untouched
    assert metric(srv, "arc_compaction_files_in_total") == 12
    assert metric(srv, "arc_compaction_inputs_deleted_total") == 12

    pq = pytest.importorskip("pyarrow.parquet")
    for f in past:
        t = pq.read_table(f)
        times = t.column("time").to_pylist()
        assert times == sorted(times) and len(times) == 20
        meta = pq.read_metadata(f).metadata
        assert set(meta[b"arc_tags"].decode().split(",")) == {"host", "dc"}
        assert len(meta[b"arc_compacted_from"].decode().split(",")) == 4
        assert str(t.schema.field("time").type) == "timestamp[us]"
    # one file per hour now: nothing left to do
    assert srv.get("/api/v1/compaction/candidates").json()["candidates"] == []
    assert trigger(srv)["files_in"] == 0
    st = srv.get("/api/v1/compaction/status").json()
    assert st["total"]["files_out"] == 3 and st["pending_deletions"] == 0
    # SHOW TABLES counts the catalog's files
    r = srv.post("/api/v1/query", json={"sql": "SHOW TABLES"}, headers={"x-arc-database": "cdb"})
    assert r.json()["data"][0][3] == 5


def test_min_files_and_target_size(arc_factory):
    srv = arc_factory("--set", "compaction.min_age_hours=0", "--set", "compaction.min_files=3")
    small_files(srv, hours=1, per_hour=2)
    assert trigger(srv)["files_in"] == 0  # 2 files < min_files
    assert len(files(srv)) == 2
    srv2 = arc_factory(*COMPACT, "--set", "compaction.target_file_size_mb=1")
    big = "\n".join("cpu,host=h%d v=%d.25 %d" % (i % 50, i, (T0 + i % 3000) * NS + i)
                    for i in range(190000))
    for _ in range(3):
        write(srv2, big + "\n")
        flush(srv2)
    sizes = sorted(f.stat().st_size for f in files(srv2))
    # two fit in 1 MiB, three do not: only the two smallest are merged
    assert len(sizes) == 3 and sizes[0] + sizes[1] <= 1 << 20 < sum(sizes), sizes
    res = trigger(srv2)
    assert res["files_in"] == 2 and res["files_out"] == 1, (res, sizes)
    assert len(files(srv2)) == 2
    assert query(srv2, "SELECT count(*) FROM cpu") == [[570000]]


def test_running_query_keeps_its_files(arc_factory):
    srv = arc_factory(*COMPACT, "--set", "ingestion.buffer_size=1000000")
    lines = "\n".join("cpu,host=h%d v=%d %d" % (i % 10, i, T0 * NS + i * 10_000_000)
                      for i in range(200000))
    write(srv, lines + "\n")
    flush(srv)
    write(srv, lines.replace("host=h", "host=g") + "\n")
    flush(srv)
    old = files(srv)
    assert len(old) == 2
    # a streamed answer keeps its query running until the body is read
    r = requests.post(srv.base_url + "/query/stream", stream=True, timeout=slow(60),
                      headers={"Authorization": "Bearer " + srv.token,
                               "x-arc-database": "cdb"},
                      json={"sql": "SELECT time, host, v FROM cpu", "format": "csv"})
    assert r.status_code == 200
    it = r.iter_content(65536)
    first = next(it)
    assert trigger(srv)["files_out"] == 1
    assert all(f.exists() for f in old)  # still read by the streaming query
    assert srv.get("/api/v1/compaction/status").json()["pending_deletions"] == 2
    body = first + b"".join(it)
    assert body.count(b"\n") == 1 + 400000  # header + every row, read from the old files
    deadline = time.time() + slow(10)
    while any(f.exists() for f in old) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(f.exists() for f in old)
    assert query(srv, "SELECT count(*), count(DISTINCT host) FROM cpu") == [[400000, 20]]


@pytest.mark.parametrize("wal", [False, True])
@pytest.mark.parametrize("window", ["before", "after"])
def test_kill_in_both_windows(arc_factory, wal, window):
    args = list(COMPACT) + ["--set", "compaction.max_concurrent_jobs=1"]
    if wal:
        args += ["--set", "wal.enabled=true", "--set", "wal.sync_mode=fdatasync"]
    srv = arc_factory(*args, env={"ARC_TEST_COMPACT_PAUSE": "%s:60000" % window})
    n = small_files(srv, hours=2, per_hour=3)
    want = query(srv, "SELECT count(*), count(DISTINCT time), sum(v) FROM cpu")
    assert want[0][0] == n == want[0][1]
    if wal:
        # only files whose WAL records are checkpointed are merged: checkpoint now
        # instead of waiting for the housekeeper's next one
        assert srv.post("/api/v1/wal/cleanup").status_code == 200
    th = threading.Thread(target=lambda: srv.post("/api/v1/compaction/trigger", timeout=120),
                          daemon=True)
    th.start()
    srv.wait_log("compaction test pause", timeout=slow(30))
    srv.kill()
    th.join(timeout=5)
    srv.start(env={"ARC_TEST_COMPACT_PAUSE": ""})
    got = query(srv, "SELECT count(*), count(DISTINCT time), sum(v) FROM cpu")
    assert got == want, (window, wal, got, want)
    fs = files(srv)
    merged = [f for f in fs if f.name.startswith("c-")]
    if window == "before":
        # the merged file was never listed: removed, the six inputs still serve
        assert merged == [] and len(fs) == 6
    else:
        # the swap committed for the first partition: its inputs were retired and are
        # deleted at start-up (never adopted back)
        assert len(merged) == 1 and len(fs) == 1 + 3
    assert "adopted a data file" not in srv.log
    # and compaction finishes the job after the restart
    trigger(srv)
    assert query(srv, "SELECT count(*), count(DISTINCT time), sum(v) FROM cpu") == want
    assert len(files(srv)) == 2


def test_rebuild_prefers_the_merged_file(arc_factory):
    """Catalog lost after a swap whose inputs were not deleted yet: `arc catalog
    rebuild` finds the merged file and its inputs side by side and must keep only the
    merged one (its metadata names the inputs), then start-up adopts nothing."""
    from arc_server import run_arc
    srv = arc_factory(*COMPACT, "--set", "compaction.max_concurrent_jobs=1",
                      env={"ARC_TEST_COMPACT_PAUSE": "after:60000"})
    small_files(srv, hours=1, per_hour=3)
    want = query(srv, "SELECT count(*), count(DISTINCT time), sum(v) FROM cpu")
    th = threading.Thread(target=lambda: srv.post("/api/v1/compaction/trigger", timeout=120),
                          daemon=True)
    th.start()
    srv.wait_log("compaction test pause", timeout=slow(30))
    srv.kill()
    th.join(timeout=5)
    assert len(files(srv)) == 4  # the merged file and its three inputs
    for f in srv.data_dir.glob("arc.db*"):
        f.unlink()
    p = run_arc(["catalog", "rebuild", "--no-config", "--data-dir", str(srv.data_dir)],
                timeout=120)
    assert p.returncode == 0, p.stderr
    assert "1 files listed, 1 added" in p.stdout, p.stdout
    fs = files(srv)
    assert len(fs) == 1 and fs[0].name.startswith("c-")
    srv.start(env={"ARC_TEST_COMPACT_PAUSE": ""})
    assert query(srv, "SELECT count(*), count(DISTINCT time), sum(v) FROM cpu") == want


def test_schedule_runs_passes(arc_factory):
    """The cron schedule runs passes by itself (every minute here; default hourly)."""
    srv = arc_factory(*COMPACT, "--set", "compaction.enabled=true",
                      "--set", "compaction.schedule=* * * * *")
    n = small_files(srv, hours=1, per_hour=3)
    deadline = time.time() + slow(75)
    while len(files(srv)) != 1 and time.time() < deadline:
        time.sleep(0.5)
    assert len(files(srv)) == 1
    assert query(srv, "SELECT count(*) FROM cpu") == [[n]]
    st = srv.get("/api/v1/compaction/status").json()
    assert st["enabled"] is True and st["passes"] >= 1 and st["schedule"] == "* * * * *"
