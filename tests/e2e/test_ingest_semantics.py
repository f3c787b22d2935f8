"""End-to-end: ingestion semantics across formats (issue 3, section "Semantics").

All or nothing per request (also across measurements), field type conflicts
within and across requests (and across a flush and a restart), int/float widening,
a field named like a tag stored as <name>_value, schema evolution (new columns,
older rows NULL), NULL-never-zero, backpressure with a tiny memory budget (503 +
Retry-After, nothing of a 503'd request stored, recovery after flush), 16
concurrent writers losing and duplicating nothing, gzip/zstd bodies (header and
magic bytes), database selection and validation, the databases API, write stats,
and auth (401/403) on every write family.
"""

from __future__ import annotations

import gzip
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from arc_server import slow
from ingest_util import (S, column_types, count_rows, error_of, flush, hour_dirs, hour_of, pack,
                         parquet_files, post, read_rows, row_item, stats, unique_db, write_json,
                         write_lp, write_msgpack)

T0_S = 1700000000
T0_US = T0_S * S
T0_NS = T0_US * 1000


def _write(srv, fmt, m, fields_rows, db, t0=T0_US, tags=None):
    """Write rows [{field: value}] of measurement m in format fmt ('lp'|'msgpack'|'json'),
    row i at time t0 + i µs. Values: int -> integer, float, str, bool."""
    if fmt == "lp":
        lines = []
        for i, fields in enumerate(fields_rows):
            parts = []
            for k, v in fields.items():
                if isinstance(v, bool):
                    parts.append("%s=%s" % (k, "true" if v else "false"))
                elif isinstance(v, int):
                    parts.append("%s=%di" % (k, v))
                elif isinstance(v, float):
                    parts.append("%s=%r" % (k, v))
                else:
                    parts.append('%s="%s"' % (k, v))
            tag = "".join(",%s=%s" % kv for kv in (tags or {}).items())
            lines.append("%s%s %s %d" % (m, tag, ",".join(parts), (t0 + i) * 1000))
        return write_lp(srv, "\n".join(lines), db=db)
    items = [row_item(m, fields, t=t0 + i, tags=tags) for i, fields in enumerate(fields_rows)]
    if fmt == "msgpack":
        return write_msgpack(srv, items, db=db)
    return write_json(srv, items, db=db)


FORMATS = ["lp", "msgpack", "json"]


# ---------------------------------------------------------------- conflicts

