#!/usr/bin/env bash
# bench/peers.sh - the side-by-side benchmark of issue 7: this Arc against InfluxDB 1.x,
# QuestDB and the Go Arc, on this machine, one system at a time.
#
#   bench/peers.sh [--no-build] [--systems "arc influxdb questdb arc-go"]
#                  [--no-ingest] [--no-queries] [--into build/peers/<run>]
#
# --into DIR  re-run the given --systems into an earlier run's directory (their old
#             results there are replaced, the others kept) and rewrite the report.
#
# For each system that installs (bench/peers/systems.sh: pinned versions, 127.0.0.1,
# data under a throw-away run dir, servers stopped on exit):
#   1. ingest: for each shape the system accepts, a fresh server, loadgen (same bodies,
#      connections and batch sizes for everyone) with --pid for server CPU and peak RSS,
#      then flush and `du -sk` of the data dir;
#   2. queries: a fresh server, the identical TSBS cpu data set (driver.py gen: 100 hosts
#      x 24 h at 10 s) loaded over HTTP, flushed, measured on disk, then the TSBS query
#      set (queries/*.txt) run 1 cold + PEERS_RUNS warm times; answers compared across
#      systems in the report. Arc's set runs twice: as started (recent files in its
#      hot tier, the default) and after a restart with the hot tier off ("files only").
# Writes bench/results/<date>.md and .png (driver.py report) and keeps the raw JSON in
# build/peers/<date-time>/.
#
# Environment: PEERS_DURATION (60 s window), PEERS_WARMUP (10 s), PEERS_CONNECTIONS (8),
# PEERS_RUNS (20 warm runs per query), PEERS_SHAPES (all four), ARC_BIN / LOADGEN,
# PORT_INFLUX, PORT_INFLUX_RPC, PORT_QUESTDB, PORT_ARC_GO (default: a free port each).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

BUILD=1
INTO=
DO_INGEST=1
DO_QUERIES=1
SYSTEMS=(arc influxdb questdb arc-go)
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --no-ingest) DO_INGEST=0 ;;
    --no-queries) DO_QUERIES=0 ;;
    --systems) shift; read -r -a SYSTEMS <<<"$1" ;;
    --into) shift; INTO=$(cd "$1" && pwd) ;;
    -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "peers.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

DURATION=${PEERS_DURATION:-60}
WARMUP=${PEERS_WARMUP:-10}
CONNS=${PEERS_CONNECTIONS:-8}
RUNS=${PEERS_RUNS:-20}
read -r -a SHAPES <<<"${PEERS_SHAPES:-iot-columnar iot-lp row-msgpack tsbs-cpu}"
ARC_BIN=${ARC_BIN:-$ROOT/build/release/src/arc}
LOADGEN=${LOADGEN:-$ROOT/build/release/bench/loadgen}
PY=python3
[ -x "$ROOT/.venv/bin/python" ] && PY=$ROOT/.venv/bin/python
DATE=$(date -u +%Y-%m-%d)
PEERS_RUN=${INTO:-$ROOT/build/peers/$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$PEERS_RUN" "$ROOT/bench/results"
TOKEN=peers-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')

# shellcheck source=bench/peers/systems.sh
. "$ROOT/bench/peers/systems.sh"

cleanup() {
  sys_stop
  # data dirs are large; keep the logs and JSON
  find "$PEERS_RUN" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} + 2>/dev/null || true
}
trap cleanup EXIT INT TERM

if [ "$BUILD" = 1 ]; then
  make build
  if ! cmake --build "$ROOT/build/release" --target loadgen 2>/dev/null; then
    mkdir -p "$(dirname "$LOADGEN")"
    cc -std=c11 -O2 -g -D_GNU_SOURCE -Wall -Wextra -I"$ROOT/src" bench/loadgen.c \
      "$ROOT/build/release/src/core/libarc_core.a" -ldeflate -lzstd -lpthread -lm -o "$LOADGEN"
  fi
fi

