"""Files a crash leaves between a Parquet file's rename and its catalog commit.

DESIGN.md §5: at start-up, data files the catalog does not list are adopted when the
WAL is off (their rows were acknowledged and exist nowhere else) and deleted when it
is on (the WAL replays those rows). We make such a file by copying a flushed one to a
new name while the server is stopped."""

from __future__ import annotations

import shutil

import pytest


def _write_flush(srv, db="d"):
    body = "cpu,host=a v=1i 1700000000000000000\ncpu,host=b v=2i 1700000000000000001"
    r = srv.post("/api/v1/write?db=%s" % db, data=body)
    assert r.status_code == 204, r.text
    r = srv.post("/api/v1/write/flush")
    assert r.status_code == 200, r.text


def _count(srv, db="d"):
    r = srv.post("/api/v1/query", json={"sql": "SELECT count(*), sum(v) FROM cpu"},
                 headers={"x-arc-database": db})
    assert r.status_code == 200, r.text
    n, s = r.json()["data"][0]
    return n, int(s)


def _fake_orphan(srv, db="d"):
    files = sorted((srv.data_dir / db / "cpu").rglob("*.parquet"))
    assert files, "no Parquet file was written"
    orphan = files[0].parent / "1-orphan-00000000-0.parquet"
    shutil.copyfile(files[0], orphan)
    return orphan


@pytest.mark.parametrize("wal", [False, True])
def test_unlisted_file_adopted_without_wal_deleted_with_wal(arc_factory, wal):
    args = ("--set", "wal.enabled=%s" % ("true" if wal else "false"))
    srv = arc_factory(*args)
    _write_flush(srv)
    assert _count(srv) == (2, 3)
    srv.stop()
    orphan = _fake_orphan(srv)
    srv.start()
    if wal:
        assert not orphan.exists(), "WAL on: the unlisted file must be deleted"
        assert _count(srv) == (2, 3)
        assert "removed files left by an interrupted flush" in srv.log
    else:
        assert orphan.exists(), "WAL off: the unlisted file must be kept"
        assert _count(srv) == (4, 6)  # its two rows are adopted, once
        assert "adopted a data file the catalog did not list" in srv.log
        srv.stop()
        srv.start()  # adopted once: a second start changes nothing
        assert _count(srv) == (4, 6)