CONFLICTS = [
    (1, "x", "integer", "string"),
    (1.5, True, "float", "boolean"),
    ("s", 2.5, "string", "float"),
    (True, 3, "boolean", "integer"),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("first,second,t1,t2", CONFLICTS,
                         ids=["%s-%s" % (c[2], c[3]) for c in CONFLICTS])
def test_type_conflict_within_request(shared, fmt, first, second, t1, t2):
    db = unique_db("conf")
    r = _write(shared, fmt, "m", [{"v": first, "ok": 1}, {"v": second, "ok": 2}], db)
    assert r.status_code == 400, (r.status_code, r.text)
    msg = error_of(r)
    assert "field type conflict" in msg, msg
    assert "'v'" in msg and t1 in msg and t2 in msg, msg
    flush(shared)
    assert parquet_files(shared, db) == []


def test_integer_vs_unsigned_is_a_conflict(shared):
    db = unique_db("conf")
    r = write_lp(shared, "m v=1i 1\nm v=2u 2", db=db)
    assert r.status_code == 400, r.text
    msg = error_of(r)
    assert "field type conflict" in msg and "'v'" in msg, msg
    assert "integer" in msg and "unsigned" in msg, msg


def test_type_conflict_across_requests_flush_and_restart(arc):
    db = "confdb"
    assert _write(arc, "lp", "m", [{"v": 1, "s": "a"}], db).status_code == 204
    # buffered schema
    r = _write(arc, "msgpack", "m", [{"v": "text"}], db, t0=T0_US + 10)
    assert r.status_code == 400, r.text
    msg = error_of(r)
    assert "field type conflict" in msg and "'v'" in msg, msg
    assert "integer" in msg and "string" in msg, msg
    # all or nothing across measurements: the good measurement of that request is not stored
    items = [row_item("other", {"x": 1.0}, t=T0_US + 11), row_item("m", {"s": True}, t=T0_US + 12)]
    r = write_msgpack(arc, items, db=db)
    assert r.status_code == 400, r.text
    msg = error_of(r)
    assert "field type conflict" in msg and "'s'" in msg and "boolean" in msg, msg
    flush(arc)
    # schema from the files (catalog) after the flush
    r = _write(arc, "json", "m", [{"v": False}], db, t0=T0_US + 13)
    assert r.status_code == 400, r.text
    assert "field type conflict" in error_of(r)
    # and after a restart
    arc.restart()
    r = _write(arc, "lp", "m", [{"s": 7}], db, t0=T0_US + 14)
    assert r.status_code == 400, r.text
    msg = error_of(r)
    assert "field type conflict" in msg and "'s'" in msg, msg
    assert "string" in msg and "integer" in msg, msg
    flush(arc)
    assert read_rows(arc, db, "m") == [{"time": T0_US, "v": 1, "s": "a"}]
    assert parquet_files(arc, db, "other") == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_int_then_float_widens_to_double_in_one_request(shared, fmt):
    db = unique_db("widen")
    r = _write(shared, fmt, "m", [{"v": 1}, {"v": 2.5}, {"v": -3}], db)
    assert r.status_code == 204, r.text
    flush(shared)
    assert column_types(shared, db, "m")["v"] == pa.float64()
    assert [x["v"] for x in read_rows(shared, db, "m")] == [1.0, 2.5, -3.0]


def test_int_float_widen_across_requests(shared):
    db = unique_db("widen")
    # same buffer: one file, DOUBLE
    assert _write(shared, "msgpack", "a", [{"v": 1}], db).status_code == 204
    assert _write(shared, "msgpack", "a", [{"v": 2.5}], db, t0=T0_US + 1).status_code == 204
    # float first, then int
    assert _write(shared, "msgpack", "b", [{"v": 0.5}], db).status_code == 204
    assert _write(shared, "json", "b", [{"v": 7}], db, t0=T0_US + 1).status_code == 204
    flush(shared)
    assert column_types(shared, db, "a")["v"] == pa.float64()
    assert [x["v"] for x in read_rows(shared, db, "a")] == [1.0, 2.5]
    assert column_types(shared, db, "b")["v"] == pa.float64()
    assert [x["v"] for x in read_rows(shared, db, "b")] == [0.5, 7.0]
    # across a flush: the new rows are stored as DOUBLE (older files are immutable)
    assert _write(shared, "lp", "a", [{"v": 9.75}], db, t0=T0_US + 2).status_code == 204
    assert _write(shared, "lp", "a", [{"v": 4}], db, t0=T0_US + 3).status_code == 204
    flush(shared)
    vals = []
    for p in parquet_files(shared, db, "a"):
        t = pq.read_table(p)
        assert t.schema.field("v").type == pa.float64(), (p, t.schema)
        vals += t.column("v").to_pylist()
    assert sorted(vals) == [1.0, 2.5, 4.0, 9.75]


@pytest.mark.parametrize("fmt", FORMATS)
def test_field_named_like_tag_is_name_value(shared, fmt):
    db = unique_db("tagf")
    r = _write(shared, fmt, "m", [{"host": "field-val", "v": 1}], db, tags={"host": "tag-val"})
    assert r.status_code == 204, r.text
    # a later request with the field alone still goes to host_value
    r = _write(shared, fmt, "m", [{"host": "later", "v": 2}], db, t0=T0_US + 1)
    assert r.status_code == 204, r.text
    flush(shared)
    assert read_rows(shared, db, "m") == [
        {"time": T0_US, "host": "tag-val", "host_value": "field-val", "v": 1},
        {"time": T0_US + 1, "host": None, "host_value": "later", "v": 2},
    ]
    ty = column_types(shared, db, "m")
    assert ty["host"] == pa.string() and ty["host_value"] == pa.string()


def test_new_fields_and_tags_add_columns(shared):
    db = unique_db("evo")
    assert write_lp(shared, "m a=1i %d" % T0_NS, db=db).status_code == 204
    flush(shared)  # the first file has only `a`
    assert write_lp(shared, "m a=2i,b=\"x\" %d" % (T0_NS + 1000), db=db).status_code == 204
    assert write_lp(shared, "m,t=tv a=3i,c=true %d" % (T0_NS + 2000), db=db).status_code == 204
    flush(shared)
    assert read_rows(shared, db, "m") == [
        {"time": T0_US, "a": 1, "b": None, "t": None, "c": None},
        {"time": T0_US + 1, "a": 2, "b": "x", "t": None, "c": None},
        {"time": T0_US + 2, "a": 3, "b": None, "t": "tv", "c": True},
    ]
    ty = column_types(shared, db, "m")
    assert ty["b"] == pa.string() and ty["c"] == pa.bool_() and ty["t"] == pa.string()


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_fields_are_null_never_zero(shared, fmt):
    db = unique_db("null")
    rows = [{"i": 5, "f": 1.5, "s": "x", "b": True}, {"i": 6}, {"f": 2.5}, {"s": "y"},
            {"b": False}]
    assert _write(shared, fmt, "m", rows, db).status_code == 204
    flush(shared)
    got = [{k: x[k] for k in ("i", "f", "s", "b")} for x in read_rows(shared, db, "m")]
    assert got == [
        {"i": 5, "f": 1.5, "s": "x", "b": True},
        {"i": 6, "f": None, "s": None, "b": None},
        {"i": None, "f": 2.5, "s": None, "b": None},
        {"i": None, "f": None, "s": "y", "b": None},
        {"i": None, "f": None, "s": None, "b": False},
    ]


# ------------------------------------------------------------- backpressure

def test_backpressure_tiny_budget(arc_factory):
    srv = arc_factory("--set", "ingestion.memory_budget_mb=1",
                      "--set", "ingestion.buffer_age_seconds=3600",
                      "--set", "ingestion.buffer_size=100000000")
    db = "bp"
    rows_per_req = 1000

    def body(req):
        return "\n".join("burst,host=h%03d id=%di,v=%d.25,note=\"padding-%d\" %d" % (
            i % 50, req * rows_per_req + i, i, i, T0_NS + (req * rows_per_req + i) * 1000)
            for i in range(rows_per_req))

    bodies = [body(k) for k in range(80)]
    results = {}

    def send(k):
        r = write_lp(srv, bodies[k], db=db)
        results[k] = r
        return r.status_code

    with ThreadPoolExecutor(4) as ex:
        codes = list(ex.map(send, range(len(bodies))))
    assert set(codes) <= {204, 503}, codes
    acked = [k for k in range(len(bodies)) if codes[k] == 204]
    busy = [k for k in range(len(bodies)) if codes[k] == 503]
    assert acked, "the budget admitted nothing"
    assert busy, "an 80 000-row burst never hit a 1 MB budget"
    r = results[busy[0]]
    assert r.headers.get("Retry-After", "").strip().isdigit(), dict(r.headers)
    msg = error_of(r)
    assert "full" in msg or "budget" in msg or "memory" in msg, msg

    # the server stays healthy and says why it refused
    assert srv.get("/health", token=None).status_code == 200
    st = stats(srv)
    assert st["buffers"]["rejected_busy"] >= len(busy)
    assert st["buffers"]["budget_bytes"] == 1 << 20
    used_after_burst = st["buffers"]["bytes"]  # checked last, so the rest still runs
    m = srv.get("/metrics").text
    assert "arc_ingest_rejected_budget_total" in m

    flush(srv)
    ids = [x["id"] for x in read_rows(srv, db, "burst")]
    assert len(ids) == len(set(ids)), "duplicated rows"
    want = sorted(k * rows_per_req + i for k in acked for i in range(rows_per_req))
    assert sorted(ids) == want, "stored rows differ from the acknowledged ones (%d vs %d)" % (
        len(ids), len(want))

    # after the flush, writes succeed again
    r = write_lp(srv, bodies[busy[0]], db=db)
    assert r.status_code == 204, (r.status_code, r.text)
    flush(srv)
    assert count_rows(srv, db, "burst") == len(want) + rows_per_req
    # "the server never grows past the budget because of client traffic"
    assert used_after_burst <= 1 << 20, "buffers hold %d bytes, budget %d" % (
        used_after_burst, 1 << 20)


# --------------------------------------------------------------- concurrency

def test_16_concurrent_writers_lose_and_duplicate_nothing(arc):
    nthreads, nreq, nrows = 16, 12, 150
    db = "conc"
    acked = [[] for _ in range(nthreads)]
    failures = []
    start = threading.Barrier(nthreads)

    def worker(w):
        fmt = FORMATS[w % 3]
        m = "shared" if w < 8 else "own%02d" % w
        start.wait()
        for q in range(nreq):
            base = (w * nreq + q) * nrows
            rows = [{"id": base + i, "w": w, "v": float(i)} for i in range(nrows)]
            # spread over more than one hour so flushes split files by hour
            t0 = T0_US + base * 200_000
            try:
                r = _write(arc, fmt, m, rows, db, t0=t0, tags={"writer": "w%02d" % w})
            except Exception as e:  # noqa: BLE001
                failures.append((w, q, repr(e)))
                continue
            if r.status_code == 204:
                acked[w].extend(range(base, base + nrows))
            else:
                failures.append((w, q, r.status_code, r.text))

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(slow(120))
    assert not failures, failures[:5]
    flush(arc)

    shared_rows = read_rows(arc, db, "shared")
    ids = [x["id"] for x in shared_rows]
    assert len(ids) == len(set(ids)), "duplicates in 'shared'"
    assert sorted(ids) == sorted(i for w in range(8) for i in acked[w])
    for x in shared_rows:
        assert x["writer"] == "w%02d" % x["w"]
        assert x["time"] == T0_US + (x["id"] // nrows) * nrows * 200_000 + x["id"] % nrows
    hours = sorted({hour_of(x["time"]) for x in shared_rows})
    assert len(hours) >= 2 and hour_dirs(arc, db, "shared") == hours
    for w in range(8, nthreads):
        ids = [x["id"] for x in read_rows(arc, db, "own%02d" % w)]
        assert len(ids) == len(set(ids)), "duplicates in own%02d" % w
        assert sorted(ids) == acked[w]
    assert stats(arc)["buffers"]["active_rows"] == 0


# --------------------------------------------------------------- compression

LP_BODY = "\n".join("z,host=h%d v=%di %d" % (i % 3, i, T0_NS + i * 1000) for i in range(500))
MP_BODY = pack([row_item("z", {"v": i}, t=T0_US + i, tags={"host": "h%d" % (i % 3)})
                for i in range(500)])


def _compress(kind, data):
    if isinstance(data, str):
        data = data.encode()
    return gzip.compress(data) if kind == "gzip" else zstandard.ZstdCompressor().compress(data)


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
@pytest.mark.parametrize("with_header", [True, False], ids=["header", "magic"])
@pytest.mark.parametrize("fmt", ["lp", "msgpack"])
def test_compressed_bodies(shared, kind, with_header, fmt):
    db = unique_db("comp")
    raw = LP_BODY if fmt == "lp" else MP_BODY
    data = _compress(kind, raw)
    assert data[:2] == b"\x1f\x8b" or data[:4] == b"\x28\xb5\x2f\xfd"
    headers = {"Content-Encoding": kind} if with_header else {}
    if fmt == "lp":
        r = write_lp(shared, data, db=db, headers=headers)
    else:
        r = write_msgpack(shared, data, db=db, raw=True, headers=headers)
    assert r.status_code == 204, (r.status_code, r.text)
    flush(shared)
    rows = read_rows(shared, db, "z")
    assert [(x["time"], x["host"], x["v"]) for x in rows] == [
        (T0_US + i, "h%d" % (i % 3), i) for i in range(500)]


def test_corrupt_compressed_body_is_rejected(shared):
    db = unique_db("comp")
    data = bytearray(_compress("gzip", LP_BODY))
    data[len(data) // 2] ^= 0xFF
    r = write_lp(shared, bytes(data), db=db, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400, (r.status_code, r.text)
    error_of(r)
    flush(shared)
    assert parquet_files(shared, db) == []


# ------------------------------------------------------- database selection

def test_database_header_wins_over_params(shared):
    hdr, prm = unique_db("hdr"), unique_db("prm")
    cases = [("/write", {"db": prm}), ("/api/v1/write", {"db": prm}),
             ("/api/v2/write", {"bucket": prm, "org": "o"})]
    for i, (path, params) in enumerate(cases):
        r = post(shared, path, "sel,case=c%d v=%di %d" % (i, i, T0_NS + i * 1000),
                 params=params, db_header=hdr)
        assert r.status_code == 204, (path, r.status_code, r.text)
    # and the params alone select their database
    r = post(shared, "/write", "sel v=10i %d" % T0_NS, params={"db": prm})
    assert r.status_code == 204, r.text
    r = post(shared, "/api/v2/write", "sel v=11i %d" % (T0_NS + 1000),
             params={"bucket": prm, "org": "o"})
    assert r.status_code == 204, r.text
    flush(shared)
    assert [x["v"] for x in read_rows(shared, hdr, "sel")] == [0, 1, 2]
    assert [x["v"] for x in read_rows(shared, prm, "sel")] == [10, 11]


def test_no_database_means_default(shared):
    m = "dflt%d" % time.monotonic_ns()
    for path in ("/write", "/api/v2/write", "/api/v1/write/line-protocol"):
        r = post(shared, path, "%s,p=%s v=1i %d" % (m, path.replace("/", "_"), T0_NS))
        assert r.status_code == 204, (path, r.status_code, r.text)
    assert write_msgpack(shared, row_item(m, {"v": 1}, t=T0_US)).status_code == 204
    assert write_json(shared, row_item(m, {"v": 1}, t=T0_US)).status_code == 204
    flush(shared)
    assert count_rows(shared, "default", m) == 5


BAD_DB_NAMES = ["1abc", "_x", "-x", "a b", "a/b", "..", "a.b", "caf\u00e9", "x" * 65,
                "wal", "cache", "tmp"]


@pytest.mark.parametrize("name", BAD_DB_NAMES, ids=[n[:12] for n in BAD_DB_NAMES])
def test_invalid_or_reserved_database_is_400(shared, name):
    before = sorted(p.name for p in shared.data_dir.iterdir())
    checks = [
        post(shared, "/write", "m v=1i 1", params={"db": name}),
        post(shared, "/api/v2/write", "m v=1i 1", params={"bucket": name, "org": "o"}),
        write_msgpack(shared, row_item("m", {"v": 1}, t=T0_US),
                      headers={"x-arc-database": name.encode("utf-8")}),
        write_json(shared, row_item("m", {"v": 1}, t=T0_US),
                   headers={"x-arc-database": name.encode("utf-8")}),
        post(shared, "/api/v1/databases", b'{"name": "%s"}' % name.encode("utf-8"),
             headers={"Content-Type": "application/json"}),
    ]
    for r in checks:
        assert r.status_code == 400, (name, r.url, r.status_code, r.text)
        msg = error_of(r)
        assert "database" in msg, msg
    flush(shared)
    after = sorted(p.name for p in shared.data_dir.iterdir())
    assert [x for x in after if x not in before] == []


def test_longest_valid_database_name(shared):
    name = "a" + "b-_9" * 15 + "xyz"
    assert len(name) == 64
    r = write_lp(shared, "m v=1i %d" % T0_NS, db=name)
    assert r.status_code == 204, r.text
    flush(shared)
    assert [x["v"] for x in read_rows(shared, name, "m")] == [1]


# ------------------------------------------------------------ databases API

def test_databases_api_list_create_drop(arc):
    r = arc.get("/api/v1/databases")
    assert r.status_code == 200 and r.json()["success"] is True
    assert "created" not in r.json()["databases"]

    r = arc.post("/api/v1/databases", json={"name": "created"})
    assert r.status_code == 201, r.text
    assert r.json() == {"success": True, "database": "created"}
    for bad in (b"not json", b"[]", b'{"nom": "x"}'):
        r = arc.post("/api/v1/databases", data=bad, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (bad, r.text)
        error_of(r)

    assert write_lp(arc, "m,h=a v=1i %d\nm,h=a v=2i %d" % (T0_NS, T0_NS + 3600 * 10 ** 9),
                    db="dropme").status_code == 204
    assert write_lp(arc, "m v=1i %d" % T0_NS, db="keep").status_code == 204
    flush(arc)
    assert len(parquet_files(arc, "dropme")) == 2
    dbs = arc.get("/api/v1/databases").json()
    assert {"created", "dropme", "keep"} <= set(dbs["databases"])
    assert dbs["count"] == len(dbs["databases"])
    ms = arc.get("/api/v1/databases/dropme/measurements").json()
    assert [(x["name"], x["file_count"], x["row_count"]) for x in ms["measurements"]] == [
        ("m", 2, 2)]

    # a buffered, unflushed row must go with the database too
    assert write_lp(arc, "m v=3i %d" % (T0_NS + 2000), db="dropme").status_code == 204

    r = arc.request("DELETE", "/api/v1/databases/dropme")
    assert r.status_code == 400 and "confirm=true" in error_of(r)
    writer = arc.create_token("writer", permissions=["read", "write"])["token"]
    r = arc.request("DELETE", "/api/v1/databases/dropme?confirm=true", token=writer)
    assert r.status_code == 403, r.text
    assert len(parquet_files(arc, "dropme")) == 2

    r = arc.request("DELETE", "/api/v1/databases/dropme?confirm=true")
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "database": "dropme", "files_deleted": 2}
    flush(arc)
    assert parquet_files(arc, "dropme") == []
    assert "dropme" not in arc.get("/api/v1/databases").json()["databases"]
    assert count_rows(arc, "keep") == 1

    # the name can be used again, and starts empty (old schema forgotten too)
    assert write_lp(arc, "m v=\"now a string\" %d" % T0_NS, db="dropme").status_code == 204
    flush(arc)
    assert read_rows(arc, "dropme", "m") == [{"time": T0_US, "v": "now a string"}]


# ------------------------------------------------------------- stats & auth

def test_write_stats_counters_move(shared):
    db = unique_db("stats")
    s0 = stats(shared)
    lp = "m v=1i %d\nm v=2i %d" % (T0_NS, T0_NS + 1)
    assert write_lp(shared, lp, db=db).status_code == 204
    assert write_lp(shared, "m v=", db=db).status_code == 400
    assert write_msgpack(shared, [row_item("m", {"v": 1}, t=T0_US + 5)] * 3,
                         db=db).status_code == 204
    assert write_json(shared, row_item("m", {"v": 1}, t=T0_US + 6), db=db).status_code == 204
    s1 = stats(shared)
    assert s1["success"] is True
    f0, f1 = s0["formats"], s1["formats"]
    assert f1["line_protocol"]["requests"] - f0["line_protocol"]["requests"] == 2
    assert f1["line_protocol"]["rows"] - f0["line_protocol"]["rows"] == 2
    assert f1["line_protocol"]["errors"] - f0["line_protocol"]["errors"] == 1
    assert f1["line_protocol"]["bytes"] - f0["line_protocol"]["bytes"] == len(lp) + 4
    assert f1["msgpack"]["rows"] - f0["msgpack"]["rows"] == 3
    assert f1["json"]["rows"] - f0["json"]["rows"] == 1
    assert s1["buffers"]["rows_accepted"] - s0["buffers"]["rows_accepted"] == 6
    flushed0 = s1["buffers"]["rows_flushed"]
    flush(shared)
    s2 = stats(shared)
    assert s2["buffers"]["rows_flushed"] - flushed0 >= 6
    assert s2["buffers"]["active_rows"] == 0 and s2["buffers"]["flushing_rows"] == 0
    r = shared.get("/write/stats")
    assert r.status_code == 200 and "formats" in r.json()
    for path in ("/write/health", "/api/v1/write/health"):
        r = shared.get(path)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "ok" and r.json()["flush_errors"] == 0


WRITES = [
    ("/write", "lp"), ("/api/v1/write", "lp"), ("/api/v2/write", "lp"),
    ("/api/v1/write/line-protocol", "lp"), ("/write/v2/msgpack", "mp"),
    ("/api/v2/msgpack", "mp"), ("/api/v1/write/msgpack", "mp"), ("/api/v1/write/json", "json"),
    ("/write/json", "json"), ("/api/v1/write/flush", "none"), ("/write/flush", "none"),
]


def _body(kind):
    if kind == "lp":
        return b"authm v=1i %d" % T0_NS
    if kind == "mp":
        return pack(row_item("authm", {"v": 1}, t=T0_US))
    if kind == "json":
        return b'{"m": "authm", "t": %d, "fields": {"v": 1}}' % T0_US
    return b""


def test_writes_need_a_write_token(shared):
    db = unique_db("auth")
    ro = shared.create_token("ro-%s" % db, permissions=["read"])["token"]
    for path, kind in WRITES:
        params = {"db": db, "bucket": db, "org": "o"}
        r = post(shared, path, _body(kind), params=params, token=None, db_header=db)
        assert r.status_code == 401, (path, r.status_code, r.text)
        assert error_of(r) == "Authentication required"
        r = post(shared, path, _body(kind), params=params, token=ro, db_header=db)
        assert r.status_code == 403, (path, r.status_code, r.text)
        assert "Permission denied" in error_of(r)
        r = post(shared, path, _body(kind), params=params, token="wrong-" + ro, db_header=db)
        assert r.status_code == 401, (path, r.status_code, r.text)
    flush(shared)
    assert parquet_files(shared, db) == []
    # the read-only token may read the stats and the spec
    assert shared.get("/api/v1/write/stats", token=ro).status_code == 200
    assert shared.get("/api/v1/write/msgpack/spec", token=ro).status_code == 200


def test_database_scoped_token(shared):
    a, b = unique_db("scopea"), unique_db("scopeb")
    tok = shared.create_token("scoped-%s" % a, permissions=["write"], databases=[a])["token"]
    assert write_lp(shared, "m v=1i %d" % T0_NS, db=a, token=tok).status_code == 204
    r = write_lp(shared, "m v=1i %d" % T0_NS, db=b, token=tok)
    assert r.status_code == 403, (r.status_code, r.text)
    flush(shared)
    assert count_rows(shared, a) == 1 and count_rows(shared, b) == 0
