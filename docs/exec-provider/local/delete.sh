#!/bin/sh
# delete.sh: removes a "machine" that local/create.sh made: SIGTERM to its
# agent (which stops its runs), SIGKILL after 20 s, then its directory.
# Deleting a machine that is already gone succeeds.
#
#   env in:  AMLD_NODE_NAME, AMLD_TARGET, AMLD_PROVIDER_ID
set -eu
state="${AMLD_EXEC_LOCAL_DIR:-/var/tmp/amld-exec-local}"
dir="$state/$AMLD_NODE_NAME"
[ -d "$dir" ] || exit 0
if [ -s "$dir/pid" ]; then
  pid=$(cat "$dir/pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
    kill -KILL "$pid" 2>/dev/null || true
  fi
fi
rm -rf "$dir"
