"""The native executor end to end (src/query/native.h): statements of a few shapes
(AGG, RAW, LATEST) answered from the hot tier's memory without DuckDB.

Differential: a "native" server (defaults: hot tier on, query.native on) and a
"duck" server (`--set query.native=false`) receive the same writes and flushes;
every statement of the battery runs twice on each (the first run of a statement
always goes through DuckDB, which records its column names and types; the second
may be native) and the second answers must be equal: status, column names in
order, the JSON type of every column, and the rows (in order when the ORDER BY is
total, in the order of the ordered columns when it is partial, else as a multiset;
floats to a relative 1e-12, since sums of doubles may differ in the last bits with
the summation order).

Then: no answer of the duck server says native=1; the statements marked N (the
core dashboard shapes) are native on the native server's second run; at least
NATIVE_SHARE of the statements designed native-eligible (N and E) are; the ones
marked F (shapes the executor must leave to DuckDB: sum of a BIGINT, HAVING,
OFFSET, joins, ...) never are.

The data: cpu over three days (hours 0, 1, 13, 23) and around the epoch (rows
before 1970, at -1 µs, 0, +1 µs), from three flushes (several files per hour), five
hosts sharing every timestamp, a `region` tag missing on some rows, a `rack` tag
only later files have, BIGINT fields with negatives and magnitudes around 9e15
(2^53 + 1 too), DOUBLE fields with negatives and NaN (through MessagePack: line
protocol rejects NaN), fields missing on some rows and a field only one flush has,
a string field, a UBIGINT field above INT64_MAX, a boolean, rows exactly on hour,
day, 10-second and 7-minute bucket boundaries. Phases: 1. every row in flushed
files (all in memory); 2. plus buffered (unflushed) rows of the same columns, a
new host among them, some in a day no file has; 3. plus buffered rows with a
column no file has yet and a measurement with buffered rows only (the catalog
does not know their columns: no native expectation there); 4. all of it flushed.

test_bigint_vs_double_literal: a BIGINT column compared with a DECIMAL or DOUBLE
literal while the column holds values a double cannot represent (beyond 2^53):
DuckDB (1.4) compares `v = 9.007199254740992e15` exactly, as integers (2^53 + 1 is
not equal), but `v = 4.000000000001e18` as doubles; which cast it picks is not
ours to guess, so the native executor leaves such a statement to DuckDB as soon as
a selected row is beyond 2^53 (an INTEGER literal is compared exactly and stays
native). The answers must equal DuckDB's either way. (Found by this file: the
executor first cast every value to double.)"""

from __future__ import annotations

import datetime as _dt
import json
import math
import time


from arc_server import Answer, flush, slow, write_lp, write_mp

DB = "nat"
T0 = 1767225600  # 2026-01-01T00:00:00Z
ORIGIN = 946857600  # 2000-01-03: time_bucket's default origin
HOSTS = ["h0", "h1", "h2", "h3", "h4"]
DAYS = 3
HOURS = [0, 1, 13, 23]
FLUSHES = 3
SLOTS = 6
STATUS = ["ok", "warn", "crit", "\u00fcber"]
BIG = 9_000_000_000_000_000
P53 = 2 ** 53 + 1  # 9007199254740993: not a double

# no result cache (every query really runs), no age flushes (the test decides what
# is buffered), no background compaction (files stay as flushed, in memory)
BASE = ("--set", "query_cache.enabled=false",
        "--set", "ingestion.buffer_age_seconds=3600", "--set", "ingestion.buffer_size=1000000",
        "--set", "compaction.enabled=false")
DUCK = BASE + ("--set", "query.native=false")

NATIVE_SHARE = 0.9  # of the N and E statements, on the native server's second run
REL = 1e-12


# ------------------------------------------------------------------ data

def ts(us):
    """A timestamp literal's text for µs since the epoch."""
    d = _dt.datetime(1970, 1, 1) + _dt.timedelta(microseconds=us)
    return d.strftime("%Y-%m-%d %H:%M:%S.%f")


def slot_us(d, h, k, j):
    """µs time of slot j of flush k in hour h of day d: slot 0 of flush 0 is exactly
    on the hour (and on the day for h = 0); every slot is on a 10-second boundary
    plus 0, 250 or 500 ms."""
    return (T0 + d * 86400 + h * 3600 + k * 420 + j * 70) * 1_000_000 + (j % 3) * 250_000


