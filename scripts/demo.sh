#!/usr/bin/env bash
# make demo: amld dev in a temporary data dir, the example training run
# submitted and streamed, the cluster growing from 0 nodes to 1 and back.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/bin}
tmp=$(mktemp -d)
export AMLCTL_CONFIG=$tmp/amlctl-config
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "starting amld dev on 127.0.0.1:$port (data dir $tmp/data)"
"$BIN/amld" dev --data-dir "$tmp/data" --listen "127.0.0.1:$port" --log-level warn >"$tmp/dev.log" 2>&1 &
dev=$!
cleanup() {
  if kill -0 "$dev" 2>/dev/null; then kill -TERM "$dev"; wait "$dev" || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
for _ in $(seq 100); do [ -s "$AMLCTL_CONFIG" ] && break; sleep 0.1; done
[ -s "$AMLCTL_CONFIG" ] || { cat "$tmp/dev.log"; echo "amld dev did not start" >&2; exit 1; }
ctl() { "$BIN/amlctl" "$@"; }
nodes() { ctl compute show cpu-cluster -o json | python3 -c 'import json,sys; t=json.load(sys.stdin); print(t["current_node_count"], t["node_state_counts"])'; }

say "the cluster amld dev made (0 nodes while idle)"
ctl compute show cpu-cluster
ctl compute update cpu-cluster --idle-seconds-before-scaledown 5 >/dev/null
echo "(idle_seconds_before_scaledown set to 5 so the demo sees the scale-down)"

say "amlctl job submit --target cpu-cluster --source examples/train --wait -- python3 train.py --epochs 5"
ctl job submit --target cpu-cluster --source examples/train --wait -- python3 train.py --epochs 5 --sleep 0.2
run=$(ctl job list -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')

say "nodes while the node is still up (idle)"
nodes
ctl compute list-nodes cpu-cluster

say "amlctl job show $run"
ctl job show "$run"

say "amlctl job download $run --dir $tmp/out"
ctl job download "$run" --dir "$tmp/out"
cat "$tmp/out/model.json"; echo

say "waiting for the idle node to be removed (back to 0)"
for _ in $(seq 120); do
  n=$(ctl compute show cpu-cluster -o json | python3 -c 'import json,sys; t=json.load(sys.stdin); c=t["node_state_counts"]; print(sum(c.values()))')
  [ "$n" = 0 ] && break
  sleep 0.5
done
nodes
[ "$n" = 0 ] || { echo "the node was not removed" >&2; exit 1; }

say "stopping amld dev (SIGTERM)"
kill -TERM "$dev"
wait "$dev"
echo "amld dev stopped cleanly"
