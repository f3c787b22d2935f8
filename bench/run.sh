#!/usr/bin/env bash
# bench/run.sh - build the release arc and loadgen, start a throw-away server on
# loopback, run each write shape against it, print a table, stop the server.
#
#   bench/run.sh [--verify] [--fresh] [--no-build] [shape ...]
#
# --verify   send unique rows (loadgen --unique), then POST /write/flush and count
#            the stored rows per measurement (query API if it exists, else the
#            Parquet files under the data dir via pyarrow from .venv) and compare
#            with the rows loadgen saw acknowledged. Exit status 1 on a mismatch.
# --fresh    a new server (and data dir) for each shape, so each shape starts with
#            empty buffers and its peak RSS is its own; default: one server for all.
# --no-build use existing binaries (ARC_BIN, LOADGEN or build/release).
# Shapes: iot-columnar iot-lp row-msgpack tsbs-cpu (default: all four).
#
# Environment: BENCH_DURATION (60), BENCH_WARMUP (10), BENCH_CONNECTIONS (8),
# BENCH_CONNECTIONS_<shape> (per shape, '-' as '_', e.g. BENCH_CONNECTIONS_tsbs_cpu=3;
# default BENCH_CONNECTIONS), BENCH_EXTRA (extra loadgen flags, e.g. "--zstd"), BENCH_KEEP=1 keeps the data
# dir, ARC_BIN / LOADGEN override the binaries, BENCH_OUT the results directory
# (default build/bench-results: results.jsonl, one loadgen JSON object per shape).
# Each database is bench_<shape> so shapes never mix schemas in one measurement.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

VERIFY=0
FRESH=0
BUILD=1
SHAPES=()
for a in "$@"; do
  case "$a" in
    --verify) VERIFY=1 ;;
    --no-build) BUILD=0 ;;
    --fresh) FRESH=1 ;;
    iot-columnar|iot-lp|row-msgpack|tsbs-cpu) SHAPES+=("$a") ;;
    -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done
[ ${#SHAPES[@]} -eq 0 ] && SHAPES=(iot-columnar iot-lp row-msgpack tsbs-cpu)

DURATION=${BENCH_DURATION:-60}
WARMUP=${BENCH_WARMUP:-10}
CONNS=${BENCH_CONNECTIONS:-8}
EXTRA=${BENCH_EXTRA:-}
BUILD_DIR=$ROOT/build/release
ARC_BIN=${ARC_BIN:-$BUILD_DIR/src/arc}
LOADGEN=${LOADGEN:-$BUILD_DIR/bench/loadgen}
PY=python3
[ -x "$ROOT/.venv/bin/python" ] && PY=$ROOT/.venv/bin/python

if [ "$BUILD" = 1 ]; then
  make build
  # bench/ is a CMake subdirectory once wired into the top-level CMakeLists.txt;
  # until then compile loadgen directly against the release core library.
  if ! cmake --build "$BUILD_DIR" --target loadgen 2>/dev/null; then
    mkdir -p "$(dirname "$LOADGEN")"
    cc -std=c11 -O2 -g -D_GNU_SOURCE -Wall -Wextra -I"$ROOT/src" bench/loadgen.c \
      "$BUILD_DIR/src/core/libarc_core.a" -ldeflate -lzstd -lpthread -lm -o "$LOADGEN"
  fi
fi
[ -x "$ARC_BIN" ] || { echo "run.sh: no arc binary at $ARC_BIN" >&2; exit 1; }
[ -x "$LOADGEN" ] || { echo "run.sh: no loadgen at $LOADGEN" >&2; exit 1; }

DATA=$(mktemp -d /tmp/arc-bench.XXXXXX)
OUT=${BENCH_OUT:-$ROOT/build/bench-results}
mkdir -p "$OUT"
TOKEN=bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
SERVER_PID=
URL=
NSERVER=0

stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "run.sh: arc did not stop within 30 s of SIGTERM; killing it" >&2
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
}

cleanup() {
  stop_server
  if [ "${BENCH_KEEP:-0}" = 1 ]; then
    echo "data kept in $DATA"
  else
    rm -rf "$DATA"
  fi
}
trap cleanup EXIT INT TERM

# Start arc in $DATA/data<N>; port 0: the server picks a free port and names it in
# its ready line.
start_server() {
  NSERVER=$((NSERVER + 1))
  SERVER_DATA=$DATA/data$NSERVER
  LOG=$DATA/arc$NSERVER.log
  ARC_AUTH_BOOTSTRAP_TOKEN=$TOKEN "$ARC_BIN" serve --no-config --port 0 \
    --data-dir "$SERVER_DATA" --host 127.0.0.1 >"$LOG" 2>&1 &
  SERVER_PID=$!
  local port=
  for _ in $(seq 1 300); do
    port=$(grep -o 'msg="arc ready".* port=[0-9]*' "$LOG" 2>/dev/null | grep -o 'port=[0-9]*' | head -1 | cut -d= -f2 || true)
    [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "run.sh: arc exited:" >&2; cat "$LOG" >&2; exit 1; }
    port=
    sleep 0.1
  done
  [ -n "$port" ] || { echo "run.sh: arc not ready after 30 s" >&2; cat "$LOG" >&2; exit 1; }
  URL=http://127.0.0.1:$port
  echo "arc pid $SERVER_PID on $URL, data in $SERVER_DATA" >&2
}

# Flush, then compare stored rows with acknowledged rows for one loadgen result
# (count(*) and count(DISTINCT time): query API if it exists, else pyarrow on the
# Parquet files of the data dir).
verify_one() {
  local flush
  flush=$(curl -s -XPOST -H "Authorization: Bearer $TOKEN" "$URL/write/flush" -w ' %{http_code}')
  case "$flush" in *" 200") ;; *) echo "run.sh: POST /write/flush answered: $flush" >&2 ;; esac
  "$PY" - "$1" "$URL" "$TOKEN" "$SERVER_DATA" >>"$OUT/verify.txt" <<'EOF' || VERIFY_BAD=1
