"""Query result cache end to end: hits on repeats, never stale (a write to a measurement
the query reads invalidates it, a write to another one does not), TTL, clear, stats,
volatile SQL never cached, streamed answers never cached, the size cap evicts, and a
database-scoped token cannot read another database's cached answer."""

from __future__ import annotations

import time

import pytest

T0 = 1767225600  # 2026-01-01T00:00:00Z
NS = 1_000_000_000


def write_lp(srv, db, body, token="admin"):
    r = srv.post("/api/v1/write", token=token, params={"db": db}, data=body.encode())
    assert r.status_code == 204, (r.status_code, r.text)


def q(srv, sql, db, token="admin", path="/api/v1/query", **body):
    body["sql"] = sql
    return srv.post(path, token=token, json=body, headers={"x-arc-database": db}, timeout=60)


def cached(r):
    assert r.status_code == 200, (r.status_code, r.text)
    return r.headers.get("x-arc-cache")


def stats(srv):
    r = srv.get("/cache/stats")
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["success"] is True
    return j


def test_hit_on_repeat_then_invalidated_by_write_to_read_measurement(arc):
    write_lp(arc, "c1", "cpu,host=a v=1 %d\nmem,host=a v=10 %d\n" % (T0 * NS, T0 * NS))
    sql = "SELECT count(*) AS n, sum(v) AS s FROM cpu"
    r1 = q(arc, sql, "c1")
    assert cached(r1) == "miss"
    assert r1.json()["data"] == [[1, 1.0]]
    r2 = q(arc, sql, "c1")
    assert cached(r2) == "hit"
    assert r2.content == r1.content  # the very same answer
    # a write to another measurement leaves the entry valid
    write_lp(arc, "c1", "mem,host=a v=11 %d\n" % ((T0 + 1) * NS))
    assert cached(q(arc, sql, "c1")) == "hit"
    # a write to the measurement read invalidates it: the new row is seen at once
    write_lp(arc, "c1", "cpu,host=a v=2 %d\n" % ((T0 + 1) * NS))
    r3 = q(arc, sql, "c1")
    assert cached(r3) == "miss"
    assert r3.json()["data"] == [[2, 3.0]]
    s = stats(arc)
    assert s["hits"] == 2 and s["invalidations"] == 1, s
    # a flush moves rows to files: still the right answer, from cache or not
    assert arc.post("/api/v1/write/flush").status_code == 200
    assert q(arc, sql, "c1").json()["data"] == [[2, 3.0]]


def test_key_includes_database_format_and_sql(arc):
    write_lp(arc, "k1", "cpu v=1 %d\n" % (T0 * NS))
    write_lp(arc, "k2", "cpu v=2 %d\n" % (T0 * NS))
    assert q(arc, "SELECT v FROM cpu", "k1").json()["data"] == [[1.0]]
    r = q(arc, "SELECT v FROM cpu", "k2")
    assert cached(r) == "miss" and r.json()["data"] == [[2.0]]
    r = q(arc, "SELECT v FROM cpu", "k1", format="csv")
    assert cached(r) == "miss" and r.text.splitlines() == ["v", "1.0"]
    assert cached(q(arc, "SELECT v FROM cpu", "k1", format="csv")) == "hit"
    assert cached(q(arc, "SELECT v  FROM cpu", "k1")) == "miss"  # other SQL text


def test_join_invalidated_by_either_side(arc):
    write_lp(arc, "j", "a,k=x v=1 %d\nb,k=x w=2 %d\n" % (T0 * NS, T0 * NS))
    sql = "SELECT a.v, b.w FROM a JOIN b ON a.k = b.k"
    assert cached(q(arc, sql, "j")) == "miss"
    assert cached(q(arc, sql, "j")) == "hit"
    write_lp(arc, "j", "b,k=x w=3 %d\n" % ((T0 + 1) * NS))
    r = q(arc, sql, "j")
    assert cached(r) == "miss"
    assert sorted(r.json()["data"]) == [[1.0, 2.0], [1.0, 3.0]]


def test_ttl_expiry(arc_factory):
    srv = arc_factory("--set", "query_cache.ttl_seconds=1")
    write_lp(srv, "t", "cpu v=1 %d\n" % (T0 * NS))
    assert cached(q(srv, "SELECT v FROM cpu", "t")) == "miss"
    assert cached(q(srv, "SELECT v FROM cpu", "t")) == "hit"
    time.sleep(1.3)
    assert cached(q(srv, "SELECT v FROM cpu", "t")) == "miss"
    assert stats(srv)["expirations"] == 1


