"""The hot tier end to end (src/storage/hot.h): a flushed batch stays in memory and
queries read the rows of its files from there instead of from Parquet.

The oracle is a second server with `--set query.hot_cache=false` that received the
same writes and the same flushes: every query of the battery must answer exactly
the same rows (canonicalized: order-free unless the query orders totally, floats to
12 significant digits) on both, and x-arc-profile must say where the rows came
from (hot_files == files on the hot server, 0 on the cold one).

Covered: time bounds at exact row timestamps (>, >=, <, <=, =, BETWEEN, NOT
BETWEEN, empty and reversed ranges, TIMESTAMPTZ / TIMESTAMP_NS / DATE literals),
tag conjuncts (=, IN, NOT IN, absent values, mixed case names, NULL/missing tags, a
tag only later files have, OR that must not be pushed down, contradictions), a
select-list alias named like no column, string *field* equality, joins (self, LEFT
with WHERE on the right side, USING), subqueries and CTEs (also correlated ones
whose unqualified column binds to the outer query), time_bucket aggregates,
DISTINCT ON latest-per-key with one and two keys (NULL keys, a key whose value has
dictionary id 0, ties, string/int keys; also against the plain, unrewritten plan),
int/float widening across files, rows before 1970 and on hour boundaries, SELECT *,
ORDER BY/LIMIT, read-your-writes (buffered + flushed rows), a 1 MiB budget that
evicts, compaction (merged hours are read from Parquet), restart (tier empty) and
kill -9 with WAL replay, dropping a database, 100 000-row batches (parallel scan,
a batch larger than the budget), every result format, flushes racing with queries,
and timed-out / abandoned queries that must unpin what they read."""

from __future__ import annotations

import datetime as _dt
import io
import json
import random
import threading
import time

import msgpack
import pytest

import arc_server
from arc_server import Answer, flush, slow

T0 = 1767225600  # 2026-01-01T00:00:00Z (past: compaction may merge any of its hours)
DB = "hot"
HOSTS = ["h0", "h1", "h2", "h3", "h4"]
MHOSTS = ["srvA", "srvB", "srvC"]
HOURS = 4
FLUSHES = 4
NMEAS = 6  # cpu, disk, mem, events, wid, lt over HOURS hours
PARTS = NMEAS * HOURS + 3  # + `old`: 3 hours around 1970 -> (measurement, hour) files per flush

# every server: no result cache (every query must really run), no age flushes (the
# test decides what is buffered), no background compaction
BASE = ("--set", "query_cache.enabled=false",
        "--set", "ingestion.buffer_age_seconds=3600", "--set", "ingestion.buffer_size=1000000",
        "--set", "compaction.enabled=false")
COLD = BASE + ("--set", "query.hot_cache=false")
EVICT = BASE + ("--set", "query.hot_cache_mb=1")
COMPACT = ("--set", "query_cache.enabled=false",
           "--set", "ingestion.buffer_age_seconds=3600", "--set", "ingestion.buffer_size=1000000",
           "--set", "compaction.min_age_hours=0", "--set", "compaction.min_files=2")


# ------------------------------------------------------------------ data

def tus(h, k, j):
    """µs time of slot j of write k in hour h (sub-second parts on most rows)."""
    return (T0 + h * 3600 + k * 600 + j * 37) * 1_000_000 + (j % 4) * 250_000


def ts(us):
    """A TIMESTAMP literal's text for µs since the epoch."""
    d = _dt.datetime(1970, 1, 1) + _dt.timedelta(microseconds=us)
    return d.strftime("%Y-%m-%d %H:%M:%S.%f")


def lp_escape_str(s):
    return s.replace("\\", "\\\\").replace('"', '\\"')


STATUS = ["ok", "warn", "cr\u00edt \u2713", 'q"uote']


def cpu_lines(k, rng, extra_tag=None):
    """cpu over all hours for write k: 5 hosts share every timestamp; region missing
    for h4 on odd slots; rack only from write 2 on (and not for h3/h4); fields of
    every type, some missing."""
    lines = []
    for h in range(HOURS):
        for j in range(12):
            t = tus(h, k, j)
            for hi, host in enumerate(HOSTS):
                n = ((h * FLUSHES + k) * 12 + j) * 5 + hi
                tags = "host=%s" % host
                if hi < 4 or j % 2 == 0:
                    tags += ",region=%s" % ("eu" if hi < 2 or hi == 4 else "us")
                if k >= 2 and hi < 3:
                    tags += ",rack=r%d" % (1 if hi < 2 else 2)
                if extra_tag and hi == 1:
                    tags += ",%s" % extra_tag
                fields = []
                if n % 9:
                    fields.append("usage=%s" % (n * 0.25))
                fields.append("cnt=%di" % (n % 50 - 10))
                fields.append("ucnt=%du" % (18446744073709551615 if n == 77 else n * 1000))
                fields.append("ok=%s" % ("true" if n % 3 else "false"))
                if n % 4:
                    fields.append('status="%s"' % lp_escape_str(STATUS[n % len(STATUS)]))
                lines.append("cpu,%s %s %d" % (tags, ",".join(fields), t * 1000))
    rng.shuffle(lines)  # out of order inside the request
    return "\n".join(lines) + "\n"


def disk_lines(k, rng):
    lines = []
    for h in range(HOURS):
        for j in range(4):
            for host in HOSTS[:3]:
                for dev in ("sda", "sdb"):
                    n = ((h * FLUSHES + k) * 4 + j) * 6 + HOSTS.index(host) * 2 + (dev == "sdb")
                    lines.append("disk,host=%s,dev=%s used=%di,pct=%s %d"
                                 % (host, dev, n * 10, (n % 8) * 0.125, tus(h, k, j) * 1000))
    # in time order (not shuffled): the flushed batch is already sorted
    return "\n".join(lines) + "\n"


def wid_lines(k):
    """`v` is BIGINT in the first two flushes' files, DOUBLE from then on (int/float
    widening across flushes): hot batches of both types under one DOUBLE column."""
    lines = []
    for h in range(HOURS):
        for j in range(3):
            v = "%di" % (h * 10 + j) if k < 2 else "%s" % ((h * 10 + j) + 0.5)
            lines.append("wid,g=g%d v=%s %d" % (j % 2, v, tus(h, k, j) * 1000 + 5000))
    return "\n".join(lines) + "\n"


def mem_payload(k, rng):
    """mem through MessagePack: half row items, half one columnar item (times out of
    order); tags `hostname` and mixed-case `Zone` (missing/None on some rows); uint
    above INT64_MAX, bool, string fields; NaN once."""
    rows, cols = [], {"time": [], "hostname": [], "Zone": [], "free": [], "used": [],
                      "big": [], "flag": [], "note": []}
    for h in range(HOURS):
        for j in range(8):
            for hi, host in enumerate(MHOSTS):
                n = ((h * FLUSHES + k) * 8 + j) * 3 + hi
                t = tus(h, k, j) + 3
                zone = None if n % 5 == 0 else "z%d" % (n % 2)
                free = float("nan") if n == 50 else n * 0.5
                note = None if n % 3 == 0 else ("x" if n % 2 else "\u65e5\u672c")
                if j % 2 == 0:
                    tags = {"hostname": host}
                    if zone is not None:
                        tags["Zone"] = zone
                    fields = {"free": free, "used": n, "big": 2 ** 63 + n, "flag": bool(n % 2)}
                    if note is not None:
                        fields["note"] = note
                    rows.append({"m": "mem", "t": t, "tags": tags, "fields": fields})
                else:
                    for key, v in (("time", t), ("hostname", host), ("Zone", zone),
                                   ("free", free), ("used", n), ("big", 2 ** 63 + n),
                                   ("flag", bool(n % 2)), ("note", note)):
                        cols[key].append(v)
    order = list(range(len(cols["time"])))
    rng.shuffle(order)
    cols = {key: [v[i] for i in order] for key, v in cols.items()}
    rng.shuffle(rows)
    items = rows + [{"m": "mem", "columns": cols, "tag_keys": ["hostname", "Zone"]}]
    return {"batch": items}


