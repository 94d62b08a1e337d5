#!/bin/sh
# list.sh: prints "NODE_NAME MACHINE_ID" for every machine local/create.sh
# made whose agent still runs. amld deletes machines it has no node for, and
# marks nodes whose machine is not listed unusable (then replaces them).
#
#   env in:  AMLD_TARGET
set -eu
# alive PID: the process runs (a zombie, waiting for init to reap it, does not).
alive() {
  [ -r "/proc/$1/stat" ] && [ "$(sed 's/^.*) //; s/ .*//' "/proc/$1/stat" 2>/dev/null)" != Z ]
}
state="${AMLD_EXEC_LOCAL_DIR:-/var/tmp/amld-exec-local}"
[ -d "$state" ] || exit 0
for dir in "$state"/*/; do
  [ -s "$dir/pid" ] || continue
  [ "$(cat "$dir/target" 2>/dev/null)" = "$AMLD_TARGET" ] || continue
  pid=$(cat "$dir/pid")
  alive "$pid" || continue
  echo "$(basename "$dir") local-$pid"
done
