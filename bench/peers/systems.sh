# bench/peers/systems.sh - install, start, stop and flush each system of the peer
# benchmark. Sourced by bench/peers.sh; every function takes its state from the
# variables below and sets SYS_PID / SYS_URL / SYS_DATA for the running system.
#
# Systems: arc (this repository's C server), arc-go (the Go Arc), influxdb (Debian's
# influxdb 1.x package), questdb (the Maven Central jar on Java 17). Each one listens on
# 127.0.0.1 only, keeps its data in a fresh directory under $PEERS_RUN, and is stopped
# (SIGTERM, then SIGKILL after 30 s) by sys_stop, which the caller's EXIT trap runs.
#
# Pins: influxdb 1.6.7~rc0-1+b13 (Debian bookworm: the only 1.x package Debian ships),
# org.questdb:questdb 9.0.3, Go Arc at commit 088400753e0aab3c6e2557710360972952bd9814.
# Peer settings are each system's documented defaults; only addresses, data paths and
# phone-home reporting are changed.

INFLUXDB_VERSION=${INFLUXDB_VERSION:-1.6.7~rc0-1+b13}
QUESTDB_VERSION=${QUESTDB_VERSION:-9.0.3}
ARC_GO_COMMIT=${ARC_GO_COMMIT:-088400753e0aab3c6e2557710360972952bd9814}
PEERS_CACHE=${PEERS_CACHE:-$ROOT/.cache/peers}
# Ports: set PORT_* to fix them; by default each start asks the kernel for a free one.
PORT_INFLUX=${PORT_INFLUX:-}
PORT_INFLUX_RPC=${PORT_INFLUX_RPC:-}
PORT_QUESTDB=${PORT_QUESTDB:-}
PORT_ARC_GO=${PORT_ARC_GO:-}
SYS_PID=
SYS_URL=
SYS_DATA=
SYS_LOG=

log() { echo "peers: $*" >&2; }

# Wait until URL answers 2xx (or 30 s pass, or the server dies). $1 url.
wait_http() {
  for _ in $(seq 1 600); do
    curl -sf -o /dev/null "$1" && return 0
    kill -0 "$SYS_PID" 2>/dev/null || { log "server exited:"; tail -20 "$SYS_LOG" >&2; return 1; }
    sleep 0.1
  done
  log "no answer from $1 after 60 s"; tail -20 "$SYS_LOG" >&2
  return 1
}

# A port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close).
pick_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Fail early when a fixed port is taken by someone else.
port_free() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    log "port $1 on 127.0.0.1 is in use; set PORT_* to another port"; return 1
  fi
  return 0
}

sys_stop() {
  if [ -n "$SYS_PID" ] && kill -0 "$SYS_PID" 2>/dev/null; then
    kill -TERM "$SYS_PID" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$SYS_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$SYS_PID" 2>/dev/null && { log "pid $SYS_PID ignored SIGTERM for 30 s; killing"; kill -KILL "$SYS_PID" 2>/dev/null || true; }
    wait "$SYS_PID" 2>/dev/null || true
  fi
  SYS_PID=
}

# ---- install (idempotent; returns 1 with the reason in $PEERS_RUN/<sys>.install.txt) --

install_arc() {
  [ -x "$ARC_BIN" ] && [ -x "$LOADGEN" ]
}

install_influxdb() {
  local have
  have=$(dpkg-query -W -f='${Version}' influxdb 2>/dev/null || true)
  if [ "$have" != "$INFLUXDB_VERSION" ]; then
    local cmd=(apt-get install -y --no-install-recommends "influxdb=$INFLUXDB_VERSION")
    [ "$(id -u)" = 0 ] || cmd=(sudo "${cmd[@]}")
    # The package's postinst starts a system service on :8086; we stop it again and use
    # our own instances on 127.0.0.1.
    if ! "${cmd[@]}" >"$PEERS_RUN/influxdb.install.txt" 2>&1; then
      echo "command: ${cmd[*]}" >>"$PEERS_RUN/influxdb.install.txt"; return 1
    fi
    (systemctl stop influxdb || service influxdb stop) >/dev/null 2>&1 || true
  fi
  command -v influxd >/dev/null
}

