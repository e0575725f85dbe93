#!/usr/bin/env bash
# The selfheal run command: builds selfheal (release) and runs all four services
# in one process. With no Kafka configured it uses the embedded in-process
# cluster, so nothing else is needed; pass --kafka HOST:PORT for a real one.
#
# Usage: deploy/up.sh [selfheal up ARGS...]      (from any directory)
#   e.g. deploy/up.sh                        # embedded Kafka, intake on 127.0.0.1:4318
#        deploy/up.sh --kafka 127.0.0.1:9092 # a real broker (deploy/kafka/start.sh)
#        deploy/up.sh --config my.toml
#        deploy/up.sh demo                   # the closed loop on a demo service (selfheal demo)
# On a fresh Debian machine it first installs the C toolchain and headers the
# build needs (see deploy/prereqs.sh). Rust must be installed (rustup).
set -euo pipefail

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(dirname "$DEPLOY_DIR")"

say() { printf '[up] %s\n' "$*" >&2; }
die() { printf '[up] ERROR: %s\n' "$*" >&2; exit 1; }

# shellcheck source=deploy/prereqs.sh
source "$DEPLOY_DIR/prereqs.sh"
ensure_system_packages
ensure_cargo

cd "$ROOT_DIR"
say "building selfheal (release; the first build takes a few minutes)"
"$CARGO_BIN" build --release --bin selfheal
# `deploy/up.sh demo [ARGS...]` runs `selfheal demo` instead (the closed loop).
if [[ "${1:-}" == demo ]]; then
  shift
  exec "$ROOT_DIR/target/release/selfheal" demo "$@"
fi
exec "$ROOT_DIR/target/release/selfheal" up "$@"
