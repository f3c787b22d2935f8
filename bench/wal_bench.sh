#!/usr/bin/env bash
# bench/wal_bench.sh - what the write-ahead log costs: the same ingest load with
# the WAL off, async, fdatasync and fsync, in one run, one table.
#
#   bench/wal_bench.sh [--no-build] [shape ...]
#
# For every shape (default: iot-columnar tsbs-cpu) and every mode (off async
# fdatasync fsync) a fresh `arc serve` starts in its own data dir (WAL in
# data_dir/wal, on the same disk), loadgen runs warm-up + timed window against
# it, the server is stopped. Fresh servers keep the modes independent: no mode
# inherits another's full buffers or background flushes. Prints rows/s, p50 and
# p99 request latency, 429/503 answers, WAL syncs per mode and the 1-minute load
# average when the cell started (the machine may be shared: compare ratios of
# one run), then the fdatasync/off ratio per shape (issue 5 target: >= 0.85 for
# iot-columnar).
#
# --no-build  use existing binaries (ARC_BIN, LOADGEN, default build/release)
# Environment: BENCH_DURATION (20 s window), BENCH_WARMUP (5 s),
# BENCH_CONNECTIONS (8), BENCH_MODES ("off async fdatasync fsync"), BENCH_EXTRA
# (extra loadgen flags), BENCH_SERVER_ARGS (extra `arc serve` flags, e.g.
# "--set ingestion.buffer_size=100000"), BENCH_OUT (results dir, default
# build/bench-results: wal.jsonl, one loadgen JSON object per cell plus mode,
# WAL counters and load average), BENCH_KEEP=1 keeps the data dirs.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

BUILD=1
SHAPES=()
for a in "$@"; do
  case "$a" in
    --no-build) BUILD=0 ;;
    iot-columnar|iot-lp|row-msgpack|tsbs-cpu) SHAPES+=("$a") ;;
    -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "wal_bench.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done
[ ${#SHAPES[@]} -eq 0 ] && SHAPES=(iot-columnar tsbs-cpu)

DURATION=${BENCH_DURATION:-20}
WARMUP=${BENCH_WARMUP:-5}
CONNS=${BENCH_CONNECTIONS:-8}
MODES=(${BENCH_MODES:-off async fdatasync fsync})
EXTRA=${BENCH_EXTRA:-}
SERVER_ARGS=${BENCH_SERVER_ARGS:-}
BUILD_DIR=$ROOT/build/release
ARC_BIN=${ARC_BIN:-$BUILD_DIR/src/arc}
LOADGEN=${LOADGEN:-$BUILD_DIR/bench/loadgen}
PY=python3
[ -x "$ROOT/.venv/bin/python" ] && PY=$ROOT/.venv/bin/python

for m in "${MODES[@]}"; do
  case "$m" in off|async|fdatasync|fsync) ;;
    *) echo "wal_bench.sh: unknown mode $m in BENCH_MODES" >&2; exit 2 ;; esac
done

if [ "$BUILD" = 1 ]; then
  make build
  # same fallback as run.sh while bench/ is not a CMake subdirectory
  if ! cmake --build "$BUILD_DIR" --target loadgen 2>/dev/null; then
    mkdir -p "$(dirname "$LOADGEN")"
    cc -std=c11 -O2 -g -D_GNU_SOURCE -Wall -Wextra -I"$ROOT/src" bench/loadgen.c \
      "$BUILD_DIR/src/core/libarc_core.a" -ldeflate -lzstd -lpthread -lm -o "$LOADGEN"
  fi
fi
[ -x "$ARC_BIN" ] || { echo "wal_bench.sh: no arc binary at $ARC_BIN" >&2; exit 1; }
[ -x "$LOADGEN" ] || { echo "wal_bench.sh: no loadgen at $LOADGEN" >&2; exit 1; }

DATA=$(mktemp -d /tmp/arc-walbench.XXXXXX)
OUT=${BENCH_OUT:-$ROOT/build/bench-results}
mkdir -p "$OUT"
RESULTS=$OUT/wal.jsonl
: >"$RESULTS"
TOKEN=bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
SERVER_PID=
URL=
N=0

stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 600); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "wal_bench.sh: arc did not stop within 60 s of SIGTERM; killing it" >&2
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
}

cleanup() {
  stop_server
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "data kept in $DATA" >&2; else rm -rf "$DATA"; fi
}
trap cleanup EXIT INT TERM