LOADAVG=()
note_load() { LOADAVG+=("$1|$(cut -d' ' -f1-3 /proc/loadavg)"); log "$1 (load $(cut -d' ' -f1-3 /proc/loadavg))"; }

# du of allocated blocks, once the size has not changed for 3 readings 2 s apart (60 s cap).
settled_du_kb() {
  local prev=-1 same=0 cur
  for _ in $(seq 1 30); do
    cur=$(du -sk "$1" | cut -f1)
    if [ "$cur" = "$prev" ]; then same=$((same + 1)); [ $same -ge 2 ] && break; else same=0; fi
    prev=$cur
    sleep 2
  done
  echo "$cur"
}

# ---- install ---------------------------------------------------------------------------
declare -A SKIP=()
declare -A VERSION=()
RUNNABLE=()
for s in "${SYSTEMS[@]}"; do
  log "installing $s"
  if "install_$s"; then
    RUNNABLE+=("$s")
  else
    f=$PEERS_RUN/$s.install.txt
    # (registry addresses are replaced: the repository names no registry host)
    SKIP[$s]=$( { [ -f "$f" ] && grep -v '^\s*$' "$f" | tail -4 | tr '\n' ' ' |
                  sed -E 's#https?://[^ ]+#<registry URL>#g' ; } || echo "not installed")
    log "$s not installed: ${SKIP[$s]}"
  fi
done
VERSION[arc]="$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo "work tree") (release build, work tree)"
VERSION[influxdb]=$INFLUXDB_VERSION
VERSION[questdb]=$QUESTDB_VERSION
VERSION[arc-go]=$ARC_GO_COMMIT

DATASET=$PEERS_CACHE/tsbs-cpu-100x24h.lp
if [ "$DO_QUERIES" = 1 ] && [ ! -s "$DATASET" ]; then
  mkdir -p "$PEERS_CACHE"
  "$PY" bench/peers/driver.py gen "$DATASET" >&2
fi

# ---- run -------------------------------------------------------------------------------
# Drop earlier results of the systems and phases about to run (--into), keep the rest.
for f in ingest.jsonl dataset.jsonl versions.tsv skipped.tsv systems.txt loadavg.txt; do
  touch "$PEERS_RUN/$f"
  "$PY" - "$PEERS_RUN/$f" "$DO_INGEST" "$DO_QUERIES" "${SYSTEMS[@]}" <<'PYEOF'
import json, sys
path, ing, qry, systems = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1", set(sys.argv[4:])
def dropped(line):
    if path.endswith("ingest.jsonl"):
        return ing and json.loads(line).get("system") in systems
    if path.endswith("dataset.jsonl"):
        return qry and json.loads(line).get("system") in systems
    if path.endswith("loadavg.txt"):  # "ingest <sys> <shape>|..." or "queries <sys>|..."
        phase, sysname = line.split("|", 1)[0].split()[:2]
        if sysname == "arc-files":  # arc's second query run
            sysname = "arc"
        return sysname in systems and (ing if phase == "ingest" else qry)
    return line.split("\t", 1)[0].rstrip("\n").replace("-queries", "") in systems
