"""End-to-end: InfluxDB line protocol into Parquet (issue 3).

Every test writes to its own database on one module-wide server, flushes with
POST /api/v1/write/flush and reads the Parquet files back with pyarrow
(ingest_util.read_rows checks schema, sorting and hour directories of every file).
Covers every line-protocol path, exact values of every type, escapes and UTF-8,
comments/CRLF, the precision table, pre-1970 and far-future hours, all-or-nothing
on a bad line 10 000 of 10 001, and the real InfluxDB 1.x and 2.x Python clients.
"""

from __future__ import annotations

import time

import pyarrow as pa
import pytest

from ingest_util import (INT64_MAX, INT64_MIN, UINT64_MAX, S, column_types, count_rows,
                         all_tags, dt_us, error_of, flush, hour_dirs, hour_of, parquet_files,
                         read_rows, unique_db, write_lp)

LP_PATHS = ["/write", "/api/v1/write", "/api/v2/write", "/api/v1/write/line-protocol"]

T0_NS = 1700000000000000000  # 2023-11-14T22:13:20Z
T0_US = T0_NS // 1000

EXACT_BODY = (
    "nums,host=h1 i_zero=0i,i_neg=-42i,i_min=-9223372036854775808i,"
    "i_max=9223372036854775807i,u_one=1u,u_big=18446744073709551615u,"
    "f_exp=1.5e10,f_negexp=-2.5E-3,f_dot=1.,f_lead=.5,f_plus=1E+2,f_int=7,f_neg=-0.125 "
    "%d\n"
    "nums,host=h2 f_int=8 %d\n"
    'strs,host=h1 s_plain="hello",s_q="say \\"hi\\"",s_bs="back\\\\slash",'
    's_punct="a,b c=d e",s_utf8="h\u00e9llo w\u00f6rld \u2713 \u65e5\u672c",s_empty="",'
    's_lit="C:\\temp" %d\n'
    "bools b1=t,b2=T,b3=true,b4=True,b5=TRUE,b6=f,b7=F,b8=false,b9=False,b10=FALSE %d\n"
    "esc,tag\\ key=val\\,ue,t\\=k=a\\=b,city=Z\u00fcrich field\\ key=\"x\",f\\,k=1i,f\\=k=2i %d\n"
) % (T0_NS, T0_NS + 1000, T0_NS, T0_NS, T0_NS)


@pytest.mark.parametrize("path", LP_PATHS)
def test_round_trip_exact_values(shared, path):
    db = unique_db("lp")
    r = write_lp(shared, EXACT_BODY, db=db, path=path)
    assert r.status_code == 204, (r.status_code, r.text)
    flush(shared)

    nums = read_rows(shared, db, "nums")
    assert len(nums) == 2
    a, b = nums
    assert a == {
        "time": T0_US, "host": "h1", "i_zero": 0, "i_neg": -42, "i_min": INT64_MIN,
        "i_max": INT64_MAX, "u_one": 1, "u_big": UINT64_MAX, "f_exp": 1.5e10,
        "f_negexp": -2.5e-3, "f_dot": 1.0, "f_lead": 0.5, "f_plus": 100.0, "f_int": 7.0,
        "f_neg": -0.125}
    # the second line has only f_int: every other field is NULL, never 0
    assert b["time"] == T0_US + 1 and b["host"] == "h2" and b["f_int"] == 8.0
    for k in ("i_zero", "i_neg", "i_min", "i_max", "u_one", "u_big", "f_exp", "f_negexp",
              "f_dot", "f_lead", "f_plus", "f_neg"):
        assert b[k] is None, (k, b[k])
    types = column_types(shared, db, "nums")
    assert types["time"] == pa.timestamp("us")
    assert types["host"] == pa.string()
    for k in ("i_zero", "i_neg", "i_min", "i_max"):
        assert types[k] == pa.int64(), (k, types[k])
    for k in ("u_one", "u_big"):
        assert types[k] == pa.uint64(), (k, types[k])
    for k in ("f_exp", "f_negexp", "f_dot", "f_lead", "f_plus", "f_int", "f_neg"):
        assert types[k] == pa.float64(), (k, types[k])
    assert all_tags(shared, db, "nums") == {"host"}

    strs = read_rows(shared, db, "strs")
    assert strs == [{
        "time": T0_US, "host": "h1", "s_plain": "hello", "s_q": 'say "hi"',
        "s_bs": "back\\slash", "s_punct": "a,b c=d e",
        "s_utf8": "h\u00e9llo w\u00f6rld \u2713 \u65e5\u672c", "s_empty": "",
        "s_lit": "C:\\temp"}]
    assert column_types(shared, db, "strs")["s_utf8"] == pa.string()

    bools = read_rows(shared, db, "bools")
    assert len(bools) == 1
    assert [bools[0]["b%d" % i] for i in range(1, 11)] == [True] * 5 + [False] * 5
    for i in range(1, 11):
        assert column_types(shared, db, "bools")["b%d" % i] == pa.bool_()
    assert all_tags(shared, db, "bools") == set()

    esc = read_rows(shared, db, "esc")
    assert esc == [{"time": T0_US, "tag key": "val,ue", "t=k": "a=b", "city": "Z\u00fcrich",
                    "field key": "x", "f,k": 1, "f=k": 2}]
    assert all_tags(shared, db, "esc") == {"tag key", "t=k", "city"}


