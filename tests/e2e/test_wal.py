"""Write-ahead log end to end (issue 5): damaged segments, a full disk, replay
that must not repeat itself, and the /api/wal endpoints.

Damage tests stop the server with SIGKILL (so the WAL is the only copy of the
rows: buffers are never flushed, buffer_age 1 h and buffer_size 10 M rows), edit
the newest segment file by hand -- cut a few bytes off the last record or zero
them in place (a torn last record, what a crash in the middle of a write leaves
in an appended or a preallocated segment) or flip one byte in the middle (bit
rot) -- and restart. Start-up must succeed, log the damage with its offset, and
bring back exactly the intact records.

The segment format is the one of docs/wal.md: 24-byte header, then records
`u32 payload_len | u32 crc32c | u64 lsn | payload`, then zeros up to the end of
the file when the segment is preallocated (wal.preallocate, the default);
record_offsets() walks it.

The disk-full test mounts a 2 MiB tmpfs as the WAL directory (root only;
skipped with the reason otherwise).

Crash-under-load tests are in test_crash.py; this file reuses its helpers.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import time
from pathlib import Path

import pytest

from test_crash import (DB, WAL_ON, check_ids, flush, ids_of, wal_status,  # noqa: F401
                        write_ids)

NO_FLUSH = ("--set", "ingestion.buffer_age_seconds=3600",
            "--set", "ingestion.buffer_size=10000000")
HEADER = 24


def segments(wal_dir: Path) -> list:
    return sorted(p for p in wal_dir.iterdir() if p.suffix == ".wal")


def record_offsets(path: Path) -> list:
    """[(offset, total_bytes, lsn)] of the records of a segment (format of docs/wal.md)."""
    data = path.read_bytes()
    assert data[:8] == b"ARCWAL\0\0", data[:8]
    version, hsize, _first = struct.unpack_from("<IIQ", data, 8)
    assert (version, hsize) == (1, HEADER)
    out, off = [], HEADER
    while off + 16 <= len(data):
        plen, _crc, lsn = struct.unpack_from("<IIQ", data, off)
        if plen == 0:
            break  # zero-filled space after the last record
        out.append((off, 16 + plen, lsn))
        off += 16 + plen
    assert off <= len(data) and not data[off:].strip(b"\0"), (
        "segment %s: records end at %d, then %d bytes that are not all zero" % (
            path, off, len(data) - off))
    return out


def metric_value(srv, name: str) -> float:
    r = srv.get("/metrics")
    assert r.status_code == 200, r.status_code
    m = re.search(r"^%s(?:\{[^}]*\})? ([0-9.e+-]+)$" % re.escape(name), r.text, re.M)
    assert m, "metric %s not in /metrics" % name
    return float(m.group(1))


def write_batches(srv, nbatches: int, batch: int = 100, first: int = 0, **kw) -> list:
    """nbatches acknowledged writes of `batch` ids each; returns their (first, n)."""
    out = []
    for k in range(nbatches):
        f = first + k * batch
        r = write_ids(srv.base_url, srv.token, f, batch, **kw)
        assert r.status_code == 204, (r.status_code, r.text)
        out.append((f, batch))
    return out


def ids_in(ranges) -> set:
    s = set()
    for f, n in ranges:
        s.update(range(f, f + n))
    return s


# ------------------------------------------------------------ damaged WAL

@pytest.mark.parametrize("how", ["truncated", "zeroed"])
def test_torn_tail_is_cut_and_intact_records_replay(arc_factory, how):
    """Issue 5, crash test 3a: the last record loses its last 5 bytes -- the file
    ends 5 bytes early (an appended segment) or they are zeros (a preallocated
    segment whose last sector never reached the disk)."""
    srv = arc_factory(*WAL_ON, *NO_FLUSH)
    batches = write_batches(srv, 12)
    assert srv.kill() == -9
    seg = segments(srv.data_dir / "wal")[-1]
    recs = record_offsets(seg)
    assert len(recs) == 12, recs
    end = recs[-1][0] + recs[-1][1]
    if how == "truncated":
        os.truncate(seg, end - 5)
    else:
        with open(seg, "r+b") as f:
            f.seek(end - 5)
            f.write(b"\0" * 5)
    size = seg.stat().st_size

    srv.start()
    m = srv.wait_log(r'msg="WAL: torn or corrupt tail cut off" segment=%s offset=(\d+) size=%d '
                     r'cut_bytes=(\d+)' % (re.escape(seg.name), size))
    assert int(m.group(1)) == recs[-1][0], "cut at %s, last record starts at %d" % (
        m.group(1), recs[-1][0])
    assert int(m.group(2)) == size - recs[-1][0]
    intact = ids_in(batches[:-1])
    check_ids(ids_of(srv), intact, intact, "after a torn tail")
    st = wal_status(srv)
    assert st["truncated_tails"] == 1 and st["corrupt_records"] == 0, st
    assert metric_value(srv, "arc_wal_truncated_tails_total") == 1
    # the torn bytes are gone: the file ends there, or zero-filling ahead
    # (preallocation) has already begun again after it
    assert len(record_offsets(seg)) == 11
    assert seg.stat().st_size == recs[-1][0] or seg.read_bytes()[recs[-1][0]:].strip(b"\0") == b""

    # new writes go on after the cut, and a second kill replays old + new once
    more = write_batches(srv, 3, first=100_000)
    assert srv.kill() == -9
    srv.start()
    want = intact | ids_in(more)
    check_ids(ids_of(srv), want, want, "torn tail, more writes, kill again")
    assert "WAL: torn" not in srv.log, srv.log


def test_flipped_byte_in_the_middle_skips_one_record(arc_factory):
    """Issue 5, crash test 3b: one byte of the 5th record's body flipped. That
    record (its CRC fails) is skipped, logged, counted; the 11 others replay."""
    srv = arc_factory(*WAL_ON, *NO_FLUSH)
    batches = write_batches(srv, 12)
    assert srv.kill() == -9
    seg = segments(srv.data_dir / "wal")[-1]
    recs = record_offsets(seg)
    assert len(recs) == 12, recs
    off, total, lsn = recs[4]
    pos = off + total // 2
    data = bytearray(seg.read_bytes())
    data[pos] ^= 0x20
    seg.write_bytes(bytes(data))

    srv.start()
    m = srv.wait_log(r'msg="WAL: corrupt record skipped, later records replay" segment=%s '
                     r'offset=(\d+) lsn=(\d+) reason=(\S+)' % re.escape(seg.name))
    assert (int(m.group(1)), int(m.group(2)), m.group(3)) == (off, lsn, "crc"), m.group(0)
    want = ids_in(batches[:4] + batches[5:])
    check_ids(ids_of(srv), want, want, "after a flipped byte")
    st = wal_status(srv)
    assert st["corrupt_records"] == 1 and st["truncated_tails"] == 0, st
    assert metric_value(srv, "arc_wal_corrupt_records_total") == 1
    r = srv.get("/api/v1/wal/health")
    assert r.status_code == 200 and r.json()["status"] == "degraded", r.text


def test_flipped_length_field_costs_one_record(arc_factory):
    """A flipped bit in a record's length field: the framing is lost at that
    record, the next intact record is found again; only that record is lost."""
    srv = arc_factory(*WAL_ON, *NO_FLUSH)
    batches = write_batches(srv, 8)
    assert srv.kill() == -9
    seg = segments(srv.data_dir / "wal")[-1]
    recs = record_offsets(seg)
    off = recs[3][0]
    data = bytearray(seg.read_bytes())
    data[off + 1] ^= 0x04  # payload_len += 1024 (or -1024)
    seg.write_bytes(bytes(data))
    srv.start()
    want = ids_in(batches[:3] + batches[4:])
    check_ids(ids_of(srv), want, want, "after a flipped length")
    assert wal_status(srv)["corrupt_records"] == 1


def test_preallocated_segment_restarts_clean(arc_factory):
    """wal.preallocate (default): the active segment is zero-filled ahead of its
    records. After kill -9 the zeros after the last record are the clean end of
    the log: nothing cut or counted, every acknowledged record replays, and new
    records go on where the old ones end."""
    srv = arc_factory(*WAL_ON, *NO_FLUSH)
    batches = write_batches(srv, 5)
    f = None
    for _ in range(200):
        f = srv.get("/api/v1/wal/files").json()["files"][-1]
        if f["file_bytes"] > f["bytes"]:
            break
        time.sleep(0.05)
    assert f["file_bytes"] > f["bytes"], "no zero-filled space after 10 s: %s" % f
    assert wal_status(srv)["total_bytes"] >= f["file_bytes"]
    assert srv.kill() == -9
    seg = segments(srv.data_dir / "wal")[-1]
    assert seg.stat().st_size > f["bytes"]
    assert len(record_offsets(seg)) == 5

    srv.start()
    want = ids_in(batches)
    check_ids(ids_of(srv), want, want, "preallocated segment after kill -9")
    st = wal_status(srv)
    assert st["truncated_tails"] == 0 and st["corrupt_records"] == 0, st
    assert "WAL: torn" not in srv.log and "WAL: corrupt" not in srv.log, srv.log
    more = write_batches(srv, 3, first=100_000)
    assert srv.kill() == -9
    assert len(record_offsets(seg)) == 8
    srv.start()
    want |= ids_in(more)
    check_ids(ids_of(srv), want, want, "preallocated segment, more writes, kill again")
    assert wal_status(srv)["corrupt_records"] == 0


# ------------------------------------------------------------ replay once

def test_restarts_without_writes_never_replay_twice(arc_factory):
    """Go Arc bug: periodic recovery replayed already-flushed data. Half the rows
    are flushed, half only in the WAL; then SIGKILL, SIGTERM, SIGKILL restarts
    with no writes in between: the stored ids never change."""
    srv = arc_factory(*WAL_ON, *NO_FLUSH)
    first = write_batches(srv, 10, measurements=("a", "b"))
    flush(srv)
    second = write_batches(srv, 10, first=10_000, measurements=("a", "b"))
    want = ids_in(first + second)
    expected = sorted(want)
    for how in ("kill", "term", "kill", "term"):
        if how == "kill":
            assert srv.kill() == -9
            srv.start()
        else:
            srv.restart()
        got = ids_of(srv, ("a", "b"))
        check_ids(got, want, want, "after restart by %s" % how)
        assert got.tolist() == expected
    # the checkpoint moved: after a flush and cleanup no segment holds old records
    flush(srv)
    r = srv.post("/api/wal/cleanup")
    assert r.status_code == 200, r.text
    st = wal_status(srv)
    assert st["checkpoint_lsn"] >= 20, st


def test_wal_endpoints_report_the_log(arc_factory):
    # preallocation off: a file's size then stays put between the answer and stat()
    srv = arc_factory(*WAL_ON, "--set", "wal.sync_mode=fsync", "--set", "wal.preallocate=false",
                      *NO_FLUSH)
    write_batches(srv, 3)
    for path in ("/api/wal/status", "/api/v1/wal/status", "/api/wal/stats", "/api/v1/wal/stats"):
        r = srv.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text)
        j = r.json()
        assert j["sync_mode"] == "fsync" and j["appends"] == 3 and j["last_lsn"] == 3, j
        assert j["durable_lsn"] == 3 and j["segments"] == 1, j
        assert j["dir"] == str(srv.data_dir / "wal"), j
    r = srv.get("/api/v1/wal/files")
    files = r.json()["files"]
    assert len(files) == 1 and files[0]["active"] is True, files
    assert files[0]["first_lsn"] == 1 and files[0]["last_lsn"] == 3, files
    seg = srv.data_dir / "wal" / files[0]["name"]
    assert files[0]["bytes"] == files[0]["file_bytes"] == seg.stat().st_size, files
    assert files[0]["bytes"] == record_offsets(seg)[-1][0] + record_offsets(seg)[-1][1]
    r = srv.get("/api/wal/health")
    assert r.json()["status"] == "ok", r.text
    r = srv.post("/api/wal/cleanup", token=None)
    assert r.status_code == 401, r.text


# ------------------------------------------------------------- disk full

@pytest.fixture
def tiny_fs(tmp_path):
    mnt = tmp_path / "walfs"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip("cannot mount a 2 MiB tmpfs for the WAL (needs root): %s" %
                    (p.stderr.strip() or p.returncode))
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_disk_full_answers_507_and_loses_nothing(arc_factory, tiny_fs):
    """Issue 5, crash test 4: the WAL on a 2 MiB tmpfs, segments of 1 MiB. Writes
    of ~50 KB records fill it: 507 with a clear message, nothing of a rejected
    request stored; flush + cleanup frees the sealed segment, writes succeed
    again; after kill -9 every acknowledged id is back exactly once."""
    srv = arc_factory(*WAL_ON, "--set", "wal.dir=%s" % tiny_fs, "--set", "wal.max_size_mb=1",
                      *NO_FLUSH)
    acked, rejected = [], []
    nxt = 0
    full = None
    for _ in range(200):
        r = write_ids(srv.base_url, srv.token, nxt, 200, pad=200)
        if r.status_code == 204:
            acked.append((nxt, 200))
        else:
            full = r
            rejected.append((nxt, 200))
        nxt += 200
        if full is not None:
            break
    assert full is not None, "2 MiB tmpfs never filled after %d writes" % len(acked)
    # 507 Insufficient Storage, naming the cause (the WAL, no space)
    assert full.status_code == 507, (full.status_code, full.text)
    j = full.json()
    assert j["success"] is False, j
    assert "WAL" in j["error"] and "No space left on device" in j["error"], j
    assert acked, "the first write already failed: %s" % full.text
    # still full: the next write is refused too, and /ready stays up
    r = write_ids(srv.base_url, srv.token, nxt, 200, pad=200)
    assert r.status_code == full.status_code, (r.status_code, r.text)
    rejected.append((nxt, 200))
    nxt += 200
    assert srv.get("/ready").status_code == 200
    want = ids_in(acked)
    check_ids(ids_of(srv), want, want, "WAL full")  # rejected ids are not stored

    # free space: everything into Parquet, then delete the covered segments
    flush(srv)
    r = srv.post("/api/wal/cleanup")
    assert r.status_code == 200, r.text
    assert r.json()["segments_deleted"] >= 1, r.text
    again = write_batches(srv, 5, batch=200, first=nxt, pad=200)
    nxt += 1000
    want |= ids_in(again)
    assert srv.kill() == -9
    srv.start()
    check_ids(ids_of(srv), want, want, "after freeing space and kill -9")
    assert wal_status(srv)["corrupt_records"] == 0


# ------------------------------------------------------------ group commit

def test_coalesced_flushes_keep_every_row_once(arc_factory):
    """With one flusher and tiny buffers, rotations that find the previous flush still
    waiting join it (group commit: /write/stats buffers.coalesced > 0, fewer files than
    rotations). Every acknowledged row is stored exactly once: after a flush, and after
    kill -9 in the middle of such a backlog (the merged items' WAL ranges must make
    replay skip exactly what their files hold)."""
    import threading

    srv = arc_factory(*WAL_ON, "--set", "ingestion.buffer_size=200",
                      "--set", "ingestion.flush_threads=1")
    acked, lock = [], threading.Lock()

    def writer(t):
        for k in range(60):
            f = t * 1_000_000 + k * 100
            r = write_ids(srv.base_url, srv.token, f, 100)
            assert r.status_code == 204, (r.status_code, r.text)
            with lock:
                acked.append((f, 100))

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flush(srv)
    want = ids_in(acked)
    assert len(want) == 24_000
    check_ids(ids_of(srv), want, want, "after coalesced flushes")
    st = srv.get("/write/stats").json()["buffers"]
    files = list((srv.data_dir / DB).rglob("*.parquet"))
    # 24 000 rows in rotations of >= 200 rows: without merging >= 120 rotations would
    # each make one file per data hour they touch
    assert st["coalesced"] > 0, st
    assert len(files) < 120, len(files)

    # a backlog cut short by kill -9: the WAL replays what no file holds, once
    more = []
    for t in range(4):
        for k in range(30):
            f = 10_000_000 + t * 100_000 + k * 100
            r = write_ids(srv.base_url, srv.token, f, 100)
            assert r.status_code == 204, (r.status_code, r.text)
            more.append((f, 100))
    assert srv.kill() == -9
    srv.start()
    want |= ids_in(more)
    check_ids(ids_of(srv), want, want, "coalesced backlog, kill -9, replay")
