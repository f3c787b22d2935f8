"""End-to-end: JSON ingestion (the MessagePack item shapes in JSON) into Parquet.

POST /api/v1/write/json and /write/json: row items, columnar items, {"batch": [...]}
and top-level arrays; exact values (int64 extremes, floats with exponents, strings
with JSON escapes and UTF-8 incl. surrogate pairs, booleans, null -> NULL); time-unit
inference; a bad item names its index and nothing is stored; malformed JSON is 400.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from ingest_util import (INT64_MAX, INT64_MIN, S, all_tags, column_types, error_of, flush,
                         parquet_files, read_rows, unique_db, write_json)

JSON_PATHS = ["/api/v1/write/json", "/write/json"]

T0_S = 1700000000
T0_US = T0_S * S

# raw JSON text, so the escapes are exactly what a client would send
EXACT_BODY = (
    '{"batch": ['
    '{"m": "rows", "t": %d, "h": "host01", "tags": {"region": "eu-west", "n": 3},'
    ' "fields": {"i": -42, "imin": %d, "imax": %d, "f": 1.5e300, "fneg": -2.5E-3,'
    ' "fint": 2.0, "s": "q\\"uote\\\\back\\nline \\u00e9 \\ud83d\\ude00 \u65e5",'
    ' "b": true, "bf": false, "z": null}},'
    '{"m": "rows", "t": %d, "h": "host02", "fields": {"i": 7, "z": "set"}},'
    '{"m": "col", "columns": {"time": [%d, %d], "host": ["a", "b"], "v": [1.25, null],'
    ' "_skip": [1, 2]}, "tag_keys": ["host"]},'
    '{"m": "pos", "t": %d, "f": [1, "two", false]}'
    ']}'
) % (T0_US, INT64_MIN, INT64_MAX, T0_US + 1, T0_US + 5, T0_US + 4, T0_US)


@pytest.mark.parametrize("path", JSON_PATHS)
def test_round_trip_exact_values(shared, path):
    db = unique_db("js")
    r = write_json(shared, EXACT_BODY.encode(), db=db, path=path, raw=True)
    assert r.status_code == 204, (r.status_code, r.text)
    flush(shared)
    assert read_rows(shared, db, "rows") == [
        {"time": T0_US, "host": "host01", "region": "eu-west", "n": "3", "i": -42,
         "imin": INT64_MIN, "imax": INT64_MAX, "f": 1.5e300, "fneg": -2.5e-3, "fint": 2.0,
         "s": 'q"uote\\back\nline \u00e9 \U0001F600 \u65e5', "b": True, "bf": False,
         "z": None},
        {"time": T0_US + 1, "host": "host02", "region": None, "n": None, "i": 7,
         "imin": None, "imax": None, "f": None, "fneg": None, "fint": None, "s": None,
         "b": None, "bf": None, "z": "set"},
    ]
    ty = column_types(shared, db, "rows")
    assert ty["i"] == ty["imin"] == ty["imax"] == pa.int64()
    assert ty["f"] == ty["fneg"] == ty["fint"] == pa.float64()
    assert ty["s"] == ty["z"] == pa.string()
    assert ty["b"] == pa.bool_()
    assert all_tags(shared, db, "rows") == {"host", "region", "n"}
    assert read_rows(shared, db, "col") == [
        {"time": T0_US + 4, "host": "b", "v": None},
        {"time": T0_US + 5, "host": "a", "v": 1.25},
    ]
    assert all_tags(shared, db, "col") == {"host"}
    assert read_rows(shared, db, "pos") == [
        {"time": T0_US, "field_0": 1, "field_1": "two", "field_2": False}]


def test_top_level_array_and_single_item(shared):
    db = unique_db("js")
    r = write_json(shared, [{"m": "a", "t": T0_S, "fields": {"v": 1}},
                            {"m": "a", "columns": {"time": [T0_S + 1], "v": [2]}}], db=db)
    assert r.status_code == 204, r.text
    r = write_json(shared, {"m": "a", "t": T0_S + 2, "fields": {"v": 3}}, db=db)
    assert r.status_code == 204, r.text
    flush(shared)
    assert [(x["time"], x["v"]) for x in read_rows(shared, db, "a")] == [
        (T0_US, 1), (T0_US + S, 2), (T0_US + 2 * S, 3)]


@pytest.mark.parametrize("t,want", [
    (T0_S, T0_US), (T0_S * 1000 + 7, T0_US + 7000), (T0_US + 9, T0_US + 9),
    (T0_US * 1000 + 9999, T0_US + 9), (-86400, -86400 * S), (T0_S + 0.25, T0_US + 250000)])
def test_time_unit_inference(shared, t, want):
    db = unique_db("js")
    r = write_json(shared, {"m": "a", "t": t, "fields": {"v": 1}}, db=db)
    assert r.status_code == 204, r.text
    flush(shared)
    assert [x["time"] for x in read_rows(shared, db, "a")] == [want]


@pytest.mark.parametrize("bad", [
    {"t": T0_US, "fields": {"v": 1}},
    {"m": "x", "t": T0_US},
    {"m": "x", "t": T0_US, "fields": {"v": [1]}},
    {"m": "x", "columns": {"time": [T0_US], "v": [1, 2]}},
    "just a string",
], ids=["no-m", "no-fields", "array-field", "columnar-length", "string-item"])
def test_bad_item_names_index_and_stores_nothing(shared, bad):
    db = unique_db("jsbad")
    good = {"m": "good", "t": T0_US, "fields": {"v": 1}}
    for path in JSON_PATHS:
        r = write_json(shared, {"batch": [good, good, good, bad]}, db=db, path=path)
        assert r.status_code == 400, (path, r.status_code, r.text)
        msg = error_of(r)
        assert "item 3" in msg and "Invalid JSON payload" in msg, msg
    flush(shared)
    assert parquet_files(shared, db) == []


@pytest.mark.parametrize("body", [b"", b"{", b"[1,", b"{\"m\": \"x\"} trailing", b"nul",
                                  json.dumps({"m": "x", "t": T0_US,
                                              "fields": {"v": 2 ** 64}}).encode()],
                         ids=["empty", "open", "array", "trailing", "nul", "uint-overflow"])
def test_malformed_json_is_400(shared, body):
    db = unique_db("jsbad")
    r = write_json(shared, body, db=db, raw=True)
    assert r.status_code == 400, (body, r.status_code, r.text)
    assert "Invalid JSON payload" in error_of(r)
    flush(shared)
    assert parquet_files(shared, db) == []


def test_bad_field_error_names_item_and_field(shared):
    db = unique_db("jsbad")
    r = write_json(shared, [{"m": "a", "t": T0_US, "fields": {"v": 1}},
                            {"m": "a", "t": T0_US, "fields": {"objf": {"k": 1}}}], db=db)
    assert r.status_code == 400, r.text
    msg = error_of(r)
    assert "item 1" in msg and "'objf'" in msg, msg
    flush(shared)
    assert parquet_files(shared, db) == []