import glob, json, os, sys, urllib.error, urllib.request
line, url, token, data = sys.argv[1:5]
bad = 0

def query_count(db, meas):
    """count(*) and count(DISTINCT time) through the query API; None if it is missing."""
    sql = 'SELECT count(*), count(DISTINCT time) FROM "%s"' % meas
    req = urllib.request.Request(url + "/api/v1/query", data=json.dumps({"sql": sql}).encode(),
                                 headers={"Authorization": "Bearer " + token,
                                          "x-arc-database": db,
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            d = json.load(r)
        return int(d["data"][0][0]), int(d["data"][0][1])
    except urllib.error.HTTPError as e:
        if e.code == 404 and "no such endpoint" in e.read().decode(errors="replace"):
            return None
        raise

def parquet_count(db, meas):
    """Rows and distinct times in the Parquet files on disk (after the flush)."""
    import pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq
    files = sorted(glob.glob(os.path.join(data, db, meas, "**", "*.parquet"), recursive=True))
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    distinct = None
    if rows <= 50_000_000:
        times = pa.chunked_array([pq.read_table(f, columns=["time"]).column(0).combine_chunks()
                                  for f in files], pa.timestamp("us"))
        distinct = len(pc.unique(times))
    return rows, distinct

r = json.loads(line)
db = r["database"]
for meas, acked in r["acked_by_measurement"].items():
    got = query_count(db, meas)
    how = "query API"
    if got is None:
        got, how = parquet_count(db, meas), "parquet files"
    stored, distinct = got
    ok = stored == acked and (distinct is None or distinct == stored)
    bad += not ok
    print("%-13s %-5s acknowledged %12d  stored %12d  distinct times %12s  (%s)  %s" %
          (r["shape"], meas, acked, stored, "-" if distinct is None else distinct, how,
           "OK" if ok else "MISMATCH"))
sys.exit(1 if bad else 0)
EOF
}

RESULTS=$OUT/results.jsonl
: >"$RESULTS"
: >"$OUT/verify.txt"
VERIFY_BAD=0
echo "${DURATION}s window, ${WARMUP}s warm-up, $CONNS connections, results in $OUT" >&2
for s in "${SHAPES[@]}"; do
  if [ -z "$SERVER_PID" ] || [ "$FRESH" = 1 ]; then
    stop_server
    start_server
  fi
  db=bench_${s//-/_}
  conns_var=BENCH_CONNECTIONS_${s//-/_}
  conns=${!conns_var:-$CONNS}
  flags=(--url "$URL" --token "$TOKEN" --shape "$s" --connections "$conns"
         --duration "$DURATION" --warmup "$WARMUP" --database "$db" --pid "$SERVER_PID" --json)
  [ "$VERIFY" = 1 ] && flags+=(--unique)
  # shellcheck disable=SC2206
  [ -n "$EXTRA" ] && flags+=($EXTRA)
  echo "== $s ($conns connections)" >&2
  line=$("$LOADGEN" "${flags[@]}") || echo "run.sh: $s: loadgen reported no acknowledged rows" >&2
  echo "$line" >>"$RESULTS"
  if [ "$VERIFY" = 1 ] && [ -n "$line" ]; then verify_one "$line"; fi
done
stop_server

"$PY" - "$RESULTS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
hdr = ("shape", "conns", "rows/s", "req/s", "MB/s", "p50 ms", "p95", "p99", "p99.9", "429/503",
       "other err", "conn err", "srv CPU s/Mrow", "srv peak MB", "loadgen CPU%")
fmt = "%-13s %5s %11s %8s %8s %8s %8s %8s %8s %8s %9s %8s %14s %11s %12s"
print(fmt % hdr)
def n(v, f):
    return "-" if v is None else f % v
for r in rows:
    l = r["latency_ms"]
    print(fmt % (r["shape"], r.get("connections", "-"), n(r["rows_per_s"], "%.0f"), n(r["requests_per_s"], "%.1f"),
                 n(r["mb_per_s"], "%.1f"), n(l["p50"], "%.2f"), n(l["p95"], "%.2f"),
                 n(l["p99"], "%.2f"), n(l["p999"], "%.2f"), r["errors_overload"],
                 r["errors_other"], r["errors_connection"],
                 n(r["server_cpu_s_per_million_rows"], "%.3f"), n(r["server_peak_rss_mb"], "%.0f"),
                 n(100 * r["client_cpu_s"] / r["window_s"] if r["window_s"] else None, "%.0f")))
    if r.get("first_error"):
        print("    first error: %s" % r["first_error"][:150])
EOF

if [ "$VERIFY" = 1 ]; then
  echo "== verify: POST /write/flush, then stored rows vs acknowledged rows"
  cat "$OUT/verify.txt"
  exit "$VERIFY_BAD"
fi