def events_payload(k, rng):
    msgs = ["boot", "halt", "\u00fcn\u00ef", "boot loader", ""]
    rows = []
    for h in range(HOURS):
        for j in range(6):
            n = (h * FLUSHES + k) * 6 + j
            rows.append({"m": "events", "t": tus(h, k, j) + 7,
                         "tags": {"kind": "sys" if n % 2 else "app"},
                         "fields": {"msg": msgs[n % len(msgs)], "code": n}})
    rng.shuffle(rows)
    return {"batch": rows}


def write_lp(srv, body, db=DB):
    arc_server.write_lp(srv, body, db)


def write_mp(srv, payload, db=DB):
    arc_server.write_mp(srv, payload, db)


def lt_lines(k):
    """`lt`: the batch's first string is k='a', so its dictionary id is 0; other rows
    have k NULL (tag missing) and newer times. NULL must stay its own key group."""
    lines = []
    for h in range(HOURS):
        lines += ["lt,k=a,j=x v=1i %d" % (tus(h, k, 0) * 1000),
                  "lt,k=b v=2i %d" % (tus(h, k, 1) * 1000),
                  "lt v=3i %d" % (tus(h, k, 2) * 1000),
                  "lt,j=x v=4i %d" % (tus(h, k, 3) * 1000)]
    return "\n".join(lines) + "\n"


def old_lines(k):
    """`old`: rows around the epoch, before 1970 included (negative µs)."""
    times = [-3600_000_001, -3600_000_000, -1_000_001, -1, 0, 1, 3599_999_999]
    return "".join("old,s=s%d v=%di %d\n" % (i % 2, k * 10 + i, t * 1000)
                   for i, t in enumerate(times))


def write_step(servers, k, db=DB):
    """Write k of every measurement to every server (same bytes)."""
    rng = random.Random(1000 + k)
    cpu, disk = cpu_lines(k, rng), disk_lines(k, rng)
    mem, ev = mem_payload(k, rng), events_payload(k, rng)
    wid, lt, old = wid_lines(k), lt_lines(k), old_lines(k)
    for srv in servers:
        write_lp(srv, lt, db)
        write_lp(srv, old, db)
        write_lp(srv, cpu, db)
        write_lp(srv, disk, db)
        write_mp(srv, mem, db)
        write_mp(srv, ev, db)
        write_lp(srv, wid, db)


def load(servers, db=DB):
    """FLUSHES writes, each followed by a flush: FLUSHES files per hour per measurement."""
    for k in range(FLUSHES):
        write_step(servers, k, db)
        for srv in servers:
            flush(srv)


def buffered_writes(servers, db=DB):
    """Read-your-writes: more rows (one new tag `pod`, a late row in hour 0 that is
    the newest of its host) that stay in the buffers: no flush."""
    rng = random.Random(77)
    cpu = cpu_lines(FLUSHES, rng, extra_tag="pod=p1")
    late = "cpu,host=h9,region=eu usage=1.25,cnt=1i,ucnt=1u,ok=true %d\n" % (tus(0, 0, 1) * 1000)
    mem = mem_payload(FLUSHES, rng)
    for srv in servers:
        write_lp(srv, cpu + late, db)
        write_mp(srv, mem, db)


# ------------------------------------------------------------------ queries

TB = tus(1, 1, 5)   # a row timestamp (five cpu rows share it)
TB2 = tus(2, 0, 3)
TBS, TB2S = ts(TB), ts(TB2)
IN_BIG = ", ".join("'v%d'" % i for i in range(1100)) + ", 'h1'"

