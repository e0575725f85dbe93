#!/usr/bin/env bash
# Fetch the Apache Kafka broker + tools jars from Maven Central into
# deploy/kafka/lib (no Docker, no tarball download needed).
#
# Usage: deploy/kafka/fetch.sh            (from any directory; idempotent)
# Env:   KAFKA_MAVEN_REPO  Maven local repo to use (default: Maven's, ~/.m2/repository)
#        KAFKA_FETCH_FORCE=1  re-download even if lib/ is up to date
#
# Installs java (openjdk-17-jre-headless) and mvn (maven) with apt-get if missing.
# lib/.fetched holds the pinned version + pom checksum; when it matches, nothing is done.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

POM="$KAFKA_HOME/pom.xml"
MARKER="$KAFKA_LIB/.fetched"
DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.6.1"

want_marker() {
  printf 'kafka %s pom-sha256 %s\n' "$KAFKA_VERSION" "$(sha256sum "$POM" | cut -d' ' -f1)"
}

up_to_date() {
  [[ -f "$MARKER" && -f "$KAFKA_LIB/kafka_2.13-$KAFKA_VERSION.jar" ]] &&
    [[ "$(<"$MARKER")" == "$(want_marker)" ]]
}

APT_UPDATED=0
apt_install() {
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "need root (or sudo) to apt-get install $*"
    sudo=(sudo)
  fi
  if [[ $APT_UPDATED == 0 ]]; then
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    APT_UPDATED=1
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# java is needed to run Kafka even when lib/ is already there.
if ! command -v java >/dev/null; then
  log "java not found; installing openjdk-17-jre-headless"
  apt_install openjdk-17-jre-headless
fi

if [[ "${KAFKA_FETCH_FORCE:-0}" != 1 ]] && up_to_date; then
  exit 0
fi

# Serialize concurrent fetches (e.g. test.sh and a dev start.sh at once).
mkdir -p "$KAFKA_HOME/run"
exec 9>"$KAFKA_HOME/run/.fetch.lock"
flock 9
if [[ "${KAFKA_FETCH_FORCE:-0}" != 1 ]] && up_to_date; then
  exit 0
fi

java_major=$(java -version 2>&1 | awk -F'"' '/version/{split($2, v, "."); print (v[1] == 1 ? v[2] : v[1]); exit}')
if [[ "$java_major" =~ ^[0-9]+$ ]] && ((java_major < 11)); then
  die "Kafka $KAFKA_VERSION needs Java 11+ (17 recommended); found Java $java_major: apt-get install openjdk-17-jre-headless"
fi
if ! command -v mvn >/dev/null; then
  log "mvn not found; installing maven"
  apt_install maven
fi

start=$(now_ms)
log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIB"
mvn_args=(-B -q -Dstyle.color=never -f "$POM")
if [[ -n "${KAFKA_MAVEN_REPO:-}" ]]; then
  mvn_args+=("-Dmaven.repo.local=$KAFKA_MAVEN_REPO")
fi
# Fetch into a temp dir and swap, so an interrupted fetch never leaves a
# half-filled lib/ that looks complete.
tmp="$KAFKA_HOME/lib.tmp.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
if ! mvn "${mvn_args[@]}" "$DEP_PLUGIN:copy-dependencies" \
  -DoutputDirectory="$tmp" -DincludeScope=runtime >"$tmp/mvn.out" 2>&1; then
  cat "$tmp/mvn.out" >&2
  die "mvn dependency:copy-dependencies failed (is Maven Central reachable?)"
fi
rm -f "$tmp/mvn.out"
[[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] ||
  die "maven finished but kafka_2.13-$KAFKA_VERSION.jar is missing"
want_marker >"$tmp/.fetched"
rm -rf "$KAFKA_LIB"
mv "$tmp" "$KAFKA_LIB"
log "fetched $(find "$KAFKA_LIB" -name '*.jar' | wc -l) jars ($(du -sh "$KAFKA_LIB" | cut -f1)) in $(elapsed_since "$start")s"
