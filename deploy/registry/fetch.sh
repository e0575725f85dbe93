#!/usr/bin/env bash
# Fetch Apicurio Registry (the app's runnable `all` distribution) from Maven
# Central into deploy/registry/dist (no Docker, no other download).
#
# Usage: deploy/registry/fetch.sh         (from any directory; idempotent)
# Env:   REGISTRY_MAVEN_REPO   Maven local repo to use (default: Maven's, ~/.m2/repository)
#        REGISTRY_FETCH_FORCE=1  re-download even if dist/ is up to date
#
# Installs java (openjdk-17-jre-headless) and mvn (maven) with apt-get if missing.
# dist/.fetched holds the pinned version + pom checksum; when it matches, nothing is done.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

POM="$REGISTRY_HOME/pom.xml"
MARKER="$REGISTRY_DIST/.fetched"
DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
ARCHIVE="apicurio-registry-app-$REGISTRY_VERSION-all.tar.gz"

want_marker() {
  printf 'apicurio %s pom-sha256 %s\n' "$REGISTRY_VERSION" "$(sha256sum "$POM" | cut -d' ' -f1)"
}

up_to_date() {
  [[ -f "$MARKER" && -f "$REGISTRY_JAR" ]] && [[ "$(<"$MARKER")" == "$(want_marker)" ]]
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

if ! command -v java >/dev/null; then
  log "java not found; installing openjdk-17-jre-headless"
  apt_install openjdk-17-jre-headless
fi

if [[ "${REGISTRY_FETCH_FORCE:-0}" != 1 ]] && up_to_date; then
  exit 0
fi

mkdir -p "$REGISTRY_HOME/run"
exec 9>"$REGISTRY_HOME/run/.fetch.lock"
flock 9
if [[ "${REGISTRY_FETCH_FORCE:-0}" != 1 ]] && up_to_date; then
  exit 0
fi

java_major=$(java -version 2>&1 | awk -F'"' '/version/{split($2, v, "."); print (v[1] == 1 ? v[2] : v[1]); exit}')
if [[ "$java_major" =~ ^[0-9]+$ ]] && ((java_major < 17)); then
  die "Apicurio Registry $REGISTRY_VERSION needs Java 17+; found Java $java_major: apt-get install openjdk-17-jre-headless"
fi
command -v mvn >/dev/null || { log "mvn not found; installing maven"; apt_install maven; }
command -v tar >/dev/null || die "tar not found"

start=$(now_ms)
log "fetching Apicurio Registry $REGISTRY_VERSION from Maven Central into $REGISTRY_DIST"
mvn_args=(-B -q -Dstyle.color=never -f "$POM")
if [[ -n "${REGISTRY_MAVEN_REPO:-}" ]]; then
  mvn_args+=("-Dmaven.repo.local=$REGISTRY_MAVEN_REPO")
fi
# Fetch and unpack into a temp dir, then swap: an interrupted fetch never
# leaves a half-filled dist/ that looks complete.
tmp="$REGISTRY_HOME/dist.tmp.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/archive"
if ! mvn "${mvn_args[@]}" "$DEP_PLUGIN:copy-dependencies" \
  -DoutputDirectory="$tmp/archive" -DexcludeTransitive=true >"$tmp/mvn.out" 2>&1; then
  cat "$tmp/mvn.out" >&2
  die "mvn dependency:copy-dependencies failed (is Maven Central reachable?)"
fi
[[ -f "$tmp/archive/$ARCHIVE" ]] || die "maven finished but $ARCHIVE is missing"
mkdir -p "$tmp/dist"
tar -xzf "$tmp/archive/$ARCHIVE" -C "$tmp/dist"
[[ -f "$tmp/dist/$(basename "$REGISTRY_JAR")" ]] ||
  die "$ARCHIVE has no $(basename "$REGISTRY_JAR")"
want_marker >"$tmp/dist/.fetched"
rm -rf "$REGISTRY_DIST"
mv "$tmp/dist" "$REGISTRY_DIST"
log "fetched $(find "$REGISTRY_DIST/lib" -name '*.jar' | wc -l) jars ($(du -sh "$REGISTRY_DIST" | cut -f1)) in $(elapsed_since "$start")s"