install_questdb() {
  local jar=$PEERS_CACHE/questdb-$QUESTDB_VERSION.jar
  [ -s "$jar" ] && return 0
  mkdir -p "$PEERS_CACHE"
  local cmd=(mvn -q dependency:copy "-Dartifact=org.questdb:questdb:$QUESTDB_VERSION"
             "-DoutputDirectory=$PEERS_CACHE" -Dmdep.overWriteReleases=true)
  if ! "${cmd[@]}" >"$PEERS_RUN/questdb.install.txt" 2>&1; then
    echo "command: ${cmd[*]}" >>"$PEERS_RUN/questdb.install.txt"; return 1
  fi
  [ -s "$jar" ]
}

install_arc-go() {
  local bin=$PEERS_CACHE/arc-go/bin/arc
  [ -x "$bin" ] && return 0
  mkdir -p "$PEERS_CACHE/arc-go"
  local cmd=(go install -tags=duckdb_arrow "github.com/basekick-labs/arc/cmd/arc@$ARC_GO_COMMIT")
  # DuckDB's cgo bindings take long to compile: one try, 40 min cap.
  if ! (cd "$PEERS_CACHE/arc-go" && CGO_ENABLED=1 GOBIN=$PEERS_CACHE/arc-go/bin \
          timeout 2400 "${cmd[@]}") >"$PEERS_RUN/arc-go.install.txt" 2>&1; then
    echo "command: CGO_ENABLED=1 ${cmd[*]}" >>"$PEERS_RUN/arc-go.install.txt"; return 1
  fi
  [ -x "$bin" ]
}

# ---- start: $1 data dir --------------------------------------------------------------

start_arc() {
  SYS_DATA=$1; SYS_LOG=$1.log
  mkdir -p "$SYS_DATA"
  # The query cache is off: it would answer the 20 identical warm runs from memory,
  # which no peer does, so every run executes (PEERS_ARC_ARGS adds/overrides flags).
  # shellcheck disable=SC2086
  ARC_AUTH_BOOTSTRAP_TOKEN=$TOKEN "$ARC_BIN" serve --no-config --host 127.0.0.1 --port 0 \
    --data-dir "$SYS_DATA" --set query_cache.enabled=false ${PEERS_ARC_ARGS:-} >"$SYS_LOG" 2>&1 &
  SYS_PID=$!
  local port=
  for _ in $(seq 1 300); do
    port=$(grep -o 'msg="arc ready".* port=[0-9]*' "$SYS_LOG" 2>/dev/null | grep -o 'port=[0-9]*' | head -1 | cut -d= -f2 || true)
    [ -n "$port" ] && break
    kill -0 "$SYS_PID" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$port" ] || { log "arc did not name its port"; tail -20 "$SYS_LOG" >&2; return 1; }
  SYS_URL=http://127.0.0.1:$port
  wait_http "$SYS_URL/ready"
}

start_arc-go() {
  SYS_DATA=$1; SYS_LOG=$1.log
  local port=${PORT_ARC_GO:-$(pick_port)}
  port_free "$port" || return 1
  mkdir -p "$SYS_DATA"
  # Go Arc: environment overrides of arc.toml (ARC_<SECTION>_<KEY>); WAL off is its
  # default, stated here anyway.
  (cd "$SYS_DATA" && ARC_SERVER_HOST=127.0.0.1 ARC_SERVER_PORT=$port \
    ARC_STORAGE_BACKEND=local ARC_STORAGE_LOCAL_PATH=$SYS_DATA/data ARC_WAL_ENABLED=false \
    ARC_AUTH_ENABLED=true ARC_AUTH_BOOTSTRAP_TOKEN=$TOKEN \
    exec "$PEERS_CACHE/arc-go/bin/arc") >"$SYS_LOG" 2>&1 &
  SYS_PID=$!
  SYS_URL=http://127.0.0.1:$port
  wait_http "$SYS_URL/health"
}

