#!/usr/bin/env bash
# setup.sh - install every build and test dependency of Arc on Debian 12, pinned.
#
#   scripts/setup.sh          apt packages, DuckDB (npm), Python test venv, MinIO (Go)
#   scripts/setup.sh --check  only report what is missing (exit 1 if anything is)
#
# Idempotent: each step checks first and does nothing when its stamp is current,
# so a second run takes about a second. Stamps live in .cache/setup/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STAMPS="$ROOT/.cache/setup"
CHECK_ONLY=0
[[ "${1:-}" == "--check" ]] && CHECK_ONLY=1
mkdir -p "$STAMPS"

say() { printf 'setup: %s\n' "$*" >&2; }
sha() { sha256sum "$@" | sha256sum | cut -c1-16; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

# --- 1. Debian packages ---------------------------------------------------------
apt_step() {
    local want=() missing=() line name ver have
    while read -r line; do
        line="${line%%#*}"; line="${line// /}"
        [[ -z "$line" ]] && continue
        name="${line%%=*}"; ver="${line#*=}"
        have="$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null || true)"
        if [[ "$have" != "install ok installed "* ]]; then
            missing+=("$name"); want+=("$name=$ver")
        elif [[ "${have##* }" != "$ver" ]]; then
            say "note: $name ${have##* } installed, pinned $ver (same package kept)"
        fi
    done < "$ROOT/deps/apt-packages.txt"
    # npm/node: the machine may ship Node from elsewhere; use Debian's only if absent.
    if ! command -v npm >/dev/null; then missing+=(npm); want+=(npm); fi
    [[ ${#missing[@]} -eq 0 ]] && return 0
    if [[ $CHECK_ONLY -eq 1 ]]; then say "missing apt packages: ${missing[*]}"; return 1; fi
    say "installing apt packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    if ! as_root apt-get install -y -qq --no-install-recommends "${want[@]}"; then
        # A pinned version can vanish when Debian publishes a security update:
        # take the current build of the same package rather than fail the set-up.
        say "pinned versions unavailable; installing current Debian 12 builds of: ${missing[*]}"
        as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
}

# --- 2. DuckDB 1.4.4 from npm (lock file carries the integrity hashes) -----------
duckdb_step() {
    local stamp="$STAMPS/npm" key
    key="$(sha "$ROOT/deps/package.json" "$ROOT/deps/package-lock.json")"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$key" &&
          -f "$ROOT/deps/node_modules/@duckdb/node-bindings-linux-x64/libduckdb.so" &&
          -f "$ROOT/deps/node_modules/duckdb/src/duckdb/src/include/duckdb.h" ]]; then
        return 0
    fi
    if [[ $CHECK_ONLY -eq 1 ]]; then say "DuckDB not installed"; return 1; fi
    say "installing DuckDB 1.4.4 (npm ci, integrity-checked)"
    (cd "$ROOT/deps" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    echo "$key" > "$stamp"
}

# --- 3. Python test dependencies in .venv ----------------------------------------
python_step() {
    local stamp="$STAMPS/venv" key py
    key="$(sha "$ROOT/tests/requirements.txt")"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$key" && -x "$ROOT/.venv/bin/python" ]]; then
        return 0
    fi
    if [[ $CHECK_ONLY -eq 1 ]]; then say "Python venv missing or stale"; return 1; fi
    py="$(command -v python3)"
    say "creating .venv with $py and installing tests/requirements.txt"
    [[ -x "$ROOT/.venv/bin/python" ]] || "$py" -m venv "$ROOT/.venv"
    "$ROOT/.venv/bin/python" -m pip install -q --disable-pip-version-check \
        -r "$ROOT/tests/requirements.txt"
    echo "$key" > "$stamp"
}

# --- 4. MinIO for the S3 tests and benchmarks (scripts/minio.sh, built once) ------
minio_step() {
    if [[ $CHECK_ONLY -eq 1 ]]; then "$ROOT/scripts/minio.sh" --check >/dev/null; return; fi
    command -v go >/dev/null || { say "go not installed: S3 tests will be skipped"; return 0; }
    "$ROOT/scripts/minio.sh" >/dev/null
}

rc=0
apt_step || rc=1
duckdb_step || rc=1
python_step || rc=1
minio_step || rc=1
exit $rc