# (sql, ordered): ordered = the ORDER BY is total, compare in order
BATTERY = [
    # time bounds at exact row timestamps
    ("SELECT * FROM cpu WHERE time > TIMESTAMP '%s'" % TBS, False),
    ("SELECT * FROM cpu WHERE time >= TIMESTAMP '%s'" % TBS, False),
    ("SELECT * FROM cpu WHERE time < TIMESTAMP '%s'" % TBS, False),
    ("SELECT * FROM cpu WHERE time <= TIMESTAMP '%s'" % TBS, False),
    ("SELECT * FROM cpu WHERE time = TIMESTAMP '%s'" % TBS, False),
    ("SELECT * FROM cpu WHERE TIMESTAMP '%s' < time" % TBS, False),
    ("SELECT * FROM cpu WHERE '%s' >= time" % TBS, False),
    ("SELECT * FROM cpu WHERE time BETWEEN TIMESTAMP '%s' AND TIMESTAMP '%s'" % (TBS, TB2S), False),
    ("SELECT * FROM cpu WHERE time NOT BETWEEN '%s' AND '%s'" % (TBS, TB2S), False),
    ("SELECT * FROM cpu WHERE time BETWEEN '%s' AND '%s'" % (TB2S, TBS), False),  # reversed: empty
    ("SELECT * FROM cpu WHERE time > '%s' AND time < '%s'" % (TB2S, TBS), False),
    ("SELECT * FROM cpu WHERE time >= '%s' AND time < '%s'" % (TBS, TB2S), False),
    ("SELECT * FROM cpu WHERE time > '%s' AND time <= '%s'" % (TBS, TB2S), False),
    ("SELECT * FROM cpu WHERE time = '%s' AND time = '%s'" % (TBS, TB2S), False),
    ("SELECT * FROM cpu WHERE time <= TIMESTAMP '%s' - INTERVAL '1 microsecond'" % TBS, False),
    ("SELECT * FROM cpu WHERE time >= TIMESTAMP '%s' + INTERVAL '1 microsecond'" % TBS, False),
    ("SELECT * FROM cpu WHERE time < TIMESTAMP_NS '%s500'" % TBS, False),
    ("SELECT * FROM cpu WHERE time > TIMESTAMP_NS '%s500'" % ts(TB - 1), False),
    ("SELECT * FROM cpu WHERE time <= TIMESTAMP_NS '%s999'" % TBS, False),
    ("SELECT * FROM cpu WHERE time >= TIMESTAMPTZ '%s+00:00'" % TBS, False),
    ("SELECT * FROM cpu WHERE time < TIMESTAMPTZ '%s+01:00'" % TB2S, False),
    ("SELECT count(*) FROM cpu WHERE time >= DATE '2026-01-01' AND time < DATE '2026-01-02'",
     False),
    ("SELECT * FROM cpu WHERE time >= '2026-01-01 01:00:00' AND time < '2026-01-01 02:00:00'",
     False),
    ("SELECT * FROM cpu WHERE time = '%s' AND host = 'h2'" % TBS, False),
    # rows exactly on hour boundaries (write 0, slot 0 of every hour)
    ("SELECT * FROM cpu WHERE time < '2026-01-01 01:00:00'", False),
    ("SELECT * FROM cpu WHERE time <= '2026-01-01 01:00:00'", False),
    ("SELECT * FROM cpu WHERE time = '2026-01-01 02:00:00'", False),
    ("SELECT * FROM cpu WHERE time > '2026-01-01 02:00:00' AND time < '2026-01-01 03:00:00'",
     False),
    ("SELECT count(*) FROM cpu WHERE time > now() - INTERVAL '3650 days'", False),
    ("SELECT count(*) FROM cpu WHERE time < now() + INTERVAL '1 day' AND host = 'h3'", False),
    # before 1970 (negative µs)
    ("SELECT * FROM old", False),
    ("SELECT * FROM old WHERE time < '1970-01-01 00:00:00'", False),
    ("SELECT * FROM old WHERE time >= '1969-12-31 23:59:59.999999'", False),
    ("SELECT * FROM old WHERE time BETWEEN '1969-12-31 23:00:00' AND '1969-12-31 23:59:59.999999'",
     False),
    ("SELECT DISTINCT ON (s) s, time FROM old ORDER BY s, time DESC", True),
    ("SELECT * FROM mem WHERE time BETWEEN '%s' AND '%s'" % (ts(TB + 3), ts(TB2 + 3)), False),
    ("SELECT * FROM events WHERE time = '%s'" % ts(tus(3, 2, 4) + 7), False),
    # tag conjuncts
    ("SELECT * FROM cpu WHERE host = 'h1'", False),
    ("SELECT * FROM cpu WHERE HOST = 'h1'", False),
    ("SELECT * FROM cpu WHERE \"Host\" = 'h1'", False),
    ("SELECT * FROM cpu WHERE 'h1' = host", False),
    ("SELECT * FROM cpu AS C WHERE c.host = 'h3'", False),
    ("SELECT count(*) FROM hot.cpu WHERE host = 'h1'", False),
    ("SELECT * FROM cpu WHERE host IN ('h1', 'h3')", False),
    ("SELECT * FROM cpu WHERE host IN ('h1', 'zz', 'H3')", False),
    ("SELECT * FROM cpu WHERE host IN ('zz')", False),
    ("SELECT * FROM cpu WHERE host = 'zz'", False),
    ("SELECT * FROM cpu WHERE host = 'H1'", False),
    ("SELECT * FROM cpu WHERE host = 'H1' COLLATE NOCASE", False),
    ("SELECT * FROM cpu WHERE host COLLATE NOCASE = 'H2'", False),
    ("SELECT * FROM cpu WHERE host NOT IN ('h1', 'h2')", False),
    ("SELECT * FROM cpu WHERE host <> 'h1' AND host != 'h0'", False),
    ("SELECT * FROM cpu WHERE NOT (host = 'h1')", False),
    ("SELECT * FROM cpu WHERE host IN (%s)" % IN_BIG, False),
    ("SELECT * FROM cpu WHERE host IN ('h1', NULL)", False),
    ("SELECT * FROM cpu WHERE host = 'h1' AND host = 'h2'", False),
    ("SELECT * FROM cpu WHERE host = 'h1' AND region = 'us'", False),
    ("SELECT * FROM cpu WHERE region = 'eu'", False),
    ("SELECT * FROM cpu WHERE region IN ('eu', 'us')", False),
    ("SELECT * FROM cpu WHERE region IS NULL", False),
    ("SELECT * FROM cpu WHERE host = 'h4' AND region = 'eu'", False),
    ("SELECT * FROM cpu WHERE rack = 'r1'", False),              # only later files have rack
    ("SELECT * FROM cpu WHERE rack IN ('r1', 'r2') AND host = 'h2'", False),
    ("SELECT * FROM cpu WHERE rack = 'r1' OR host = 'h4'", False),  # OR: not pushed down
    ("SELECT * FROM cpu WHERE (host = 'h1' OR host = 'h2') AND region = 'eu'", False),
    ("SELECT * FROM cpu WHERE host = 'h1' OR time = '%s'" % TBS, False),
    ("SELECT * FROM cpu WHERE rack IS NULL AND host IN ('h0', 'h3')", False),
    ("SELECT * FROM cpu WHERE host IS NOT DISTINCT FROM 'h1'", False),
    ("SELECT * FROM cpu WHERE host = 'h1' AND time >= '%s' AND time <= '%s'" % (TBS, TB2S), False),
    ("SELECT * FROM mem WHERE HOSTNAME = 'srvB'", False),
    ("SELECT * FROM mem WHERE zone = 'z1'", False),
    ("SELECT * FROM mem WHERE \"ZONE\" IN ('z0', 'z9') AND hostname = 'srvA'", False),
    ("SELECT * FROM mem WHERE Zone IS NULL", False),
    ("SELECT * FROM events WHERE kind = 'sys'", False),
    # a select-list alias that is no column: DuckDB binds WHERE nosuch to the alias
    ("SELECT host AS nosuch, usage, time FROM cpu WHERE nosuch = 'h1'", False),
    ("SELECT region AS rack2, host FROM cpu WHERE rack2 = 'us'", False),
    # an alias named like a real column: WHERE binds the column, not the alias
    ("SELECT region AS host, host AS region, time FROM cpu WHERE host = 'h1'", False),
    # string *fields* (not tags)
    ("SELECT * FROM cpu WHERE status = 'ok'", False),
    ("SELECT * FROM cpu WHERE status IN ('warn', 'cr\u00edt \u2713', 'q\"uote')", False),
    ("SELECT * FROM cpu WHERE status = 'ok' AND host IN ('h0', 'h4')", False),
    ("SELECT * FROM events WHERE msg = 'boot'", False),
    ("SELECT * FROM events WHERE msg = ''", False),
    ("SELECT * FROM events WHERE msg IN ('\u00fcn\u00ef', 'boot loader')", False),
    ("SELECT * FROM mem WHERE note = '\u65e5\u672c'", False),
    # other columns compared with string literals (cast by DuckDB): not tag filters
    ("SELECT * FROM cpu WHERE cnt = '5'", False),
    ("SELECT * FROM cpu WHERE ok = 'true' AND host = 'h0'", False),
    ("SELECT * FROM cpu WHERE ucnt > 9223372036854775807", False),
    ("SELECT * FROM mem WHERE big > 9223372036854775850 AND flag", False),
    # numeric comparisons pushed into the hot scan (engine_hot.c filter_rows): NaN
    # (DuckDB orders it above every number), uint beyond int64, exact decimals at row
    # values, int columns vs decimal literals, a widened int/float column, flipped
    # operands, a column some files lack, and a string column compared with a number
    ("SELECT * FROM mem WHERE free > 10", False),
    ("SELECT * FROM mem WHERE free >= 25.5 AND free <= 30", False),
    ("SELECT * FROM mem WHERE free = 12.5", False),
    ("SELECT count(*) FROM mem WHERE free > 1e300", False),
    ("SELECT * FROM mem WHERE 20 > used AND used >= 7", False),
    ("SELECT * FROM mem WHERE used = 7.0", False),
    ("SELECT * FROM mem WHERE used > 6.5 AND used < 9.0000001", False),
    ("SELECT * FROM mem WHERE big >= 9223372036854775850.0", False),
    ("SELECT count(*) FROM mem WHERE big > 9.2233720368547758e18", False),
    ("SELECT * FROM cpu WHERE usage > 20.25 AND host IN ('h1', 'h3')", False),
    ("SELECT * FROM cpu WHERE usage = 20.25 OR usage = 20.5", False),
    ("SELECT * FROM cpu WHERE cnt < -5 AND ucnt >= 0", False),
    ("SELECT * FROM cpu WHERE ucnt > 18446744073709551614", False),
    ("SELECT * FROM cpu WHERE ucnt > 1e19", False),
    ("SELECT * FROM wid WHERE v > 3 AND v <= 40.5", False),
    ("SELECT * FROM cpu WHERE cnt = 1.0 AND rack = 'r1'", False),
    # statements where rows outside a WHERE conjunct still change what matches: an
    # ASOF join (the latest cpu row at or before each mem row, whatever its host) and
    # an UNPIVOT whose value column reuses a measurement column's name
    ("SELECT m.time, m.hostname, c.time AS ct, c.host, c.usage FROM mem m ASOF JOIN cpu c "
     "ON m.time >= c.time WHERE c.host = 'h1'", False),
    ("SELECT m.time, c.time AS ct, c.host FROM mem m ASOF JOIN cpu c ON m.time >= c.time "
     "WHERE c.time < '%s' AND c.usage > 5" % TBS, False),
    ("SELECT time, host, k, usage FROM cpu UNPIVOT (usage FOR k IN (usage, cnt)) "
     "WHERE usage > 20", False),
    # joins
    ("SELECT a.time, a.host, a.usage, b.host, b.usage FROM cpu a JOIN cpu b "
     "ON a.time = b.time AND a.host <> b.host WHERE a.host = 'h1' AND b.host IN ('h2', 'h3')",
     False),
    ("SELECT c.time, c.host, c.usage, d.dev, d.used FROM cpu c LEFT JOIN disk d "
     "ON c.host = d.host AND c.time = d.time WHERE d.dev = 'sda'", False),
    ("SELECT c.time, c.host, c.usage, d.dev FROM cpu c LEFT JOIN disk d "
     "ON c.host = d.host AND c.time = d.time AND d.dev = 'sdb' WHERE c.host = 'h1'", False),
    ("SELECT c.time, c.host, d.dev FROM cpu c LEFT JOIN disk d "
     "ON c.host = d.host AND c.time = d.time WHERE d.dev IS NULL AND c.host = 'h2'", False),
    ("SELECT c.time, c.host, d.dev FROM cpu c LEFT JOIN disk d "
     "ON c.host = d.host AND c.time = d.time AND c.host = 'h0'", False),
    ("SELECT time, host, usage, dev, used FROM cpu JOIN disk USING (host, time) WHERE dev = 'sdb'",
     False),
    ("SELECT time, host, dev FROM cpu RIGHT JOIN disk USING (host, time) WHERE host = 'h1'", False),
    ("SELECT time, host, dev FROM cpu FULL JOIN disk USING (host, time) WHERE host = 'h2'", False),
    ("SELECT m.time, m.hostname, e.msg FROM mem m JOIN events e ON e.time = m.time + "
     "INTERVAL '4 microseconds' WHERE e.kind = 'app' AND m.hostname = 'srvC'", False),
    # subqueries and CTEs
    ("WITH x AS (SELECT * FROM cpu WHERE host = 'h1') "
     "SELECT count(*), sum(usage), min(time), max(time) FROM x WHERE region = 'eu'", False),
    ("SELECT * FROM (SELECT host AS hh, usage, time FROM cpu) s WHERE hh = 'h1'", False),
    ("SELECT * FROM (SELECT * FROM cpu WHERE host IN ('h1', 'h4')) s WHERE region IS NULL", False),
    ("SELECT * FROM cpu WHERE host IN (SELECT host FROM disk WHERE dev = 'sdb' AND used > 500)",
     False),
    ("SELECT time, host, (SELECT max(used) FROM disk WHERE disk.host = cpu.host AND "
     "disk.dev = 'sda') AS mx FROM cpu WHERE time = '%s'" % TBS, False),
    # correlated: `dev` is no column of events, it binds to the outer disk row
    ("SELECT * FROM disk d WHERE EXISTS (SELECT 1 FROM events WHERE kind = 'sys' AND dev = 'sda')",
     False),
    ("SELECT * FROM disk WHERE NOT EXISTS (SELECT 1 FROM cpu WHERE host = disk.host AND "
     "status = 'warn' AND time = disk.time)", False),
    ("SELECT host FROM cpu WHERE host = 'h1' UNION ALL SELECT host FROM cpu WHERE host = 'h2' "
     "UNION ALL SELECT hostname FROM mem WHERE hostname = 'srvA'", False),
    # aggregates
    ("SELECT time_bucket(INTERVAL '10 minutes', time) AS b, host, count(*), sum(usage), "
     "min(cnt), max(ucnt), bool_and(ok), count(status) FROM cpu GROUP BY ALL", False),
    ("SELECT time_bucket(INTERVAL '1 hour', time) AS b, count(*), sum(used), "
     "count(DISTINCT hostname) FROM mem WHERE zone = 'z0' GROUP BY ALL", False),
    ("SELECT date_trunc('hour', time) AS h, rack, count(*) FROM cpu WHERE host IN ('h0', 'h2') "
     "GROUP BY ALL", False),
    ("SELECT count(*) FROM cpu", False),
    ("SELECT count(*), count(region), count(rack), count(usage), sum(cnt) FROM cpu", False),
    ("SELECT count(*) FROM mem WHERE \"Zone\" = 'z1'", False),
    ("SELECT count(*), count(DISTINCT msg) FROM events", False),
    ("SELECT host, count(*) FROM cpu WHERE host = 'h1' GROUP BY host HAVING count(*) > 1", False),
    # latest row per key (DISTINCT ON ... ORDER BY keys, time DESC)
    ("SELECT DISTINCT ON (host) * FROM cpu ORDER BY host, time DESC", True),
    ("SELECT DISTINCT ON (host, rack) host, rack, time, usage, status FROM cpu "
     "ORDER BY host, rack, time DESC", True),
    ("SELECT DISTINCT ON (rack) rack, time FROM cpu ORDER BY rack, time DESC", True),
    ("SELECT DISTINCT ON (region) region, time FROM cpu ORDER BY region, time DESC", True),
    ("SELECT DISTINCT ON (region, rack) region, rack, time FROM cpu "
     "ORDER BY region, rack, time DESC", True),
    ("SELECT DISTINCT ON (HOSTNAME) * FROM mem ORDER BY hostname, time DESC", True),
    ("SELECT DISTINCT ON (hostname, zone) * FROM mem ORDER BY hostname, zone, time DESC", True),
    ("SELECT DISTINCT ON (status) status, time FROM cpu ORDER BY status, time DESC", True),
    ("SELECT DISTINCT ON (cnt) cnt, time FROM cpu ORDER BY cnt, time DESC", True),
    ("SELECT DISTINCT ON (kind) * FROM events ORDER BY kind, time DESC", True),
    ("SELECT DISTINCT ON (host) host, time, usage FROM cpu ORDER BY host, time DESC LIMIT 2", True),
    ("SELECT DISTINCT ON (host) * FROM cpu WHERE region = 'eu' ORDER BY host, time DESC", True),
    ("SELECT DISTINCT ON (k) k, time, v FROM lt ORDER BY k, time DESC", True),
    ("SELECT DISTINCT ON (k, j) k, j, time, v FROM lt ORDER BY k, j, time DESC", True),
    ("SELECT DISTINCT ON (j) * FROM lt ORDER BY j, time DESC", True),
    ("SELECT DISTINCT ON (j, k) * FROM lt ORDER BY j, k, time DESC", True),
    ("SELECT * FROM lt WHERE k = 'a'", False),
    ("SELECT * FROM lt WHERE k IN ('a', 'b') AND j IS NULL", False),
    # SELECT *, ORDER BY, LIMIT
    ("SELECT * FROM cpu", False),
    ("SELECT * FROM mem", False),
    ("SELECT * FROM disk", False),
    ("SELECT * FROM events", False),
    ("SELECT * FROM cpu ORDER BY time, host LIMIT 50", True),
    ("SELECT * FROM cpu ORDER BY time DESC, host LIMIT 7 OFFSET 3", True),
    ("SELECT * FROM cpu WHERE host = 'h2' ORDER BY time DESC LIMIT 5", True),
    ("SELECT time, hostname, free FROM mem ORDER BY time, hostname LIMIT 20 OFFSET 100", True),
    # int/float widening across files
    ("SELECT * FROM wid", False),
    ("SELECT g, sum(v), count(*), min(v), max(v) FROM wid GROUP BY g", False),
    ("SELECT * FROM wid WHERE v = 21 OR v = 31.5", False),
    ("SELECT DISTINCT ON (g) * FROM wid ORDER BY g, time DESC", True),
    ("SELECT DISTINCT ON (v) v, time FROM wid ORDER BY v, time DESC", True),
    # types and shapes of the relation
    ("DESCRIBE SELECT * FROM cpu", True),
    ("DESCRIBE SELECT * FROM mem", True),
    ("SELECT DISTINCT typeof(time), typeof(host), typeof(ucnt), typeof(ok), typeof(status), "
     "typeof(rack) FROM cpu", False),
    ("SELECT * FROM cpu WHERE 'h1' IN (host, region)", False),
    ("SELECT * FROM cpu WHERE host IN (region, 'h1')", False),
    ("SELECT * FROM cpu WHERE host = region", False),
    # errors must match too (first line)
    ("SELECT * FROM cpu WHERE nosuch = 'x'", False),
    ("SELECT count(*) FROM cpu WHERE pod = 'p1'", False),  # pod: only in buffered rows
]

