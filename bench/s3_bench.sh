#!/usr/bin/env bash
# bench/s3_bench.sh - local disk vs MinIO in one run: iot-columnar ingest
# (bench/loadgen) and a few queries, cold (first run after a restart with the
# cache deleted) and warm (cache filled), against a release build.
#
#   bench/s3_bench.sh [--no-build] [--append]
#
# --append   add the result table (date, command) to bench/README.md, section "S3".
# Environment: BENCH_DURATION (30), BENCH_WARMUP (5), BENCH_CONNECTIONS (8),
# BENCH_RUNS (10 warm runs per query), BENCH_QUERY_ROWS (4 000 000: the query data set,
# identical on both backends), ARC_BIN / LOADGEN (default: release build in
# build/h-s3-rel), MINIO_BIN (default: scripts/minio.sh builds/reuses it).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=1
APPEND=0
for a in "$@"; do
  case "$a" in
    --no-build) BUILD=0 ;;
    --append) APPEND=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "s3_bench.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done
DURATION=${BENCH_DURATION:-30}
WARMUP=${BENCH_WARMUP:-5}
CONNS=${BENCH_CONNECTIONS:-8}
RUNS=${BENCH_RUNS:-10}
QROWS=${BENCH_QUERY_ROWS:-4000000}
BUILD_DIR=$ROOT/build/h-s3-rel
ARC_BIN=${ARC_BIN:-$BUILD_DIR/src/arc}
LOADGEN=${LOADGEN:-$BUILD_DIR/bench/loadgen}
PY=python3
[ -x "$ROOT/.venv/bin/python" ] && PY=$ROOT/.venv/bin/python

if [ "$BUILD" = 1 ]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD_DIR" --target arc loadgen >/dev/null
fi
MINIO_BIN=${MINIO_BIN:-$("$ROOT/scripts/minio.sh")}

DATA=$(mktemp -d /tmp/arc-s3-bench.XXXXXX)
TOKEN=bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
MINIO_USER=bench$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
MINIO_PASS=$(od -An -N16 -tx8 /dev/urandom | tr -d ' \n')
MINIO_PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MINIO_PID=
ARC_PID=
URL=

stop_pid() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() { stop_pid "$ARC_PID"; stop_pid "$MINIO_PID"; rm -rf "$DATA"; }
trap cleanup EXIT INT TERM

MINIO_ROOT_USER=$MINIO_USER MINIO_ROOT_PASSWORD=$MINIO_PASS MINIO_BROWSER=off \
  "$MINIO_BIN" server --quiet --address "127.0.0.1:$MINIO_PORT" \
  --console-address "127.0.0.1:0" "$DATA/minio" >"$DATA/minio.log" 2>&1 &
MINIO_PID=$!
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$MINIO_PORT/minio/health/live" >/dev/null && break
  sleep 0.1
done

