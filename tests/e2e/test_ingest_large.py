"""End-to-end: large bodies, which the server decodes in parts on idle cores.

Bodies of at least 2 x 128 KiB may be cut into parts (line protocol at newlines,
MessagePack by item index) that decode on their own threads and are merged; the
result must be exactly that of one pass. These tests send such bodies with the
surprises a merge has to get right late in the body (an integer column widened
by a float, a new column, a new measurement, NULLs) and check every stored value,
and bodies whose only error is far from the start: the message names the same
line / item a sequential decode names, and nothing is stored.
"""

from __future__ import annotations

import pyarrow as pa

from ingest_util import (batch, column_types, error_of, flush, parquet_files, read_rows,
                         row_item, unique_db, write_lp, write_msgpack)

T0_NS = 1700000000000000000
T0_US = T0_NS // 1000
N = 12000  # ~2 MB of line protocol, ~1 MB of MessagePack: several parts


def lp_lines(n):
    return ["cpu,host=h%d,region=r%d usage=%di,idle=%di %d"
            % (i % 50, i % 3, i, i % 100, T0_NS + i * 1000) for i in range(n)]


def test_lp_large_body_exact_values(shared):
    db = unique_db("big")
    lines = lp_lines(N)
    # last lines: float into the integer column 'idle', a new column, a new
    # measurement, and a line without 'usage' (NULL)
    lines += ["cpu,host=h1,region=r0 usage=1i,idle=0.5,late=true %d" % (T0_NS + N * 1000),
              "mem,host=h1 free=3i %d" % (T0_NS + 1000),
              "cpu,host=h2,region=r1 idle=7i %d" % (T0_NS + (N + 1) * 1000)]
    r = write_lp(shared, "\n".join(lines) + "\n", db=db)
    assert r.status_code == 204, (r.status_code, r.text)
    flush(shared)
    rows = read_rows(shared, db, "cpu", sort_key=lambda x: x["time"])
    assert len(rows) == N + 2
    assert column_types(shared, db, "cpu")["idle"] == pa.float64()
    for i in (0, 1, 4999, 6000, N - 1):
        row = rows[i]
        assert row["time"] == T0_US + i and row["host"] == "h%d" % (i % 50), row
        assert row["region"] == "r%d" % (i % 3) and row["usage"] == i, row
        assert row["idle"] == float(i % 100) and row["late"] is None, row
    assert rows[N]["idle"] == 0.5 and rows[N]["late"] is True
    assert rows[N + 1]["usage"] is None and rows[N + 1]["idle"] == 7.0
    assert read_rows(shared, db, "mem") == [{"time": T0_US + 1, "host": "h1", "free": 3}]


def test_lp_large_body_late_errors_name_the_line(shared):
    db = unique_db("bigerr")
    cases = [
        ("cpu,host=h1 usage=true 1", "line %d" % (N + 1), "field type conflict"),
        ("cpu,usage=x v=1 1", "line %d" % (N + 1), "clashes with a field"),
        ("cpu,Host=x v=1 1", "line %d" % (N + 1), "differs only in case"),
    ]
    for bad, where, what in cases:
        lines = lp_lines(N) + [bad] + lp_lines(10)
        r = write_lp(shared, "\n".join(lines), db=db)
        assert r.status_code == 400, (bad, r.status_code, r.text)
        msg = error_of(r)
        assert msg.startswith(where + ":") and what in msg, (bad, msg)
    flush(shared)
    assert parquet_files(shared, db) == []


def mp_items(n):
    return [row_item("cpu", {"usage": i, "idle": float(i % 100)}, t=T0_US + i,
                     h="server%03d" % (i % 50), tags={"region": "r%d" % (i % 3)})
            for i in range(n)]


def test_msgpack_large_body_exact_values(shared):
    db = unique_db("bigmp")
    items = mp_items(N)
    items += [row_item("cpu", {"usage": 0.25, "extra": "x"}, t=T0_US + N, h="server001"),
              row_item("disk", {"free": 1}, t=T0_US)]
    r = write_msgpack(shared, batch(items), db=db)
    assert r.status_code == 204, (r.status_code, r.text)
    flush(shared)
    rows = read_rows(shared, db, "cpu", sort_key=lambda x: x["time"])
    assert len(rows) == N + 1
    assert column_types(shared, db, "cpu")["usage"] == pa.float64()
    for i in (0, 3333, 7777, N - 1):
        row = rows[i]
        assert row["usage"] == float(i) and row["idle"] == float(i % 100), row
        assert row["host"] == "server%03d" % (i % 50) and row["extra"] is None, row
    assert rows[N]["usage"] == 0.25 and rows[N]["extra"] == "x" and rows[N]["idle"] is None
    assert len(read_rows(shared, db, "disk")) == 1


def test_msgpack_large_body_late_error_names_the_item(shared):
    db = unique_db("bigmperr")
    items = mp_items(N) + [row_item("cpu", {"usage": "text"}, t=T0_US)] + mp_items(10)
    r = write_msgpack(shared, batch(items), db=db)
    assert r.status_code == 400, (r.status_code, r.text)
    msg = error_of(r)
    assert "item %d:" % N in msg and "field type conflict" in msg, msg
    flush(shared)
    assert parquet_files(shared, db) == []
