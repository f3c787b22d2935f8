#!/usr/bin/env python3
"""bench/peers/driver.py - the Python half of bench/peers.sh.

Subcommands:
  gen OUT [--hosts 100] [--hours 24] [--seed 1]
      Write the query data set: TSBS cpu-only line protocol (ten tags, ten int64 fields
      with the `i` suffix, ns times), every host every 10 s from 2016-01-01T00:00:00Z,
      values a clamped random walk in 0..100. Deterministic: the same file, byte for
      byte, for every system.
  load URL PATH FILE [--token T] [--database D] [--batch 10000]
      POST FILE in batches of whole lines to URL+PATH (one connection). Prints JSON
      {rows, seconds}. Exit 1 on any non-2xx answer.
  query SYSTEM URL OUT [--token T] [--runs 20]
      Run the query set of SYSTEM (arc, arc-go: queries/sql.txt; questdb:
      queries/questdb.txt; influxdb: queries/influxql.txt): one cold run, then --runs
      warm runs per query; times are client wall-clock per HTTP request (send to the
      last byte of the answer). Writes OUT (JSON): per query the times and the answer
      in canonical form (rows of [time in s, tags..., numbers...], sorted).
  selftest
      Check the answer normalisation and comparison (no servers needed).
  report RUNDIR OUT_MD OUT_PNG
      Read RUNDIR/{ingest.jsonl,dataset.jsonl,queries-*.json,meta.json}, compare the
      query answers across systems, write the Markdown tables and the chart.

Only 127.0.0.1 URLs are used; every HTTP call has a timeout.
"""
import argparse
import datetime as dt
import json
import math
import os
import random
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FIELDS = ["usage_user", "usage_system", "usage_idle", "usage_nice", "usage_iowait",
          "usage_irq", "usage_softirq", "usage_steal", "usage_guest", "usage_guest_nice"]
START_NS = 1451606400 * 10**9  # 2016-01-01T00:00:00Z, TSBS's default start
SYSTEMS = ["arc", "arc-go", "influxdb", "questdb"]
LABEL = {"arc": "Arc (C, us)", "arc-go": "Arc (Go)", "influxdb": "InfluxDB 1.x",
         "questdb": "QuestDB", "arc-files": "Arc (C), files only"}
# Our second query run: the same data dir after a restart with the hot tier off, so
# every file is read from Parquet. Reported next to ours, never counted as a peer.
OURS = ("arc", "arc-files")
SHAPES = ["iot-columnar", "iot-lp", "row-msgpack", "tsbs-cpu"]
QUERIES = ["single-groupby-1-1-1", "single-groupby-5-8-1", "cpu-max-all-8",
           "double-groupby-1", "high-cpu-1", "lastpoint", "groupby-orderby-limit"]
TIMEOUT_S = 600


def check_local(url):
    if not (url.startswith("http://127.0.0.1:") or url.startswith("http://localhost:")):
        sys.exit("driver: only http://127.0.0.1 URLs, got %s" % url)


# ---- gen ------------------------------------------------------------------------------

