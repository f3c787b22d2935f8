#!/usr/bin/env bash
# minio.sh - build the MinIO server used by the S3 tests and benchmarks, once.
#
#   scripts/minio.sh          build (or reuse) $ARC_CACHE_DIR/minio/bin/minio, print its path
#   scripts/minio.sh --check  exit 1 if the pinned binary is not built yet
#
# MinIO publishes no semver tags on the Go module proxy (its RELEASE.* tags are not
# valid module versions), so we pin the pseudo-version of a known commit. The build
# runs `go install` with GOPATH/GOBIN/GOCACHE under $ARC_CACHE_DIR (default
# ~/.cache/arc, outside the clone, so a fresh clone on the same machine reuses the
# build) and writes a version stamp next to the binary; a second run only checks it.
# The first build takes several minutes and ~2 GB of RAM on 2 cores.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MINIO_VERSION="${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
ARC_CACHE_DIR="${ARC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/arc}"
DIR="$ARC_CACHE_DIR/minio"
BIN="$DIR/bin/minio"
STAMP="$DIR/bin/minio.version"

say() { printf 'minio: %s\n' "$*" >&2; }

if [[ -x "$BIN" && -f "$STAMP" && "$(cat "$STAMP")" == "$MINIO_VERSION" ]]; then
    echo "$BIN"
    exit 0
fi
if [[ "${1:-}" == "--check" ]]; then
    say "MinIO $MINIO_VERSION not built (run scripts/minio.sh)"
    exit 1
fi
command -v go >/dev/null || { say "go is not installed"; exit 1; }

mkdir -p "$DIR/bin" "$DIR/gopath" "$DIR/gocache"
say "building github.com/minio/minio@$MINIO_VERSION (several minutes, once)"
env GOPATH="$DIR/gopath" GOBIN="$DIR/bin" GOCACHE="$DIR/gocache" \
    GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0 \
    go install "github.com/minio/minio@$MINIO_VERSION"
# The module cache is read-only by default; make it removable with rm -rf.
chmod -R u+w "$DIR/gopath" 2>/dev/null || true
echo "$MINIO_VERSION" > "$STAMP"
echo "$BIN"