keep = [l for l in open(path) if l.strip() and not dropped(l)]
open(path, "w").writelines(keep)
PYEOF
done
[ "$DO_QUERIES" = 1 ] && for s in "${SYSTEMS[@]}"; do rm -f "$PEERS_RUN/queries-$s.json"; done
[ "$DO_QUERIES" = 1 ] && [[ " ${SYSTEMS[*]} " == *" arc "* ]] && rm -f "$PEERS_RUN/queries-arc-files.json"
for s in "${RUNNABLE[@]}"; do
  if [ "$DO_INGEST" = 1 ]; then
    for sh in "${SHAPES[@]}"; do
      path=$(write_path "$s" "$sh")
      if [ "$path" = "-" ]; then
        echo "{\"system\":\"$s\",\"shape\":\"$sh\",\"skipped\":\"no such write format\"}" >>"$PEERS_RUN/ingest.jsonl"
        continue
      fi
      note_load "ingest $s $sh"
      if ! "start_$s" "$PEERS_RUN/$s-$sh"; then
        echo "{\"system\":\"$s\",\"shape\":\"$sh\",\"skipped\":\"server did not start\"}" >>"$PEERS_RUN/ingest.jsonl"
        sys_stop; continue
      fi
      db=bench_${sh//-/_}
      flags=(--url "$SYS_URL" --token "$TOKEN" --shape "$sh" --connections "$CONNS"
             --duration "$DURATION" --warmup "$WARMUP" --database "$db" --pid "$SYS_PID" --json)
      [ -n "$path" ] && flags+=(--path "${path//db=bench/db=$db}")
      [ "$s" = influxdb ] && curl -sf -XPOST "$SYS_URL/query" --data-urlencode "q=CREATE DATABASE $db" >/dev/null
      line=$("$LOADGEN" "${flags[@]}") || log "$s $sh: loadgen reported no acknowledged rows"
      [ -n "$line" ] || line='{}'
      "flush_$s" || log "$s: flush failed"
      kb=$(settled_du_kb "$SYS_DATA")
      sys_stop
      "$PY" -c 'import json,sys; r=json.loads(sys.argv[1]); r.update(system=sys.argv[2], shape=sys.argv[3], disk_bytes=int(sys.argv[4])*1024); print(json.dumps(r))' \
        "$line" "$s" "$sh" "$kb" >>"$PEERS_RUN/ingest.jsonl"
      log "$s $sh: $(tail -1 "$PEERS_RUN/ingest.jsonl" | "$PY" -c 'import json,sys; r=json.load(sys.stdin); print(r.get("rows_per_s"), "rows/s,", r.get("errors_overload"), "overload,", r.get("errors_other"), "other errors", r.get("first_error") or "")')"
    done
  fi
  if [ "$DO_QUERIES" = 1 ]; then
    note_load "queries $s"
    start_$s "$PEERS_RUN/$s-tsbs" || { SKIP[$s-queries]="server did not start"; sys_stop; continue; }
    case "$s" in
      arc) lpath="/api/v1/write?db=tsbs&precision=ns"; how="POST /api/v1/write/flush, then du -sk of the data dir (Parquet + SQLite catalog)" ;;
      arc-go) lpath="/api/v1/write/line-protocol?db=tsbs&precision=ns"; how="POST /api/v1/write/flush, then du -sk of the data dir" ;;
      influxdb) curl -sf -XPOST "$SYS_URL/query" --data-urlencode "q=CREATE DATABASE tsbs" >/dev/null
                lpath="/write?db=tsbs&precision=n"; how="du -sk of data+wal+meta once stable (the cache snapshots to TSM at its 25 MB default; the rest stays in the WAL)" ;;
      questdb) lpath="/write?precision=n"; how="WAL applied (wal_tables() writerTxn = sequencerTxn), size stable, then du -sk of db/ without wal*/ and txn_seq/" ;;
    esac
    ld=$("$PY" bench/peers/driver.py load "$SYS_URL" "$lpath" "$DATASET" --token "$TOKEN" --database tsbs) ||
      { SKIP[$s-queries]="loading the data set failed"; sys_stop; continue; }
    "flush_$s" || log "$s: flush failed"
    kb=$(settled_du_kb "$SYS_DATA")
    tkb=0
    if [ "$s" = questdb ]; then
      # committed table data only: without the WAL segments (wal<N>/), the sequencer
      # (txn_seq/) and the server's own config/log/public dirs
      tkb=$(du -sk --exclude='wal[0-9]*' --exclude=txn_seq "$SYS_DATA/db" | cut -f1)
    fi
    "$PY" -c 'import json,sys; r=json.loads(sys.argv[1]); t=int(sys.argv[5]); r.update(system=sys.argv[2], disk_kb=t or int(sys.argv[3]), disk_kb_total=int(sys.argv[3]), disk_kb_tables=t, how=sys.argv[4]); print(json.dumps(r))' \
      "$ld" "$s" "$kb" "$how" "$tkb" >>"$PEERS_RUN/dataset.jsonl"
    log "$s: data set loaded ($ld), $kb KiB on disk; queries"
    "$PY" bench/peers/driver.py query "$s" "$SYS_URL" "$PEERS_RUN/queries-$s.json" --token "$TOKEN" --runs "$RUNS" ||
      log "$s: query driver failed"
    sys_stop
    # and once more with the server stopped: what stays on disk (QuestDB trims its
    # preallocated column files on close; InfluxDB keeps its WAL until a snapshot)
    skb=$(du -sk "$SYS_DATA" | cut -f1)
    "$PY" - "$PEERS_RUN/dataset.jsonl" "$s" "$skb" <<'PYEOF'
