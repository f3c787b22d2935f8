#!/usr/bin/env bash
# bench/s3_bench.sh - local disk vs MinIO in one run: iot-columnar ingest
# (bench/loadgen) and the TSBS query set of bench/peers (100 hosts x 24 h of
# tsbs-cpu, the same line-protocol file loaded into both backends with the same
# flush points), cold (first run after a restart with the cache deleted) and warm
# (median of BENCH_RUNS), against a release build.
#
#   bench/s3_bench.sh [--no-build] [--append]
#
# --append   add the result table (date, command) to bench/README.md, section "S3".
# Environment: BENCH_DURATION (30), BENCH_WARMUP (5), BENCH_CONNECTIONS (8),
# BENCH_RUNS (20 warm runs per query), ARC_BIN / LOADGEN (default: release build in
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
RUNS=${BENCH_RUNS:-20}
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
  --console-address "127.0.0.1:0" "$DATA/minio-server" >"$DATA/minio-server.log" 2>&1 &
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

# The query data set: TSBS cpu-only, 100 hosts x 24 h at 10 s (864 000 rows), one file
# for both backends. It is loaded with the age-based flush pushed out of the way, so
# both backends cut files at the same rows (size-based flushes + the final flush):
# the comparison is then about reading the same files from disk or through the cache.
TSBS_LP=$DATA/tsbs.lp
"$PY" bench/peers/driver.py gen "$TSBS_LP" >/dev/null

declare -A RATE FILES ARGS
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
  stop_pid "$ARC_PID"
  start_arc "$be" "${args[@]}" --set ingestion.buffer_age_seconds=3600
  "$PY" bench/peers/driver.py load "$URL" /api/v1/write "$TSBS_LP" --token "$TOKEN" \
    --database tsbs >/dev/null
  curl -s -XPOST -H "Authorization: Bearer $TOKEN" "$URL/api/v1/write/flush" >/dev/null
  stop_pid "$ARC_PID"; ARC_PID=
  # local: the data dir; minio: the objects in MinIO's own directory (one dir per object)
  FILES[$be]=$(find "$DATA/$([ "$be" = minio ] && echo minio-server || echo local)" \
               -path '*tsbs*' -name '*.parquet' -not -path '*/spool/*' -not -path '*/cache/*' | wc -l)
  ARGS[$be]="${args[*]}"
done

# Queries: both servers up at once, restarted with the remote cache deleted (cold);
# each query's warm runs alternate between them so both see the same machine load.
rm -rf "$DATA/minio/cache"
start_arc local; PID_LOCAL=$ARC_PID; URL_LOCAL=$URL
# shellcheck disable=SC2086
start_arc minio ${ARGS[minio]}; PID_MINIO=$ARC_PID; URL_MINIO=$URL
QTABLE=$("$PY" - "$URL_LOCAL" "$URL_MINIO" "$TOKEN" "$RUNS" <<'PYEOF'
import json, statistics, sys, time
sys.path.insert(0, "bench/peers")
import driver, requests
urls, token, runs = sys.argv[1:3], sys.argv[3], int(sys.argv[4])
s = requests.Session()
def run(url, sql):
    t = time.perf_counter()
    body, parse = driver.run_sql(s, "arc", url, token, sql)
    ms = (time.perf_counter() - t) * 1000
    return ms, driver.canon_rows(parse(body))
def count(url):
    return int(run(url, "SELECT count(*) FROM cpu")[1][0][0])
print("| rows in tsbs.cpu | %s | %s | |" % (count(urls[0]), count(urls[1])))
for name, sql in driver.read_queries("arc").items():
    cold = [run(u, sql) for u in urls]
    warm = ([], [])
    for _ in range(runs):
        for i, u in enumerate(urls):
            warm[i].append(run(u, sql)[0])
    same = "" if cold[0][1] == cold[1][1] else " **answers differ**"
    a, b = statistics.median(warm[0]), statistics.median(warm[1])
    print("| %s cold ms | %.1f | %.1f | |" % (name, cold[0][0], cold[1][0]))
    print("| %s warm median ms | %.2f | %.2f | %.0f %%%s |" % (name, a, b, 100 * b / a, same))
PYEOF
)
stop_pid "$PID_LOCAL"; stop_pid "$PID_MINIO"; ARC_PID=

table=$(
  echo "| measure | local | minio | minio / local |"
  echo "|---|---|---|---|"
  printf "| ingest iot-columnar, rows/s (%s conns, %ss) | %s | %s | %s |\n" "$CONNS" "$DURATION" \
    "${RATE[local]}" "${RATE[minio]}" "$(awk -v a="${RATE[minio]}" -v b="${RATE[local]}" 'BEGIN{printf "%.0f %%", 100*a/b}')"
  printf "| query data set: tsbs.cpu files | %s | %s | |\n" "${FILES[local]}" "${FILES[minio]}"
  echo "$QTABLE"
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
