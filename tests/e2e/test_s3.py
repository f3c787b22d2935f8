"""The S3 storage backend against a real MinIO server (tests/e2e/minio.py).

Each test starts Arc with `storage.backend = minio` on its own bucket (or
prefix) of one MinIO server per module: writes in every format come back
exactly through /api/v1/query; objects follow {prefix}/{db}/{m}/YYYY/MM/DD/HH/
*.parquet and pyarrow reads them straight from MinIO; a wrong secret fails
start-up with a message naming endpoint, bucket and S3 error code; an outage
of MinIO during ingestion loses nothing and duplicates nothing; a small cache
evicts and queries stay right; multipart uploads; two databases; a restart
with the cache deleted re-downloads; `arc catalog rebuild` from the listing.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import threading
import time
import uuid

import pyarrow.parquet as pq
import pytest
import requests

from arc_server import ArcServer, is_sanitized, run_arc, slow
from ingest_util import (batch, columnar_item, flush, row_item, write_json, write_lp,
                         write_msgpack)
from minio import minio  # noqa: F401  (fixture)

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z, seconds
KEY_RE = re.compile(r"^(?P<prefix>.+?)/(?P<db>[^/]+)/(?P<m>[^/]+)/(\d{4})/(\d{2})/(\d{2})/(\d{2})/"
                    r"[^/]+\.parquet$")


def s3_args(minio, bucket, *, secret=None, prefix=None, extra=()):
    a = ["--set", "storage.backend=minio",
         "--set", "storage.minio.endpoint=%s" % minio.endpoint,
         "--set", "storage.minio.access_key=%s" % minio.access_key,
         "--set", "storage.minio.secret_key=%s" % (secret or minio.secret_key),
         "--set", "storage.minio.bucket=%s" % bucket]
    if prefix:
        a += ["--set", "storage.minio.prefix=%s" % prefix]
    return a + list(extra)


def new_bucket() -> str:
    return "arc-" + uuid.uuid4().hex[:12]


def query(srv, sql, db="default"):
    r = requests.post(srv.url("/api/v1/query"), json={"sql": sql},
                      headers={"Authorization": "Bearer %s" % srv.token, "x-arc-database": db},
                      timeout=slow(120))
    assert r.status_code == 200, (r.status_code, r.text)
    j = r.json()
    assert j["success"] is True, j
    return j["data"]


def metric(srv, name) -> float:
    r = requests.get(srv.url("/metrics"), timeout=10)
    for ln in r.text.splitlines():
        if ln.startswith(name + " "):
            return float(ln.split()[1])
    raise AssertionError("metric %s missing" % name)


def objects(minio, bucket, prefix=""):
    from pyarrow import fs
    s3 = minio.boto_like()
    base = bucket + ("/" + prefix if prefix else "")
    infos = s3.get_file_info(fs.FileSelector(base, recursive=True))
    return s3, sorted(i.path[len(bucket) + 1:] for i in infos if i.type == fs.FileType.File)


@pytest.fixture
def server(tmp_path, request):
    started = []

    def make(args, name="data", env=None, start=True):
        srv = ArcServer(tmp_path / name, args=args, env=env, log_dir=tmp_path)
        started.append(srv)
        if start:
            srv.start(timeout=60)
        return srv

    yield make
    for s in started:
        s.stop()


# ------------------------------------------------------------------ round trip

def test_all_formats_roundtrip_layout_pyarrow_and_rebuild(minio, server, tmp_path):
    bucket, prefix = new_bucket(), "arc/prod"
    # the hot tier off: the queries below must read the objects through the cache
    srv = server(s3_args(minio, bucket, prefix=prefix, extra=["--set", "query.hot_cache=false"]))
    db = "fmt"
    r = write_lp(srv, "cpu,host=a usage=1.5,n=3i %d\ncpu,host=b usage=2.25,n=4i %d"
                 % (T0 * 10**9, (T0 + 3600) * 10**9), db=db)
    assert r.status_code == 204, r.text
    r = write_msgpack(srv, batch([
        row_item("mp", {"v": 10.5, "s": "x"}, t=T0 * 10**6, tags={"host": "h1"}),
        columnar_item("mp", {"time": [(T0 + 1) * 10**6, (T0 + 2) * 10**6],
                             "host": ["h2", "h3"], "v": [11.5, 12.5], "s": ["y", "z"]},
                      tag_keys=["host"])]), db=db)
    assert r.status_code == 204, r.text
    r = write_json(srv, [{"m": "js", "t": T0, "h": "j1", "fields": {"ok": True, "c": 7}},
                         {"m": "js", "t": T0 + 1, "h": "j2", "fields": {"ok": False, "c": 8}}],
                   db=db)
    assert r.status_code == 204, r.text
    flush(srv)

    assert query(srv, "SELECT host, usage, n FROM cpu ORDER BY time", db) == \
        [["a", 1.5, 3], ["b", 2.25, 4]]
    assert query(srv, "SELECT host, v, s FROM mp ORDER BY time", db) == \
        [["h1", 10.5, "x"], ["h2", 11.5, "y"], ["h3", 12.5, "z"]]
    assert query(srv, "SELECT ok, c FROM js ORDER BY time", db) == [[True, 7], [False, 8]]

    s3, keys = objects(minio, bucket)
    assert len(keys) == 4, keys  # cpu: two hours, mp, js
    for k in keys:
        m = KEY_RE.match(k)
        assert m and m.group("prefix") == prefix and m.group("db") == db, k
    cpu_keys = [k for k in keys if "/cpu/" in k]
    assert {tuple(k.split("/")[4:8]) for k in cpu_keys} == {("2023", "11", "14", "22"),
                                                            ("2023", "11", "14", "23")}
    # pyarrow reads the objects straight from MinIO, no help from Arc
    rows = []
    for k in cpu_keys:
        t = pq.read_table(bucket + "/" + k, filesystem=s3)
        assert str(t.schema.field("time").type) == "timestamp[us, tz=UTC]" or \
            str(t.schema.field("time").type).startswith("timestamp[us")
        rows += list(zip(t.column("host").to_pylist(), t.column("usage").to_pylist()))
    assert sorted(rows) == [("a", 1.5), ("b", 2.25)]

    # files this node wrote are in the cache: no download needed for the queries
    assert metric(srv, "arc_storage_cache_misses_total") == 0
    assert metric(srv, "arc_storage_cache_hits_total") >= 4
    assert srv.stop() == 0

    # `arc catalog rebuild` into a fresh data dir from the S3 listing
    d2 = tmp_path / "rebuilt"
    p = run_arc(["catalog", "rebuild", "--no-config", "--data-dir", str(d2)]
                + s3_args(minio, bucket, prefix=prefix), timeout=120)
    assert p.returncode == 0, p.stderr
    assert "4 files listed, 4 added, 0 removed" in p.stdout, p.stdout
    srv2 = server(s3_args(minio, bucket, prefix=prefix), name="rebuilt")
    assert query(srv2, "SELECT host, usage, n FROM cpu ORDER BY time", db) == \
        [["a", 1.5, 3], ["b", 2.25, 4]]
    assert query(srv2, "SELECT host, v, s FROM mp ORDER BY time", db) == \
        [["h1", 10.5, "x"], ["h2", 11.5, "y"], ["h3", 12.5, "z"]]
    # the rebuild fetched every object into the (fresh) cache: the queries hit it
    assert metric(srv2, "arc_storage_cache_hits_total") >= 2
    assert len(list((tmp_path / "rebuilt" / "cache").rglob("*.parquet"))) == 4


def test_wrong_secret_fails_startup_with_clear_message(minio, server):
    bucket = new_bucket()
    srv = server(s3_args(minio, bucket, secret="not-the-secret"), start=False)
    with pytest.raises(Exception):
        srv.start(timeout=30)
    srv.proc.wait(30)
    assert srv.proc.returncode != 0
    log = srv.log
    assert minio.endpoint in log and bucket in log, log
    assert "SignatureDoesNotMatch" in log, log
    # and a wrong access key names its own code
    srv2 = server(s3_args(minio, bucket) + ["--set", "storage.minio.access_key=nobody"],
                  name="data2", start=False)
    with pytest.raises(Exception):
        srv2.start(timeout=30)
    srv2.proc.wait(30)
    assert srv2.proc.returncode != 0
    assert "InvalidAccessKeyId" in srv2.log, srv2.log


def test_two_databases_and_restart_with_cache_deleted(minio, server, tmp_path):
    bucket = new_bucket()
    srv = server(s3_args(minio, bucket))
    for db, base in (("alpha", 1.0), ("beta", 100.0)):
        lines = "\n".join("m,host=h%d v=%s %d" % (i % 3, base + i, (T0 + i) * 10**9)
                          for i in range(50))
        assert write_lp(srv, lines, db=db).status_code == 204
    flush(srv)
    expect = {"alpha": [[50, sum(1.0 + i for i in range(50))]],
              "beta": [[50, sum(100.0 + i for i in range(50))]]}
    for db in expect:
        assert query(srv, "SELECT count(*), sum(v) FROM m", db) == expect[db]
    assert srv.stop() == 0
    shutil.rmtree(tmp_path / "data" / "cache")
    srv.start(timeout=60)
    for db in expect:
        assert query(srv, "SELECT count(*), sum(v) FROM m", db) == expect[db]
    assert metric(srv, "arc_storage_cache_misses_total") == 2
    # cross-database query through the cache
    assert query(srv, "SELECT count(*) FROM alpha.m a JOIN beta.m b ON a.time = b.time") == \
        [[50]]
    assert metric(srv, "arc_storage_cache_hits_total") >= 2


def test_cache_eviction_under_small_cap(minio, server):
    bucket = new_bucket()
    # 1 MiB cache; a path handed to a query is leased for the query timeout (2 s)
    # (the hot tier off: the queries must fetch the objects through the cache)
    srv = server(s3_args(minio, bucket, extra=["--set", "storage.cache_max_mb=1",
                                               "--set", "query.timeout_seconds=2",
                                               "--set", "query.hot_cache=false"]))
    rnd = random.Random(7)
    total, n = 0.0, 0
    for h in range(24):  # 24 hourly files of ~60 KiB of incompressible doubles
        vals = [rnd.random() for _ in range(8000)]
        times = [(T0 + h * 3600) * 10**6 + i for i in range(8000)]
        r = write_msgpack(srv, columnar_item("big", {"time": times, "v": vals}), db="ev")
        assert r.status_code == 204, r.text
        total += sum(vals)
        n += len(vals)
    flush(srv)
    s3, keys = objects(minio, bucket)
    assert len(keys) == 24
    size = sum(s3.get_file_info(bucket + "/" + k).size for k in keys)
    assert size > 1.3 * 2**20, size  # more than the cache holds
    for _ in range(3):
        time.sleep(2.5)  # leases expire: the next round may evict
        got = query(srv, "SELECT count(*), sum(v) FROM big", "ev")
        assert got[0][0] == n and abs(got[0][1] - total) < 1e-6, got
    assert metric(srv, "arc_storage_cache_evictions_total") > 0
    assert metric(srv, "arc_storage_cache_misses_total") > 0
    time.sleep(2.5)
    query(srv, "SELECT 1", "ev")
    time.sleep(0.5)  # the uploader thread evicts expired leases every 250 ms
    assert metric(srv, "arc_storage_cache_bytes") <= 2**20


def test_multipart_upload_of_a_large_file(minio, server):
    bucket = new_bucket()
    srv = server(s3_args(minio, bucket, extra=["--set", "ingestion.buffer_size=2000000",
                                               "--set", "ingestion.compression=none",
                                               "--set", "storage.multipart_threshold_mb=5",
                                               "--set", "storage.multipart_part_mb=5"]))
    rnd = random.Random(11)
    n, total = 0, 0.0
    for chunk in range(8):  # 8 x 100k rows x (time, v) doubles, uncompressed: ~12 MiB
        vals = [rnd.random() for _ in range(100_000)]
        times = [T0 * 10**6 + chunk * 100_000 + i for i in range(100_000)]
        r = write_msgpack(srv, columnar_item("mp", {"time": times, "v": vals}), db="mpu")
        assert r.status_code == 204, r.text
        n += len(vals)
        total += sum(vals)
    flush(srv)
    s3, keys = objects(minio, bucket)
    assert len(keys) == 1, keys
    assert s3.get_file_info(bucket + "/" + keys[0]).size > 10 * 2**20
    m = re.search(r'msg="S3 multipart upload completed" key=(\S+) bytes=(\d+) parts=(\d+)',
                  srv.log)
    assert m and m.group(1) == keys[0] and int(m.group(3)) >= 2, srv.log[-2000:]
    got = query(srv, "SELECT count(*), sum(v) FROM mp", "mpu")
    assert got[0][0] == n and abs(got[0][1] - total) < 1e-6
    t = pq.read_table(bucket + "/" + keys[0], filesystem=s3)
    assert t.num_rows == n


def test_outage_spools_and_loses_nothing(minio, server):
    bucket = new_bucket()
    outage = float(os.environ.get("ARC_S3_OUTAGE_SECONDS", 10 if is_sanitized() else 30))
    srv = server(s3_args(minio, bucket, extra=["--set", "ingestion.buffer_age_seconds=1"]))
    acked, failed = [], []
    stop = threading.Event()
    during = {"acks": 0}
    in_outage = threading.Event()

    def writer():
        seq = 0
        sess = requests.Session()
        while not stop.is_set():
            lines = []
            ids = []
            for _ in range(20):
                lines.append("evt,src=w seq=%di %d" % (seq, (T0 + seq) * 10**9))
                ids.append(seq)
                seq += 1
            try:
                r = sess.post(srv.url("/api/v1/write/line-protocol"), data="\n".join(lines),
                              headers={"Authorization": "Bearer %s" % srv.token,
                                       "x-arc-database": "out"}, timeout=30)
                if r.status_code == 204:
                    acked.extend(ids)
                    if in_outage.is_set():
                        during["acks"] += 1
                else:
                    failed.append(r.status_code)
            except requests.RequestException as e:
                failed.append(str(e))
            time.sleep(0.05)

    th = threading.Thread(target=writer)
    th.start()
    try:
        time.sleep(3)
        minio.stop()
        in_outage.set()
        time.sleep(outage)
        in_outage.clear()
        minio.start()
        time.sleep(3)
    finally:
        stop.set()
        th.join(60)
    assert during["acks"] > 0, "writes were not acknowledged during the outage"
    assert metric(srv, "arc_storage_spooled_total") > 0
    flush(srv)
    deadline = time.monotonic() + slow(60)
    while metric(srv, "arc_storage_spool_files") > 0:
        assert time.monotonic() < deadline, "spool did not drain"
        time.sleep(0.5)
    got = query(srv, "SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM evt", "out")
    assert got == [[len(acked), len(acked), min(acked), max(acked)]], (got, len(acked), failed)
    # in the bucket: every acknowledged row exactly once (no file under two names)
    s3, keys = objects(minio, bucket)
    seqs = []
    for k in keys:
        seqs += pq.read_table(bucket + "/" + k, filesystem=s3).column("seq").to_pylist()
    assert len(seqs) == len(set(seqs)) == len(acked)
    assert set(seqs) == set(acked)
