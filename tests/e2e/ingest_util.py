"""Shared helpers for the ingestion end-to-end suites (test_ingest_*.py).

Everything here talks to a running ArcServer (arc_server.py) and to the Parquet
files it writes. How a test checks what was stored:

    r = write_lp(srv, "cpu,host=a v=1i 1700000000000000000", db="mydb")
    assert r.status_code == 204
    flush(srv)                                  # POST /api/v1/write/flush
    rows = read_rows(srv, "mydb", "cpu")        # every row of every file, time as int µs

read_rows() also checks the file contract on every file it reads (see
check_file): `time` is timestamp[us] and non-null, sorted within the file, every
row lies in the hour of its directory, tags are strings listed in the arc_tags
key-value metadata, and fields have one of the five Arc types.

MessagePack payload builders (row_item, columnar_item, batch, pack) keep the
tests readable; `uint64` values above INT64_MAX are packed as unsigned by
msgpack-python automatically.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import uuid
from pathlib import Path
from typing import Iterable, Optional

import msgpack
import pyarrow as pa
import pyarrow.parquet as pq
import requests

from arc_server import slow

INT64_MIN = -(2 ** 63)
INT64_MAX = 2 ** 63 - 1
UINT64_MAX = 2 ** 64 - 1

US = 1
MS = 1000
S = 1000 * 1000
HOUR_US = 3600 * S

# pyarrow types that an Arc field column may have
FIELD_TYPES = (pa.float64(), pa.int64(), pa.uint64(), pa.bool_(), pa.string())

_HOUR_DIR_RE = re.compile(r"(\d{4})/(\d{2})/(\d{2})/(\d{2})$")


def unique_db(prefix: str = "db") -> str:
    """A fresh, valid database name (tests on a shared server use one each)."""
    return "%s_%s" % (prefix, uuid.uuid4().hex[:10])


# ------------------------------------------------------------------ writes

def _hdrs(srv, token, headers, db_header):
    h = {}
    if token == "admin":
        token = srv.token
    if token is not None:
        h["Authorization"] = "Bearer %s" % token
    if db_header is not None:
        h["x-arc-database"] = db_header
    if headers:
        h.update(headers)
    return h


def post(srv, path: str, data=b"", *, params=None, headers=None, token="admin",
         db_header: Optional[str] = None, timeout: float = 60):
    """POST raw bytes with the admin token (token=None: no auth; else that token)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return requests.post(srv.url(path), data=data, params=params,
                         headers=_hdrs(srv, token, headers, db_header), timeout=slow(timeout))


def write_lp(srv, body, *, db: Optional[str] = None, path: str = "/api/v1/write/line-protocol",
             precision: Optional[str] = None, params=None, headers=None, token="admin"):
    """Line protocol. On /api/v1/write/line-protocol db goes in x-arc-database; on
    the 1.x paths (/write, /api/v1/write) in ?db=, on /api/v2/write in ?bucket=."""
    p = dict(params or {})
    hdr_db = None
    if db is not None:
        if path in ("/write", "/api/v1/write"):
            p["db"] = db
        elif path == "/api/v2/write":
            p["bucket"] = db
            p.setdefault("org", "arc")
        else:
            hdr_db = db
    if precision is not None:
        p["precision"] = precision
    h = {"Content-Type": "text/plain; charset=utf-8"}
    h.update(headers or {})
    return post(srv, path, body, params=p, headers=h, token=token, db_header=hdr_db)


def write_msgpack(srv, payload, *, db: Optional[str] = None,
                  path: str = "/api/v1/write/msgpack", headers=None, token="admin", raw=False):
    """payload: a Python object (packed here) or, with raw=True, bytes."""
    data = payload if raw else pack(payload)
    h = {"Content-Type": "application/msgpack"}
    h.update(headers or {})
    return post(srv, path, data, headers=h, token=token, db_header=db)


def write_json(srv, payload, *, db: Optional[str] = None, path: str = "/api/v1/write/json",
               headers=None, token="admin", raw=False):
    data = payload if raw else json.dumps(payload).encode()
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    return post(srv, path, data, headers=h, token=token, db_header=db)


def flush(srv) -> dict:
    """POST /api/v1/write/flush; asserts 200 and returns the JSON answer."""
    r = post(srv, "/api/v1/write/flush", timeout=150)
    assert r.status_code == 200, (r.status_code, r.text)
    j = r.json()
    assert j.get("success") is True, j
    return j


def error_of(r) -> str:
    """The `error` text of a JSON error answer (asserts the envelope)."""
    j = r.json()
    assert j.get("success") is False, j
    assert isinstance(j.get("error"), str) and j["error"], j
    return j["error"]


# --------------------------------------------------------------- msgpack