def b7_us(d, h, k):
    """A 7-minute bucket boundary in hour h of day d, after every slot (which end
    before minute 20), one per flush."""
    t = T0 + d * 86400 + h * 3600 + 2000
    return (ORIGIN + (-(-(t - ORIGIN) // 420) + k) * 420) * 1_000_000


# rows around the epoch, per flush (µs); distinct per flush
def old_times(k):
    return [-2 * 86400_000_000 + k * 1000, -3600_000_000 - k * 7, -1_000_001 - k,
            -1 - k * 1000, 0 + k * 2000, 1 + k * 3000, 3599_999_999 - k]


class Gen:
    """Deterministic field values from a running row number."""

    def __init__(self):
        self.n = 0

    def fields(self, k, extra=False):
        n = self.n
        self.n += 1
        f = []
        if n % 7 != 3:
            f.append("usage=%.1f" % ((n * 37 % 1000) / 10))
        f.append("cnt=%di" % (n % 41 - 20))
        if n % 11 != 5:
            big = P53 if n % 13 == 0 else BIG + n * 1_234_567
            f.append("big=%di" % (-big if n % 3 == 0 else big))
        f.append("temp=%s" % (((n % 17) - 8) * 0.5))
        # 1.100 .. 1.149: some (1.118, 1.122, 1.140) are not int + frac / 1000 in doubles
        f.append("ratio=%.3f" % (1.1 + (n % 50) / 1000))
        # int64 sums of these overflow: avg must add in 128 bits
        f.append("huge=%di" % ((4 * 10 ** 18 + n * 1_000_003) * (-1 if n % 5 == 0 else 1)))
        if n % 4:
            f.append('status="%s"' % STATUS[(n // 4) % len(STATUS)])
        f.append("ok=%s" % ("true" if n % 2 else "false"))
        f.append("ucnt=%du" % (18446744073709551615 if n % 97 == 7 else n * 1000))
        if k == 2:
            f.append("load=%s" % ((n % 9) * 0.25 - 1))
        if extra:
            f.append("extra=%s" % (n * 0.125))
        return ",".join(f), n


def cpu_lines(k, g):
    lines = []
    for d in range(DAYS):
        for h in HOURS:
            times = [slot_us(d, h, k, j) for j in range(SLOTS)] + [b7_us(d, h, k)]
            for j, t in enumerate(times):
                for hi, host in enumerate(HOSTS):
                    fields, n = g.fields(k)
                    tags = "host=%s" % host
                    if not ((hi == 4 and j % 2 == 0) or n % 9 == 0):
                        tags += ",region=%s" % ("eu" if hi < 2 or hi == 4 else "us")
                    if k >= 1 and hi < 2:
                        tags += ",rack=r%d" % (hi + 1)
                    if n % 5:
                        tags += ",Dc=%s" % "xy"[n % 2]
                    lines.append("cpu,%s %s %d" % (tags, fields, t * 1000))
    for i, t in enumerate(old_times(k)):
        for host in HOSTS[:2]:
            fields, _ = g.fields(k)
            region = ",region=eu" if i % 2 else ""
            lines.append("cpu,host=%s%s %s %d" % (host, region, fields, t * 1000 + i))
    return "\n".join(lines) + "\n"


# NaN usage rows through MessagePack (line protocol rejects NaN), flush 1 only
NAN_TIMES = [(T0 + 86400 + 13 * 3600 + 3300 + i) * 1_000_000 for i in range(3)]


def nan_payload():
    rows = []
    for i, t in enumerate(NAN_TIMES):
        rows.append({"m": "cpu", "t": t, "tags": {"host": "h2", "region": "us"},
                     "fields": {"usage": float("nan"), "cnt": 7 + i, "big": -BIG - i,
                                "temp": -2.5, "status": "ok", "ok": True}})
    return {"batch": rows}



def load(servers):
    g = Gen()
    for k in range(FLUSHES):
        body = cpu_lines(k, g)
        for srv in servers:
            write_lp(srv, body, DB)
            if k == 1:
                write_mp(srv, nan_payload(), DB)
            flush(srv)


def buffered_writes(servers):
    """Rows that stay in the buffers, with columns the files already have: a new
    host h9 (no region), the newest rows of h0 (a day no file has) and rows in an
    hour that has files."""
    g = Gen()
    g.n = 100_000
    lines = []
    for i in range(12):
        for host in ("h0", "h9"):
            tags = "host=%s" % host + (",region=us" if host == "h0" else "")
            for t in (slot_us(0, 1, 0, 0) + 2000_000_000 + i * 7_000_000,
                      slot_us(3, 0, 0, 0) + i * 10_000_000):
                fields, _ = g.fields(0)
                lines.append("cpu,%s %s %d" % (tags, fields, t * 1000))
    for srv in servers:
        write_lp(srv, "\n".join(lines) + "\n", DB)


def new_column_writes(servers):
    """Buffered rows with a column no file has (`extra`), and `fresh`, a
    measurement with buffered rows only (no file, no catalog columns yet)."""
    g = Gen()
    g.n = 200_000
    lines = []
    for i in range(10):
        for host in ("h1", "h9"):
            fields, _ = g.fields(0, extra=i % 3 != 0)
            tags = "host=%s" % host + (",region=eu" if host == "h1" else "")
            lines.append("cpu,%s %s %d" % (tags, fields,
                                           (slot_us(3, 1, 0, 0) + i * 1_000_000) * 1000))
    fresh = []
    for i in range(40):
        tags = "k=%s" % ("a", "b", "c")[i % 3] + (",z=q" if i % 4 else "")
        f = "v=%di,f=%s" % (i * 3 - 50, i * 0.75 - 10)
        if i % 5:
            f += ',s="s%d"' % (i % 2)
        fresh.append("fresh,%s %s %d" % (tags, f, (T0 + i * 30) * 1_000_000_000))
    for srv in servers:
        write_lp(srv, "\n".join(lines) + "\n", DB)
        write_lp(srv, "\n".join(fresh) + "\n", DB)


# ------------------------------------------------------------------ statements

TB = slot_us(1, 13, 1, 2)       # five cpu rows (one per host) share this time
TB2 = slot_us(2, 1, 0, 0)       # exactly on 2026-01-03 01:00:00 (flush 0, slot 0)
TBS, TB2S = ts(TB), ts(TB2)
DAY1 = "2026-01-02 00:00:00"    # a day boundary with rows on it
H13 = "'2026-01-02 13:00:00'"
H14 = "'2026-01-02 14:00:00'"

# (sql, order, kind)
#   order: True  the ORDER BY is total: compare in order
#          False compare as a multiset
#          (names) the ORDER BY orders by these columns only: the sequence of their
#                values must be equal, the rows as a multiset
#          "count" LIMIT without a total order: only the number of rows (and the
#                columns)
#   kind:  "N" must be native (second run), "E" designed native-eligible (counted
#          towards NATIVE_SHARE), "F" must fall back to DuckDB, "X" no expectation
BATTERY = [
    # ---- AGG: the TSBS-like dashboard shapes
    ("SELECT time_bucket(INTERVAL '1 minute', time) AS minute, max(usage) FROM cpu "
     "WHERE host = 'h1' AND time >= %s AND time < %s GROUP BY minute ORDER BY minute"
     % (H13, H14), True, "N"),
    ("SELECT time_bucket(INTERVAL '1 minute', time) AS minute, max(usage), max(temp), max(cnt) "
     "FROM cpu WHERE host IN ('h0', 'h2', 'h3') AND time >= '2026-01-01 00:00:00' "
     "AND time < '2026-01-02 00:00:00' GROUP BY minute ORDER BY minute", True, "N"),
    ("SELECT time_bucket(INTERVAL '1 hour', time) AS hour, host, avg(usage) FROM cpu "
     "WHERE time >= '2026-01-01 00:00:00' AND time < '2026-01-03 00:00:00' "
     "GROUP BY hour, host ORDER BY hour, host", True, "N"),
    ("SELECT time_bucket(INTERVAL '1 hour', time) AS hour, host, avg(usage), avg(temp), "
     "avg(cnt), avg(big), min(big), max(big) FROM cpu GROUP BY 1, 2 ORDER BY 1, 2", True, "N"),
    ("SELECT host, max(usage), min(temp), count(*) FROM cpu GROUP BY host ORDER BY host",
     True, "N"),
    ("SELECT count(*), max(usage), min(cnt) FROM cpu", True, "N"),
    ("SELECT count(*) FROM cpu WHERE host = 'h3' AND time >= '%s'" % DAY1, True, "N"),
    # ---- AGG: bucket widths, GROUP BY by alias / ordinal / expression
    ("SELECT time_bucket(INTERVAL '7 minutes', time) AS b, count(*), count(usage), sum(usage) "
     "FROM cpu GROUP BY b ORDER BY b", True, "E"),
    ("SELECT time_bucket(INTERVAL '7 minutes', time) AS b, host, min(cnt), max(cnt) FROM cpu "
     "WHERE host IN ('h0', 'h4') GROUP BY 1, 2 ORDER BY 1 DESC, 2 DESC", True, "E"),
    ("SELECT time_bucket(INTERVAL '10 seconds', time), region, count(*) FROM cpu "
     "WHERE host IN ('h0', 'h4') GROUP BY time_bucket(INTERVAL '10 seconds', time), region "
     "ORDER BY 1, 2", True, "E"),
    ("SELECT time_bucket(INTERVAL '10 seconds', time) AS b, sum(temp), avg(temp) FROM cpu "
     "WHERE time >= '2026-01-02 13:00:00' AND time <= '2026-01-02 13:30:00' GROUP BY b "
     "ORDER BY b DESC LIMIT 5", True, "E"),
    ("SELECT time_bucket(INTERVAL '1 day', time) AS day, host, min(big), max(big), avg(big) "
     "FROM cpu GROUP BY day, host ORDER BY day DESC, host DESC", True, "E"),
    ("SELECT time_bucket(INTERVAL '1 day', time) AS day, count(*), avg(usage) FROM cpu "
     "GROUP BY day ORDER BY day", True, "E"),
    ("SELECT time_bucket(INTERVAL '2 days', time) AS d2, count(*), sum(temp) FROM cpu "
     "GROUP BY d2 ORDER BY d2", True, "E"),
    ("SELECT time_bucket(INTERVAL '1 hour', time) AS b, count(*), min(cnt), max(cnt) FROM cpu "
     "WHERE time < '1970-01-02' GROUP BY b ORDER BY b", True, "E"),
    ("SELECT time_bucket(INTERVAL '7 minutes', time) AS b, host, count(*) FROM cpu "
     "WHERE time < '1970-01-02' GROUP BY b, host ORDER BY b, host", True, "E"),
    ("SELECT time_bucket(INTERVAL '1 second', time) AS b, count(*) FROM cpu "
     "WHERE time >= '1969-12-31 23:59:58' AND time < '1970-01-01 00:00:02' GROUP BY b "
     "ORDER BY b", True, "E"),
    ("SELECT host, time_bucket(INTERVAL '1 hour', time) AS b, max(usage) FROM cpu "
     "WHERE time >= '2026-01-03 00:00:00' GROUP BY b, host ORDER BY host, b", True, "E"),
    ("SELECT time_bucket(INTERVAL '1 hour', time) AS b, host, count(*) FROM cpu "
     "GROUP BY b, host ORDER BY b", ("b",), "E"),
    ("SELECT time_bucket(INTERVAL '1 minute', time) AS b, host, count(*) FROM cpu "
     "GROUP BY b, host", False, "E"),
    ("SELECT time_bucket(INTERVAL '1 hour', time) AS b, count(*) FROM cpu GROUP BY b "
     "ORDER BY b LIMIT 1", True, "E"),
    ("SELECT time_bucket(INTERVAL '1 hour', time) AS b, count(*) FROM cpu GROUP BY b "
     "ORDER BY b DESC LIMIT 5", True, "E"),
    ("SELECT time_bucket(INTERVAL '1 hour', time) AS b, count(*) FROM cpu GROUP BY b "
     "ORDER BY b LIMIT 0", True, "E"),
    # ---- AGG: ORDER BY bucket LIMIT n with no other key (native_agg.c top_buckets: only
    # the n edge buckets are aggregated when all of them hold rows, else every row)
] + [
    ("SELECT time_bucket(INTERVAL '%s', time) AS b, count(*), max(cnt), avg(usage) FROM cpu "
     "WHERE %s GROUP BY b ORDER BY b %s LIMIT %d" % (w, where, d, n), True, "E")
    for w in ("10 seconds", "1 minute", "7 minutes", "1 hour")
    for where in ("time < '2026-01-02 13:17:29'", "time >= '2026-01-01 00:59:31'",
                  "host = 'h2' AND time > '1969-12-31 23:59:55'")
    for d in ("DESC", "ASC")
    for n in (1, 3, 50)
] + [
    # ---- AGG: string keys, NULL groups last in both directions
    ("SELECT region, count(*), avg(temp) FROM cpu GROUP BY region ORDER BY region", True, "E"),
    ("SELECT region, count(*), avg(temp) FROM cpu GROUP BY region ORDER BY region DESC",
     True, "E"),
    ("SELECT region, host, count(*), count(region) FROM cpu GROUP BY region, host "
     "ORDER BY region DESC, host", True, "E"),
    ("SELECT rack, count(*), count(rack) FROM cpu GROUP BY rack ORDER BY rack DESC", True, "E"),
    ("SELECT host, rack, region, count(*) FROM cpu GROUP BY host, rack, region "
     "ORDER BY rack, region, host", True, "E"),
    ("SELECT status, count(*), min(cnt) FROM cpu GROUP BY status ORDER BY status", True, "E"),
    ("SELECT status, host, max(temp) FROM cpu GROUP BY status, host ORDER BY status DESC, "
     "host DESC", True, "E"),
    ("SELECT host, region, count(*), count(status), min(cnt), max(cnt), avg(cnt) FROM cpu "
     "GROUP BY host, region", False, "E"),
    ("SELECT host, max(usage) FROM cpu GROUP BY host ORDER BY host LIMIT 1", True, "E"),
    ("SELECT host, max(usage) FROM cpu GROUP BY host ORDER BY host DESC LIMIT 5", True, "E"),
    ("SELECT host, max(usage) FROM cpu GROUP BY host ORDER BY host LIMIT 0", True, "E"),
    ("SELECT region, count(*) FROM cpu GROUP BY region ORDER BY region DESC LIMIT 1", True, "E"),
    ("SELECT region, count(*) FROM cpu GROUP BY region ORDER BY region LIMIT 2", True, "E"),
    ("SELECT HOST, Max(Usage) AS m, MIN(Cnt) FROM cpu WHERE Host IN ('h1', 'h2') "
     "GROUP BY HOST ORDER BY host", True, "E"),
    ("SELECT dc, count(*), max(cnt) FROM cpu GROUP BY DC ORDER BY Dc DESC", True, "E"),
    ("SELECT host FROM cpu GROUP BY host ORDER BY host DESC", True, "E"),
    ("SELECT host, count(*) FROM cpu WHERE host = 'nope' GROUP BY host ORDER BY host", True, "E"),
    ("SELECT host, count(*) FROM cpu WHERE host IN ('h1', 'h1', '') GROUP BY host", False, "E"),
    ("SELECT count(*), count(host) FROM cpu WHERE host = ''", True, "E"),
    ("SELECT count(*) FROM cpu LIMIT 0", True, "E"),
    ("SELECT time_bucket(INTERVAL '1 hour', time) AS b, host, max(usage) FROM cpu "
     "WHERE host = 'h2' GROUP BY b, host ORDER BY time_bucket(INTERVAL '1 hour', time) DESC",
     True, "E"),
    ("SELECT time_bucket(INTERVAL '90 minutes', time) AS b, count(*), min(temp) FROM cpu "
     "GROUP BY b ORDER BY b", True, "E"),
    ("SELECT time_bucket(INTERVAL '36 hours', time) AS b, host, count(*) FROM cpu "
     "GROUP BY b, host ORDER BY b, host", True, "E"),
    ("SELECT time_bucket(INTERVAL '3 days', time) AS b, count(*), avg(big) FROM cpu "
     "GROUP BY b ORDER BY b", True, "E"),
    ("SELECT time_bucket(INTERVAL '45 seconds', time) AS b, count(*) FROM cpu "
     "WHERE time < '1970-01-02' GROUP BY b ORDER BY b DESC", True, "E"),
    ("SELECT time_bucket(INTERVAL '1000 seconds', time) AS b, region, sum(usage) FROM cpu "
     "WHERE host IN ('h3', 'h4') GROUP BY b, region ORDER BY b, region DESC", True, "E"),
    ("SELECT time_bucket(INTERVAL '60 seconds', time) AS b, count(*) FROM cpu "
     "WHERE host = 'h4' GROUP BY b ORDER BY b LIMIT 5", True, "E"),
    ("SELECT time_bucket(INTERVAL '1 second', time) AS b, host, count(*) FROM cpu "
     "GROUP BY b, host", False, "E"),
    # ---- AGG: global aggregates, NULLs, empty inputs
    ("SELECT count(*), count(usage), min(usage), max(usage), avg(usage), sum(usage) FROM cpu",
     True, "E"),
    ("SELECT count(*), count(region), count(status), count(rack), count(load), count(big) "
     "FROM cpu", True, "E"),
    ("SELECT min(big), max(big), avg(big), min(cnt), max(cnt), avg(cnt) FROM cpu", True, "E"),
    ("SELECT sum(temp), avg(temp), min(temp), max(temp), sum(load), avg(load) FROM cpu",
     True, "E"),
    ("SELECT count(*), max(usage), sum(usage), avg(cnt), min(big) FROM cpu WHERE host = 'nope'",
     True, "E"),
    ("SELECT count(*), count(usage), max(temp) FROM cpu WHERE time > '2030-01-01 00:00:00'",
     True, "E"),
    ("SELECT count(*), avg(usage) FROM cpu WHERE time > '%s' AND time < '%s'" % (TB2S, TBS),
     True, "E"),
    ("SELECT count(*), max(usage), min(usage), avg(usage), sum(usage) FROM cpu "
     "WHERE host = 'h2' AND time >= '2026-01-02 13:55:00' AND time < '2026-01-02 14:00:00'",
     True, "E"),  # the NaN rows
    ("SELECT count(load), avg(load), min(load) FROM cpu WHERE host = 'h1'", True, "E"),
    ("SELECT count(*) FROM cpu WHERE rack = 'r1'", True, "E"),
    # ---- AGG: numeric WHERE at exact boundary values (INTEGER / DECIMAL / DOUBLE)
    ("SELECT count(*), min(usage) FROM cpu WHERE usage > 90.0", True, "E"),
    ("SELECT count(*), max(usage) FROM cpu WHERE usage >= 90.0", True, "E"),
    ("SELECT count(*) FROM cpu WHERE usage = 90.0", True, "E"),
    ("SELECT count(*) FROM cpu WHERE usage >= 90", True, "E"),
    ("SELECT count(*) FROM cpu WHERE usage < 1e3", True, "E"),
    ("SELECT count(*) FROM cpu WHERE usage <= 9.9e1", True, "E"),
    ("SELECT count(*), min(temp), max(temp) FROM cpu WHERE temp = -2.5", True, "E"),
    ("SELECT count(*) FROM cpu WHERE temp < -2.5", True, "E"),
    ("SELECT count(*) FROM cpu WHERE temp <= -2", True, "E"),
    ("SELECT count(*) FROM cpu WHERE cnt >= 5", True, "E"),
    ("SELECT count(*) FROM cpu WHERE cnt > 4.5", True, "E"),
    ("SELECT count(*) FROM cpu WHERE cnt = 5.0", True, "E"),
    ("SELECT count(*) FROM cpu WHERE cnt = -2.5", True, "E"),
    ("SELECT count(*) FROM cpu WHERE cnt < -19", True, "E"),
    ("SELECT count(*) FROM cpu WHERE cnt <= -1.5e1", True, "E"),
    ("SELECT count(*), min(big), max(big) FROM cpu WHERE big < 1e3", True, "E"),
    ("SELECT count(*) FROM cpu WHERE big >= 9000000000000000", True, "E"),
    ("SELECT count(*) FROM cpu WHERE big = 9007199254740993", True, "E"),
    ("SELECT count(*) FROM cpu WHERE big > 9007199254740992.5", True, "E"),
    ("SELECT count(*) FROM cpu WHERE big <= -9000000000000000.0", True, "E"),
    ("SELECT host, count(*), max(usage) FROM cpu WHERE usage > 50 AND cnt < 0 AND temp >= -1.5 "
     "GROUP BY host ORDER BY host", True, "E"),
    ("SELECT count(*) FROM cpu WHERE 90.0 < usage", True, "E"),
    ("SELECT count(*) FROM cpu WHERE usage = 42.9", True, "E"),
    ("SELECT count(*) FROM cpu WHERE usage <= 42.9 AND usage > 42.89999999999999", True, "E"),
    ("SELECT count(*) FROM cpu WHERE usage < 42.90000000000001 AND usage >= 4.29e1", True, "E"),
    ("SELECT count(*) FROM cpu WHERE usage > 90", True, "E"),
    ("SELECT count(*) FROM cpu WHERE big < 1e19 AND big > -1e19", True, "E"),
    ("SELECT count(*) FROM cpu WHERE big > -9000000000000000.5", True, "E"),
    ("SELECT count(*) FROM cpu WHERE usage < 9007199254740993", True, "E"),
    ("SELECT count(*) FROM cpu WHERE ratio = 1.118", True, "E"),
    ("SELECT count(*) FROM cpu WHERE ratio >= 1.122 AND ratio < 1.132", True, "E"),
    ("SELECT count(*) FROM cpu WHERE ratio > 1.14", True, "E"),
    ("SELECT count(*) FROM cpu WHERE ratio <= 1.1400", True, "E"),
    ("SELECT host, min(ratio), max(ratio), avg(ratio), sum(ratio) FROM cpu GROUP BY host "
     "ORDER BY host", True, "E"),
    ("SELECT avg(huge), min(huge), max(huge), count(huge) FROM cpu", True, "E"),
    ("SELECT host, avg(huge) FROM cpu WHERE huge > 0 GROUP BY host ORDER BY host", True, "E"),
    ("SELECT time_bucket(INTERVAL '1 day', time) AS b, avg(huge), avg(big) FROM cpu "
     "WHERE huge < 0 GROUP BY b ORDER BY b", True, "E"),
    ("SELECT count(*) FROM cpu WHERE huge >= 4000000000000000000 AND huge < 4.0000000001e18",
     True, "E"),
    ("SELECT count(*) FROM cpu WHERE host = 'h1' AND host = 'h2'", True, "E"),
    ("SELECT count(*) FROM cpu WHERE host IN ('h1', 'h2') AND host = 'h2' AND region = 'us'",
     True, "E"),
    ("SELECT count(*) FROM cpu WHERE TIME >= '2026-01-02' AND \"time\" < '2026-01-03'",
     True, "E"),
    # ---- RAW
    ("SELECT * FROM cpu", False, "E"),
    ("SELECT * FROM cpu ORDER BY time", ("time",), "E"),
    ("SELECT * FROM cpu ORDER BY time DESC", ("time",), "E"),
    ("SELECT * FROM cpu WHERE host = 'h2' ORDER BY time DESC LIMIT 5", True, "N"),
    ("SELECT * FROM cpu WHERE host = 'h1' ORDER BY time", True, "N"),
    ("SELECT time, usage FROM cpu WHERE host = 'h3' ORDER BY time LIMIT 1", True, "N"),
    ("SELECT time, host, usage, cnt FROM cpu WHERE host IN ('h0', 'h4') ORDER BY time ASC "
     "LIMIT 10", ("time",), "E"),
    ("SELECT * FROM cpu LIMIT 5", "count", "E"),
    ("SELECT * FROM cpu LIMIT 0", True, "E"),
    ("SELECT host, usage FROM cpu WHERE host = 'h0' LIMIT 3", "count", "E"),
    ("SELECT Host, USAGE, Time FROM cpu WHERE HOST = 'h2' ORDER BY TIME DESC LIMIT 3", True, "E"),
    ("SELECT usage, time, host, ok, ucnt, status FROM cpu WHERE time = '%s'" % TBS, False, "E"),
    ("SELECT * FROM cpu WHERE time = TIMESTAMP '%s'" % TBS, False, "E"),
    ("SELECT * FROM cpu WHERE time > TIMESTAMP '%s'" % TBS, False, "E"),
    ("SELECT * FROM cpu WHERE time >= TIMESTAMP '%s'" % TBS, False, "E"),
    ("SELECT * FROM cpu WHERE time < '%s'" % TBS, False, "E"),
    ("SELECT * FROM cpu WHERE time <= '%s'" % TBS, False, "E"),
    ("SELECT * FROM cpu WHERE '%s' <= time" % TBS, False, "E"),
    ("SELECT * FROM cpu WHERE TIMESTAMP '%s' > time" % TBS, False, "E"),
    ("SELECT * FROM cpu WHERE time >= '%s' AND time <= '%s'" % (TB2S, TB2S), False, "E"),
    ("SELECT * FROM cpu WHERE time > '%s' AND time <= '%s'" % (TBS, TB2S), False, "E"),
    ("SELECT * FROM cpu WHERE time = '2026-01-03T01:00:00'", False, "E"),
    ("SELECT * FROM cpu WHERE time = '2026-01-03 01:00:00Z'", False, "E"),
    ("SELECT * FROM cpu WHERE time < '2026-01-01'", False, "E"),
    ("SELECT * FROM cpu WHERE time >= '2026-01-02 13:07:00.5' AND time < '2026-01-02 13:09'",
     False, "E"),
    ("SELECT * FROM cpu WHERE time < '1970-01-01 00:00:00'", False, "E"),
    ("SELECT * FROM cpu WHERE time >= '1969-12-31 23:59:59.999999' AND time <= '1970-01-01'",
     False, "E"),
    ("SELECT * FROM cpu WHERE time > '1969-12-31 23:00:00' AND time < '1970-01-01 00:00:00.000001'",
     False, "E"),
    ("SELECT * FROM cpu WHERE host IN ('h1', 'zz', 'h3') AND time >= '%s'" % DAY1, False, "E"),
    ("SELECT * FROM cpu WHERE host IN ('zz', 'H1')", False, "E"),
    ("SELECT * FROM cpu WHERE region IN ('us', 'nope') AND host = 'h3'", False, "E"),
    ("SELECT * FROM cpu WHERE region = 'eu' AND time < '2026-01-01 02:00:00'", False, "E"),
    ("SELECT time, host, status FROM cpu WHERE status = '\u00fcber'", False, "E"),
    ("SELECT time, host, status FROM cpu WHERE status IN ('warn', 'crit', 'none')", False, "E"),
    ("SELECT time, host, usage FROM cpu WHERE usage > 90.0", False, "E"),
    ("SELECT time, host, temp FROM cpu WHERE temp = -2.5 AND host = 'h2'", False, "E"),
    ("SELECT time, host, cnt FROM cpu WHERE cnt >= 5 AND cnt < 7", False, "E"),
    ("SELECT time, host, load FROM cpu WHERE load > -0.5", False, "E"),
    ("SELECT * FROM cpu WHERE rack = 'r2' AND time >= '%s' ORDER BY time DESC LIMIT 4" % DAY1,
     True, "E"),
    ("SELECT host AS h, usage AS u, time AS t FROM cpu WHERE host = 'h4' ORDER BY time LIMIT 9",
     True, "E"),
    ("SELECT * FROM cpu WHERE host = 'h3' ORDER BY time LIMIT 10000000000", True, "E"),
    ("SELECT dc, host, time FROM cpu WHERE DC = 'x' AND host = 'h0'", False, "E"),
    # ---- LATEST
    ("SELECT DISTINCT ON (host) * FROM cpu ORDER BY host, time DESC", True, "N"),
    ("SELECT DISTINCT ON (host) host, time, usage, cnt FROM cpu ORDER BY host, time DESC",
     True, "N"),
    ("SELECT DISTINCT ON (HOST) time, Usage, host FROM cpu ORDER BY host ASC, time DESC",
     True, "E"),
    ("SELECT DISTINCT ON (region) region, time FROM cpu ORDER BY region, time DESC", True, "E"),
    ("SELECT DISTINCT ON (rack) rack, time FROM cpu ORDER BY rack, time DESC", True, "E"),
    ("SELECT DISTINCT ON (status) status, time FROM cpu ORDER BY status, time DESC", True, "E"),
    ("SELECT DISTINCT ON (host) host, time FROM cpu ORDER BY host, time DESC LIMIT 2", True, "E"),
    ("SELECT DISTINCT ON (host) * FROM cpu ORDER BY host, time DESC LIMIT 0", True, "E"),
    ("SELECT DISTINCT ON (dc) dc, time FROM cpu ORDER BY DC, time DESC", True, "E"),
    # ---- no native expectation: may or may not be native, must answer the same
    ("SELECT host AS hh, count(*) FROM cpu GROUP BY host ORDER BY hh DESC", True, "X"),
    ("SELECT host AS \"Who\", count(*) AS n FROM cpu GROUP BY host ORDER BY host", True, "X"),
    ("SELECT region AS host, count(*) FROM cpu GROUP BY region ORDER BY host", True, "X"),
    ("SELECT time_bucket(INTERVAL '1 hour', time) AS host, count(*) FROM cpu GROUP BY host",
     False, "X"),
    ("SELECT host, host, count(*) FROM cpu GROUP BY host ORDER BY host", True, "X"),
    ("SELECT count(*) FROM cpu GROUP BY host", False, "X"),
    ("SELECT time_bucket(INTERVAL '1 hour', time) AS a, time_bucket(INTERVAL '1 day', time) AS b, "
     "count(*) FROM cpu GROUP BY a, b ORDER BY a", True, "X"),
    ("SELECT time_bucket(INTERVAL '1 HOUR', time) AS b, count(*) FROM cpu GROUP BY b ORDER BY b",
     True, "X"),
    ("SELECT host, * FROM cpu WHERE host = 'h3' ORDER BY time LIMIT 3", True, "X"),
    ("SELECT usage AS time, host FROM cpu WHERE host = 'h2' ORDER BY time", True, "X"),
    ("SELECT * FROM nat.cpu WHERE host = 'h2' ORDER BY time DESC LIMIT 2", True, "X"),
    ("SELECT count(*) FROM cpu WHERE time > '2026-1-2'", True, "X"),
    ("SELECT count(*) FROM cpu WHERE cnt > 4.5000000000000000001", True, "X"),
    ("SELECT time FROM cpu WHERE host = 'h1' ORDER BY time DESC NULLS LAST LIMIT 3", True, "X"),
    ("SELECT count(*) FROM cpu WHERE ok = true AND host = 'h0'", True, "X"),
    ("SELECT count(*) FROM cpu WHERE ok", True, "X"),
    ("SELECT count(*) FROM cpu WHERE host IN ('h1', NULL)", True, "X"),
    ("SELECT time_bucket(INTERVAL '1 hour', time) AS time, count(*) FROM cpu GROUP BY 1 "
     "ORDER BY 1", True, "X"),
    ("SELECT DISTINCT ON (host) host, time FROM cpu WHERE region = 'eu' "
     "ORDER BY host, time DESC", True, "X"),
    ("SELECT count(*) FROM cpu WHERE host = 5", True, "X"),
    ("SELECT * FROM cpu WHERE nosuch = 'x'", True, "X"),
    ("SELECT count(*) FROM cpu WHERE ucnt > 5", True, "X"),
    ("SELECT min(ucnt), max(ucnt) FROM cpu", True, "X"),
    ("SELECT count(ok), count(time) FROM cpu", True, "X"),
    ("SELECT count(*) FROM cpu WHERE time >= TIMESTAMPTZ '%s+00:00'" % TBS, True, "X"),
    ("SELECT count(*) FROM cpu WHERE time < '2026-01-02 13:00:00.1234567'", True, "X"),
    ("SELECT count(*) FROM cpu WHERE usage > 123456789012345678901234.5", True, "X"),
    # ---- must fall back to DuckDB
    ("SELECT host, sum(cnt) FROM cpu GROUP BY host ORDER BY host", True, "F"),
    ("SELECT sum(big) FROM cpu", True, "F"),
    ("SELECT host, count(*) FROM cpu GROUP BY host HAVING count(*) > 100 ORDER BY host",
     True, "F"),
    ("SELECT * FROM cpu WHERE host = 'h1' ORDER BY time LIMIT 3 OFFSET 2", True, "F"),
    ("SELECT a.time, a.usage, b.usage FROM cpu a JOIN cpu b ON a.time = b.time "
     "WHERE a.host = 'h1' AND b.host = 'h2'", False, "F"),
    ("WITH x AS (SELECT * FROM cpu WHERE host = 'h1') SELECT count(*), max(usage) FROM x",
     True, "F"),
    ("SELECT count(DISTINCT host) FROM cpu", True, "F"),
    ("SELECT time_bucket(INTERVAL '1 month', time) AS b, count(*) FROM cpu GROUP BY b "
     "ORDER BY b", True, "F"),
    ("SELECT time_bucket(INTERVAL '1 hour', time, TIMESTAMP '2000-01-01 00:30:00') AS b, "
     "count(*) FROM cpu GROUP BY b ORDER BY b", True, "F"),
    ("SELECT date_trunc('hour', time) AS b, count(*) FROM cpu GROUP BY b ORDER BY b", True, "F"),
    ("SELECT time_bucket(INTERVAL '1 hour', time) AS b, host, count(*) FROM cpu GROUP BY ALL "
     "ORDER BY b, host", True, "F"),
    ("SELECT count(*) FROM cpu WHERE host = 'h1' OR host = 'h2'", True, "F"),
    ("SELECT count(*) FROM cpu WHERE region IS NULL", True, "F"),
    ("SELECT count(*) FROM cpu WHERE host <> 'h1'", True, "F"),
    ("SELECT count(*) FROM cpu WHERE cnt BETWEEN 1 AND 5", True, "F"),
    ("SELECT count(*) FROM cpu WHERE host LIKE 'h%'", True, "F"),
    ("SELECT count(*) FROM cpu WHERE time BETWEEN '%s' AND '%s'" % (TBS, TB2S), True, "F"),
    ("SELECT min(status), max(status) FROM cpu", True, "F"),
    ("SELECT min(time), max(time) FROM cpu", True, "F"),
    ("SELECT host, usage * 2 AS u2 FROM cpu WHERE host = 'h1' ORDER BY time", True, "F"),
    ("SELECT * FROM cpu WHERE host = 'h1' ORDER BY usage, time", True, "F"),
    ("SELECT * FROM cpu WHERE host = 'h1' ORDER BY time NULLS FIRST", True, "F"),
    ("SELECT DISTINCT host FROM cpu", False, "F"),
    ("SELECT DISTINCT ON (host) host, time FROM cpu ORDER BY host DESC, time DESC", True, "F"),
    ("SELECT avg(ok::INTEGER) FROM cpu", True, "F"),
    ("SELECT host, count(*) FROM cpu GROUP BY host ORDER BY count(*), host", True, "F"),
    ("SELECT * FROM cpu c WHERE c.host = 'h4' ORDER BY c.time", True, "F"),
    ("SELECT count(*) FILTER (WHERE host = 'h1'), count(*) FROM cpu", True, "F"),
    ("SELECT max(DISTINCT usage) FROM cpu", True, "F"),
    ("SELECT region, count(*) FROM cpu GROUP BY region ORDER BY region NULLS FIRST", True, "F"),
    ("SELECT time_bucket(INTERVAL 1 HOUR, time) AS b, count(*) FROM cpu GROUP BY b ORDER BY b",
     True, "F"),
]

# `fresh`: buffered rows only in phase 3 (no file, no catalog columns), flushed in 4
FRESH = [
    ("SELECT * FROM fresh", False, "E"),
    ("SELECT * FROM fresh ORDER BY time DESC LIMIT 7", True, "N"),
    ("SELECT k, count(*), sum(f), avg(v), min(v), max(f), count(s) FROM fresh GROUP BY k "
     "ORDER BY k", True, "N"),
    ("SELECT z, k, count(*) FROM fresh GROUP BY z, k ORDER BY z DESC, k DESC", True, "E"),
    ("SELECT time_bucket(INTERVAL '1 minute', time) AS b, avg(f) FROM fresh WHERE v > -20 "
     "GROUP BY b ORDER BY b", True, "E"),
    ("SELECT DISTINCT ON (k) * FROM fresh ORDER BY k, time DESC", True, "N"),
    ("SELECT DISTINCT ON (z) z, time FROM fresh ORDER BY z, time DESC", True, "E"),
    ("SELECT count(*), max(v) FROM fresh WHERE k IN ('a', 'c') AND f >= -4.75", True, "E"),
    ("SELECT count(*), max(v) FROM fresh WHERE s = 'nope'", True, "E"),
    ("SELECT sum(v) FROM fresh", True, "F"),
]
# queries about the buffered cpu rows (phase 2 on)
BUFFERED = [
    ("SELECT host, count(*), max(usage), min(big) FROM cpu WHERE time >= '2026-01-04' "
     "GROUP BY host ORDER BY host", True, "N"),
    ("SELECT * FROM cpu WHERE host = 'h9' ORDER BY time DESC LIMIT 4", True, "E"),
    ("SELECT time_bucket(INTERVAL '1 minute', time) AS b, host, max(usage), count(region) "
     "FROM cpu WHERE host IN ('h0', 'h9') AND time >= '2026-01-01 01:00:00' "
     "AND time < '2026-01-01 02:00:00' GROUP BY b, host ORDER BY b, host", True, "E"),
    ("SELECT DISTINCT ON (region) region, time FROM cpu ORDER BY region ASC, time DESC",
     True, "E"),
]
# queries about the column only buffered rows have at first (phase 3 on)
EXTRA = [
    ("SELECT count(extra), sum(extra), avg(extra), max(extra) FROM cpu", True, "E"),
    ("SELECT host, count(*), count(extra), max(usage) FROM cpu WHERE time >= '2026-01-04 01:00:00' "
     "GROUP BY host ORDER BY host", True, "E"),
    ("SELECT time, host, extra FROM cpu WHERE extra > 25000.5 ORDER BY time DESC", ("time",), "E"),
]


# ------------------------------------------------------------------ answers



def query(srv, sql):
    r = srv.post("/api/v1/query", json={"sql": sql}, headers={"x-arc-database": DB},
                 timeout=slow(60))
    assert r.status_code in (200, 400), (sql, r.status_code, r.text)
    return Answer(r)


def short(x, n=2000):
    s = json.dumps(x, default=str)
    return s if len(s) <= n else s[:n] + "...(%d chars)" % len(s)


def col_types(a):
    """Per column, the JSON types of its non-null values (a column of one type in
    both answers: the same SQL type, as far as JSON tells)."""
    types = [set() for _ in a.columns]
    for row in a.data:
        for i, v in enumerate(row):
            if v is not None:
                types[i].add(type(v).__name__)
    return [sorted(t) for t in types]


def sort_key(row):
    return json.dumps([float("%.10g" % v) if isinstance(v, float) else v for v in row],
                      sort_keys=True)


def close(x, y):
    if isinstance(x, float) and isinstance(y, float):
        if math.isnan(x) or math.isnan(y):
            return math.isnan(x) and math.isnan(y)
        return x == y or abs(x - y) <= REL * max(abs(x), abs(y))
    return type(x) is type(y) and x == y


def rows_equal(a, b):
    return len(a) == len(b) and all(len(r) == len(s) and all(close(x, y) for x, y in zip(r, s))
                                    for r, s in zip(a, b))


def diff(ref, a, order):
    """Why a differs from ref (None: equal)."""
    if ref.status != a.status:
        return "status %s vs %s (%s / %s)" % (a.status, ref.status, a.error, ref.error)
    if ref.status != 200:
        first = (lambda e: (e or "").splitlines()[0] if e else "")
        return None if first(ref.error) == first(a.error) else "error %r vs %r" % (
            first(a.error), first(ref.error))
    if a.columns != ref.columns:
        return "columns %s vs %s" % (a.columns, ref.columns)
    if order == "count":  # different rows: the types of their values may differ too
        return None if len(a.data) == len(ref.data) else "row count %d vs %d" % (
            len(a.data), len(ref.data))
    if col_types(a) != col_types(ref):
        return "column types %s vs %s" % (col_types(a), col_types(ref))
    if isinstance(order, tuple):
        idx = [ref.columns.index(c) for c in order]
        ka = [[r[i] for i in idx] for r in a.data]
        kr = [[r[i] for i in idx] for r in ref.data]
        if not rows_equal(ka, kr):
            return "order of %s differs" % (order,)
    ra, rr = a.data, ref.data
    if order is not True:
        ra, rr = sorted(ra, key=sort_key), sorted(rr, key=sort_key)
    return None if rows_equal(ra, rr) else "rows differ"


def run_phase(native, duck, battery, phase):
    """Every statement twice on both servers; returns (problems, native flags of the
    native server's second runs)."""
    problems, went = [], []
    for sql, order, kind in battery:
        n1, d1 = query(native, sql), query(duck, sql)
        n2, d2 = query(native, sql), query(duck, sql)
        for a, what in ((n1, "native run 1"), (d1, "duck run 1"), (d2, "duck run 2")):
            if what != "native run 1" or phase == "flushed":
                if a.native:
                    problems.append("[%s] %s answered natively: %s\n  %s"
                                    % (phase, what, sql, a.profile))
        why = diff(d2, n2, order)
        if why:
            problems.append("[%s] MISMATCH (%s): %s\n  native (%s): %s %s\n  duck   (%s): %s %s"
                            % (phase, why, sql, n2.profile, n2.columns,
                               short(n2.data if n2.status == 200 else n2.error),
                               d2.profile, d2.columns,
                               short(d2.data if d2.status == 200 else d2.error)))
        # the duck server answers the same twice (a sanity check of the oracle)
        why = diff(d2, d1, order)
        if why:
            problems.append("[%s] duck server unstable (%s): %s" % (phase, why, sql))
        if n2.status == 200 and n2.profile.get("files") != n2.profile.get("hot_files"):
            problems.append("[%s] not every file in memory: %s %s" % (phase, sql, n2.profile))
        if kind == "F" and n2.native:
            problems.append("[%s] must fall back to DuckDB but went native: %s" % (phase, sql))
        if kind == "N" and not n2.native:
            problems.append("[%s] must be native but was not: %s\n  %s"
                            % (phase, sql, n2.profile))
        went.append((sql, kind, n2.native))
    return problems, went


def relaxed(battery):
    """No native expectation: buffered rows with a column the catalog does not
    know yet make nx_exec leave every statement on that measurement to DuckDB."""
    return [(sql, order, "X") for sql, order, _ in battery]


# BIGINT vs DOUBLE literals around the values a double cannot hold: DuckDB's (see the
# module docstring); E = INTEGER literals, compared exactly, stay native
BIGDBL_ROWS = [("a", P53), ("b", P53 - 1), ("c", P53 - 2), ("d", -P53),
               ("e", 4 * 10 ** 18 + 1_000_003), ("f", 5), ("g", -(2 ** 63)), ("h", 2 ** 63 - 1)]
BIGDBL = [
    ("SELECT count(*) FROM bd WHERE v = 9.007199254740992e15", True, "F"),
    ("SELECT count(*) FROM bd WHERE v > 9.007199254740992e15", True, "F"),
    ("SELECT count(*) FROM bd WHERE v <= 9.007199254740992e15", True, "F"),
    ("SELECT k, v FROM bd WHERE v >= 9.007199254740992e15", False, "F"),
    ("SELECT k, v FROM bd WHERE v = -9.007199254740992e15", False, "F"),
    ("SELECT k, v FROM bd WHERE v = 4.000000000001e18", False, "F"),
    ("SELECT k, max(v) FROM bd WHERE v < 4.000000000001e18 GROUP BY k ORDER BY k", True, "F"),
    ("SELECT k, v FROM bd WHERE v > 9007199254740992.5", False, "F"),
    ("SELECT k, v FROM bd WHERE v < 1e19 AND v > -1e19", False, "F"),
    ("SELECT k, v FROM bd WHERE v = 5e0", False, "X"),  # DuckDB may fold 5e0 to an INTEGER
    ("SELECT k, v FROM bd WHERE v >= 9.2233720368547758e18", False, "F"),
    ("SELECT k, v FROM bd WHERE v > 90.5", False, "F"),
    ("SELECT k, v FROM bd WHERE v = 9007199254740993", False, "E"),
    ("SELECT k, v FROM bd WHERE v > 9007199254740990", False, "E"),
    ("SELECT k, v FROM bd WHERE v <= -9223372036854775808", False, "E"),
    ("SELECT count(*) FROM bd WHERE k = 'f' AND v = 5e0", True, "E"),
]


def test_bigint_vs_double_literal(arc_factory):
    native = arc_factory(*BASE, name="native")
    duck = arc_factory(*DUCK, name="duck")
    body = "".join("bd,k=%s v=%di %d\n" % (k, v, (T0 + i) * 1_000_000_000)
                   for i, (k, v) in enumerate(BIGDBL_ROWS))
    for srv in (native, duck):
        write_lp(srv, body, DB)
        flush(srv)
    problems, went = run_phase(native, duck, BIGDBL, "flushed")
    not_native = [sql for sql, kind, nat in went if kind == "E" and not nat]
    assert not problems, "\n\n".join(problems)
    assert not not_native, "not native: %s" % not_native


def test_native_matches_duckdb(arc_factory):
    started = time.monotonic()
    sqls = [s for s, _, _ in BATTERY + FRESH + BUFFERED + EXTRA]
    assert len(sqls) == len(set(sqls)), "duplicate statements in the battery"
    native = arc_factory(*BASE, name="native")
    duck = arc_factory(*DUCK, name="duck")
    servers = [native, duck]
    load(servers)
    # several files per hour, every one in memory
    a = query(native, "SELECT count(*) FROM cpu WHERE time >= '2026-01-02 13:00:00' "
                      "AND time < '2026-01-02 14:00:00'")
    assert a.status == 200 and a.profile["files"] == a.profile["hot_files"] == str(FLUSHES), \
        a.profile
    problems, went = [], {}

    def phase(name, battery):
        p, w = run_phase(native, duck, battery, name)
        problems.extend(p)
        went[name] = w

    # 1: every row in flushed files, all of them in memory
    phase("flushed", BATTERY)
    # 2: plus buffered rows (columns the files have)
    buffered_writes(servers)
    a = query(native, "SELECT count(*) FROM cpu")
    assert int(a.profile["buffered_rows"]) > 0, a.profile
    phase("buffered", BATTERY + BUFFERED)
    # 3: plus buffered rows with a new column, and a measurement without files
    new_column_writes(servers)
    phase("new columns", relaxed(BATTERY[::4] + BUFFERED + EXTRA + FRESH))
    # 4: all of it flushed: in memory again
    for srv in servers:
        flush(srv)
    phase("flushed again", BATTERY[1::3] + BUFFERED + EXTRA + FRESH)

    report = []
    for name, w in went.items():
        eligible = [(s, nat) for s, kind, nat in w if kind in ("N", "E")]
        if not eligible:
            continue
        n = sum(nat for _, nat in eligible)
        report.append("%s: %d/%d" % (name, n, len(eligible)))
        for sql, nat in eligible:
            if not nat:
                print("[%s] eligible, not native: %s" % (name, sql))
        if n < NATIVE_SHARE * len(eligible):
            problems.append("[%s] only %d of %d native-eligible statements went native; not:\n  %s"
                            % (name, n, len(eligible),
                               "\n  ".join(s for s, nat in eligible if not nat)))
    for name, w in went.items():
        for sql, kind, nat in w:
            if kind == "X" and nat:
                print("[%s] no expectation, native: %s" % (name, sql))
    print("\nnative executor: %d statements, %d runs compared; native-eligible runs that "
          "went native: %s; %.1f s"
          % (len(sqls), sum(len(w) for w in went.values()), ", ".join(report),
             time.monotonic() - started))
    assert not problems, "\n\n".join(problems)