# a third of the battery, for the repeated runs of the slower scenarios
BATTERY_SUBSET = [b for i, b in enumerate(BATTERY) if i % 3 == 0 and "pod" not in b[0]]

# the same statements in the plain plan (not rewritten to latest-per-key)
LATEST_PLAIN = [(sql.replace(" ORDER BY ", " WHERE true ORDER BY ", 1), True)
                for sql, _ in BATTERY
                if sql.startswith("SELECT DISTINCT ON") and " WHERE " not in sql]


def late(h, col="time", minute=40):
    """Time bounds on hour h that reach only the files of write FLUSHES (the one after
    load()): write k's rows lie at minutes [10k, 10k + 6:48) of every hour, so minute
    40 on lists one file per (measurement, hour); minute 30 on also lists write 3's.
    (Not `< next hour`: files are pruned with the bound included, and write 0's file
    of the next hour starts exactly on it.)"""
    return "%s >= '2026-01-01 %02d:%02d:00' AND %s <= '2026-01-01 %02d:59:59'" % (
        col, h, minute, col, h)


# queries whose every reference lists only files of write FLUSHES (hot_files == files
# where those are in memory); NEWEST_CM reads only cpu and mem (buffered_writes())
NEWEST_CM = [
    ("SELECT * FROM cpu WHERE %s" % late(3), False),
    ("SELECT * FROM cpu WHERE time >= '2026-01-01 03:40:00'", False),
    ("SELECT * FROM cpu WHERE %s AND host = 'h1'" % late(1), False),
    ("SELECT * FROM cpu WHERE %s AND host IN ('h0', 'h4') AND usage > 185" % late(2), False),
    ("SELECT count(*), sum(usage), count(region), count(rack), min(time), max(time) FROM cpu "
     "WHERE %s" % late(0), False),
    ("SELECT DISTINCT ON (host) * FROM cpu WHERE %s ORDER BY host, time DESC" % late(2), True),
    ("SELECT * FROM cpu WHERE %s ORDER BY time DESC, host LIMIT 7" % late(1), True),
    ("SELECT * FROM mem WHERE %s" % late(2), False),
    ("SELECT * FROM mem WHERE %s AND zone = 'z1'" % late(0), False),
    ("SELECT time_bucket(INTERVAL '1 minute', time) AS b, count(*), sum(used) FROM mem "
     "WHERE %s GROUP BY ALL" % late(3), False),
    # every hour's newest file, one reference each
    (" UNION ALL ".join("SELECT host, time, usage FROM cpu WHERE %s" % late(h)
                        for h in range(HOURS)), False),
    ("SELECT c.time, c.host, c.usage, m.free FROM cpu c JOIN mem m "
     "ON m.time = c.time + INTERVAL '3 microseconds' AND m.hostname = 'srvB' "
     "WHERE %s AND %s" % (late(1, "c.time"), late(1, "m.time")), False),
]
NEWEST = NEWEST_CM + [
    ("SELECT * FROM disk WHERE %s" % late(1), False),
    ("SELECT * FROM events WHERE %s" % late(3), False),
    ("SELECT * FROM wid WHERE %s" % late(2), False),
    ("SELECT DISTINCT ON (k) k, time, v FROM lt WHERE %s ORDER BY k, time DESC" % late(0), True),
]
# and ones that also list write 3's file, which no test keeps in memory (restart,
# WAL replay, compaction): read all from Parquet
SPANNING = [
    ("SELECT * FROM cpu WHERE %s" % late(2, minute=30), False),
    ("SELECT count(*), sum(usage), max(time) FROM cpu WHERE %s" % late(3, minute=30), False),
    ("SELECT * FROM mem WHERE %s" % late(1, minute=30), False),
]




