#!/bin/sh
# delete.sh: removes a "machine" that local/create.sh made: SIGTERM to its
# agent (which stops its runs), SIGKILL after 20 s, then its directory.
# Deleting a machine that is already gone succeeds.
#
#   env in:  AMLD_NODE_NAME, AMLD_TARGET, AMLD_PROVIDER_ID
set -eu
# alive PID: the process runs (a zombie, waiting for init to reap it, does not).
alive() {
  [ -r "/proc/$1/stat" ] && [ "$(sed 's/^.*) //; s/ .*//' "/proc/$1/stat" 2>/dev/null)" != Z ]
}
state="${AMLD_EXEC_LOCAL_DIR:-/var/tmp/amld-exec-local}"
dir="$state/$AMLD_NODE_NAME"
[ -d "$dir" ] || exit 0
if [ -s "$dir/pid" ]; then
  pid=$(cat "$dir/pid")
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    i=0
    while alive "$pid" && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
    kill -KILL "$pid" 2>/dev/null || true
  fi
fi
rm -rf "$dir"