def test_clear_and_health(arc):
    write_lp(arc, "cl", "cpu v=1 %d\n" % (T0 * NS))
    q(arc, "SELECT v FROM cpu", "cl")
    q(arc, "SELECT count(*) FROM cpu", "cl")
    assert stats(arc)["entries"] == 2
    h = arc.get("/api/v1/cache/health").json()
    assert h["status"] == "healthy" and h["entries"] == 2 and h["utilization_percent"] >= 0
    assert stats(arc)["size_bytes"] > 0
    for path in ("/cache/clear", "/api/v1/cache/clear"):
        r = arc.post(path)
        assert r.status_code == 200, r.text
    s = stats(arc)
    assert s["entries"] == 0 and s["size_bytes"] == 0 and s["clears"] == 2
    assert cached(q(arc, "SELECT v FROM cpu", "cl")) == "miss"


@pytest.mark.parametrize("sql", [
    "SELECT now() AS t, count(*) FROM cpu",
    "SELECT CURRENT_TIMESTAMP AS t, count(*) FROM cpu",
    "SELECT current_date AS d FROM cpu",
    "SELECT random() AS r FROM cpu",
    "SELECT count(*) FROM cpu WHERE time > now() - INTERVAL '100 years'",
    "SELECT * FROM cpu USING SAMPLE 50%",
    "SELECT gen_random_uuid() AS u FROM cpu",
])
def test_volatile_never_cached(arc, sql):
    write_lp(arc, "v", "cpu v=1 %d\n" % (T0 * NS))
    for _ in range(2):
        assert cached(q(arc, sql, "v")) == "miss"
    s = stats(arc)
    assert s["entries"] == 0 and s["hits"] == 0 and s["uncacheable"] == 2, s


def test_show_and_stream_not_cached(arc):
    write_lp(arc, "s", "cpu v=1 %d\n" % (T0 * NS))
    for _ in range(2):
        assert cached(q(arc, "SHOW TABLES", "s")) == "miss"
        r = q(arc, "SELECT v FROM cpu", "s", path="/query/stream")
        assert r.status_code == 200 and "x-arc-cache" not in r.headers
    assert stats(arc)["entries"] == 0


def test_size_cap_evicts_lru(arc_factory):
    # 1 MiB cache: an entry may take 256 KiB; each answer below is ~100 KiB
    srv = arc_factory("--set", "query_cache.max_size_mb=1")
    write_lp(srv, "e", "cpu v=1 %d\n" % (T0 * NS))
    sqls = ["SELECT %d AS k, repeat('x', 100000) AS pad FROM cpu" % i for i in range(16)]
    for s in sqls:
        assert cached(q(srv, s, "e")) == "miss"
    st = stats(srv)
    assert st["evictions"] >= 5, st
    assert st["size_bytes"] <= 1 << 20, st
    assert st["entries"] == 16 - st["evictions"]
    assert cached(q(srv, sqls[-1], "e")) == "hit"   # the newest stays
    assert cached(q(srv, sqls[0], "e")) == "miss"   # the oldest went first
    # one answer above a quarter of the cache is never stored
    big = "SELECT repeat('y', 400000) AS pad FROM cpu"
    q(srv, big, "e")
    assert cached(q(srv, big, "e")) == "miss"
    assert stats(srv)["too_large"] == 2


def test_disabled(arc_factory):
    srv = arc_factory("--set", "query_cache.enabled=false")
    write_lp(srv, "d", "cpu v=1 %d\n" % (T0 * NS))
    for _ in range(2):
        assert cached(q(srv, "SELECT v FROM cpu", "d")) == "miss"
    s = stats(srv)
    assert s["enabled"] is False and s["entries"] == 0


def test_scoped_token_cannot_read_cached_answer_of_other_db(arc):
    write_lp(arc, "sec", "cpu v=42 %d\n" % (T0 * NS))
    sql = "SELECT v FROM sec.cpu"
    assert q(arc, sql, "pub").json()["data"] == [[42.0]]  # admin fills the cache
    tok = arc.create_token("scoped", permissions=["read"], databases=["pub"])["token"]
    r = q(arc, sql, "pub", token=tok)
    assert r.status_code == 403, r.text
    assert "sec" in r.json()["error"]


def test_parquet_answers_are_cached_too(arc):
    write_lp(arc, "pq", "cpu v=1 %d\n" % (T0 * NS))
    r1 = q(arc, "SELECT v FROM cpu", "pq", format="parquet")
    r2 = q(arc, "SELECT v FROM cpu", "pq", format="parquet")
    assert (cached(r1), cached(r2)) == ("miss", "hit")
    assert r1.content == r2.content and r1.content[:4] == b"PAR1"
