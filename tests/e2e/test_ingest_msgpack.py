"""End-to-end: Arc MessagePack ingestion into Parquet (issue 3).

Row items (m, t, h, tags, fields, positional f), columnar items (columns, tag_keys,
`_` columns dropped), {"batch": [...]} and top-level arrays, on every MessagePack
path; exact values of every type (int64 extremes, uint64 above INT64_MAX, floats,
UTF-8 strings, booleans, nil -> NULL); time-unit inference by magnitude; a bad item
rejects the whole request naming its index; the spec and stats endpoints.
One module-wide server, one database per test.
"""

from __future__ import annotations

import time

import pyarrow as pa
import pytest

from ingest_util import (INT64_MAX, INT64_MIN, UINT64_MAX, S, all_tags, batch, column_types,
                         columnar_item, error_of, flush, hour_dirs, hour_of, pack,
                         parquet_files, read_rows, row_item, unique_db, write_msgpack)

MP_PATHS = ["/write/v2/msgpack", "/api/v2/msgpack", "/api/v1/write/msgpack"]

T0_S = 1700000000             # 2023-11-14T22:13:20Z
T0_US = T0_S * S

STR = 'h\u00e9llo \u2713 \u65e5\u672c "q" \\ ,= \t'


def exact_payload():
    return batch([
        row_item("rows", {"i": -42, "imin": INT64_MIN, "imax": INT64_MAX, "ibig": 300,
                          "u": UINT64_MAX, "f": 1.5e300, "fneg": -2.5e-3, "s": STR,
                          "b": True, "bf": False, "n": None},
                 t=T0_US, h="host01", tags={"region": "eu-west", "rack": 7, "ok": True}),
        row_item("rows", {"i": 1, "n": 5}, t=T0_US + 1, h="host02"),
        row_item("pos", t=T0_US, f=[1, 2.5, "x", True]),
        columnar_item("col", {
            "time": [T0_US + 2, T0_US, T0_US + 1],
            "host": ["a", "b", "a"],
            "v": [1.5, None, 2.5],
            "n": [1, 2, None],
            "s": ["x", None, "\u00fc"],
            "ok": [True, False, None],
            "_dropped": [1, 2, 3],
        }, tag_keys=["host"]),
        columnar_item("coln", {"time": [T0_US], "label": ["str field"], "v": [1.0]}),
    ])


def check_exact(srv, db):
    rows = read_rows(srv, db, "rows")
    assert rows == [
        {"time": T0_US, "host": "host01", "region": "eu-west", "rack": "7", "ok": "true",
         "i": -42, "imin": INT64_MIN, "imax": INT64_MAX, "ibig": 300, "u": UINT64_MAX,
         "f": 1.5e300, "fneg": -2.5e-3, "s": STR, "b": True, "bf": False, "n": None},
        {"time": T0_US + 1, "host": "host02", "region": None, "rack": None, "ok": None,
         "i": 1, "imin": None, "imax": None, "ibig": None, "u": None, "f": None,
         "fneg": None, "s": None, "b": None, "bf": None, "n": 5},
    ]
    ty = column_types(srv, db, "rows")
    assert ty["time"] == pa.timestamp("us")
    for k in ("i", "imin", "imax", "ibig"):
        assert ty[k] == pa.int64(), (k, ty[k])
    assert ty["u"] == pa.uint64()
    assert ty["n"] == pa.int64()   # nil in row 0 is NULL, row 1 types the column
    assert ty["f"] == ty["fneg"] == pa.float64()
    assert ty["s"] == pa.string()
    assert ty["b"] == ty["bf"] == pa.bool_()
    assert all_tags(srv, db, "rows") == {"host", "region", "rack", "ok"}

    assert read_rows(srv, db, "pos") == [
        {"time": T0_US, "field_0": 1, "field_1": 2.5, "field_2": "x", "field_3": True}]

    col = read_rows(srv, db, "col")
    assert col == [
        {"time": T0_US, "host": "b", "v": None, "n": 2, "s": None, "ok": False},
        {"time": T0_US + 1, "host": "a", "v": 2.5, "n": None, "s": "\u00fc", "ok": None},
        {"time": T0_US + 2, "host": "a", "v": 1.5, "n": 1, "s": "x", "ok": True},
    ]
    ty = column_types(srv, db, "col")
    assert "_dropped" not in ty
    assert ty["v"] == pa.float64() and ty["n"] == pa.int64() and ty["ok"] == pa.bool_()
    assert all_tags(srv, db, "col") == {"host"}

    # without tag_keys a string column is a VARCHAR field, not a tag
    assert read_rows(srv, db, "coln") == [{"time": T0_US, "label": "str field", "v": 1.0}]
    assert all_tags(srv, db, "coln") == set()


