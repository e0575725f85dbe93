#!/usr/bin/env bash
# Creates (once) a Python virtual environment with what the end-to-end tests'
# Python programs need, from PyPI: the subscriber's
# (examples/subscriber/requirements.txt: confluent-kafka, fastavro) and the
# OpenTelemetry SDK app's (examples/otel-python/requirements.txt), and prints
# the path of its python on stdout.
#
# Usage: deploy/python-deps.sh            (from any directory)
# Env:   SELFHEAL_PYTHON_VENV  where the venv lives (default deploy/python/.venv)
# On Debian without the venv module it installs python3-venv with apt-get.
set -euo pipefail

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(dirname "$DEPLOY_DIR")"
REQ_FILES=("$ROOT_DIR/examples/subscriber/requirements.txt" "$ROOT_DIR/examples/otel-python/requirements.txt")
VENV="${SELFHEAL_PYTHON_VENV:-$DEPLOY_DIR/python/.venv}"

say() { printf '[python-deps] %s\n' "$*" >&2; }
die() { printf '[python-deps] ERROR: %s\n' "$*" >&2; exit 1; }

command -v python3 >/dev/null || die "python3 not found"
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  say "installing python3-venv"
  sudo=()
  [[ $(id -u) -ne 0 ]] && sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv >&2
fi

stamp="$VENV/.requirements"
wanted="$(cat "${REQ_FILES[@]}")"
if [[ ! -x "$VENV/bin/python" ]] || [[ "$wanted" != "$(cat "$stamp" 2>/dev/null)" ]]; then
  say "creating $VENV with $(grep -hv '^#' "${REQ_FILES[@]}" | tr '\n' ' ')"
  rm -rf "$VENV"
  python3 -m venv "$VENV" >&2
  reqs=()
  for f in "${REQ_FILES[@]}"; do reqs+=(-r "$f"); done
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${reqs[@]}" >&2
  printf '%s' "$wanted" > "$stamp"
fi
"$VENV/bin/python" -c 'import confluent_kafka, fastavro, confluent_kafka.schema_registry.avro, opentelemetry.sdk._logs, opentelemetry.exporter.otlp.proto.http._log_exporter' || die "the venv at $VENV is broken; delete it"
echo "$VENV/bin/python"
