"""Query engine end to end: data written through the real write endpoints, read
back through every query route and format; the sandbox; database-scoped tokens;
read-your-writes; time pruning counts; timeouts and the concurrency cap."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
import time

import msgpack
import pytest
import requests

from arc_server import slow

T0 = 1767225600  # 2026-01-01T00:00:00Z
NS = 1_000_000_000
HOUR = 3600


def write_lp(srv, db, body, token="admin"):
    r = srv.post("/api/v1/write", token=token, params={"db": db}, data=body.encode())
    assert r.status_code == 204, (r.status_code, r.text)


def flush(srv):
    r = srv.post("/api/v1/write/flush")
    assert r.status_code == 200, r.text


def q(srv, sql, db=None, token="admin", path="/api/v1/query", **body):
    headers = {"x-arc-database": db} if db else {}
    body["sql"] = sql
    return srv.post(path, token=token, json=body, headers=headers, timeout=slow(60))


def ok(r):
    assert r.status_code == 200, (r.status_code, r.text)
    j = r.json()
    assert j["success"] is True, j
    return j


def profile(r):
    return dict(kv.split("=", 1) for kv in r.headers["x-arc-profile"].split(";"))


def metric(srv, name):
    text = srv.get("/metrics").text
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


# ------------------------------------------------------------------ values

def test_values_every_type_and_json_shape(shared):
    write_lp(shared, "qtypes",
             'm,host=a f=1.5,i=-3i,u=18446744073709551615u,b=true,s="he said \\"hi\\"" %d\n'
             'm,host=b f=-0.25 %d\n' % (T0 * NS, (T0 + 1) * NS + 123456000))
    r = q(shared, "SELECT * FROM m ORDER BY time", db="qtypes")
    j = ok(r)
    assert list(j.keys()) == ["success", "columns", "data", "row_count", "execution_time_ms",
                              "timestamp"]
    assert j["columns"] == ["time", "host", "f", "i", "u", "b", "s"]
    assert j["data"] == [
        ["2026-01-01T00:00:00.000000Z", "a", 1.5, -3, "18446744073709551615", True,
         'he said "hi"'],
        ["2026-01-01T00:00:01.123456Z", "b", -0.25, None, None, None, None],
    ]
    assert j["row_count"] == 2
    assert isinstance(j["execution_time_ms"], (int, float))
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", j["timestamp"])
    # the same after the rows moved to Parquet
    flush(shared)
    assert ok(q(shared, "SELECT * FROM m ORDER BY time", db="qtypes"))["data"] == j["data"]
    # seed path, database from the qualified name
    assert ok(q(shared, "SELECT count(*) AS n FROM qtypes.m", path="/query"))["data"] == [[2]]
    # DECIMAL / HUGEINT come back as strings, NaN/Inf as null
    j = ok(q(shared, "SELECT 1.25::DECIMAL(5,2) AS d, 170141183460469231731687303715884105727::HUGEINT"
                     " AS h, 'nan'::DOUBLE AS n, 'inf'::DOUBLE AS i"))
    assert j["data"] == [["1.25", "170141183460469231731687303715884105727", None, None]]


def test_unknown_measurement_and_bad_sql(shared):
    r = q(shared, "SELECT * FROM nosuch", db="qnone")
    assert r.status_code == 400
    assert r.json() == {"success": False,
                        "error": "measurement 'nosuch' not found in database 'qnone'"}
    r = q(shared, "SELEC 1")
    assert r.status_code == 400 and "syntax error" in r.json()["error"]
    r = q(shared, "SELECT no_such_column FROM range(1)")
    assert r.status_code == 400 and "no_such_column" in r.json()["error"]
    r = shared.post("/api/v1/query", data=b"not json")
    assert r.status_code == 400


def test_errors_do_not_quote_the_composed_statement(shared):
    """DuckDB's "LINE 1: ..." context would quote the statement Arc composed (views with
    file paths and scan ids), not the user's text: the answer keeps DuckDB's message
    and drops that context."""
    write_lp(shared, "qerr", "m,host=a v=1 1700000000000000000\nm,host=b v=2 1700003600000000000")
    flush(shared)
    write_lp(shared, "qerr", "m,host=c v=3 1700007200000000000")  # stays buffered
    for sql in ("SELECT no_such_col FROM m", "SELECT v + 'x' FROM m WHERE host = 'a'",
                "SELECT * FROM m WHERE time > 'not a time'"):
        r = q(shared, sql, db="qerr")
        assert r.status_code == 400, (sql, r.text)
        err = r.json()["error"]
        assert "Error" in err, err
        for leak in ("LINE ", "read_parquet", "arc_batch_scan", ".parquet", "__arc_q"):
            assert leak not in err, (sql, err)
    assert "no_such_col" in q(shared, "SELECT no_such_col FROM m", db="qerr").json()["error"]


# ------------------------------------------------------------------ formats

def test_every_format(shared):
    write_lp(shared, "qfmt", "".join("cpu,host=h%d v=%d.5,n=%di %d\n" % (i % 3, i, i, (T0 + i) * NS)
                                     for i in range(50)))
    sql = "SELECT time, host, v, n FROM cpu ORDER BY time"
    j = ok(q(shared, sql, db="qfmt"))
    assert j["row_count"] == 50

    r = q(shared, sql, db="qfmt", format="csv")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["time", "host", "v", "n"]
    assert rows[1] == ["2026-01-01T00:00:00.000000Z", "h0", "0.5", "0"]
    assert len(rows) == 51

    r = q(shared, sql, db="qfmt", format="ndjson")
    lines = [json.loads(x) for x in r.text.splitlines() if x]
    assert len(lines) == 50 and lines[2] == {"time": "2026-01-01T00:00:02.000000Z",
                                             "host": "h2", "v": 2.5, "n": 2}

    r = q(shared, sql, db="qfmt", path="/api/v1/query/msgpack")
    assert r.status_code == 200
    m = msgpack.unpackb(r.content, raw=False)
    assert m["columns"] == ["time", "host", "v", "n"] and m["row_count"] == 50
    assert m["data"][1][:3] == ["h0", "h1", "h2"]

    pa = pytest.importorskip("pyarrow")
    r = q(shared, sql, db="qfmt", path="/api/v1/query/arrow")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/vnd.apache.arrow.stream"
    t = pa.ipc.open_stream(r.content).read_all()
    assert t.num_rows == 50 and t.column_names == ["time", "host", "v", "n"]
    assert t.column("v").to_pylist()[:2] == [0.5, 1.5]


def test_format_parquet(shared):
    """format "parquet": a real Parquet file of the result (written by the writer
    instance; the sandboxed query instance still cannot write files)."""
    pq = pytest.importorskip("pyarrow.parquet")
    write_lp(shared, "qpq", "".join('cpu,host=h%d v=%d.5,n=%di,s="x%d" %d\n'
                                    % (i % 3, i, i, i, (T0 + i) * NS) for i in range(5000)))
    sql = "SELECT time, host, v, n, s, NULL::DOUBLE AS z FROM cpu ORDER BY time"
    for path, extra in (("/api/v1/query", {}), ("/query/stream", {})):
        r = q(shared, sql, db="qpq", path=path, format="parquet", **extra)
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"] == "application/vnd.apache.parquet"
        t = pq.read_table(io.BytesIO(r.content))
        assert t.column_names == ["time", "host", "v", "n", "s", "z"]
        assert t.num_rows == 5000
        assert str(t.schema.field("time").type) == "timestamp[us]"
        assert t.column("n").to_pylist()[:3] == [0, 1, 2]
        assert t.column("s").to_pylist()[4999] == "x4999"
        assert t.column("z").null_count == 5000
    # errors of the query surface as 400 with DuckDB's message; no temp file is left
    r = q(shared, "SELECT CAST('x' AS INTEGER) AS bad FROM cpu", db="qpq", format="parquet")
    assert r.status_code == 400 and "Could not convert" in r.json()["error"], r.text
    tmp = shared.data_dir / "tmp"
    assert not list(tmp.glob("query-*.parquet"))


def test_compression_and_stream(shared):
    write_lp(shared, "qz", "".join("c,host=h v=%d %d\n" % (i, (T0 + i) * NS) for i in range(2000)))
    r = shared.post("/api/v1/query", json={"sql": "SELECT * FROM c"},
                    headers={"x-arc-database": "qz", "Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers.get("Content-Encoding") == "gzip"
    assert r.json()["row_count"] == 2000
    r = shared.post("/query/stream", json={"sql": "SELECT range AS x FROM range(300000)",
                                           "format": "csv"}, timeout=slow(60))
    assert r.status_code == 200 and r.headers.get("Transfer-Encoding") == "chunked"
    lines = r.text.splitlines()
    assert lines[0] == "x" and len(lines) == 300001 and lines[-1] == "299999"


def test_show_describe_measurement_routes_estimate(shared):
    write_lp(shared, "qshow", "disk,host=a free=1i %d\ndisk,host=b free=2i %d\n"
             % (T0 * NS, (T0 + 1) * NS))
    flush(shared)
    j = ok(q(shared, "  show   MEASUREMENTS from qshow ;"))
    assert j["columns"] == ["database", "table_name", "storage_path", "file_count",
                            "total_size_mb"]
    assert [row[:2] for row in j["data"]] == [["qshow", "disk"]]
    assert j["data"][0][3] == 1 and isinstance(j["data"][0][4], float)
    assert j["data"][0][2].endswith("/qshow/disk/")
    j = ok(q(shared, "SHOW TABLES", db="qshow"))
    assert [row[1] for row in j["data"]] == ["disk"]
    j = ok(q(shared, "SHOW DATABASES"))
    assert j["columns"] == ["database"] and ["qshow"] in j["data"]
    j = ok(q(shared, "DESCRIBE qshow.disk"))
    assert [row[0] for row in j["data"]] == ["time", "host", "free"]
    # `default` is a keyword to DuckDB's parser: DESCRIBE default.m must work too
    write_lp(shared, "default", "qdesc,host=a free=1i %d\n" % (T0 * NS))
    for sql in ("DESCRIBE default.qdesc", 'describe "default".qdesc;', "DESCRIBE qdesc"):
        j = ok(q(shared, sql))
        assert [row[0] for row in j["data"]] == ["time", "host", "free"], sql
    # measurements that exist only in the buffers are listed too (0 files)
    write_lp(shared, "qshow", "unflushed,host=a v=1 %d\n" % (T0 * NS))
    j = ok(q(shared, "SHOW TABLES", db="qshow"))
    assert [(row[1], row[3]) for row in j["data"]] == [("disk", 1), ("unflushed", 0)]

    j = ok(shared.get("/query/disk", params={"database": "qshow", "limit": "1"}))
    assert j["data"] == [["2026-01-01T00:00:01.000000Z", "b", 2]]
    r = shared.get("/api/v1/query/disk/csv",
                   params={"database": "qshow", "where": "host = 'a'", "order_by": "time"})
    assert r.status_code == 200
    assert r.text.splitlines() == ["time,host,free", "2026-01-01T00:00:00.000000Z,a,1"]
    r = shared.get("/query/disk", params={"database": "qshow",
                                          "where": "1=1) UNION SELECT * FROM read_csv('/etc/passwd'"})
    assert r.status_code == 400 and "root:" not in r.text

    j = ok(shared.get("/api/v1/measurements", params={"database": "qshow"}))
    assert [(m["database"], m["measurement"]) for m in j["measurements"]] == [("qshow", "disk")]

    j = ok(shared.post("/api/v1/query/estimate", json={"sql": "SELECT * FROM qshow.disk"}))
    assert j["estimated_rows"] == 2 and j["files"] == 1


# ------------------------------------------------------------------ semantics

def test_comments_strings_left_join_cte(shared):
    write_lp(shared, "qsem", "cpu,host=a v=1 %d\ncpu,host=b v=2 %d\nmem,host=a used=10 %d\n"
             % (T0 * NS, T0 * NS, T0 * NS))
    j = ok(q(shared, "SELECT 'FROM x' AS s, /* FROM y */ host -- FROM z\nFROM cpu ORDER BY host",
             db="qsem"))
    assert j["data"] == [["FROM x", "a"], ["FROM x", "b"]]
    j = ok(q(shared, "SELECT cpu.host, m.used FROM cpu LEFT JOIN mem m ON cpu.host = m.host "
                     "ORDER BY cpu.host", db="qsem"))
    assert j["data"] == [["a", 10.0], ["b", None]]
    j = ok(q(shared, 'WITH "cpu" AS (SELECT 42 AS host) SELECT host FROM cpu', db="qsem"))
    assert j["data"] == [[42]]
    j = ok(q(shared, "SELECT host FROM cpu WHERE host IN (SELECT host FROM qsem.mem)", db="qsem"))
    assert j["data"] == [["a"]]
    j = ok(q(shared, "SELECT time_bucket(INTERVAL '1 hour', time) AS b, count(*) FROM cpu "
                     "GROUP BY b", db="qsem"))
    assert j["data"] == [["2026-01-01T00:00:00.000000Z", 2]]


def test_statement_shapes_around_the_measurement_relations(shared):
    """References become CTEs in front of the user's statement: its own WITH and WITH
    RECURSIVE lists, set operations, DESCRIBE/SUMMARIZE and EXPLAIN must all still
    work (and return the same rows from the buffers and from Parquet)."""
    write_lp(shared, "qshape", "cpu,host=a v=1 %d\ncpu,host=b v=2 %d\ncpu,host=a v=3 %d\n"
             % (T0 * NS, T0 * NS, (T0 + 60) * NS))
    for _ in range(2):
        j = ok(q(shared, "WITH a AS (SELECT host, sum(v) AS s FROM cpu GROUP BY host), "
                         "b AS MATERIALIZED (SELECT * FROM a WHERE s > 1) "
                         "SELECT * FROM b ORDER BY host", db="qshape"))
        assert j["data"] == [["a", 4.0], ["b", 2.0]]
        j = ok(q(shared, "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r "
                         "WHERE n < (SELECT count(*) FROM cpu)) SELECT max(n) FROM r",
                 db="qshape"))
        assert j["data"] == [[3]]
        j = ok(q(shared, "SELECT host FROM cpu WHERE v = 1 UNION ALL "
                         "SELECT host FROM qshape.cpu WHERE v = 2 ORDER BY host", db="qshape"))
        assert j["data"] == [["a"], ["b"]]
        j = ok(q(shared, "SUMMARIZE cpu", db="qshape"))
        assert [row[0] for row in j["data"]] == ["time", "host", "v"]
        j = ok(q(shared, "FROM cpu SELECT count(*)", db="qshape"))
        assert j["data"] == [[3]]
        j = ok(shared.post("/api/v1/query/estimate", json={"sql": "WITH x AS (SELECT * FROM "
                                                                 "qshape.cpu) SELECT * FROM x"}))
        assert j["estimated_rows"] == 3
        flush(shared)


def test_plan_cache_reuse_and_isolation(shared):
    """The parsed+rewritten statement is reused by text, per default database; the
    same text in another database reads that database; results stay exact."""
    write_lp(shared, "qplan1", "pm,host=a v=1 %d\n" % (T0 * NS))
    write_lp(shared, "qplan2", "pm,host=a v=2 %d\npm,host=b v=3 %d\n" % (T0 * NS, T0 * NS))
    sql = "SELECT count(*), sum(v) FROM pm WHERE time >= '2026-01-01' AND time < '2026-01-02'"
    hits0 = metric(shared, "arc_query_plan_cache_hits_total") or 0
    misses0 = metric(shared, "arc_query_plan_cache_misses_total") or 0
    for _ in range(3):  # streamed answers bypass the result cache: each one runs
        assert ok(q(shared, sql, db="qplan1", path="/query/stream"))["data"] == [[1, 1.0]]
        assert ok(q(shared, sql, db="qplan2", path="/query/stream"))["data"] == [[2, 5.0]]
    assert metric(shared, "arc_query_plan_cache_misses_total") - misses0 == 2
    assert metric(shared, "arc_query_plan_cache_hits_total") - hits0 >= 4
    # a write after the plan was cached is seen (the plan holds no files or rows)
    write_lp(shared, "qplan1", "pm,host=c v=10 %d\n" % ((T0 + 5) * NS))
    assert ok(q(shared, sql, db="qplan1"))["data"] == [[2, 11.0]]
    # a cached plan does not grant access: permissions are checked per query
    tok = shared.create_token("qplan-ro", permissions=["read"], databases=["qplan2"])["token"]
    r = q(shared, "SELECT count(*), sum(v) FROM qplan1.pm", token=tok)
    assert r.status_code == 403, r.text
    assert ok(q(shared, sql, db="qplan2", token=tok))["data"] == [[2, 5.0]]


def test_volatile_bounds_are_evaluated_per_query(shared):
    """A bound with now() is not frozen into the cached plan: a row 3 s in the
    future is excluded by time <= now() until the clock passes it."""
    future_ns = time.time_ns() + 3 * NS
    write_lp(shared, "qvol", "fut,host=a v=1 %d\n" % future_ns)
    flush(shared)
    sql = "SELECT count(*) FROM fut WHERE time <= now()"
    assert ok(q(shared, sql, db="qvol"))["data"] == [[0]]
    time.sleep(3.5)
    assert ok(q(shared, sql, db="qvol"))["data"] == [[1]]


def test_latest_row_per_key(shared):
    """DISTINCT ON (keys) ... ORDER BY keys, time DESC reads only each key group's
    newest rows (x-arc-profile latest=1) and answers exactly what the plain plan
    answers: NULL keys form a group, buffered and flushed rows both count, a late
    out-of-order row that is the newest wins, LIMIT applies to groups."""
    lines = []
    for i in range(300):
        host = "h%d" % (i % 7)
        tag = "" if i % 11 == 0 else ",dc=d%d" % (i % 3)
        lines.append("lp,host=%s%s v=%d,s=\"x%d\" %d" % (host, tag, i, i, (T0 + i) * NS))
    write_lp(shared, "qlatest", "\n".join(lines[:200]) + "\n")
    flush(shared)
    write_lp(shared, "qlatest", "\n".join(lines[200:]) + "\n")
    # out of order: older file-time range, but the newest row of h3
    write_lp(shared, "qlatest", "lp,host=h3,dc=d0 v=-1,s=\"late\" %d\n" % ((T0 + 10000) * NS))
    cases = [
        ("SELECT DISTINCT ON (host) * FROM lp ORDER BY host, time DESC", 7),
        ("SELECT DISTINCT ON (dc) time, dc, v FROM lp ORDER BY dc, time DESC", 4),
        ("SELECT DISTINCT ON (host, dc) host, dc, v, s, time FROM lp "
         "ORDER BY host DESC, dc, time DESC", None),
        ("select distinct on (HOST) * from lp order by host, time desc limit 3", 3),
    ]
    for sql, nrows in cases:
        r = q(shared, sql, db="qlatest")
        got = ok(r)["data"]
        assert profile(r).get("latest") == "1", (sql, r.headers["x-arc-profile"])
        # WHERE true keeps the meaning but not the shape: the plain plan
        plain = sql.replace(" FROM lp ", " FROM lp WHERE true ").replace(
            " from lp ", " from lp where true ")
        r2 = q(shared, plain, db="qlatest")
        assert "latest" not in profile(r2), plain
        assert got == ok(r2)["data"], sql
        if nrows is not None:
            assert len(got) == nrows, (sql, got)
    got = ok(q(shared, "SELECT DISTINCT ON (host) host, v, s FROM lp ORDER BY host, time DESC",
               db="qlatest"))["data"]
    assert ["h3", -1.0, "late"] in got
    # shapes that must not be rewritten (their answers depend on every row)
    for sql in ("SELECT DISTINCT ON (host) host, count(*) OVER () FROM lp ORDER BY host, time DESC",
                "SELECT DISTINCT ON (host) * FROM lp ORDER BY host, time",
                "SELECT DISTINCT ON (host) * FROM lp WHERE v > 5 ORDER BY host, time DESC",
                "SELECT DISTINCT ON (host) host, v + 1 FROM lp ORDER BY host, time DESC",
                "WITH x AS (SELECT * FROM lp) SELECT DISTINCT ON (host) * FROM x "
                "ORDER BY host, time DESC",
                "SELECT DISTINCT ON (nosuch) * FROM lp ORDER BY nosuch, time DESC"):
        r = q(shared, sql, db="qlatest")
        if r.status_code == 200:
            assert "latest" not in profile(r), sql
        else:
            assert r.status_code == 400 and "nosuch" in r.text, (sql, r.text)


def test_small_limit_results_are_materialized(shared):
    """Buffered answers (/query, not /query/stream) are run materialized
    (x-arc-profile materialized=1: dense chunks instead of one streamed chunk per
    pushed-down filter hit) unless a constant LIMIT above 10 000 rows asks for a
    large result, and answer exactly what the streamed plan answers: same rows, same
    order, buffered and flushed rows, odd types cast to text, LIMIT 0, set
    operations. /query/stream always streams."""
    lines = []
    for i in range(3000):
        lines.append("sm,host=h%d v=%d,s=\"x%d\",d=%d.5 %d" % (i % 50, i, i, i, (T0 + i) * NS))
    write_lp(shared, "qsmall", "\n".join(lines[:2000]) + "\n")
    flush(shared)
    write_lp(shared, "qsmall", "\n".join(lines[2000:]) + "\n")
    cases = [
        ("SELECT * FROM sm WHERE host = 'h7' LIMIT 40", 40),
        ("SELECT time, v, s FROM sm LIMIT 2500", 2500),
        ("SELECT * FROM sm WHERE host = 'h7' ORDER BY time DESC LIMIT 10 OFFSET 5", 10),
        ("SELECT host, count(*) AS n, sum(v)::HUGEINT AS big FROM sm GROUP BY host "
         "ORDER BY host LIMIT 100", 50),
        ("SELECT v FROM sm WHERE host = 'h1' UNION ALL SELECT v FROM sm WHERE host = 'h2' "
         "LIMIT 70", 70),
        ("SELECT * FROM sm LIMIT 0", 0),
        ("select * from sm where v > 2990 limit 10000", 9),
        # no constant LIMIT: buffered answers materialize too
        ("SELECT * FROM sm WHERE v > 2900 AND host IN ('h3', 'h4')", 4),
        ("SELECT * FROM sm", 3000),
        ("SELECT * FROM sm LIMIT 0 + 7", 7),
    ]
    for sql, nrows in cases:
        r = q(shared, sql, db="qsmall")
        got = ok(r)
        assert profile(r).get("materialized") == "1", (sql, r.headers["x-arc-profile"])
        assert got["row_count"] == nrows == len(got["data"]), (sql, got["row_count"])
        # the same statement streamed (a non-constant LIMIT, on /query/stream)
        streamed = sql.replace("LIMIT ", "LIMIT 0 + ").replace("limit ", "limit 0 + ")
        r2 = q(shared, streamed, db="qsmall", path="/query/stream")
        assert "materialized" not in profile(r2), streamed
        assert ok(r2)["data"] == got["data"], sql
        assert ok(r2)["columns"] == got["columns"], sql
    r = q(shared, "SELECT * FROM sm LIMIT 10 PERCENT", db="qsmall")
    assert ok(r)["row_count"] == 300 and profile(r).get("materialized") == "1"
    # HUGEINT reaches the client as a string on both paths
    big = ok(q(shared, "SELECT 12345678901234567890123::HUGEINT AS h FROM sm LIMIT 1",
               db="qsmall"))
    assert big["data"] == [["12345678901234567890123"]], big
    # a constant LIMIT above 10 000 asks for a large result, and a statement over
    # two measurements has no input bound: streamed
    write_lp(shared, "qsmall", "sm2,host=h1 v=1 %d\n" % (T0 * NS))
    for sql in ("SELECT * FROM sm LIMIT 10001", "SELECT * FROM sm LIMIT 20000 OFFSET 1",
                "SELECT a.v FROM sm a JOIN sm2 b ON a.host = b.host"):
        r = q(shared, sql, db="qsmall")
        assert "materialized" not in profile(r), sql
    assert ok(q(shared, "SELECT * FROM sm LIMIT 10001", db="qsmall"))["row_count"] == 3000
    # every format reads a materialized result
    r = q(shared, "SELECT time, v, s FROM sm WHERE host = 'h3' LIMIT 5", db="qsmall", format="csv")
    assert r.status_code == 200 and len(r.text.strip().splitlines()) == 6, r.text


def test_read_your_writes_without_flush(shared):
    # the issue asks for 1 000 write-then-query rounds (the result cache must not
    # hide a single acknowledged row: each write invalidates the cached count)
    for i in range(1, 1001):
        write_lp(shared, "qryw", "ev,k=x n=%di %d\n" % (i, (T0 + i) * NS))
        j = ok(q(shared, "SELECT count(*), max(n) FROM ev", db="qryw"))
        assert j["data"] == [[i, i]], i


def test_nan_from_msgpack_reads_as_null(shared):
    """A NaN written through MessagePack is stored as NaN and answered as null in
    JSON (the JSON contract: NaN/Inf -> null), as NaN in Arrow."""
    nan, inf = float("nan"), float("inf")
    body = msgpack.packb({"batch": [
        {"m": "nanm", "t": T0 * 1000, "tags": {"k": "a"}, "fields": {"v": nan}},
        {"m": "nanm", "t": T0 * 1000 + 1, "tags": {"k": "b"}, "fields": {"v": inf}},
        {"m": "nanm", "t": T0 * 1000 + 2, "tags": {"k": "c"}, "fields": {"v": 1.5}},
    ]}, use_bin_type=True)
    r = shared.post("/api/v1/write/msgpack", data=body,
                    headers={"Content-Type": "application/msgpack", "x-arc-database": "qnan"})
    assert r.status_code == 204, r.text
    sql = "SELECT k, v, isnan(v) AS is_nan FROM nanm ORDER BY time"
    for _ in range(2):  # from the buffers, then from Parquet
        j = ok(q(shared, sql, db="qnan"))
        assert j["data"] == [["a", None, True], ["b", None, False], ["c", 1.5, False]]
        pa = pytest.importorskip("pyarrow")
        r = q(shared, sql, db="qnan", path="/api/v1/query/arrow")
        v = pa.ipc.open_stream(r.content).read_all().column("v").to_pylist()
        assert v[0] != v[0] and v[1] == inf and v[2] == 1.5
        flush(shared)


def test_time_pruning_counts(shared):
    # three hours, one file each (flush after each hour)
    for h in range(3):
        write_lp(shared, "qprune", "p,host=a v=%d %d\n" % (h, (T0 + h * HOUR + 60) * NS))
        flush(shared)
    before = metric(shared, "arc_query_files_opened_total") or 0
    r = q(shared, "SELECT count(*) FROM p", db="qprune")
    assert ok(r)["data"] == [[3]] and profile(r)["files"] == "3"
    r = q(shared, "SELECT v FROM p WHERE time >= '2026-01-01T01:00:00Z' AND "
                  "time < '2026-01-01T02:00:00Z'", db="qprune")
    assert ok(r)["data"] == [[1.0]] and profile(r)["files"] == "1"
    r = q(shared, "SELECT count(*) FROM p WHERE time BETWEEN TIMESTAMP '2026-01-01 01:30:00' "
                  "AND TIMESTAMP '2026-01-01 05:00:00'", db="qprune")
    assert ok(r)["data"] == [[1]] and profile(r)["files"] == "1"
    r = q(shared, "SELECT count(*) FROM p WHERE time > now() - INTERVAL '1 hour'", db="qprune")
    assert ok(r)["data"] == [[0]] and profile(r)["files"] == "0"
    r = q(shared, "SELECT count(*) FROM p WHERE time >= '2025-12-01' AND time < '2025-12-31'",
          db="qprune")
    assert ok(r)["data"] == [[0]] and profile(r)["files"] == "0"
    after = metric(shared, "arc_query_files_opened_total")
    assert after - before == 3 + 1 + 1


# ------------------------------------------------------------------ sandbox

SANDBOX = [
    ("SELECT * FROM read_csv('/etc/passwd')", "read_csv() is not allowed"),
    ("SELECT * FROM read_csv_auto('/etc/passwd')", "read_csv_auto() is not allowed"),
    ("SELECT * FROM read_parquet('/tmp/outside.parquet')", "read_parquet() is not allowed"),
    ("SELECT * FROM glob('/etc/*')", "glob() is not allowed"),
    ("SELECT * FROM read_text('/etc/passwd')", "read_text() is not allowed"),
    ("SELECT * FROM '/etc/passwd'", "not found"),
    ("COPY (SELECT 1) TO '/tmp/arc_copy_test.csv'", "only SELECT queries are allowed"),
    ("EXPORT DATABASE '/tmp/arc_export_test'", "only SELECT queries are allowed"),
    ("ATTACH '/tmp/arc_attach_test.db' AS x", "only SELECT queries are allowed"),
    ("INSTALL httpfs", "only SELECT queries are allowed"),
    ("LOAD httpfs", "only SELECT queries are allowed"),
    ("SET enable_external_access = true", "only SELECT queries are allowed"),
    ("PRAGMA enable_profiling", "only SELECT queries are allowed"),
    ("RESET memory_limit", "only SELECT queries are allowed"),
    ("CREATE TABLE t AS SELECT 1", "only SELECT queries are allowed"),
    ("INSERT INTO t VALUES (1)", "only SELECT queries are allowed"),
    ("DROP TABLE t", "only SELECT queries are allowed"),
    ("CALL duckdb_settings()", "only SELECT queries are allowed"),
    ("SELECT 1; SELECT 2", "only one statement per query is allowed"),
    ("SELECT getenv('HOME')", "getenv() is not allowed"),
    ("SELECT current_setting('allowed_directories')", "current_setting() is not allowed"),
    ("SELECT * FROM duckdb_settings()", "duckdb_settings() is not allowed"),
    ("SELECT * FROM sqlite_scan('/tmp/x.db', 't')", "sqlite_scan() is not allowed"),
    ("SELECT ST_Point(1, 2)", "ST_Point"),  # spatial is not autoloaded
]


@pytest.mark.parametrize("sql,msg", SANDBOX)
def test_sandbox(shared, sql, msg, tmp_path):
    r = q(shared, sql)
    assert r.status_code == 400, (r.status_code, r.text)
    j = r.json()
    assert j["success"] is False and msg.lower() in j["error"].lower(), j
    assert "root:x:" not in r.text
    for p in ("/tmp/arc_copy_test.csv", "/tmp/arc_export_test", "/tmp/arc_attach_test.db"):
        assert not __import__("os").path.exists(p)


# ------------------------------------------------------------------ tokens

def test_database_scoped_token(shared):
    write_lp(shared, "qsa", "cpu,host=a v=1 %d\n" % (T0 * NS))
    write_lp(shared, "qsb", "cpu,host=a v=2 %d\n" % (T0 * NS))
    flush(shared)
    # cross-database join with a full token
    j = ok(q(shared, "SELECT a.v, b.v FROM qsa.cpu a JOIN qsb.cpu b USING (host)"))
    assert j["data"] == [[1.0, 2.0]]
    tok = shared.create_token("q-scoped", permissions=["read"], databases=["qsa"])["token"]
    assert ok(q(shared, "SELECT v FROM cpu", db="qsa", token=tok))["data"] == [[1.0]]
    assert ok(q(shared, "SELECT v FROM qsa.cpu", token=tok))["data"] == [[1.0]]
    denied = [
        "SELECT a.v, b.v FROM qsa.cpu a JOIN qsb.cpu b USING (host)",
        "SELECT v FROM qsa.cpu WHERE v IN (SELECT v FROM qsb.cpu)",
        "WITH x AS (SELECT * FROM qsb.cpu) SELECT * FROM x",
        "SHOW TABLES FROM qsb",
        "DESCRIBE qsb.cpu",
    ]
    for sql in denied:
        r = q(shared, sql, db="qsa", token=tok)
        assert r.status_code == 403, (sql, r.status_code, r.text)
        assert "qsb" in r.json()["error"]
    r = q(shared, "SELECT v FROM cpu", db="qsb", token=tok)
    assert r.status_code == 403
    j = ok(q(shared, "SHOW DATABASES", token=tok))
    assert j["data"] == [["qsa"]]
    j = ok(q(shared, "SHOW TABLES", db="qsa", token=tok))
    assert {row[0] for row in j["data"]} == {"qsa"}
    r = shared.get("/query/cpu", token=tok, params={"database": "qsb"})
    assert r.status_code == 403
    j = ok(shared.get("/api/v1/measurements", token=tok))
    assert {m["database"] for m in j["measurements"]} == {"qsa"}


# ------------------------------------------------------------------ limits

SLOW_SQL = "SELECT sum(a.range * b.range) FROM range(200000) a, range(200000) b"


def test_timeout_cancels(arc_factory):
    srv = arc_factory("--set", "query.timeout_seconds=1")
    t = time.monotonic()
    r = q(srv, SLOW_SQL)
    took = time.monotonic() - t
    assert r.status_code == 504, (r.status_code, r.text)
    assert "timed out" in r.json()["error"]
    assert took < slow(10), took
    assert ok(q(srv, "SELECT 41 + 1 AS x"))["data"] == [[42]]


def test_too_many_concurrent(arc_factory):
    srv = arc_factory("--set", "query.max_concurrent=1", "--set", "query.timeout_seconds=3")
    res = {}

    def slow_query():
        # the probing SELECT 1 below may hold the only slot at the moment this
        # starts: retry until the slow query itself gets in
        for _ in range(100):
            res["slow"] = q(srv, SLOW_SQL)
            if res["slow"].status_code != 429:
                break

    th = threading.Thread(target=slow_query)
    th.start()
    deadline = time.monotonic() + slow(5)
    got429 = None
    while time.monotonic() < deadline and th.is_alive():
        # random(): never served from the result cache (a cache hit needs no slot)
        r = q(srv, "SELECT random() AS r")
        if r.status_code == 429:
            got429 = r
            break
        time.sleep(0.05)
    th.join()
    assert got429 is not None, "no 429 while a query was running"
    assert "too many concurrent queries" in got429.json()["error"]
    assert res["slow"].status_code == 504
    assert ok(q(srv, "SELECT 1 AS x"))["data"] == [[1]]


def test_sql_length_cap(arc_factory):
    srv = arc_factory("--set", "query.max_sql_kb=1")
    r = q(srv, "SELECT 1 -- " + "x" * 2000)
    assert r.status_code == 413 and "SQL too long" in r.json()["error"]


def test_stream_disconnect_frees_the_worker(arc_factory):
    # one query slot: if the abandoned stream kept running, the next query would 429
    srv = arc_factory("--set", "query.max_concurrent=1", "--set", "query.timeout_seconds=120")
    s = srv.connect()
    body = json.dumps({"sql": "SELECT a.range AS x, repeat('y', 200) AS pad FROM range(100000) a, "
                              "range(1000) b", "format": "csv"}).encode()
    s.sendall(b"POST /query/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
              % (srv.token.encode(), len(body), body))
    assert b"200 OK" in s.recv(65536)
    s.close()
    deadline = time.monotonic() + slow(20)
    while True:
        r = q(srv, "SELECT 7 AS x")
        if r.status_code == 200:
            assert r.json()["data"] == [[7]]
            break
        assert r.status_code == 429, r.text
        assert time.monotonic() < deadline, "the abandoned stream still holds the query slot"
        time.sleep(0.1)
