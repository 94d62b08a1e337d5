#!/bin/sh
# create.sh: the exec provider's create script for "machines" that are
# `amld agent` processes on the head's own machine. amld's integration tests
# use it; it is also the smallest complete example of the contract:
#
#   env in:  AMLD_NODE_NAME, AMLD_TARGET, AMLD_VM_SIZE, AMLD_VM_PRIORITY,
#            AMLD_CPUS, AMLD_MEMORY_MB, AMLD_GPUS, AMLD_HEAD_ADDRS,
#            AMLD_JOIN_TOKEN_FILE (0600; the token itself is never in argv
#            or env), AMLD_AGENT_BINARY
#   stdout:  the machine's ID on the last line (optional)
#   exit:    0 once the machine is started (not once the agent joined);
#            anything else is a failure, whose stderr amld shows in
#            provisioning_errors before it backs off.
#
# Machines live in $AMLD_EXEC_LOCAL_DIR (default /var/tmp/amld-exec-local).
set -eu
state="${AMLD_EXEC_LOCAL_DIR:-/var/tmp/amld-exec-local}"
dir="$state/$AMLD_NODE_NAME"
umask 077
mkdir -p "$dir/work"
printf '%s\n' "$AMLD_TARGET" > "$dir/target"
# The agent reads the token from its own copy, which lives as long as the
# machine; amld removes its file when the node is deleted.
cp "$AMLD_JOIN_TOKEN_FILE" "$dir/join.token"
# When the heads speak TLS, the agent checks them against the cluster CA.
set --
if [ -n "${AMLD_CA_FILE:-}" ]; then
  cp "$AMLD_CA_FILE" "$dir/ca.crt"
  set -- --ca-file "$dir/ca.crt"
fi
# Start the agent in a session of its own, with no tie to this script's
# output (a machine left running must not hold the script's pipes).
setsid "$AMLD_AGENT_BINARY" agent \
    --head "$AMLD_HEAD_ADDRS" \
    --node-id "$AMLD_NODE_NAME" \
    --target "$AMLD_TARGET" \
    --join-token-file "$dir/join.token" \
    --work-dir "$dir/work" \
    --cpus "$AMLD_CPUS" --memory-mb "$AMLD_MEMORY_MB" --gpus "$AMLD_GPUS" "$@" \
    </dev/null >>"$dir/agent.log" 2>&1 &
echo $! > "$dir/pid"
echo "local-$!"