@pytest.mark.parametrize("path", MP_PATHS)
def test_round_trip_exact_values(shared, path):
    db = unique_db("mp")
    r = write_msgpack(shared, exact_payload(), db=db, path=path)
    assert r.status_code == 204, (r.status_code, r.text)
    flush(shared)
    check_exact(shared, db)


def test_top_level_array_single_row_and_single_columnar(shared):
    db = unique_db("mp")
    items = exact_payload()["batch"]
    r = write_msgpack(shared, items, db=db)                     # top-level array
    assert r.status_code == 204, r.text
    r = write_msgpack(shared, row_item("one", {"v": 1}, t=T0_US), db=db)
    assert r.status_code == 204, r.text
    r = write_msgpack(shared, columnar_item("onec", {"time": [T0_US], "v": [2]}), db=db)
    assert r.status_code == 204, r.text
    flush(shared)
    check_exact(shared, db)
    assert read_rows(shared, db, "one") == [{"time": T0_US, "v": 1}]
    assert read_rows(shared, db, "onec") == [{"time": T0_US, "v": 2}]


def test_database_defaults_to_default(shared):
    m = "mpdefault_%d" % time.monotonic_ns()
    r = write_msgpack(shared, row_item(m, {"v": 1}, t=T0_US))
    assert r.status_code == 204, r.text
    flush(shared)
    assert read_rows(shared, "default", m) == [{"time": T0_US, "v": 1}]


