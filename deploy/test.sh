#!/usr/bin/env bash
# The selfheal test command: starts a throw-away single-node Kafka broker,
# runs `cargo test --workspace` against it, and always stops/cleans the broker.
#
# Usage: deploy/test.sh [CARGO TEST ARGS...]     (from any directory)
#   e.g. deploy/test.sh                  # everything
#        deploy/test.sh -p selfheal-common -- some_test --nocapture
# Env:   SELFHEAL_TEST_GATES          1: run deploy/gates.sh (fmt, clippy, rustdoc
#                                     with -D warnings) first; default 1 with no
#                                     arguments (the whole suite), else 0
#        SELFHEAL_TEST_KAFKA_PORT     test broker port (default 39092; controller port+1)
#        SELFHEAL_TEST_KAFKA_RUN_DIR  broker run dir (default deploy/kafka/run/test-<port>)
#        SELFHEAL_TEST_CARGO          cargo binary to run (default: cargo)
#        SELFHEAL_TEST_REGISTRY_PORT  Apicurio Registry port (default Kafka port+2)
#        SELFHEAL_TEST_CLUSTER3       1: also start the 3-node KRaft cluster (brokers
#                                     on Kafka port+10..+12) for tests/broker_kill.rs;
#                                     default 1 with no arguments, else 0
# Exports to the tests: SELFHEAL_TEST_BOOTSTRAP=127.0.0.1:<port>,
#        SELFHEAL_TEST_SCHEMA_REGISTRY (Apicurio's Confluent-compatible API,
#        started by deploy/registry/start.sh, in-memory),
#        SELFHEAL_TEST_PYTHON (a venv's python with the subscriber's PyPI packages),
#        SELFHEAL_TEST_NODE (node, with examples/otel-node's npm packages installed),
#        SELFHEAL_TEST_CHROMIUM (headless Chromium for the console tests),
#        SELFHEAL_TEST_PROMTOOL / SELFHEAL_TEST_PROMETHEUS (Prometheus' promtool
#        and server, for the metrics lint and the PromQL traffic test),
#        SELFHEAL_TEST_CLUSTER3 / SELFHEAL_TEST_CLUSTER3_DIR (the 3-node cluster's
#        bootstrap list and run dir, when started)
#
# On a fresh Debian machine it installs what the build needs with apt-get
# (gcc/g++/make via build-essential, pkg-config, zlib1g-dev, libssl-dev,
# python3; chromium for the console's browser tests; Java + Maven for Kafka
# via deploy/kafka/fetch.sh). Rust itself
# must already be installed (rustup; ~/.cargo/bin is added to PATH).
# Concurrent runs using the same port wait for each other (lock file).
# Exit code: cargo's (or non-zero if the broker could not be started).
set -euo pipefail

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(dirname "$DEPLOY_DIR")"
KAFKA_DIR="$DEPLOY_DIR/kafka"
REGISTRY_DIR="$DEPLOY_DIR/registry"

say() { printf '[test] %s\n' "$*" >&2; }
die() { printf '[test] ERROR: %s\n' "$*" >&2; exit 1; }
now_ms() { date +%s%3N; }
secs_since() {
  local ms=$(( $(now_ms) - $1 ))
  printf '%d.%d' $((ms / 1000)) $(((ms % 1000) / 100))
}

T0=$(now_ms)

# --- system packages and the Rust toolchain (shared with deploy/up.sh) ----------
# shellcheck source=deploy/prereqs.sh
source "$DEPLOY_DIR/prereqs.sh"
ensure_system_packages
ensure_cargo
ensure_chromium
ensure_promtool

# --- Lint gates: fmt, clippy -D warnings, rustdoc -D warnings (deploy/gates.sh) --
# Run with the whole suite (no arguments); SELFHEAL_TEST_GATES=0 skips them,
# =1 forces them before a filtered run.
if [[ "${SELFHEAL_TEST_GATES:-$([[ $# -eq 0 ]] && echo 1 || echo 0)}" == 1 ]]; then
  t_gates=$(now_ms)
  "$DEPLOY_DIR/gates.sh" || die "a lint gate failed (see above); fix it, or run deploy/gates.sh alone"
  say "lint gates passed in $(secs_since "$t_gates")s"
fi

# --- Python for the subscriber in tests/demo_e2e.rs (confluent-kafka, fastavro) --
SELFHEAL_TEST_PYTHON="$("$DEPLOY_DIR/python-deps.sh")" || die "installing the Python test dependencies failed"
export SELFHEAL_TEST_PYTHON
# --- Node.js for the OTLP JSON exporter app in tests/otel_sdks.rs -----------
SELFHEAL_TEST_NODE="$("$DEPLOY_DIR/node-deps.sh")" || die "installing the Node.js test dependencies failed"
export SELFHEAL_TEST_NODE

# --- Kafka test broker ----------------------------------------------------------
PORT="${SELFHEAL_TEST_KAFKA_PORT:-39092}"
[[ "$PORT" =~ ^[0-9]+$ ]] || die "SELFHEAL_TEST_KAFKA_PORT must be a number, got '$PORT'"
# Set every broker variable explicitly so a developer's KAFKA_* settings for
# their dev broker cannot leak into the test broker.
export KAFKA_PORT="$PORT"
export KAFKA_CONTROLLER_PORT=$((PORT + 1))
export KAFKA_RUN_DIR="${SELFHEAL_TEST_KAFKA_RUN_DIR:-$KAFKA_DIR/run/test-$PORT}"
export REGISTRY_PORT="${SELFHEAL_TEST_REGISTRY_PORT:-$((PORT + 2))}"
export REGISTRY_RUN_DIR="$REGISTRY_DIR/run/test-$REGISTRY_PORT"

