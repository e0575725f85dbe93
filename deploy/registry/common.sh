# shellcheck shell=bash
# Shared helpers for the deploy/registry scripts (Apicurio Registry from Maven
# Central). Not meant to be run directly:
#   source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

REGISTRY_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Pinned version; must match <apicurio.version> in pom.xml. 2.6.x runs on
# Java 17 (Debian 12's); the 3.x line is built for Java 21, which Debian 12
# does not package.
# shellcheck disable=SC2034 # used by the scripts that source this file
REGISTRY_VERSION="2.6.13.Final"
# The unpacked distribution (a Quarkus runner jar and its lib/).
REGISTRY_DIST="$REGISTRY_HOME/dist"
# shellcheck disable=SC2034
REGISTRY_JAR="$REGISTRY_DIST/apicurio-registry-app-$REGISTRY_VERSION-runner.jar"

log() { printf '[registry] %s\n' "$*" >&2; }
die() { printf '[registry] ERROR: %s\n' "$*" >&2; exit 1; }

now_ms() { date +%s%3N; }
elapsed_since() {
  local ms=$(( $(now_ms) - $1 ))
  printf '%d.%d' $((ms / 1000)) $(((ms % 1000) / 100))
}

default_run_dir() { printf '%s/run/%s' "$REGISTRY_HOME" "$1"; }

# True if something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# True if process $1 exists and is not a zombie.
alive() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n "$state" && "$state" != Z ]]
}

# Prints the pid from RUN_DIR/registry.pid if that process is alive and is
# the registry started with that run dir; returns 1 otherwise.
running_pid() {
  local run_dir=$1 pid
  [[ -f "$run_dir/registry.pid" ]] || return 1
  pid=$(<"$run_dir/registry.pid")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  # Guard against pid reuse: the process must be our registry.
  grep -qF -- "-Dselfheal.registry.run_dir=$run_dir" < <(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) ||
    return 1
  printf '%s\n' "$pid"
}

# True if GET /apis/ccompat/v7/subjects on 127.0.0.1:$1 answers 200 (plain
# bash, so a machine without curl can run this).
api_answers() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'GET /apis/ccompat/v7/subjects HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    read -r -t 5 _ status _ <&3 && [[ "$status" == 200 ]]
  ) 2>/dev/null
}