def pack(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def row_item(m: str, fields=None, *, t=None, tags=None, h=None, f=None) -> dict:
    it = {"m": m}
    if t is not None:
        it["t"] = t
    if h is not None:
        it["h"] = h
    if tags is not None:
        it["tags"] = tags
    if fields is not None:
        it["fields"] = fields
    if f is not None:
        it["f"] = f
    return it


def columnar_item(m: str, columns: dict, tag_keys=None) -> dict:
    it = {"m": m, "columns": columns}
    if tag_keys is not None:
        it["tag_keys"] = list(tag_keys)
    return it


def batch(items: Iterable[dict]) -> dict:
    return {"batch": list(items)}


# ------------------------------------------------------------- files / time

def dt_us(y, mo, d, h=0, mi=0, s=0, us=0) -> int:
    """µs since the epoch of a UTC calendar time (works before 1970 and after 2038)."""
    epoch = _dt.datetime(1970, 1, 1)
    delta = _dt.datetime(y, mo, d, h, mi, s, us) - epoch
    return (delta.days * 86400 + delta.seconds) * S + delta.microseconds


def hour_of(t_us: int) -> tuple:
    """(YYYY, MM, DD, HH) of a µs time, UTC, floor semantics for negative times."""
    hours = t_us // HOUR_US
    d = _dt.datetime(1970, 1, 1) + _dt.timedelta(hours=hours)
    return (d.year, d.month, d.day, d.hour)


def measurement_dir(srv, db: str, m: str) -> Path:
    return Path(srv.data_dir) / db / m


def parquet_files(srv, db: str, m: Optional[str] = None) -> list:
    """Every *.parquet under {data_dir}/{db}[/{m}], sorted by path."""
    root = Path(srv.data_dir) / db
    if m is not None:
        root = root / m
    if not root.exists():
        return []
    return sorted(p for p in root.rglob("*.parquet") if p.is_file())


def hour_dirs(srv, db: str, m: str) -> list:
    """The (YYYY, MM, DD, HH) hour directories that hold files of (db, m), sorted."""
    out = set()
    base = measurement_dir(srv, db, m)
    for p in parquet_files(srv, db, m):
        rel = p.parent.relative_to(base).as_posix()
        mt = _HOUR_DIR_RE.fullmatch(rel) or None
        assert mt, "file %s is not in a YYYY/MM/DD/HH directory" % p
        out.add(tuple(int(x) for x in mt.groups()))
    return sorted(out)


def file_hour(path: Path, base: Path) -> tuple:
    rel = path.parent.relative_to(base).as_posix()
    mt = _HOUR_DIR_RE.fullmatch(rel)
    assert mt, "file %s is not in a YYYY/MM/DD/HH directory under %s" % (path, base)
    return tuple(int(x) for x in mt.groups())


def arc_tags(path: Path) -> list:
    """Tag column names from the file's key-value metadata (arc_tags, comma-separated)."""
    md = pq.read_metadata(path).metadata or {}
    raw = md.get(b"arc_tags")
    assert raw is not None, "file %s has no arc_tags metadata: %r" % (path, md)
    s = raw.decode("utf-8")
    return [x for x in s.split(",") if x] if s else []


def check_file(path: Path, base: Path) -> pa.Table:
    """Read one Parquet file and assert the storage contract; returns the table."""
    t = pq.read_table(path)
    names = t.schema.names
    assert "time" in names, "%s: no time column: %s" % (path, t.schema)
    tt = t.schema.field("time").type
    assert pa.types.is_timestamp(tt) and tt.unit == "us" and tt.tz in (None, "UTC", "+00:00"), \
        "%s: time is %s, want timestamp[us]" % (path, tt)
    assert t.num_rows > 0, "%s: empty file" % path
    times = t.column("time").cast(pa.int64()).to_pylist()
    assert None not in times, "%s: NULL time" % path
    assert times == sorted(times), "%s: not sorted by time" % path
    h = file_hour(path, base)
    for x in times:
        assert hour_of(x) == h, "%s: row time %d (hour %s) in directory of hour %s" % (
            path, x, hour_of(x), h)
    tags = arc_tags(path)
    for tag in tags:
        assert tag in names, "%s: arc_tags names %r, not a column" % (path, tag)
        assert t.schema.field(tag).type == pa.string(), "%s: tag %s is %s" % (
            path, tag, t.schema.field(tag).type)
    for f in t.schema:
        if f.name != "time":
            assert f.type in FIELD_TYPES, "%s: column %s has type %s" % (path, f.name, f.type)
    return t


def read_table(srv, db: str, m: str) -> Optional[pa.Table]:
    """All files of (db, m) checked and concatenated (schemas promoted); None if none."""
    base = measurement_dir(srv, db, m)
    tables = [check_file(p, base) for p in parquet_files(srv, db, m)]
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="default")


def column_types(srv, db: str, m: str) -> dict:
    """{column: pyarrow type} over all files of (db, m) (asserts every file agrees)."""
    out = {}
    base = measurement_dir(srv, db, m)
    for p in parquet_files(srv, db, m):
        for f in check_file(p, base).schema:
            if f.name in out:
                assert out[f.name] == f.type, "column %s is %s in one file, %s in %s" % (
                    f.name, out[f.name], f.type, p)
            out[f.name] = f.type
    return out


def read_rows(srv, db: str, m: str, sort_key=None) -> list:
    """Every stored row of (db, m) as a dict; `time` as int µs since the epoch.
    Sorted by time (then by sort_key if given)."""
    t = read_table(srv, db, m)
    if t is None:
        return []
    t = t.set_column(t.schema.get_field_index("time"), "time", t.column("time").cast(pa.int64()))
    rows = t.to_pylist()
    if sort_key is None:
        rows.sort(key=lambda r: r["time"])
    else:
        rows.sort(key=lambda r: (r["time"], r.get(sort_key)))
    return rows


def all_tags(srv, db: str, m: str) -> set:
    out = set()
    for p in parquet_files(srv, db, m):
        out.update(arc_tags(p))
    return out


def count_rows(srv, db: str, m: Optional[str] = None) -> int:
    return sum(pq.read_metadata(p).num_rows for p in parquet_files(srv, db, m))


def stats(srv) -> dict:
    r = srv.get("/api/v1/write/stats")
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()