def metric(srv, name):
    for line in srv.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("metric %s missing" % name)


def query(srv, sql, db=DB):
    r = srv.post("/api/v1/query", json={"sql": sql}, headers={"x-arc-database": db},
                 timeout=slow(60))
    assert r.status_code in (200, 400), (sql, r.status_code, r.text)
    return Answer(r)


def canon_val(v):
    if isinstance(v, float):
        return float("%.12g" % v)
    if isinstance(v, list):
        return [canon_val(x) for x in v]
    return v


def canon(a, ordered):
    """What must be equal between two servers: status, columns, rows (as a sorted
    multiset unless ordered); for errors, the first line of the message (the rest
    quotes the server-made view, which names the hot scans)."""
    if a.status != 200:
        return (a.status, a.error.splitlines()[0] if a.error else "")
    rows = [canon_val(r) for r in a.data]
    if not ordered:
        rows.sort(key=lambda r: json.dumps(r, sort_keys=True))
    return (a.status, a.columns, rows)


def short(x, n=1500):
    s = json.dumps(x, default=str)
    return s if len(s) <= n else s[:n] + "...(%d chars)" % len(s)


def compare(ref, others, battery, db=DB):
    """Run battery on ref and every (name, server) in others; returns {name: [answers]}
    and the list of mismatches (each a readable text) instead of stopping at the first."""
    bad, got = [], {name: [] for name, _ in others}
    got["ref"] = []
    for sql, ordered in battery:
        want = query(ref, sql, db)
        got["ref"].append(want)
        cw = canon(want, ordered)
        for name, srv in others:
            a = query(srv, sql, db)
            got[name].append(a)
            ca = canon(a, ordered)
            if ca != cw:
                bad.append("%s differs from the cold server on:\n  %s\n  %s: %s\n  cold: %s\n"
                           "  profiles: %s / %s"
                           % (name, sql, name, short(ca), short(cw), a.profile, want.profile))
    return got, bad


def check_profiles(battery, cold, hot, *, all_hot):
    """cold: hot_files=0 everywhere; hot: same files as cold, hot_files == files when
    every file is in memory (all_hot), else 0 or files (a reference reads its files
    from memory only when all of them are there: engine_hot.c). Returns problems."""
    bad = []
    for (sql, _), c, h in zip(battery, cold, hot):
        if c.status != 200:
            continue
        if c.hot() != 0:
            bad.append("cold server read hot files: %s %s" % (sql, c.profile))
        if h.files() != c.files():
            bad.append("files differ: %s hot=%s cold=%s" % (sql, h.profile, c.profile))
        if all_hot and h.hot() != h.files():
            bad.append("hot_files != files: %s %s" % (sql, h.profile))
        if h.hot() not in (0, h.files()) and sql.count(" FROM ") < 2:
            bad.append("hot_files neither 0 nor files: %s %s" % (sql, h.profile))
        if not 0 <= h.hot() <= h.files():
            bad.append("hot_files out of range: %s %s" % (sql, h.profile))
    return bad


def only_newest_hot(battery, hot):
    """After a restart and one flush: a single reference that read from memory listed
    only that flush's files (at most HOURS of a measurement). Returns problems."""
    return ["hot_files from more than the newest files: %s %s" % (sql, a.profile)
            for (sql, _), a in zip(battery, hot)
            if a.status == 200 and a.profile.get("refs") == "1" and a.hot() > 0
            and a.files() > HOURS]


def check_newest(cold, hot, *, in_memory, measurements=None):
    """NEWEST (only the cpu and mem queries when measurements=cm) and SPANNING on
    both servers: the same non-empty answers; NEWEST's files all from memory when
    in_memory (hot_files == files > 0), else none of them; SPANNING lists write 3's
    file next to write FLUSHES' (2 files) and reads both from Parquet, since the
    older one is not in memory. Returns problems."""
    newest = NEWEST_CM if measurements == "cm" else NEWEST
    battery = newest + SPANNING
    got, bad = compare(cold, [("hot", hot)], battery)
    for i, ((sql, _), c, a) in enumerate(zip(battery, got["ref"], got["hot"])):
        if c.status != 200 or not c.data or a.status != 200:
            bad.append("no rows: %s %s %s" % (sql, c.error, a.error))
            continue
        want = (0 if i >= len(newest) or not in_memory else a.files())
        if a.files() == 0 or a.hot() != want or a.files() != c.files() or c.hot() != 0:
            bad.append("expected hot_files=%s of files>0: %s\n  hot: %s\n  cold: %s"
                       % ("files" if want else 0, sql, a.profile, c.profile))
        if i >= len(newest) and a.files() != 2:
            bad.append("expected 2 files: %s %s" % (sql, a.profile))
    return bad


# ------------------------------------------------------------------ tests