# start_server MODE: a fresh server in $DATA/<n>-MODE
start_server() {
  local mode=$1 port=
  local -a wal=(--set wal.enabled=false)
  [ "$mode" != off ] && wal=(--set wal.enabled=true --set "wal.sync_mode=$mode")
  N=$((N + 1))
  SERVER_DATA=$DATA/$N-$mode
  LOG=$DATA/$N-$mode.log
  # shellcheck disable=SC2086
  ARC_AUTH_BOOTSTRAP_TOKEN=$TOKEN "$ARC_BIN" serve --no-config --port 0 --host 127.0.0.1 \
    --data-dir "$SERVER_DATA" "${wal[@]}" $SERVER_ARGS >"$LOG" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    port=$(grep -o 'msg="arc ready".* port=[0-9]*' "$LOG" 2>/dev/null | grep -o 'port=[0-9]*' | head -1 | cut -d= -f2 || true)
    [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "wal_bench.sh: arc exited:" >&2; cat "$LOG" >&2; exit 1; }
    port=
    sleep 0.1
  done
  [ -n "$port" ] || { echo "wal_bench.sh: arc not ready after 30 s" >&2; cat "$LOG" >&2; exit 1; }
  URL=http://127.0.0.1:$port
}

# WAL syncs, appends, segments recycled and bytes zero-filled so far (0s with the WAL off)
wal_counts() {
  curl -s -H "Authorization: Bearer $TOKEN" "$URL/api/wal/status" |
    "$PY" -c 'import json,sys; j=json.load(sys.stdin); print(j.get("syncs",0), j.get("appends",0), j.get("recycled",0), j.get("prealloc_bytes",0))'
}

echo "WAL modes: ${MODES[*]}; shapes: ${SHAPES[*]}; ${WARMUP}s warm-up + ${DURATION}s window, $CONNS connections; server args: ${SERVER_ARGS:-none}; load average $(cut -d' ' -f1-3 /proc/loadavg); results in $RESULTS" >&2
for s in "${SHAPES[@]}"; do
  for mode in "${MODES[@]}"; do
    load1=$(cut -d' ' -f1 /proc/loadavg)
    start_server "$mode"
    db=bench_${s//-/_}
    flags=(--url "$URL" --token "$TOKEN" --shape "$s" --connections "$CONNS"
           --duration "$DURATION" --warmup "$WARMUP" --database "$db" --pid "$SERVER_PID" --json)
    # shellcheck disable=SC2206
    [ -n "$EXTRA" ] && flags+=($EXTRA)
    echo "== $s, WAL $mode (pid $SERVER_PID)" >&2
    line=$("$LOADGEN" "${flags[@]}") || echo "wal_bench.sh: $s/$mode: loadgen reported no acknowledged rows" >&2
    syncs=0 appends=0 recycled=0 zeroed=0
    read -r syncs appends recycled zeroed < <(wal_counts || true) || true
    syncs=${syncs:-0} appends=${appends:-0} recycled=${recycled:-0} zeroed=${zeroed:-0}
    stop_server
    [ -n "$line" ] && echo "{\"mode\":\"$mode\",\"connections\":$CONNS,\"load1\":$load1,\"wal_syncs\":$syncs,\"wal_appends\":$appends,\"wal_recycled\":$recycled,\"wal_prealloc_bytes\":$zeroed,\"loadgen\":$line}" >>"$RESULTS"
  done
done

"$PY" - "$RESULTS" <<'EOF'
import json, sys
cells = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
fmt = "%-13s %-10s %11s %9s %8s %8s %8s %9s %13s %6s"
print(fmt % ("shape", "WAL", "rows/s", "req/s", "p50 ms", "p99 ms", "429/503", "other err",
             "appends/sync", "load"))
base = {}
for c in cells:
    r, l = c["loadgen"], c["loadgen"]["latency_ms"]
    per_sync = "%.1f" % (c["wal_appends"] / c["wal_syncs"]) if c["wal_syncs"] else "-"
    print(fmt % (r["shape"], c["mode"], "%.0f" % r["rows_per_s"], "%.1f" % r["requests_per_s"],
                 "%.2f" % l["p50"], "%.2f" % l["p99"], r["errors_overload"],
                 r["errors_other"] + r["errors_connection"], per_sync, c.get("load1", "-")))
    if r.get("first_error"):
        print("    first error: %s" % r["first_error"][:150])
    base.setdefault(r["shape"], {})[c["mode"]] = r["rows_per_s"]
print()
for shape, m in base.items():
    if m.get("off"):
        print("%-13s " % shape + "  ".join("%s/off %.2f" % (k, v / m["off"])
                                           for k, v in m.items() if k != "off"))
EOF