def test_comments_blank_lines_crlf_no_final_newline(shared):
    db = unique_db("lp")
    body = ("# a comment\r\n\r\n"
            "cpu,host=a v=1 1000000000\r\n"
            "   \n"
            "  cpu,host=a v=2 2000000000\n"
            "# another\n"
            "cpu,host=a v=3 3000000000")
    r = write_lp(shared, body, db=db)
    assert r.status_code == 204, r.text
    flush(shared)
    rows = read_rows(shared, db, "cpu")
    assert [(x["time"], x["host"], x["v"]) for x in rows] == [
        (1000000, "a", 1.0), (2000000, "a", 2.0), (3000000, "a", 3.0)]


def test_duplicate_field_last_wins(shared):
    db = unique_db("lp")
    r = write_lp(shared, "cpu v=1,v=2 %d" % T0_NS, db=db)
    assert r.status_code == 204, r.text
    flush(shared)
    assert [(x["time"], x["v"]) for x in read_rows(shared, db, "cpu")] == [(T0_US, 2.0)]


def test_missing_timestamp_gets_server_time(shared):
    db = unique_db("lp")
    before = int(time.time() * 1e6)
    r = write_lp(shared, "cpu v=1i\ncpu v=2i", db=db)
    after = int(time.time() * 1e6)
    assert r.status_code == 204, r.text
    flush(shared)
    rows = read_rows(shared, db, "cpu")
    assert len(rows) == 2
    for x in rows:
        assert before - S <= x["time"] <= after + S, (before, x["time"], after)


