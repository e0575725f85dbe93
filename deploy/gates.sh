#!/usr/bin/env bash
# The lint gates the test command runs first (issue 16): formatting, clippy with
# warnings as errors, and rustdoc with warnings as errors. A fmt diff, a clippy
# warning or a broken doc link fails the suite like a failing test.
#
# Usage: deploy/gates.sh            (from any directory; deploy/test.sh calls it)
# Env:   SELFHEAL_TEST_CARGO        cargo binary (default: cargo)
set -euo pipefail
ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO_BIN="${SELFHEAL_TEST_CARGO:-cargo}"
say() { printf '[gates] %s\n' "$*" >&2; }

# rustup's default profile has both; a minimal one may not.
if command -v rustup >/dev/null; then
  for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" \
      || { say "installing the $c component"; rustup component add "$c"; }
  done
fi

cd "$ROOT_DIR"
say "cargo fmt --check"
"$CARGO_BIN" fmt --all -- --check
say "cargo clippy --workspace --all-targets -- -D warnings"
"$CARGO_BIN" clippy --workspace --all-targets --quiet -- -D warnings
say "cargo doc --workspace --no-deps --document-private-items (RUSTDOCFLAGS=-D warnings)"
RUSTDOCFLAGS="-D warnings" "$CARGO_BIN" doc --workspace --no-deps --document-private-items --quiet
say "all gates passed"