def test_answers_equal_hot_cold_and_evicting(arc_factory):
    hot = arc_factory(*BASE, name="hot")
    cold = arc_factory(*COLD, name="cold")
    evict = arc_factory(*EVICT, name="evict")
    servers = [hot, cold, evict]
    load(servers)
    problems = []
    for phase in ("flushed", "buffered"):
        if phase == "buffered":
            buffered_writes(servers)
        got, bad = compare(cold, [("hot", hot), ("evict", evict)], BATTERY + LATEST_PLAIN)
        problems += ["[%s] %s" % (phase, b) for b in bad]
        problems += ["[%s] %s" % (phase, b) for b in
                     check_profiles(BATTERY, got["ref"], got["hot"], all_hot=True)]
        problems += ["[%s] evict: %s" % (phase, b) for b in
                     check_profiles(BATTERY, got["ref"], got["evict"], all_hot=False)]
        # latest-per-key answers equal the plain plan's (no rewrite at all)
        n = len(BATTERY)
        for i, (sql, _) in enumerate(LATEST_PLAIN):
            j = next(k for k, (s, _) in enumerate(BATTERY) if s.replace(
                " ORDER BY ", " WHERE true ORDER BY ", 1) == sql)
            if canon(got["hot"][j], True) != canon(got["ref"][n + i], True):
                problems.append("[%s] latest rewrite differs from the plain plan: %s\n"
                                "  latest: %s\n  plain: %s" % (
                                    phase, BATTERY[j][0], short(canon(got["hot"][j], True)),
                                    short(canon(got["ref"][n + i], True))))
        ok = [a for a in got["ref"][:n] if a.status == 200]
        assert sum(a.files() for a in ok) > 0
        assert any(a.profile.get("latest") == "1" for a in got["hot"][:n])
        if phase == "buffered":
            for sql in ("SELECT * FROM cpu", "SELECT count(*) FROM cpu"):
                a = got["hot"][BATTERY.index((sql, False))]
                assert int(a.profile["buffered_rows"]) > 0, (sql, a.profile)
            assert query(hot, "SELECT count(*) FROM cpu WHERE pod = 'p1'").data == [[48]]
        # the 1 MiB server evicted: some queries read their files from Parquet, and
        # the tier still holds the newest batches
        ev = [a for a in got["evict"][:n] if a.status == 200 and a.files() > 0]
        assert any(a.hot() < a.files() for a in ev), "nothing was evicted"
        assert metric(evict, "arc_hot_files") > 0, "nothing stayed in memory"
    assert not problems, "\n\n".join(problems)


def test_restart_reads_parquet_then_new_flushes_are_hot(arc_factory):
    hot = arc_factory(*BASE, name="hot")
    cold = arc_factory(*COLD, name="cold")
    load([hot, cold])
    hot.restart()
    battery = [b for b in BATTERY if "pod" not in b[0]]
    got, bad = compare(cold, [("hot", hot)], battery)
    bad += check_profiles(battery, got["ref"], got["hot"], all_hot=False)
    for (sql, _), a in zip(battery, got["hot"]):
        if a.status == 200 and a.hot() != 0:
            bad.append("hot file after restart: %s %s" % (sql, a.profile))
    assert not bad, "\n\n".join(bad)
    # one more flush: only its files are in memory; a reference that lists one of
    # the older files too reads all of them from Parquet
    write_step([hot, cold], FLUSHES)
    flush(hot)
    flush(cold)
    got, bad = compare(cold, [("hot", hot)], BATTERY_SUBSET)
    bad += check_profiles(BATTERY_SUBSET, got["ref"], got["hot"], all_hot=False)
    bad += only_newest_hot(BATTERY_SUBSET, got["hot"])
    bad += check_newest(cold, hot, in_memory=True)
    assert not bad, "\n\n".join(bad)
    a = query(hot, "SELECT count(*) FROM cpu")
    assert a.profile["files"] == str(HOURS * (FLUSHES + 1)) and a.profile["hot_files"] == "0"
    assert a.data == [[HOURS * 12 * 5 * (FLUSHES + 1)]]
    a = query(hot, "SELECT count(*) FROM cpu WHERE %s" % late(2))
    assert a.profile["files"] == a.profile["hot_files"] == "1", a.profile
    assert a.data == [[12 * 5]]


def test_kill_with_wal_replays_into_memory(arc_factory):
    """kill -9 with rows only in the WAL: start-up replays and flushes them; those
    files are hot again, the older ones are read from Parquet; same answers."""
    wal = ("--set", "wal.enabled=true")
    hot = arc_factory(*BASE, *wal, name="hot")
    cold = arc_factory(*COLD, *wal, name="cold")
    load([hot, cold])
    buffered_writes([hot, cold])
    hot.kill()
    hot.start()
    got, bad = compare(cold, [("hot", hot)], BATTERY_SUBSET)
    assert not bad, "\n\n".join(bad)
    flush(hot)
    flush(cold)
    got, bad = compare(cold, [("hot", hot)], BATTERY_SUBSET)
    bad += check_profiles(BATTERY_SUBSET, got["ref"], got["hot"], all_hot=False)
    bad += only_newest_hot(BATTERY_SUBSET, got["hot"])
    # the replayed rows were flushed after the restart: only their files (cpu, mem)
    # are in memory
    bad += check_newest(cold, hot, in_memory=True, measurements="cm")
    assert not bad, "\n\n".join(bad)
    a = query(hot, "SELECT count(*) FROM cpu")
    assert a.data == query(cold, "SELECT count(*) FROM cpu").data == [[HOURS * 12 * 5 * 5 + 1]]
    assert a.profile["files"] == str(HOURS * (FLUSHES + 1)), a.profile
    assert a.profile["hot_files"] == "0", a.profile
    # hour 0's replayed file also holds the late h9 row (minute 0): alone in memory
    # from minute 40 on; next to write 0's file (Parquet) in minutes 0-10
    for lo, hi, files, hot_files, want in (("00:40", "00:59", "1", "1", [[60, 12, 0]]),
                                           ("00:00", "00:09", "2", "0", [[61, 0, 1]])):
        sql = ("SELECT count(*), count(pod), count(*) FILTER (WHERE host = 'h9') FROM cpu "
               "WHERE time >= '2026-01-01 %s:00' AND time <= '2026-01-01 %s:59'" % (lo, hi))
        a, c = query(hot, sql), query(cold, sql)
        assert a.data == c.data == want, (sql, a.data, c.data)
        assert (a.profile["files"], a.profile["hot_files"]) == (files, hot_files), (sql, a.profile)


def compaction_trigger(srv):
    r = srv.post("/api/v1/compaction/trigger", timeout=slow(120))
    assert r.status_code == 200, r.text
    return r.json()


def test_compaction_forgets_merged_files(arc_factory):
    hot = arc_factory(*COMPACT, name="hot")
    cold = arc_factory(*COLD, name="cold")
    load([hot, cold])
    a = query(hot, "SELECT count(*) FROM cpu")
    assert a.profile["files"] == a.profile["hot_files"] == str(HOURS * FLUSHES)
    # a query that holds its pinned segments while compaction deletes the files
    r = hot.post("/api/v1/query/stream", stream=True, timeout=slow(60),
                 headers={"x-arc-database": DB},
                 json={"sql": "SELECT * FROM cpu", "format": "csv"})
    assert r.status_code == 200
    res = compaction_trigger(hot)
    # PARTS (measurement, hour) pairs, FLUSHES files each -> one file each
    assert res["files_in"] == PARTS * FLUSHES and res["files_out"] == PARTS, res
    body = r.content
    assert body.count(b"\n") == 1 + HOURS * FLUSHES * 12 * 5
    battery = [b for b in BATTERY if "pod" not in b[0]]
    got, bad = compare(cold, [("hot", hot)], battery)
    for (sql, _), a in zip(battery, got["hot"]):
        if a.status == 200 and a.hot() != 0:
            bad.append("a merged file read from memory: %s %s" % (sql, a.profile))
    assert not bad, "\n\n".join(bad)
    a = query(hot, "SELECT count(*) FROM cpu WHERE time >= '2026-01-01 01:00:00' "
                   "AND time <= '2026-01-01 01:59:59'")
    assert a.profile["files"] == "1" and a.profile["hot_files"] == "0", a.profile
    # new flushes into the compacted hours are hot again, the merged files are not:
    # the hour (merged + new) is read from Parquet, its minutes 40-60 (new only) from
    # memory
    write_step([hot, cold], FLUSHES)
    flush(hot)
    flush(cold)
    a = query(hot, "SELECT count(*) FROM cpu WHERE time >= '2026-01-01 01:00:00' "
                   "AND time <= '2026-01-01 01:59:59'")
    assert a.profile["files"] == "2" and a.profile["hot_files"] == "0", a.profile
    assert a.data == [[12 * 5 * (FLUSHES + 1)]], a.data
    a = query(hot, "SELECT count(*) FROM cpu WHERE %s" % late(1))
    assert a.profile["files"] == a.profile["hot_files"] == "1", a.profile
    assert a.data == [[12 * 5]], a.data
    got, bad = compare(cold, [("hot", hot)], BATTERY_SUBSET)
    bad += ["hot_files neither 0 nor files: %s %s" % (s, a.profile)
            for (s, _), a in zip(BATTERY_SUBSET, got["hot"])
            if a.status == 200 and a.profile["refs"] == "1" and a.hot() not in (0, a.files())]
    bad += check_newest(cold, hot, in_memory=True)
    assert not bad, "\n\n".join(bad)
    # and compacting those again (merged + new) forgets the new one too
    res = compaction_trigger(hot)
    assert res["files_out"] == PARTS, res
    got, bad = compare(cold, [("hot", hot)], BATTERY_SUBSET + NEWEST)
    bad += ["hot file after 2nd compaction: %s %s" % (s, a.profile)
            for (s, _), a in zip(BATTERY_SUBSET + NEWEST, got["hot"])
            if a.status == 200 and a.hot() != 0]
    assert not bad, "\n\n".join(bad)