def host_tags(rng, h):
    regions = [("us-east-1", ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1e"]),
               ("us-west-1", ["us-west-1a", "us-west-1b"]),
               ("us-west-2", ["us-west-2a", "us-west-2b", "us-west-2c"]),
               ("eu-west-1", ["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
               ("eu-central-1", ["eu-central-1a", "eu-central-1b"]),
               ("ap-southeast-1", ["ap-southeast-1a", "ap-southeast-1b"]),
               ("ap-southeast-2", ["ap-southeast-2a", "ap-southeast-2b"]),
               ("ap-northeast-1", ["ap-northeast-1a", "ap-northeast-1c"]),
               ("sa-east-1", ["sa-east-1a", "sa-east-1b", "sa-east-1c"])]
    region, dcs = regions[rng.randrange(len(regions))]
    return (",hostname=host_%d,region=%s,datacenter=%s,rack=%d,os=%s,arch=%s,team=%s,"
            "service=%d,service_version=%d,service_environment=%s" %
            (h, region, rng.choice(dcs), rng.randrange(100),
             rng.choice(["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"]),
             rng.choice(["x64", "x86"]), rng.choice(["SF", "NYC", "LON", "CHI"]),
             rng.randrange(20), rng.randrange(2),
             rng.choice(["production", "staging", "test"])))


def cmd_gen(a):
    rng = random.Random(a.seed)
    tags = [host_tags(rng, h) for h in range(a.hosts)]
    state = [[rng.uniform(0, 100) for _ in FIELDS] for _ in range(a.hosts)]
    steps = a.hours * 360
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        for s in range(steps):
            ts = START_NS + s * 10 * 10**9
            lines = []
            for h in range(a.hosts):
                v = state[h]
                for i in range(len(FIELDS)):
                    v[i] = min(100.0, max(0.0, v[i] + rng.uniform(-5, 5)))
                lines.append("cpu%s %s %d\n" % (tags[h], ",".join(
                    "%s=%di" % (FIELDS[i], int(v[i])) for i in range(len(FIELDS))), ts))
            f.write("".join(lines))
    os.replace(tmp, a.out)
    print(json.dumps({"rows": steps * a.hosts, "file": a.out}))


# ---- load -----------------------------------------------------------------------------

def cmd_load(a):
    import requests
    check_local(a.url)
    hdr = {"Content-Type": "text/plain"}
    if a.token:
        hdr["Authorization"] = "Bearer " + a.token
    if a.database:
        hdr["x-arc-database"] = a.database
    s = requests.Session()
    rows = 0
    t0 = time.monotonic()
    with open(a.file, "rb") as f:
        while True:
            lines = [ln for ln in (f.readline() for _ in range(a.batch)) if ln]
            if not lines:
                break
            r = s.post(a.url + a.path, data=b"".join(lines), headers=hdr, timeout=TIMEOUT_S)
            if r.status_code // 100 != 2:
                sys.exit("driver load: %s answered %d: %s" % (a.path, r.status_code, r.text[:300]))
            rows += len(lines)
    print(json.dumps({"rows": rows, "seconds": round(time.monotonic() - t0, 3)}))


# ---- query ----------------------------------------------------------------------------

def read_queries(system):
    name = {"arc": "sql.txt", "arc-go": "sql.txt", "questdb": "questdb.txt",
            "influxdb": "influxql.txt"}[system]
    qs, cur = {}, None
    with open(os.path.join(HERE, "queries", name)) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("#") or not line.strip():
                continue
            if line.startswith("-- "):
                cur = line[3:].strip()
                qs[cur] = []
            elif cur:
                qs[cur].append(line)
    return {k: " ".join(v) for k, v in qs.items()}


def norm(v):
    """One value in canonical form: ISO timestamps -> epoch seconds, numbers -> float."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str) and len(v) >= 19 and v[4] == "-" and v[10] in "T ":
        t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.timezone.utc)
        return t.timestamp()
    return v


def canon_rows(rows):
    out = [[norm(v) for v in r] for r in rows]
    out.sort(key=lambda r: [(0, x) if isinstance(x, float) else (1, str(x)) for x in r])
    return out


def run_sql(session, system, url, token, q):
    """Returns (rows) for arc / arc-go / questdb; raises on an error answer."""
    if system == "questdb":
        r = session.get(url + "/exec", params={"query": q}, timeout=TIMEOUT_S)
        body = r.content
        if r.status_code != 200:
            raise RuntimeError("HTTP %d: %s" % (r.status_code, body[:300]))
        return body, lambda b: json.loads(b)["dataset"]
    hdr = {"Authorization": "Bearer " + token, "x-arc-database": "tsbs",
           "Content-Type": "application/json"}
    r = session.post(url + "/api/v1/query", data=json.dumps({"sql": q}), headers=hdr,
                     timeout=TIMEOUT_S)
    body = r.content
    if r.status_code != 200:
        raise RuntimeError("HTTP %d: %s" % (r.status_code, body[:300]))
    session.last_profile = r.headers.get("x-arc-profile")
    return body, lambda b: json.loads(b)["data"]


def influx_rows(b):
    d = json.loads(b)
    res = d["results"][0]
    if "error" in res:
        raise RuntimeError(res["error"])
    rows = []
    for s in res.get("series", []):
        tags = [s["tags"][k] for k in sorted(s.get("tags", {}))]
        for v in s["values"]:
            rows.append([v[0] / 1e9] + tags + v[1:])
    return rows


def run_influx(session, url, q):
    r = session.get(url + "/query", params={"db": "tsbs", "q": q, "epoch": "ns"},
                    timeout=TIMEOUT_S)
    if r.status_code != 200:
        raise RuntimeError("HTTP %d: %s" % (r.status_code, r.content[:300]))
    return r.content, influx_rows


def cmd_query(a):
    import requests
    check_local(a.url)
    s = requests.Session()
    out = {"system": a.system, "runs": a.runs, "queries": {}}
    for name, q in read_queries(a.system).items():
        rec = {"sql": q, "cold_ms": None, "warm_ms": [], "rows": None, "error": None}
        try:
            for i in range(a.runs + 1):
                t0 = time.perf_counter()
                if a.system == "influxdb":
                    body, parse = run_influx(s, a.url, q)
                else:
                    body, parse = run_sql(s, a.system, a.url, a.token, q)
                ms = (time.perf_counter() - t0) * 1000
                if i == 0:
                    rec["cold_ms"] = ms
                    rec["rows"] = canon_rows(parse(body))
                else:
                    rec["warm_ms"].append(ms)
            rec["profile"] = getattr(s, "last_profile", None)
        except Exception as e:  # reported in the table, never silently dropped
            rec["error"] = str(e)[:400]
        out["queries"][name] = rec
        print("  %-24s %s" % (name, rec["error"] or "median %.2f ms, %d rows" % (
            statistics.median(rec["warm_ms"]), len(rec["rows"]))), file=sys.stderr)
    with open(a.out, "w") as f:
        json.dump(out, f)


# ---- report ---------------------------------------------------------------------------

def same(x, y):
    if isinstance(x, float) and isinstance(y, float):
        return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9)
    return x == y


def compare(ref, got):
    """None when equal, else a short reason."""
    if len(ref) != len(got):
        return "%d rows vs %d" % (len(got), len(ref))
    for i, (r, g) in enumerate(zip(ref, got)):
        if len(r) != len(g):
            return "row %d: %d columns vs %d" % (i, len(g), len(r))
        for j, (x, y) in enumerate(zip(r, g)):
            if not same(x, y):
                return "row %d col %d: %r vs %r" % (i, j, y, x)
    return None


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    k = (len(xs) - 1) * p
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def f(v, fmt="%.2f"):
    return "-" if v is None else fmt % v


def human(n):
    if n is None:
        return "-"
    for div, suf in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if n >= div:
            return "%.2f%s" % (n / div, suf)
    return "%.0f" % n


def load_jsonl(path):
    if not os.path.exists(path):
        return []
    return [json.loads(ln) for ln in open(path) if ln.strip()]


def cmd_report(a):
    rd = a.rundir
    meta = json.load(open(os.path.join(rd, "meta.json")))
    ingest = load_jsonl(os.path.join(rd, "ingest.jsonl"))
    dataset = {d["system"]: d for d in load_jsonl(os.path.join(rd, "dataset.jsonl"))}
    queries = {}
    for s in SYSTEMS + ["arc-files"]:
        p = os.path.join(rd, "queries-%s.json" % s)
        if os.path.exists(p):
            queries[s] = json.load(open(p))["queries"]
    present = [s for s in SYSTEMS if s in meta.get("systems_run", [])]
    L = []
    w = L.append
    w("# Arc side by side with InfluxDB 1.x, QuestDB and the Go Arc — %s" % meta["date"])
    w("")
    w("Produced by `bench/peers.sh` (issue 7). Machine: %s; %s CPUs; %s RAM; kernel %s. "
      "Every system ran alone in turn, loadgen on the same cores." %
      (meta["cpu"], meta["nproc"], meta["ram"], meta["kernel"]))
    w("Ingest: %s s window after %s s warm-up, %s connections, loadgen pool bodies, "
      "a fresh server and data dir per shape. Queries: %s warm runs after one cold run, "
      "client wall-clock per HTTP request." %
      (meta["duration"], meta["warmup"], meta["connections"], meta["runs"]))
    w("")
    w("**Load average at the start of each phase** (shared machine; other engineers' "
      "builds ran concurrently, so treat differences under ~30 % as noise):")
    w("")
    for ph, la in meta.get("loadavg", []):
        w("- %s: %s" % (ph, la))
    w("")
    if meta.get("skipped"):
        w("**Systems not run:**")
        w("")
        for s, why in meta["skipped"].items():
            w("- %s: %s" % (LABEL.get(s, s), why))
        w("")
    versions = meta.get("versions", {})
    w("Versions: " + "; ".join("%s %s" % (LABEL.get(k, k), v) for k, v in versions.items()))
    w("")

    # ---- ingest
    w("## Ingest")
    w("")
    w("| shape | system | rows/s | p50 ms | p99 ms | errors (429/503, other, conn) | "
      "server CPU s / M rows | server peak RSS MB | disk bytes / acked row |")
    w("|---|---|---|---|---|---|---|---|---|")
    by = {}
    for r in ingest:
        by[(r["shape"], r["system"])] = r
    verdict = []
    for sh in SHAPES:
        best_peer = None
        for s in SYSTEMS:
            r = by.get((sh, s))
            if not r:
                continue
            if r.get("skipped"):
                w("| %s | %s | not accepted (%s) | | | | | | |" % (sh, LABEL[s], r["skipped"]))
                continue
            lat = r.get("latency_ms") or {}
            bpr = (r["disk_bytes"] / r["rows_acked_total"]) if r.get("disk_bytes") and r.get("rows_acked_total") else None
            w("| %s | %s | %s | %s | %s | %s, %s, %s | %s | %s | %s |" % (
                sh, LABEL[s], human(r.get("rows_per_s")), f(lat.get("p50")), f(lat.get("p99")),
                r.get("errors_overload", "-"), r.get("errors_other", "-"),
                r.get("errors_connection", "-"),
                f(r.get("server_cpu_s_per_million_rows"), "%.3f"),
                f(r.get("server_peak_rss_mb"), "%.0f"), f(bpr, "%.1f")))
            if s != "arc" and r.get("rows_per_s") and (best_peer is None or r["rows_per_s"] > best_peer[1]):
                best_peer = (s, r["rows_per_s"])
        ours = by.get((sh, "arc"), {}).get("rows_per_s")
        if ours and best_peer:
            ratio = ours / best_peer[1]
            verdict.append("- %s: us %s rows/s vs best peer %s %s rows/s = **%.2f×** (target ≥ 1.5×: %s)" % (
                sh, human(ours), LABEL[best_peer[0]], human(best_peer[1]), ratio,
                "met" if ratio >= 1.5 else "MISSED by %.0f %%" % (100 * (1.5 - ratio) / 1.5)))
        elif ours:
            verdict.append("- %s: us %s rows/s; no peer accepted this shape in this run" % (sh, human(ours)))
    w("")
    w("Disk bytes / acked row: `du -sk` (allocated blocks) of the data dir after the run, "
      "divided by all acknowledged rows (warm-up included). Pool bodies repeat their "
      "times, so InfluxDB (which keeps one point per series and time) stores fewer rows "
      "than it acknowledged: use the query data set's bytes per row below for storage.")
    w("")
    w("**Ingest target (≥ 1.5 × best peer):**")
    w("")
    L.extend(verdict or ["- no comparable results"])
    w("")

    # ---- storage on the identical data set
    w("## Storage: the query data set (identical rows in every system)")
    w("")
    w("| system | rows | load s | rows/s (1 connection, 10 000-row batches) | disk KiB running | bytes / row running | disk KiB stopped | bytes / row stopped | how measured (running) |")
    w("|---|---|---|---|---|---|---|---|---|")
    for d in dataset.values():  # QuestDB: the committed tables, without WAL segments
        if d.get("disk_kb_tables"):
            d["how"] += "; whole root incl. WAL segments and config: %d KiB = %.1f bytes/row" % (
                d["disk_kb_total"], d["disk_kb_total"] * 1024 / d["rows"])
    for s in present:
        d = dataset.get(s)
        if not d:
            continue
        st = d.get("disk_kb_stopped")
        w("| %s | %d | %.1f | %s | %d | %.1f | %s | %s | %s |" % (
            LABEL[s], d["rows"], d["seconds"], human(d["rows"] / d["seconds"]) if d["seconds"] else "-",
            d["disk_kb"], d["disk_kb"] * 1024 / d["rows"], f(st, "%d"),
            f(st * 1024 / d["rows"] if st else None, "%.1f"), d["how"]))
    w("")
    w("\"Stopped\": `du -sk` of the whole data dir after the server exited (SIGTERM) "
      "once the queries ran; the targets below use the smaller of the two per system, "
      "so a peer's preallocation or WAL never counts against it.")
    ours = dataset.get("arc")
    if ours:
        w("")
        for s in ("influxdb", "questdb"):
            if s in dataset:
                def best(d):
                    return min(v for v in (d["disk_kb"], d.get("disk_kb_stopped")) if v) / d["rows"]
                mine = best(ours)
                theirs = best(dataset[s])
                w("- bytes/row vs %s: %.2f × (target ≤ 1: %s)" % (
                    LABEL[s], mine / theirs, "met" if mine <= theirs else "MISSED by %.0f %%" % (100 * (mine / theirs - 1))))
    w("")

    # ---- queries
    w("## TSBS queries (100 hosts × 24 h at 10 s = 864 000 rows of tsbs-cpu)")
    w("")
    w("Median / p95 of the warm runs in ms; ✗ marks an answer that differs from the "
      "reference system's (the first system in the row with an answer; floats compared "
      "with relative tolerance 1e-9). \"%s\": the same server restarted with the hot "
      "tier off (`query.hot_cache=false`), so every file is read from Parquet, as after a "
      "restart; shown for reference, not a peer." % LABEL["arc-files"])
    w("")
    qsys = [s for s in ["arc", "arc-files"] + SYSTEMS[1:] if s in queries]
    w("| query | " + " | ".join(LABEL[s] for s in qsys) + " | us / best peer |")
    w("|---|" + "---|" * len(qsys) + "---|")
    mismatches = []
    qverdict = []
    under_067 = 0
    nq = 0
    for qn in QUERIES:
        ref_sys, ref = None, None
        for s in qsys:
            rec = queries[s].get(qn)
            if rec and not rec["error"]:
                ref_sys, ref = s, rec["rows"]
                break
        cells = []
        meds = {}
        for s in qsys:
            rec = queries[s].get(qn)
            if not rec:
                cells.append("-")
                continue
            if rec["error"]:
                cells.append("ERROR: %s" % rec["error"][:80].replace("|", "/"))
                mismatches.append("%s %s: error %s" % (LABEL[s], qn, rec["error"][:200]))
                continue
            med = statistics.median(rec["warm_ms"])
            meds[s] = med
            why = compare(ref, rec["rows"]) if s != ref_sys else None
            mark = ""
            if why:
                mark = " ✗"
                mismatches.append("%s %s differs from %s: %s" % (LABEL[s], qn, LABEL[ref_sys], why))
            cells.append("%.2f / %.2f (%d rows)%s" % (med, pct(rec["warm_ms"], 0.95), len(rec["rows"]), mark))
        peer = [meds[s] for s in meds if s not in OURS]
        ratio = meds["arc"] / min(peer) if "arc" in meds and peer else None
        if ratio is not None:
            nq += 1
            under_067 += ratio <= 0.67
            if ratio > 1:
                qverdict.append("- %s: %.2f × the best peer's median (target ≤ 1: MISSED by %.0f %%)" % (qn, ratio, 100 * (ratio - 1)))
        w("| %s | %s | %s |" % (qn, " | ".join(cells), f(ratio, "%.2f×")))
    w("")
    if mismatches:
        w("**ANSWER MISMATCHES — these rows are not comparable:**")
        w("")
        for m in mismatches:
            w("- " + m)
    else:
        w("All systems returned the same numbers for every query.")
    w("")
    w("**Query targets:** %d of %d queries at ≤ 0.67 × the best peer (target: at least half)." % (under_067, nq))
    L.extend(qverdict or ["- every query at or under the best peer's median"])
    prof = [(qn, queries["arc"][qn].get("profile")) for qn in QUERIES
            if "arc" in queries and qn in queries["arc"] and queries["arc"][qn].get("profile")]
    if prof:
        w("")
        w("Our `x-arc-profile` per query (files opened, buffered rows, server ms): " +
          "; ".join("%s `%s`" % p for p in prof) + ".")
    w("")
    w("Chart: `%s`." % os.path.basename(a.out_png))
    with open(a.out_md, "w") as fo:
        fo.write("\n".join(L) + "\n")

    # ---- chart
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("driver: matplotlib missing (pip install -r tests/requirements.txt); no chart", file=sys.stderr)
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(15, 5.5))
    isys = [s for s in SYSTEMS if any((sh, s) in by and by[(sh, s)].get("rows_per_s") for sh in SHAPES)]
    width = 0.8 / max(1, len(isys))
    for i, s in enumerate(isys):
        ys = [(by.get((sh, s)) or {}).get("rows_per_s") or 0 for sh in SHAPES]
        ax1.bar([x + i * width for x in range(len(SHAPES))], [y / 1e6 for y in ys], width, label=LABEL[s])
    ax1.set_xticks([x + width * (len(isys) - 1) / 2 for x in range(len(SHAPES))])
    ax1.set_xticklabels(SHAPES)
    ax1.set_ylabel("million rows/s (higher is better)")
    ax1.set_title("Ingest")
    ax1.legend()
    width = 0.8 / max(1, len(qsys))
    for i, s in enumerate(qsys):
        ys = []
        for qn in QUERIES:
            rec = queries[s].get(qn)
            ys.append(statistics.median(rec["warm_ms"]) if rec and not rec["error"] else 0)
        ax2.bar([x + i * width for x in range(len(QUERIES))], ys, width, label=LABEL[s])
    ax2.set_xticks([x + width * (len(qsys) - 1) / 2 for x in range(len(QUERIES))])
    ax2.set_xticklabels(QUERIES, rotation=30, ha="right")
    ax2.set_yscale("log")
    ax2.set_ylabel("median ms, log scale (lower is better)")
    ax2.set_title("TSBS queries")
    ax2.legend()
    fig.suptitle("Arc vs peers, %s (%s, %s CPUs)" % (meta["date"], meta["cpu"], meta["nproc"]))
    fig.tight_layout()
    fig.savefig(a.out_png, dpi=100)


def cmd_selftest(_a):
    """The normalisation and comparison the mismatch check relies on."""
    # the same answer as QuestDB/Arc JSON (ISO times, ints) and InfluxDB (ns epoch + tags)
    sql = canon_rows([["2016-01-01T00:01:00.000000Z", "host_2", 7],
                      ["2016-01-01T00:00:00.000000Z", "host_1", 5.5]])
    influx = canon_rows(influx_rows(json.dumps({"results": [{"series": [
        {"tags": {"hostname": "host_1"}, "columns": ["time", "v"],
         "values": [[1451606400 * 10**9, 5.5]]},
        {"tags": {"hostname": "host_2"}, "columns": ["time", "v"],
         "values": [[1451606460 * 10**9, 7]]}]}]})))
    assert sql == [[1451606400.0, "host_1", 5.5], [1451606460.0, "host_2", 7.0]], sql
    assert compare(sql, influx) is None
    assert compare(sql, [[1451606400.0, "host_1", 5.5 + 1e-12], [1451606460.0, "host_2", 7.0]]) is None
    assert compare(sql, [[1451606400.0, "host_1", 5.6], [1451606460.0, "host_2", 7.0]]) == \
        "row 0 col 2: 5.6 vs 5.5"
    assert compare(sql, sql[:1]) == "1 rows vs 2"
    assert compare(sql, [[1451606400.0, "host_9", 5.5], [1451606460.0, "host_2", 7.0]]) == \
        "row 0 col 1: 'host_9' vs 'host_1'"
    try:
        influx_rows(json.dumps({"results": [{"error": "boom"}]}))
        raise AssertionError("an InfluxDB error answer must raise")
    except RuntimeError as e:
        assert str(e) == "boom"
    assert abs(pct([1, 2, 3, 4, 5], 0.95) - 4.8) < 1e-9
    for system in SYSTEMS:
        assert list(read_queries(system)) == QUERIES, system
    print("driver selftest: 1 passed, 0 failed")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("out")
    g.add_argument("--hosts", type=int, default=100)
    g.add_argument("--hours", type=int, default=24)
    g.add_argument("--seed", type=int, default=1)
    ld = sub.add_parser("load")
    ld.add_argument("url")
    ld.add_argument("path")
    ld.add_argument("file")
    ld.add_argument("--token")
    ld.add_argument("--database")
    ld.add_argument("--batch", type=int, default=10000)
    q = sub.add_parser("query")
    q.add_argument("system", choices=SYSTEMS)
    q.add_argument("url")
    q.add_argument("out")
    q.add_argument("--token", default="")
    q.add_argument("--runs", type=int, default=20)
    sub.add_parser("selftest")
    r = sub.add_parser("report")
    r.add_argument("rundir")
    r.add_argument("out_md")
    r.add_argument("out_png")
    a = p.parse_args()
    {"gen": cmd_gen, "load": cmd_load, "query": cmd_query, "report": cmd_report,
     "selftest": cmd_selftest}[a.cmd](a)


if __name__ == "__main__":
    main()
