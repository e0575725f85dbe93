#!/usr/bin/env bash
# Creates (once) a Python virtual environment with what the end-to-end tests'
# Python subscriber needs (examples/subscriber/requirements.txt: confluent-kafka
# and fastavro from PyPI), and prints the path of its python on stdout.
#
# Usage: deploy/python-deps.sh            (from any directory)
# Env:   SELFHEAL_PYTHON_VENV  where the venv lives (default deploy/python/.venv)
# On Debian without the venv module it installs python3-venv with apt-get.
set -euo pipefail

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(dirname "$DEPLOY_DIR")"
REQS="$ROOT_DIR/examples/subscriber/requirements.txt"
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
if [[ ! -x "$VENV/bin/python" ]] || ! cmp -s "$REQS" "$stamp"; then
  say "creating $VENV with $(grep -v '^#' "$REQS" | tr '\n' ' ')"
  rm -rf "$VENV"
  python3 -m venv "$VENV" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQS" >&2
  cp "$REQS" "$stamp"
fi
"$VENV/bin/python" -c 'import confluent_kafka, fastavro, confluent_kafka.schema_registry.avro' || die "the venv at $VENV is broken; delete it"
echo "$VENV/bin/python"