def test_drop_database_then_reuse_name(arc_factory):
    hot = arc_factory(*BASE, name="hot")
    cold = arc_factory(*COLD, name="cold")
    load([hot, cold])
    load([hot, cold], db="other")
    for srv in (hot, cold):
        r = srv.request("DELETE", "/api/v1/databases/%s?confirm=true" % DB)
        assert r.status_code == 200, r.text
        assert r.json()["files_deleted"] == PARTS * FLUSHES, r.text
        flush(srv)
    # the same name again, with different rows (write 5 only)
    write_step([hot, cold], FLUSHES + 1)
    for srv in (hot, cold):
        flush(srv)
    battery = [b for b in BATTERY if "pod" not in b[0]]
    got, bad = compare(cold, [("hot", hot)], battery)
    bad += check_profiles(battery, got["ref"], got["hot"], all_hot=True)
    assert not bad, "\n\n".join(bad)
    a = query(hot, "SELECT count(*), min(time) FROM cpu")
    assert a.data == [[HOURS * 12 * 5, "2026-01-01T00:50:00.000000Z"]], a.data
    assert a.profile["files"] == a.profile["hot_files"] == str(HOURS)
    # the other database kept all its rows, from memory
    got, bad = compare(cold, [("hot", hot)], battery[:30], db="other")
    assert not bad, "\n\n".join(bad)
    a = query(hot, "SELECT count(*) FROM cpu", db="other")
    assert a.data == [[HOURS * 12 * 5 * FLUSHES]]
    assert a.profile["files"] == a.profile["hot_files"] == str(HOURS * FLUSHES)


def test_flushes_racing_with_queries(arc_factory):
    """Writers flush over and over while readers count: every query sees each
    acknowledged row exactly once (never from both the buffer and memory, never
    from both memory and Parquet), and the ids it sees are a prefix. The tier (2 MiB)
    cannot keep every file, so the counts over all rows soon read Parquet; the
    counts over the newest rows read the files just flushed, from memory."""
    hot = arc_factory(*BASE, "--set", "query.hot_cache_mb=2", name="hot")
    acked = [0]
    nq = [0]
    nhot = [0]  # queries of the newest rows that read all their files from memory
    stop = threading.Event()
    errors = []

    def writer():
        i = 0
        while not stop.is_set() and i < 60:
            lines = "".join("race,host=w%d id=%di %d\n" % (n % 4, n, (T0 + n) * 10 ** 9)
                            for n in range(i * 200, (i + 1) * 200))
            write_lp(hot, lines)
            acked[0] = (i + 1) * 200
            if i % 2 == 0:
                flush(hot)
            i += 1

    def reader():
        while not stop.is_set():
            before = acked[0]
            a = query(hot, "SELECT count(*), count(DISTINCT id), coalesce(max(id), -1), "
                           "count(*) FILTER (WHERE host = 'w1') FROM race")
            if a.status != 200:
                if "race" in (a.error or "") and before == 0:
                    continue  # not created yet
                errors.append(a.error)
                return
            nq[0] += 1
            n, d, mx, w1 = a.data[0]
            if not (n == d and mx == n - 1 and n >= before) or a.hot() not in (0, a.files()):
                errors.append((before, a.data, a.profile))
                return
            a = query(hot, "SELECT count(*) FROM race WHERE host = 'w1'")
            if a.status != 200 or a.data[0][0] < before // 4:
                errors.append(("w1", before, a.data, a.profile))
                return
            # the newest rows (id n at T0 + n s): ids lo.. without a gap or a repeat
            lo = max(0, before - 500)
            a = query(hot, "SELECT count(*), count(DISTINCT id), coalesce(min(id), -1), "
                           "coalesce(max(id), -1) FROM race WHERE time >= '%s'"
                           % ts((T0 + lo) * 1_000_000))
            if a.status != 200:
                errors.append(("newest", before, a.error))
                return
            n, d, mn, mx = a.data[0]
            if not (n == d and n >= before - lo and (n == 0 or (mn == lo and mx == lo + n - 1))) \
                    or a.hot() not in (0, a.files()):
                errors.append(("newest", before, lo, a.data, a.profile))
                return
            if a.files() > 0 and a.hot() == a.files():
                nhot[0] += 1

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader)
                                                    for _ in range(3)]
    for t in threads:
        t.start()
    threads[0].join(timeout=slow(60))
    stop.set()
    for t in threads[1:]:
        t.join(timeout=slow(60))
    assert not errors, errors
    assert nq[0] >= 10, nq
    assert nhot[0] >= 3, (nhot, nq)
    assert metric(hot, "arc_hot_evicted_batches_total") > 0, "the tier kept every file"
    flush(hot)
    a = query(hot, "SELECT count(*), count(DISTINCT id) FROM race")
    assert a.data == [[12000, 12000]]
    assert int(a.profile["files"]) > 0 and a.hot() in (0, a.files()), a.profile
    # the last two flushes (ids 11400-11799, 11800-11999) are in memory
    a = query(hot, "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM race "
                   "WHERE time >= '%s'" % ts((T0 + 11400) * 1_000_000))
    assert a.data == [[600, 600, 11400, 11999]], a.data
    assert a.profile["files"] == a.profile["hot_files"] == "2", a.profile


# ------------------------------------------------------------------ large batches

BIG_T0 = (T0 + 5 * 3600) * 1_000_000  # hours 5 and 6: apart from the other data