start_influxdb() {
  SYS_DATA=$1; SYS_LOG=$1.log
  local port=${PORT_INFLUX:-$(pick_port)} rpc=${PORT_INFLUX_RPC:-$(pick_port)}
  port_free "$port" || return 1
  port_free "$rpc" || return 1
  mkdir -p "$SYS_DATA"
  cat >"$SYS_DATA.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$rpc"
[meta]
  dir = "$SYS_DATA/meta"
[data]
  dir = "$SYS_DATA/data"
  wal-dir = "$SYS_DATA/wal"
  query-log-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:$port"
  auth-enabled = false
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
CONF
  influxd run -config "$SYS_DATA.conf" >"$SYS_LOG" 2>&1 &
  SYS_PID=$!
  SYS_URL=http://127.0.0.1:$port
  wait_http "$SYS_URL/ping" &&
    curl -sf -XPOST "$SYS_URL/query" --data-urlencode "q=CREATE DATABASE bench" >/dev/null
}

start_questdb() {
  SYS_DATA=$1; SYS_LOG=$1.log
  local port=${PORT_QUESTDB:-$(pick_port)}
  port_free "$port" || return 1
  mkdir -p "$SYS_DATA/conf"
  cat >"$SYS_DATA/conf/server.conf" <<CONF
http.bind.to=127.0.0.1:$port
http.min.enabled=false
pg.enabled=false
line.tcp.enabled=false
line.udp.enabled=false
telemetry.enabled=false
CONF
  java -p "$PEERS_CACHE/questdb-$QUESTDB_VERSION.jar" -m io.questdb/io.questdb.ServerMain \
    -d "$SYS_DATA" >"$SYS_LOG" 2>&1 &
  SYS_PID=$!
  SYS_URL=http://127.0.0.1:$port
  wait_http "$SYS_URL/exec?query=SELECT%201"
}

# ---- write paths per shape (empty: the system does not take that shape) ---------------

write_path() {  # $1 system, $2 shape
  case "$1:$2" in
    arc:*) echo "" ;;   # loadgen's defaults are our endpoints
    arc-go:iot-columnar|arc-go:row-msgpack) echo "/api/v1/write/msgpack" ;;
    arc-go:*) echo "/api/v1/write/line-protocol?db=bench&precision=ns" ;;
    influxdb:iot-lp|influxdb:tsbs-cpu) echo "/write?db=bench&precision=n" ;;
    questdb:iot-lp|questdb:tsbs-cpu) echo "/write?precision=n" ;;
    *) echo "-" ;;
  esac
}

# ---- make written data durable and visible, so du of the data dir means something ----

flush_arc() {
  curl -sf -XPOST -H "Authorization: Bearer $TOKEN" "$SYS_URL/api/v1/write/flush" >/dev/null ||
    curl -sf -XPOST -H "Authorization: Bearer $TOKEN" "$SYS_URL/write/flush" >/dev/null
}
flush_arc-go() {
  curl -sf -XPOST -H "Authorization: Bearer $TOKEN" "$SYS_URL/api/v1/write/flush" >/dev/null || true
}
# InfluxDB: a restart snapshots nothing by itself, but the WAL is replayed into the cache
# and the shard compacts the cache to TSM after cache-snapshot-write-cold-duration (10m)
# only. To measure TSM bytes, stop the server (influxd writes a snapshot of the cache on
# close), and du data+wal afterwards.
flush_influxdb() { :; }
# QuestDB: ILP tables are WAL tables; wait until the WAL is applied (writerTxn ==
# sequencerTxn for every table), at most 120 s.
flush_questdb() {
  for _ in $(seq 1 240); do
    local lag
    lag=$(curl -sf -G "$SYS_URL/exec" --data-urlencode \
      "query=SELECT count() FROM wal_tables() WHERE writerTxn < sequencerTxn" 2>/dev/null |
      "$PY" -c 'import json,sys; print(json.load(sys.stdin)["dataset"][0][0])' 2>/dev/null || echo 1)
    [ "$lag" = 0 ] && return 0
    sleep 0.5
  done
  log "questdb: WAL not applied after 120 s"
}
