#!/bin/sh
# Deploys one revision of the demo shop, the way a small team's deploy script
# would: export the revision's tree from the git remote, stop the running
# process, start the new one, wait until it listens.
#
# Usage: deploy.sh DEMO_DIR REVISION
#   DEMO_DIR holds remote.git (the "remote" repository), releases/ (one tree
#   per revision) and run/ (env, pid, log, ready file). `selfheal demo` runs it
#   for the initial deploy and the bad deploy, and the fixer runs it (as its
#   configured rollback command) to roll back.
set -eu

dir=$1
rev=$2
case "$rev" in
  '' | *[!0-9a-f]*) echo "deploy.sh: not a revision: $rev" >&2; exit 2 ;;
esac
# DEMO_PORT, DEMO_OWNER_PID, DEMO_PYTHON (written by `selfheal demo`)
. "$dir/run/env"

release="$dir/releases/$rev"
if [ ! -d "$release" ]; then
  rm -rf "$release.tmp"
  mkdir -p "$release.tmp"
  git --git-dir="$dir/remote.git" archive "$rev" | tar -x -C "$release.tmp"
  mv "$release.tmp" "$release"
fi

# Stop the running revision (and wait until its port is free).
if [ -f "$dir/run/service.pid" ]; then
  old=$(cat "$dir/run/service.pid")
  if kill "$old" 2>/dev/null; then
    i=0
    while kill -0 "$old" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
  fi
fi

rm -f "$dir/run/ready"
cd "$release"
DEMO_REVISION=$rev DEMO_LOG="$dir/run/service.log" DEMO_READY="$dir/run/ready" \
  DEMO_UPSTREAM="$dir/run/upstream" DEMO_PORT=$DEMO_PORT DEMO_OWNER_PID=$DEMO_OWNER_PID \
  nohup "$DEMO_PYTHON" app.py </dev/null >>"$dir/run/service.out" 2>&1 &
pid=$!
echo "$pid" >"$dir/run/service.pid"

i=0
until [ -f "$dir/run/ready" ] && grep -q "^$rev $pid\$" "$dir/run/ready"; do
  # 30 s: a cold Python start on a loaded 2-core CI machine can take 10 s.
  if ! kill -0 "$pid" 2>/dev/null || [ $i -ge 600 ]; then
    echo "deploy.sh: $rev did not start (see $dir/run/service.out); its last lines:" >&2
    tail -n 20 "$dir/run/service.out" >&2 || true
    exit 1
  fi
  sleep 0.05
  i=$((i + 1))
done
echo "deployed $rev (pid $pid, port $DEMO_PORT)"