def big_lines(lo, hi, step=1):
    """Rows lo, lo+step, .. < hi of `big`: 8 values of tag, 300 x 300 combinations of
    a/b, a unique string field, one row per 30 ms (hour 5 up to row 119 999)."""
    out = []
    for i in range(lo, hi, step):
        out.append('big,tag=t%d,a=a%d,b=b%d s="x%d",v=%di,f=%s %d'
                   % (i % 8, i % 300, (i // 300) % 300, i, i % 1000, (i % 64) * 0.5,
                      (BIG_T0 + i * 30_000) * 1000))
    return "\n".join(out) + "\n"


BIG_BATTERY = [
    ("SELECT count(*), count(DISTINCT s), sum(v), sum(f), min(time), max(time) FROM big", False),
    ("SELECT tag, count(*), sum(v), max(s), min(s) FROM big GROUP BY tag", False),
    ("SELECT count(*), sum(v), count(DISTINCT s) FROM big WHERE tag IN ('t1', 't2', 't3')", False),
    ("SELECT count(*), sum(v) FROM big WHERE tag = 't5' AND a IN ('a5', 'a13', 'a21')", False),
    ("SELECT * FROM big WHERE s = 'x77777'", False),
    ("SELECT * FROM big WHERE s IN ('x0', 'x99999', 'x100000', 'x139999')", False),
    ("SELECT * FROM big WHERE time BETWEEN '%s' AND '%s'"
     % (ts(BIG_T0 + 2047 * 30_000), ts(BIG_T0 + 4100 * 30_000)), False),
    ("SELECT * FROM big WHERE time > '%s' AND tag = 't0'" % ts(BIG_T0 + 99_000 * 30_000), False),
    ("SELECT * FROM big ORDER BY time LIMIT 10 OFFSET 60000", True),
    ("SELECT * FROM big ORDER BY time DESC LIMIT 10 OFFSET 2047", True),
    ("SELECT DISTINCT ON (tag) * FROM big ORDER BY tag, time DESC", True),
    # 90 000 key groups from 600 strings: more groups than latest_rows plans for
    ("SELECT DISTINCT ON (a, b) a, b, time, s FROM big ORDER BY a, b, time DESC LIMIT 25", True),
    ("SELECT DISTINCT ON (b) b, time, s FROM big ORDER BY b, time DESC", True),
    ("SELECT time_bucket(INTERVAL '5 minutes', time) AS w, tag, count(*), sum(f) FROM big "
     "GROUP BY ALL", False),
    ("SELECT x.tag, count(*) FROM big x JOIN big y ON x.time = y.time AND y.a = 'a7' "
     "WHERE x.tag IN ('t7', 't3') GROUP BY x.tag", False),
]

FORMAT_SQL = [
    "SELECT * FROM cpu ORDER BY time, host",
    "SELECT * FROM mem ORDER BY time, hostname",
    "SELECT tag, a, s, v, f, time FROM big WHERE tag IN ('t1', 't2', 't3') ORDER BY time",
    "SELECT DISTINCT ON (tag) * FROM big ORDER BY tag, time DESC",
]


def fetch(srv, sql, path="/api/v1/query", **body):
    body["sql"] = sql
    r = srv.post(path, json=body, headers={"x-arc-database": DB}, timeout=slow(60))
    assert r.status_code == 200, (sql, path, body, r.status_code, r.text[:500])
    return r


def test_large_batches_and_every_format(arc_factory):
    """Batches of 100 000+ rows (many vectors per segment, the parallel scan, a
    batch larger than a 1 MiB budget) and every result format: the same bytes (text
    formats) or the same tables (Arrow, Parquet, MessagePack) hot and cold."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    hot = arc_factory(*BASE, name="hot")
    cold = arc_factory(*COLD, name="cold")
    evict = arc_factory(*EVICT, name="evict")
    servers = [hot, cold, evict]
    write_step(servers, 0)
    # hour 5: even rows then odd rows in one buffer (unsorted: a row order); hour 6
    # in order (none)
    evens, odds, later = big_lines(0, 120_000, 2), big_lines(1, 120_000, 2), \
        big_lines(120_000, 160_000)
    for srv in servers:
        write_lp(srv, evens)
        write_lp(srv, odds)
        flush(srv)
        write_lp(srv, later)
        flush(srv)
    got, bad = compare(cold, [("hot", hot), ("evict", evict)], BIG_BATTERY)
    bad += check_profiles(BIG_BATTERY, got["ref"], got["hot"], all_hot=True)
    assert not bad, "\n\n".join(bad)
    a = query(hot, "SELECT count(*) FROM big")
    assert a.data == [[160_000]] and a.profile["hot_files"] == "2", a.profile
    # the 1 MiB server could keep neither big batch (each is larger than its budget)
    a = query(evict, "SELECT count(*) FROM big")
    assert a.profile["files"] == "2" and a.profile["hot_files"] == "0", a.profile
    a = query(evict, "SELECT count(*) FROM cpu")
    assert int(a.profile["hot_files"]) == HOURS, a.profile

    problems = []
    for sql in FORMAT_SQL:
        for path, body in (("/api/v1/query", {"format": "csv"}),
                           ("/api/v1/query", {"format": "ndjson"}),
                           ("/query/stream", {"format": "csv"}),
                           ("/query/stream", {}),
                           ("/api/v1/query/msgpack", {}),
                           ("/api/v1/query/arrow", {}),
                           ("/api/v1/query", {"format": "parquet"})):
            rh, rc = fetch(hot, sql, path, **body), fetch(cold, sql, path, **body)
            kind = body.get("format") or path
            if kind == "parquet":
                same = pq.read_table(io.BytesIO(rh.content)).equals(
                    pq.read_table(io.BytesIO(rc.content)))
            elif kind.endswith("arrow"):
                th = pa.ipc.open_stream(rh.content).read_all()
                tc = pa.ipc.open_stream(rc.content).read_all()
                same = th.equals(tc) and th.num_rows > 0
            elif kind.endswith("msgpack"):
                mh = msgpack.unpackb(rh.content, raw=False)
                mc = msgpack.unpackb(rc.content, raw=False)
                same = mh["columns"] == mc["columns"] and mh["data"] == mc["data"]
            elif kind == "/query/stream":
                jh, jc = rh.json(), rc.json()
                same = jh["columns"] == jc["columns"] and jh["data"] == jc["data"]
            else:
                same = rh.content == rc.content
            if not same:
                problems.append("%s %s differs hot/cold: %s" % (path, body, sql))
    assert not problems, "\n".join(problems)


def test_cancelled_queries_release_their_pins(arc_factory):
    """A query that times out and a stream whose client goes away both read pinned
    hot segments: they must unpin them (the one query slot comes back, later
    evictions free the batches; under ASan the shutdown finds no leak)."""
    srv = arc_factory(*BASE, "--set", "query.max_concurrent=1", "--set", "query.timeout_seconds=1",
                      "--set", "query.hot_cache_mb=4", name="hot")
    for lo in range(0, 30_000, 10_000):
        write_lp(srv, big_lines(lo, lo + 10_000))
        flush(srv)
    a = query(srv, "SELECT count(*) FROM big")
    assert a.data == [[30_000]] and a.profile["hot_files"] == a.profile["files"] != "0", a.profile
    r = srv.post("/api/v1/query", headers={"x-arc-database": DB}, timeout=slow(60),
                 json={"sql": "SELECT count(*) FROM big a, big b WHERE a.v + b.v = -1"})
    assert r.status_code == 504 and "timed out" in r.json()["error"], (r.status_code, r.text)
    # a stream abandoned by its client
    s = srv.connect()
    body = json.dumps({"sql": "SELECT a.s, b.s, a.time FROM big a, big b",
                       "format": "csv"}).encode()
    s.sendall(b"POST /query/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
              b"x-arc-database: %s\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s"
              % (srv.token.encode(), DB.encode(), len(body), body))
    assert b"200 OK" in s.recv(65536)
    s.close()
    deadline = time.monotonic() + slow(20)
    while True:
        r = srv.post("/api/v1/query", headers={"x-arc-database": DB}, timeout=slow(60),
                     json={"sql": "SELECT count(*) FROM big WHERE tag = 't3'"})
        if r.status_code == 200:
            assert r.json()["data"] == [[3750]]
            break
        assert r.status_code in (429, 504), r.text
        assert time.monotonic() < deadline, "the abandoned stream still holds the query slot"
        time.sleep(0.1)
    # newer batches push the pinned-then-released ones out (all of big: some files
    # from Parquet, so all of them), and are read from memory themselves
    for lo in range(30_000, 60_000, 10_000):
        write_lp(srv, big_lines(lo, lo + 10_000))
        flush(srv)
    a = query(srv, "SELECT count(*), count(DISTINCT s) FROM big")
    assert a.data == [[60_000, 60_000]]
    assert a.profile["files"] == "6" and a.profile["hot_files"] == "0", a.profile

    def batches(lo, hi):  # the rows of flushes lo..hi-1 (10 000 rows 30 ms apart each)
        return ("SELECT count(*), count(DISTINCT s), min(v), max(v) FROM big "
                "WHERE time >= '%s' AND time <= '%s'"
                % (ts(BIG_T0 + lo * 10_000 * 30_000), ts(BIG_T0 + (hi * 10_000 - 1) * 30_000)))
    a = query(srv, batches(0, 1))
    assert a.data == [[10_000, 10_000, 0, 999]], a.data
    assert a.profile["files"] == "1" and a.profile["hot_files"] == "0", a.profile
    a = query(srv, batches(4, 6))
    assert a.data == [[20_000, 20_000, 0, 999]], a.data
    assert a.profile["files"] == a.profile["hot_files"] == "2", a.profile