import json, sys
path, system, kb = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = [json.loads(l) for l in open(path) if l.strip()]
for r in rows:
    if r["system"] == system:
        r["disk_kb_stopped"] = kb
open(path, "w").writelines(json.dumps(r) + "\n" for r in rows)
PYEOF
    if [ "$s" = arc ]; then
      # ours once more after a restart with the hot tier off: every file read from
      # Parquet (what a query of data written before the restart costs); reported
      # next to ours, never as a peer
      note_load "queries arc-files"
      if PEERS_ARC_ARGS="${PEERS_ARC_ARGS:-} --set query.hot_cache=false" start_arc "$PEERS_RUN/arc-tsbs"; then
        "$PY" bench/peers/driver.py query arc "$SYS_URL" "$PEERS_RUN/queries-arc-files.json" --token "$TOKEN" --runs "$RUNS" ||
          log "arc (files only): query driver failed"
      fi
      sys_stop
    fi
  fi
done

# ---- report ----------------------------------------------------------------------------
for s in "${SYSTEMS[@]}"; do printf '%s\t%s\n' "$s" "${VERSION[$s]}"; done >>"$PEERS_RUN/versions.tsv"
for k in "${!SKIP[@]}"; do printf '%s\t%s\n' "$k" "${SKIP[$k]}"; done >>"$PEERS_RUN/skipped.tsv"
[ ${#LOADAVG[@]} -eq 0 ] || printf '%s\n' "${LOADAVG[@]}" >>"$PEERS_RUN/loadavg.txt"
[ ${#RUNNABLE[@]} -eq 0 ] || printf '%s\n' "${RUNNABLE[@]}" >>"$PEERS_RUN/systems.txt"
"$PY" - "$PEERS_RUN" "$DATE" "$DURATION" "$WARMUP" "$CONNS" "$RUNS" <<'PYEOF'
import json, os, platform, sys
rd, date, dur, warm, conns, runs = sys.argv[1:7]
def lines(n):
    return [l.rstrip("\n") for l in open(os.path.join(rd, n)) if l.strip()]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
ram = next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal"))
meta = {"date": date, "duration": int(dur), "warmup": int(warm), "connections": int(conns),
        "runs": int(runs), "nproc": os.cpu_count(), "ram": "%.1f GiB" % (int(ram) / 2**20),
        "kernel": platform.release(), "cpu": cpu, "systems_run": sorted(set(lines("systems.txt"))),
        "loadavg": [l.split("|", 1) for l in lines("loadavg.txt")],
        "versions": dict(l.split("\t", 1) for l in lines("versions.tsv")),
        "skipped": dict(l.split("\t", 1) for l in lines("skipped.tsv"))}
json.dump(meta, open(os.path.join(rd, "meta.json"), "w"), indent=1)
PYEOF
"$PY" bench/peers/driver.py report "$PEERS_RUN" "$ROOT/bench/results/$DATE.md" "$ROOT/bench/results/$DATE.png"
log "wrote bench/results/$DATE.md and .png (raw data in $PEERS_RUN)"
