#!/usr/bin/env bash
# Installs (once, with `npm ci` from the npm registry) the OpenTelemetry JS SDK
# packages of examples/otel-node (the OTLP/HTTP JSON exporter app that
# tests/otel_sdks.rs runs), and prints the path of `node` on stdout.
#
# Usage: deploy/node-deps.sh            (from any directory)
# On Debian without node/npm it installs the packages nodejs and npm with apt-get.
set -euo pipefail

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
APP="$(dirname "$DEPLOY_DIR")/examples/otel-node"

say() { printf '[node-deps] %s\n' "$*" >&2; }
die() { printf '[node-deps] ERROR: %s\n' "$*" >&2; exit 1; }

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  say "installing nodejs and npm"
  sudo=()
  [[ $(id -u) -ne 0 ]] && sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm >&2
fi
stamp="$APP/node_modules/.selfheal-lock"
if ! cmp -s "$APP/package-lock.json" "$stamp"; then
  say "installing $APP's packages (npm ci)"
  (cd "$APP" && npm ci --silent --no-audit --no-fund >&2) || die "npm ci in $APP failed"
  cp "$APP/package-lock.json" "$stamp"
fi
(cd "$APP" && node -e "require('@opentelemetry/exporter-logs-otlp-http'); require('@opentelemetry/sdk-logs')") ||
  die "the packages in $APP/node_modules are broken; delete it"
command -v node
