#!/usr/bin/env bash
# fuzz.sh BUILD_DIR SECONDS - run every libFuzzer target for SECONDS each on its
# seed corpus (tests/fuzz/corpus/<name>, copied so git's copy stays small).
# Exits non-zero on the first crash; the reproducer lands in tests/fuzz/artifacts/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$1"; SECS="${2:-60}"
shopt -s nullglob
targets=("$BUILD"/tests/fuzz/fuzz_*)
if [[ ${#targets[@]} -eq 0 ]]; then echo "fuzz: no targets built"; exit 1; fi
mkdir -p "$ROOT/tests/fuzz/artifacts"
for t in "${targets[@]}"; do
    name="$(basename "$t")"; name="${name#fuzz_}"
    work="$(mktemp -d)"; cp -r "$ROOT/tests/fuzz/corpus/$name/." "$work/" 2>/dev/null || true
    echo "fuzz: $name for ${SECS}s"
    log="$work.log"
    status=0
    "$t" -max_total_time="$SECS" -print_final_stats=1 -artifact_prefix="$ROOT/tests/fuzz/artifacts/$name-" \
        "$work" >"$log" 2>&1 || status=$?
    grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|Done' "$log" || true
    rm -rf "$work"
    if [[ $status -ne 0 ]]; then tail -40 "$log"; rm -f "$log"; echo "fuzz: $name FAILED"; exit 1; fi
    rm -f "$log"
done
echo "fuzz: all targets clean"