# start_arc NAME ARGS...: server in $DATA/NAME, sets ARC_PID and URL
start_arc() {
  local name=$1; shift
  ARC_AUTH_BOOTSTRAP_TOKEN=$TOKEN "$ARC_BIN" serve --no-config --port 0 --host 127.0.0.1 \
    --data-dir "$DATA/$name" --set query_cache.enabled=false "$@" >>"$DATA/$name.log" 2>&1 &
  ARC_PID=$!
  local port=
  for _ in $(seq 1 300); do
    port=$(grep -o 'msg="arc ready".* port=[0-9]*' "$DATA/$name.log" 2>/dev/null |
           tail -1 | grep -o 'port=[0-9]*' | cut -d= -f2 || true)
    [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break
    kill -0 "$ARC_PID" 2>/dev/null || { cat "$DATA/$name.log" >&2; exit 1; }
    port=
    sleep 0.1
  done
  URL=http://127.0.0.1:$port
}

QUERIES=(
  "SELECT count(*) FROM cpu"
  "SELECT host, avg(value), max(cpu_user) FROM cpu GROUP BY host ORDER BY host LIMIT 10"
  "SELECT time_bucket(INTERVAL '1 second', time) AS b, avg(cpu_idle) FROM cpu GROUP BY b ORDER BY b"
)

# run_queries: prints "cold_ms warm_median_ms" per query (cold = first run)
run_queries() {
  "$PY" - "$URL" "$TOKEN" "$RUNS" "${QUERIES[@]}" <<'PYEOF'
import json, statistics, sys, time, urllib.request
url, token, runs, qs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
def run(sql):
    req = urllib.request.Request(url + "/api/v1/query", data=json.dumps({"sql": sql}).encode(),
        headers={"Authorization": "Bearer " + token, "x-arc-database": "qbench",
                 "Content-Type": "application/json"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as r:
        d = json.load(r)
    assert d["success"], d
    return (time.perf_counter() - t) * 1000, d["data"]
for q in qs:
    cold, data = run(q)
    warm = statistics.median(run(q)[0] for _ in range(runs))
    print("%.1f %.1f %s" % (cold, warm, json.dumps(data[0][0]) if data else "-"))
PYEOF
}

declare -A RATE COLD WARM ROWS FILES
for be in local minio; do
  args=()
  if [ "$be" = minio ]; then
    args=(--set storage.backend=minio --set "storage.minio.endpoint=http://127.0.0.1:$MINIO_PORT"
          --set "storage.minio.access_key=$MINIO_USER" --set "storage.minio.secret_key=$MINIO_PASS"
          --set storage.minio.bucket=bench)
  fi
  start_arc "$be" "${args[@]}"
  json=$("$LOADGEN" --url "$URL" --token "$TOKEN" --shape iot-columnar --connections "$CONNS" \
         --duration "$DURATION" --warmup "$WARMUP" --database bench --pid "$ARC_PID" --json)
  RATE[$be]=$(echo "$json" | "$PY" -c 'import json,sys; print(int(json.load(sys.stdin)["rows_per_s"]))')
  # the query data set is identical on both backends: one connection, a fixed seed and
  # a fixed row count (the timed ingest above stores different amounts per backend)
  "$LOADGEN" --url "$URL" --token "$TOKEN" --shape iot-columnar --connections 1 \
    --duration 600 --warmup 0 --database qbench --seed 7 --total-rows "$QROWS" --json >/dev/null
  curl -s -XPOST -H "Authorization: Bearer $TOKEN" "$URL/api/v1/write/flush" >/dev/null
  stop_pid "$ARC_PID"
  # cold: restart with an empty cache (remote) / dropped page cache is not possible here
  rm -rf "$DATA/$be/cache"
  start_arc "$be" "${args[@]}"
  mapfile -t res < <(run_queries)
  stop_pid "$ARC_PID"; ARC_PID=
  for i in "${!res[@]}"; do
    read -r c w first <<<"${res[$i]}"
    COLD[$be,$i]=$c
    WARM[$be,$i]=$w
    [ "$i" = 0 ] && ROWS[$be]=$first
  done
  FILES[$be]=$(find "$DATA/$be" -path '*qbench*' -name '*.parquet' -not -path '*/spool/*' | wc -l)
done

table=$(
  echo "| measure | local | minio | minio / local |"
  echo "|---|---|---|---|"
  printf "| ingest iot-columnar, rows/s (%s conns, %ss) | %s | %s | %s |\n" "$CONNS" "$DURATION" \
    "${RATE[local]}" "${RATE[minio]}" "$(awk -v a="${RATE[minio]}" -v b="${RATE[local]}" 'BEGIN{printf "%.0f %%", 100*a/b}')"
  printf "| query data set: rows in qbench.cpu (files) | %s (%s) | %s (%s) | |\n" \
    "${ROWS[local]}" "${FILES[local]}" "${ROWS[minio]}" "${FILES[minio]}"
  for i in "${!QUERIES[@]}"; do
    printf "| \`%s\` cold ms | %s | %s | |\n" "${QUERIES[$i]}" "${COLD[local,$i]}" "${COLD[minio,$i]}"
    printf "| same, warm median of %s, ms | %s | %s | %s |\n" "$RUNS" "${WARM[local,$i]}" "${WARM[minio,$i]}" \
      "$(awk -v a="${WARM[minio,$i]}" -v b="${WARM[local,$i]}" 'BEGIN{printf "%.0f %%", 100*a/b}')"
  done
)
echo "$table"
if [ "$APPEND" = 1 ]; then
  grep -q '^## S3' bench/README.md || printf '\n## S3\n\nLocal disk vs MinIO (same machine, loopback) in one run of `bench/s3_bench.sh`.\nTargets: ingest on MinIO >= 80 %% of local; warm-cache queries within 10 %% of local.\n' >> bench/README.md
  {
    printf '\n%s, `%s` (BENCH_DURATION=%s, %s CPUs, MinIO %s):\n\n' "$(date -u +%Y-%m-%d)" \
      "bench/s3_bench.sh $*" "$DURATION" "$(nproc)" "$(cat "$("$ROOT/scripts/minio.sh")".version 2>/dev/null || echo '?')"
    echo "$table"
  } >> bench/README.md
fi