# One test run per port at a time (also across checkouts on this machine).
LOCK_FILE="${TMPDIR:-/tmp}/selfheal-test-kafka-$PORT.lock"
exec 200>"$LOCK_FILE"
if ! flock -n 200; then
  say "another deploy/test.sh is using port $PORT; waiting for it (lock $LOCK_FILE)"
  flock -w "${SELFHEAL_TEST_LOCK_TIMEOUT:-3600}" 200 || die "timed out waiting for $LOCK_FILE"
fi

BROKER_TIME="not started"
CLUSTER_TIME="not started"
START_CLUSTER3="${SELFHEAL_TEST_CLUSTER3:-$([[ $# -eq 0 ]] && echo 1 || echo 0)}"
unset SELFHEAL_TEST_CLUSTER3
export KAFKA_CLUSTER_BASE_PORT=$((PORT + 10))
export KAFKA_CLUSTER_RUN_DIR="$KAFKA_DIR/run/cluster3-test-$PORT"
REGISTRY_TIME="not started"
CARGO_TIME="not run"
# shellcheck disable=SC2317 # invoked via trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # 200>&- : the helper processes must not inherit (and keep) the lock.
  "$KAFKA_DIR/stop.sh" --clean 200>&- || say "WARNING: stopping the test broker failed"
  "$REGISTRY_DIR/stop.sh" --clean 200>&- || say "WARNING: stopping the test registry failed"
  if [[ "$START_CLUSTER3" == 1 ]]; then
    "$KAFKA_DIR/cluster3.sh" stop --clean 200>&- >/dev/null || say "WARNING: stopping the 3-node cluster failed"
  fi
  say "kafka broker start: $BROKER_TIME, registry start: $REGISTRY_TIME, 3-node cluster: $CLUSTER_TIME, cargo test: $CARGO_TIME, total: $(secs_since "$T0")s (exit $rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A broker left over from a killed earlier run would carry old topics: start fresh.
"$KAFKA_DIR/stop.sh" --clean 200>&- >/dev/null 2>&1 || true
t_broker=$(now_ms)
# One retry: a broker that dies during start-up (seen once when the previous
# run's broker had only just released the port) should not fail the suite.
if ! "$KAFKA_DIR/start.sh" 200>&-; then
  say "broker start failed; cleaning up and retrying once"
  "$KAFKA_DIR/stop.sh" --clean 200>&- >/dev/null 2>&1 || true
  sleep 3
  "$KAFKA_DIR/start.sh" 200>&-
fi
BROKER_TIME="$(secs_since "$t_broker")s"
export SELFHEAL_TEST_BOOTSTRAP="127.0.0.1:$PORT"

# --- Schema Registry (Apicurio, in memory) for tests/schema_registry.rs --------
"$REGISTRY_DIR/stop.sh" --clean 200>&- >/dev/null 2>&1 || true
t_registry=$(now_ms)
SELFHEAL_TEST_SCHEMA_REGISTRY="$("$REGISTRY_DIR/start.sh" 200>&-)" ||
  die "Apicurio Registry did not start (see $REGISTRY_RUN_DIR/registry.log)"
export SELFHEAL_TEST_SCHEMA_REGISTRY
REGISTRY_TIME="$(secs_since "$t_registry")s"
say "schema registry ready at $SELFHEAL_TEST_SCHEMA_REGISTRY in $REGISTRY_TIME"
# --- The 3-node KRaft cluster for tests/broker_kill.rs (kill -9 of a leader) ---
if [[ "$START_CLUSTER3" == 1 ]]; then
  "$KAFKA_DIR/cluster3.sh" stop --clean 200>&- >/dev/null 2>&1 || true
  t_cluster=$(now_ms)
  # One retry: its fixed ports sit in the kernel's ephemeral range, so an
  # outgoing connection can hold one for a moment (seen once: "Address already
  # in use" on a controller port with nothing listening there).
  if ! "$KAFKA_DIR/cluster3.sh" start 200>&- >&2; then
    say "3-node cluster start failed; cleaning up and retrying once"
    "$KAFKA_DIR/cluster3.sh" stop --clean 200>&- >/dev/null 2>&1 || true
    sleep 3
    "$KAFKA_DIR/cluster3.sh" start 200>&- >&2 || die "the 3-node cluster did not start (see $KAFKA_CLUSTER_RUN_DIR)"
  fi
  CLUSTER_TIME="$(secs_since "$t_cluster")s"
  B=$KAFKA_CLUSTER_BASE_PORT
  export SELFHEAL_TEST_CLUSTER3="127.0.0.1:$B,127.0.0.1:$((B + 1)),127.0.0.1:$((B + 2))"
  export SELFHEAL_TEST_CLUSTER3_DIR="$KAFKA_CLUSTER_RUN_DIR"
  say "3-node cluster ready at $SELFHEAL_TEST_CLUSTER3 in $CLUSTER_TIME"
fi
say "kafka ready at $SELFHEAL_TEST_BOOTSTRAP in $BROKER_TIME; running: $CARGO_BIN test --workspace $*"

cd "$ROOT_DIR"
t_cargo=$(now_ms)
CARGO_TIME="interrupted"
# Foreground on purpose: Ctrl-C reaches cargo and the test binaries directly;
# a SIGTERM to this script alone is handled (broker stopped) once cargo exits.
rc=0
"$CARGO_BIN" test --workspace "$@" || rc=$?
CARGO_TIME="$(secs_since "$t_cargo")s"
exit "$rc"
