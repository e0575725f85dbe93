# shellcheck shell=bash
# Prerequisites shared by deploy/test.sh and deploy/up.sh (sourced, not run).
# Callers define say() and die().
#
# ensure_system_packages: installs, with apt-get and only when missing, what the
#   build needs on a fresh Debian machine: gcc/g++/make (build-essential),
#   pkg-config, zlib1g-dev, libssl-dev, python3.
# ensure_chromium: installs headless Chromium (the Debian package `chromium`)
#   when missing, for the console's browser tests (tests/console_browser.rs,
#   tests/demo_e2e.rs); exports SELFHEAL_TEST_CHROMIUM.
# ensure_cargo: makes `cargo` (or $SELFHEAL_TEST_CARGO) callable as $CARGO_BIN,
#   adding ~/.cargo/bin to PATH if needed.

ensure_system_packages() {
  local missing=() cmd pkg
  # command -> Debian package that provides it
  local -A by_cmd=([gcc]=build-essential [g++]=build-essential [make]=make
    [pkg-config]=pkg-config [python3]=python3)
  for cmd in gcc g++ make pkg-config python3; do
    command -v "$cmd" >/dev/null || missing+=("${by_cmd[$cmd]}")
  done
  for pkg in zlib1g-dev libssl-dev; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  # de-duplicate
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  say "installing missing system packages: ${missing[*]}"
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "need root (or sudo) to install: ${missing[*]}"
    sudo=(sudo)
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends "${missing[@]}"
}

ensure_chromium() {
  local bin="${SELFHEAL_TEST_CHROMIUM:-chromium}"
  if ! command -v "$bin" >/dev/null; then
    say "chromium not found; installing the Debian package chromium (headless browser for the console tests)"
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
      command -v sudo >/dev/null || die "need root (or sudo) to install chromium"
      sudo=(sudo)
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      --no-install-recommends chromium
  fi
  SELFHEAL_TEST_CHROMIUM="$(command -v "$bin")"
  export SELFHEAL_TEST_CHROMIUM
}

# ensure_promtool: installs Prometheus' `promtool` (the Debian package
#   `prometheus`; its daemon is not started) when missing, for the metrics
#   lint in tests/metrics_scrape.rs and the server in tests/prometheus_traffic.rs;
#   exports SELFHEAL_TEST_PROMTOOL and SELFHEAL_TEST_PROMETHEUS.
ensure_promtool() {
  if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
    say "promtool not found; installing the Debian package prometheus (for promtool check metrics)"
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
      command -v sudo >/dev/null || die "need root (or sudo) to install prometheus"
      sudo=(sudo)
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      --no-install-recommends prometheus ||
      { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
          --no-install-recommends prometheus; } ||
      die "installing the Debian package prometheus failed"
  fi
  SELFHEAL_TEST_PROMTOOL="$(command -v promtool)"
  SELFHEAL_TEST_PROMETHEUS="$(command -v prometheus)"
  export SELFHEAL_TEST_PROMTOOL SELFHEAL_TEST_PROMETHEUS
}

ensure_cargo() {
  CARGO_BIN="${SELFHEAL_TEST_CARGO:-cargo}"
  if [[ "$CARGO_BIN" == cargo ]] && ! command -v cargo >/dev/null; then
    local cargo_home="${CARGO_HOME:-$HOME/.cargo}"
    if [[ -x "$cargo_home/bin/cargo" ]]; then
      export PATH="$cargo_home/bin:$PATH"
    else
      die "cargo not found (not on PATH, not in $cargo_home/bin). Install Rust with rustup, e.g. 'curl https://sh.rustup.rs -sSf | sh', then re-run."
    fi
  fi
  command -v "$CARGO_BIN" >/dev/null || die "cargo command '$CARGO_BIN' not found"
}