# time as sent -> stored µs (|t| < 1e10 s, < 1e13 ms, < 1e16 µs, else ns)
TIMES = [
    (T0_S, T0_US),
    (T0_S * 1000 + 123, T0_US + 123000),
    (T0_US + 123456, T0_US + 123456),
    (T0_US * 1000 + 123456789, T0_US + 123456),
    (0, 0),
    (9999999999, 9999999999 * S),                   # largest seconds value
    (10 ** 10, 10 ** 13),                           # smallest milliseconds value
    (10 ** 13 - 1, (10 ** 13 - 1) * 1000),          # largest milliseconds value
    (10 ** 13, 10 ** 13),                           # smallest microseconds value
    (10 ** 16, 10 ** 13),                           # smallest nanoseconds value
    (-T0_S, -T0_US),                                # 1916, seconds
    (-1, -S),
    (2 ** 63 + 1000, (2 ** 63 + 1000) // 1000),     # uint64 above INT64_MAX: ns
    (T0_S + 0.5, T0_US + 500000),                   # float seconds
]


@pytest.mark.parametrize("t,want", TIMES, ids=[repr(t) for t, _ in TIMES])
def test_time_unit_inference(shared, t, want):
    db = unique_db("tu")
    r = write_msgpack(shared, [row_item("r", {"v": 1}, t=t),
                               columnar_item("c", {"time": [t], "v": [1]})], db=db)
    assert r.status_code == 204, (t, r.status_code, r.text)
    flush(shared)
    for m in ("r", "c"):
        rows = read_rows(shared, db, m)
        assert [x["time"] for x in rows] == [want], (m, t, rows)
        assert hour_dirs(shared, db, m) == [hour_of(want)]


def test_columnar_time_unit_from_first_value(shared):
    db = unique_db("tu")
    # seconds: the whole column is read in seconds (no per-value guessing)
    r = write_msgpack(shared, columnar_item("c", {"time": [T0_S, T0_S + 3600, T0_S + 1],
                                                  "v": [1, 2, 3]}), db=db)
    assert r.status_code == 204, r.text
    flush(shared)
    assert [(x["time"], x["v"]) for x in read_rows(shared, db, "c")] == [
        (T0_US, 1), (T0_US + S, 3), (T0_US + 3600 * S, 2)]
    assert hour_dirs(shared, db, "c") == [(2023, 11, 14, 22), (2023, 11, 14, 23)]


def test_missing_or_nil_time_is_server_time(shared):
    db = unique_db("tu")
    before = int(time.time() * 1e6)
    r = write_msgpack(shared, [row_item("r", {"v": 1}), {"m": "r", "t": None, "fields": {"v": 2}}],
                      db=db)
    after = int(time.time() * 1e6)
    assert r.status_code == 204, r.text
    flush(shared)
    rows = read_rows(shared, db, "r")
    assert sorted(x["v"] for x in rows) == [1, 2]
    for x in rows:
        assert before - S <= x["time"] <= after + S, (before, x, after)


BAD_ITEMS = [
    ("no m", {"t": T0_US, "fields": {"v": 1}}),
    ("no fields", {"m": "x", "t": T0_US}),
    ("array field", {"m": "x", "t": T0_US, "fields": {"v": [1, 2]}}),
    ("map field", {"m": "x", "t": T0_US, "fields": {"v": {"a": 1}}}),
    ("bad measurement", {"m": "1bad", "t": T0_US, "fields": {"v": 1}}),
    ("field named time", {"m": "x", "t": T0_US, "fields": {"time": 1}}),
    ("string time", {"m": "x", "t": "yesterday", "fields": {"v": 1}}),
    ("not a map", 42),
    ("columnar lengths", {"m": "x", "columns": {"time": [T0_US, T0_US + 1], "v": [1]}}),
    ("columnar no time", {"m": "x", "columns": {"v": [1]}}),
]


@pytest.mark.parametrize("name,bad", BAD_ITEMS, ids=[n for n, _ in BAD_ITEMS])
def test_bad_item_names_its_index_and_stores_nothing(shared, name, bad):
    db = unique_db("bad")
    good = row_item("good", {"v": 1}, t=T0_US)
    good_col = columnar_item("goodc", {"time": [T0_US], "v": [1.0]})
    for path in MP_PATHS:
        r = write_msgpack(shared, batch([good, good_col, bad, good]), db=db, path=path)
        assert r.status_code == 400, (name, path, r.status_code, r.text)
        msg = error_of(r)
        assert "item 2" in msg, (name, msg)
        assert "Invalid MessagePack payload" in msg, msg
    flush(shared)
    assert parquet_files(shared, db) == [], name


def test_columnar_length_error_names_column(shared):
    db = unique_db("bad")
    r = write_msgpack(shared, columnar_item("x", {"time": [T0_US, T0_US + 1],
                                                  "short_col": [1]}), db=db)
    assert r.status_code == 400, r.text
    msg = error_of(r)
    assert "item 0" in msg and "short_col" in msg, msg


@pytest.mark.parametrize("body", [
    b"\xc1",                                   # never-used msgpack byte
    b"",                                       # empty body
    b"\x81\xa1m",                              # truncated map
    b"\xdd\xff\xff\xff\xff",                   # array claiming 4G items
    pack(row_item("x", {"v": 1}, t=T0_US)) + b"\x00",   # trailing bytes
    b"not msgpack at all",
], ids=["c1", "empty", "truncated", "huge-count", "trailing", "text"])
def test_malformed_body_is_400(shared, body):
    db = unique_db("bad")
    r = write_msgpack(shared, body, db=db, raw=True)
    assert r.status_code == 400, (body, r.status_code, r.text)
    assert "Invalid MessagePack payload" in error_of(r)
    flush(shared)
    assert parquet_files(shared, db) == []


@pytest.mark.parametrize("path", ["/api/v1/write/msgpack/spec", "/write/v2/msgpack/spec",
                                  "/api/v2/msgpack/spec"])
def test_spec_endpoint(shared, path):
    r = shared.get(path)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    j = r.json()
    assert j["format"] == "MessagePack"
    assert "row_item" in j and "columnar_item" in j
    assert "m" in j["row_item"] and "fields" in j["row_item"]


def test_msgpack_stats_counters_move(shared):
    db = unique_db("st")
    s0 = shared.get("/api/v1/write/msgpack/stats").json()
    items = [row_item("s", {"v": i}, t=T0_US + i) for i in range(25)]
    body = pack(items)
    assert write_msgpack(shared, body, db=db, raw=True).status_code == 204
    assert write_msgpack(shared, b"\xc1", db=db, raw=True).status_code == 400
    s1 = shared.get("/api/v1/write/msgpack/stats").json()
    assert s1["success"] is True
    assert s1["requests"] - s0["requests"] == 2
    assert s1["rows"] - s0["rows"] == 25
    assert s1["errors"] - s0["errors"] == 1
    assert s1["bytes"] - s0["bytes"] == len(body) + 1


def test_bad_field_error_names_item_and_field(shared):
    db = unique_db("bad")
    r = write_msgpack(shared, batch([row_item("a", {"v": 1}, t=T0_US),
                                     row_item("a", {"v": 2, "arrf": [1, 2]}, t=T0_US)]), db=db)
    assert r.status_code == 400, r.text
    msg = error_of(r)
    assert "item 1" in msg and "'arrf'" in msg, msg
    # a type change inside one columnar column names the item, the column and both types
    r = write_msgpack(shared, columnar_item("a", {"time": [T0_US, T0_US + 1],
                                                  "colv": [1, "x"]}), db=db)
    assert r.status_code == 400, r.text
    msg = error_of(r)
    assert "item 0" in msg and "'colv'" in msg and "field type conflict" in msg, msg
    assert "integer" in msg and "string" in msg, msg
    flush(shared)
    assert parquet_files(shared, db) == []