# precision parameter -> (timestamp as sent, stored µs)
PRECISIONS = [
    (None, T0_NS + 123456789, T0_US + 123456),
    ("ns", T0_NS + 123456789, T0_US + 123456),
    ("n", T0_NS + 123456789, T0_US + 123456),
    ("us", T0_US + 123456, T0_US + 123456),
    ("u", T0_US + 123456, T0_US + 123456),
    ("ms", T0_US // 1000 + 123, T0_US + 123000),
    ("s", T0_US // S, T0_US),
    ("m", 28333333, 28333333 * 60 * S),
    ("h", 472222, 472222 * 3600 * S),
    ("ns", -1, -1),            # floors toward -inf: 1969-12-31T23:59:59.999999
    ("ns", -1500, -2),
    ("ms", -1, -1000),
    ("s", -86400 * 365 * 70, -86400 * 365 * 70 * S),
]


@pytest.mark.parametrize("prec,ts,want", PRECISIONS,
                         ids=["%s:%d" % (p, t) for p, t, _ in PRECISIONS])
def test_precision_table(shared, prec, ts, want):
    db = unique_db("prec")
    # 1.x path with ?precision=, and the 2.x path, must agree
    for path in ("/write", "/api/v2/write"):
        if path == "/api/v2/write" and prec in ("n", "u", "m", "h"):
            continue  # 1.x-only spellings
        r = write_lp(shared, "p,path=%s v=1i %d" % (path.replace("/", "_"), ts), db=db,
                     path=path, precision=prec)
        assert r.status_code == 204, (path, prec, r.status_code, r.text)
    flush(shared)
    rows = read_rows(shared, db, "p")
    assert rows, "nothing stored"
    for x in rows:
        assert x["time"] == want, (prec, ts, x)
    assert hour_dirs(shared, db, "p") == [hour_of(want)]


@pytest.mark.parametrize("prec", ["xs", "sec", "1", "NS", "nanoseconds", "mu"])
def test_bad_precision_is_400(shared, prec):
    db = unique_db("prec")
    for path in ("/write", "/api/v2/write", "/api/v1/write/line-protocol"):
        r = write_lp(shared, "p v=1i 1", db=db, path=path, precision=prec)
        assert r.status_code == 400, (path, prec, r.status_code, r.text)
        msg = error_of(r)
        assert "precision" in msg and prec in msg, msg
    flush(shared)
    assert parquet_files(shared, db) == []


def test_hour_directories_pre_1970_and_far_future(shared):
    db = unique_db("hours")
    times = [
        dt_us(1900, 1, 1, 5, 30, 0),
        dt_us(1969, 12, 31, 23, 59, 59, 999999),
        dt_us(1970, 1, 1, 0, 0, 0),
        dt_us(2023, 11, 14, 22, 0, 0),
        dt_us(2023, 11, 14, 22, 30, 0),
        dt_us(2023, 11, 14, 22, 59, 59, 999999),
        dt_us(2023, 11, 14, 23, 0, 0),
        dt_us(2200, 6, 15, 13, 45, 0, 1),
    ]
    # out of order on purpose: files must come out sorted by time
    order = [5, 7, 0, 3, 2, 4, 1, 6]
    assert times == sorted(times)
    body = "\n".join("t,k=k%d id=%di %d" % (i, i, times[i] * 1000) for i in order)
    r = write_lp(shared, body, db=db)
    assert r.status_code == 204, r.text
    flush(shared)
    rows = read_rows(shared, db, "t")
    assert [(x["time"], x["id"], x["k"]) for x in rows] == [
        (times[i], i, "k%d" % i) for i in range(len(times))]
    assert hour_dirs(shared, db, "t") == [
        (1900, 1, 1, 5), (1969, 12, 31, 23), (1970, 1, 1, 0), (2023, 11, 14, 22),
        (2023, 11, 14, 23), (2200, 6, 15, 13)]


def test_all_or_nothing_bad_line_10000_of_10001(shared):
    db = unique_db("aon")
    lines = ["cpu,host=h%d value=%d.5,id=%di %d" % (i % 7, i, i, T0_NS + i * 1000)
             for i in range(1, 10002)]
    lines[9999] = "cpu,host=h1 value=notanumber %d" % (T0_NS + 10000 * 1000)
    r = write_lp(shared, "\n".join(lines), db=db, path="/write")
    assert r.status_code == 400, (r.status_code, r.text)
    msg = error_of(r)
    assert "line 10000" in msg, msg
    assert "line 10001" not in msg and "line 1:" not in msg, msg
    flush(shared)
    assert parquet_files(shared, db) == [], "a rejected body left files behind"
    assert count_rows(shared, db) == 0
    # the server keeps serving, and the same body without the bad line is stored whole
    del lines[9999]
    r = write_lp(shared, "\n".join(lines), db=db, path="/write")
    assert r.status_code == 204, r.text
    flush(shared)
    rows = read_rows(shared, db, "cpu")
    assert len(rows) == 10000
    assert sorted(x["id"] for x in rows) == [i for i in range(1, 10002) if i != 10000]


BAD_LINES = [
    "cpu",                                  # no fields
    "cpu,host=a",                           # no fields
    'cpu v="abc',                           # unterminated string
    "cpu v=9223372036854775808i",           # int64 overflow
    "cpu v=-9223372036854775809i",          # int64 underflow
    "cpu v=18446744073709551616u",          # uint64 overflow
    "cpu v=-1u",                            # negative unsigned
    "cpu v=1 12x",                          # bad timestamp
    "cpu v=",                               # empty value
    "cpu =1",                               # empty field key
    "cpu v=1i v2=2",                        # garbage after timestamp position
    "1cpu v=1",                             # measurement must start with a letter
    "cpu time=1",                           # `time` is the timestamp
    "cpu,time=x v=1",                       # ... also as a tag
    "cpu v=nan",                            # NaN
    "cpu v=tru",                            # not a boolean
]


@pytest.mark.parametrize("bad", BAD_LINES)
def test_bad_line_names_its_line_number(shared, bad):
    db = unique_db("bad")
    body = "# header comment\ncpu v=1 %d\n\n%s\ncpu v=2 %d\n" % (T0_NS, bad, T0_NS + 1)
    r = write_lp(shared, body, db=db)
    assert r.status_code == 400, (bad, r.status_code, r.text)
    msg = error_of(r)
    assert "line 4" in msg, (bad, msg)
    flush(shared)
    assert parquet_files(shared, db) == [], bad


def test_influxdb_client_v2(shared):
    from influxdb_client import InfluxDBClient, Point, WritePrecision
    from influxdb_client.client.write_api import SYNCHRONOUS

    db = unique_db("v2client")
    with InfluxDBClient(url=shared.base_url, token=shared.token, org="x") as client:
        wa = client.write_api(write_options=SYNCHRONOUS)
        p1 = (Point("cpu").tag("host", "server 01").tag("region", "eu,west")
              .field("usage", 12.5).field("count", 7).field("ok", True)
              .field("note", 'quoted "x"').time(T0_NS, WritePrecision.NS))
        wa.write(bucket=db, record=p1)
        wa.write(bucket=db, record="cpu,host=server02 usage=3.25,count=-3i %d" % (T0_NS + 5000))
        wa.write(bucket=db, record=[
            Point("mem").tag("host", "h").field("free", 1024).time(T0_NS // 10**9,
                                                                   WritePrecision.S)],
                 write_precision=WritePrecision.S)
    flush(shared)
    rows = read_rows(shared, db, "cpu")
    assert rows == [
        {"time": T0_US, "host": "server 01", "region": "eu,west", "usage": 12.5, "count": 7,
         "ok": True, "note": 'quoted "x"'},
        {"time": T0_US + 5, "host": "server02", "region": None, "usage": 3.25, "count": -3,
         "ok": None, "note": None},
    ]
    assert column_types(shared, db, "cpu")["count"] == pa.int64()
    assert read_rows(shared, db, "mem") == [{"time": T0_US, "host": "h", "free": 1024}]
    assert all_tags(shared, db, "cpu") == {"host", "region"}


def test_influxdb_client_v1(shared):
    from influxdb import InfluxDBClient

    db = unique_db("v1client")
    client = InfluxDBClient(host=shared.host, port=shared.port, username="arc",
                            password=shared.token, database=db)
    try:
        ok = client.write_points([
            {"measurement": "weather", "tags": {"city": "S\u00e3o Paulo", "st": "a b"},
             "time": T0_US // 1000, "fields": {"temp": 21.5, "hum": 80, "raw": "x=y, z"}},
            {"measurement": "weather", "tags": {"city": "Oslo"},
             "time": T0_US // 1000 + 1, "fields": {"temp": -3.0}},
        ], time_precision="ms")
        assert ok is True
        # the 1.x client also writes a list of raw lines through the same endpoint
        assert client.write_points(["weather,city=Lima temp=19.0 %d" % (T0_US // 1000 + 2)],
                                   time_precision="ms", protocol="line") is True
    finally:
        client.close()
    flush(shared)
    rows = read_rows(shared, db, "weather")
    assert rows == [
        {"time": T0_US, "city": "S\u00e3o Paulo", "st": "a b", "temp": 21.5, "hum": 80,
         "raw": "x=y, z"},
        {"time": T0_US + 1000, "city": "Oslo", "st": None, "temp": -3.0, "hum": None,
         "raw": None},
        {"time": T0_US + 2000, "city": "Lima", "st": None, "temp": 19.0, "hum": None,
         "raw": None},
    ]
    assert column_types(shared, db, "weather")["hum"] == pa.int64()


def test_v1_query_param_auth_u_p(shared):
    """InfluxDB 1.x clients may send the token as ?u=&p= instead of a header."""
    db = unique_db("up")
    r = write_lp(shared, "cpu v=1i %d" % T0_NS, db=db, path="/write", token=None,
                 params={"u": "arc", "p": shared.token})
    assert r.status_code == 204, (r.status_code, r.text)
    flush(shared)
    assert [(x["time"], x["v"]) for x in read_rows(shared, db, "cpu")] == [(T0_US, 1)]


def test_influxdb_client_v2_gzip(shared):
    """influxdb_client with enable_gzip=True sends Content-Encoding: gzip bodies."""
    from influxdb_client import InfluxDBClient, Point, WritePrecision
    from influxdb_client.client.write_api import SYNCHRONOUS

    db = unique_db("v2gzip")
    points = [Point("g").tag("host", "h%d" % (i % 4)).field("v", i).field("x", i / 4)
              .time(T0_NS + i * 1000, WritePrecision.NS) for i in range(300)]
    with InfluxDBClient(url=shared.base_url, token=shared.token, org="x",
                        enable_gzip=True) as client:
        client.write_api(write_options=SYNCHRONOUS).write(bucket=db, record=points)
    flush(shared)
    rows = read_rows(shared, db, "g")
    assert [(x["time"], x["host"], x["v"], x["x"]) for x in rows] == [
        (T0_US + i, "h%d" % (i % 4), i, i / 4) for i in range(300)]
