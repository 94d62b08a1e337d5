#!/usr/bin/env bash
# gpu-check.sh: the real-GPU check of amld (docs/gpu.md). On a machine with
# an NVIDIA GPU and driver it
#   1. uses (or builds, with cgo) amld and amlctl in BIN_DIR,
#   2. runs `amld agent --print-inventory` and checks it finds the GPUs
#      nvidia-smi lists, by UUID,
#   3. starts a head on a temporary data dir with a gpu-1 cluster on the local
#      provider and runs short GPU runs through the process runtime:
#      `nvidia-smi -L` with the devices the run was given, a CUDA driver-API
#      probe (python3 + libcuda through ctypes, when python3 is there) that
#      counts the devices CUDA sees under CUDA_VISIBLE_DEVICES, a CPU run that
#      must see none, and two 1-GPU runs at once where the second must wait
#      with a reason naming GPUs;
#   4. prints what it saw, and "GPU CHECK PASSED" or the first failure.
#
# Usage:  scripts/gpu-check.sh [BIN_DIR]        (default: bin/gpu)
# BIN_DIR must hold amld (a cgo build: `make gpu-check-bin`) and amlctl; when
# amld is missing and Go is installed, it is built there first. Go is not
# needed on the GPU machine: build BIN_DIR elsewhere (glibc >= 2.34) and copy
# it. Needs no network. Everything it starts is stopped when it exits.
set -uo pipefail

BIN_DIR=${1:-bin/gpu}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/amld-gpu-check.XXXXXX)
SERVER_PID=
START=$(date +%s)

say() { printf '\n=== %s\n' "$*"; }
fail() {
  printf '\nGPU CHECK FAILED: %s\n' "$*" >&2
  if [ -f "$WORK/server.log" ]; then
    echo "--- last lines of the head's log:" >&2
    tail -n 30 "$WORK/server.log" >&2
  fi
  for f in "$WORK"/data/nodes/*/agent.log; do
    [ -f "$f" ] || continue
    echo "--- last lines of $f:" >&2
    tail -n 30 "$f" >&2
  done
  exit 1
}

cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null
  fi
  # `amld server` leaves local nodes running by design: stop them here.
  for p in "$WORK"/data/nodes/*/pid; do
    [ -f "$p" ] || continue
    pid=$(cat "$p" 2>/dev/null)
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
  done
  sleep 1
  for p in "$WORK"/data/nodes/*/pid; do
    [ -f "$p" ] || continue
    pid=$(cat "$p" 2>/dev/null)
    [ -n "$pid" ] && { kill -KILL -- "-$pid" 2>/dev/null; kill -KILL "$pid" 2>/dev/null; }
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 0. binaries -----------------------------------------------------------
case "$BIN_DIR" in /*) ;; *) BIN_DIR="$PWD/$BIN_DIR" ;; esac
AMLD="$BIN_DIR/amld"
AMLCTL="$BIN_DIR/amlctl"
if [ ! -x "$AMLD" ] || [ ! -x "$AMLCTL" ]; then
  command -v go >/dev/null || fail "$BIN_DIR has no amld/amlctl and Go is not installed: run 'make gpu-check-bin' on a build machine and copy $BIN_DIR here"
  say "building amld (CGO_ENABLED=1) and amlctl into $BIN_DIR"
  mkdir -p "$BIN_DIR"
  (cd "$ROOT" && CGO_ENABLED=1 CGO_CFLAGS="-O2 -g -Wno-deprecated-declarations" go build -ldflags "-s -w" -o "$AMLD" ./cmd/amld) || fail "building amld with cgo"
  (cd "$ROOT" && CGO_ENABLED=0 go build -ldflags "-s -w" -o "$AMLCTL" ./cmd/amlctl) || fail "building amlctl"
fi

say "machine"
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "host:    $(hostname)  kernel $(uname -r)  $(uname -m)"
[ -r /etc/os-release ] && echo "os:      $(. /etc/os-release; echo "$PRETTY_NAME")"
echo "glibc:   $(ldd --version 2>/dev/null | head -n1)"
echo "amld:    $("$AMLD" version 2>&1)  ($AMLD)"
command -v nvidia-smi >/dev/null || fail "nvidia-smi not found: is the NVIDIA driver installed?"
nvidia-smi -L || fail "nvidia-smi -L failed"
nvidia-smi --query-gpu=index,uuid,name,memory.total,driver_version --format=csv || true
SMI_UUIDS=$(nvidia-smi --query-gpu=uuid --format=csv,noheader | tr -d ' ' | sort)
SMI_COUNT=$(printf '%s\n' "$SMI_UUIDS" | grep -c '^GPU-')
[ "$SMI_COUNT" -ge 1 ] || fail "nvidia-smi lists no GPU"

# --- 1. inventory ------------------------------------------------------------
say "amld agent --print-inventory"
"$AMLD" agent --print-inventory | tee "$WORK/inventory.txt" || fail "amld agent --print-inventory failed (a cgo binary needs glibc >= 2.34)"
grep -q "cgo build" "$WORK/inventory.txt" || fail "this amld was built without cgo: it cannot find GPUs (use 'make gpu-check-bin')"
INV_UUIDS=$(grep -o 'GPU-[0-9a-fA-F-]*' "$WORK/inventory.txt" | sort)
[ "$INV_UUIDS" = "$SMI_UUIDS" ] || fail "the agent found GPUs [$(echo $INV_UUIDS)], nvidia-smi lists [$(echo $SMI_UUIDS)]"
echo "OK: the agent finds the $SMI_COUNT GPU(s) nvidia-smi lists, by UUID"

# --- 2. a head with a gpu-1 cluster ----------------------------------------------
say "starting a head (amld server) on $WORK/data"
for _ in 1 2 3 4 5; do
  PORT=$((20000 + RANDOM % 30000))
  "$AMLD" server --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    [ -s "$WORK/data/admin.token" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$SERVER_PID" 2>/dev/null && [ -s "$WORK/data/admin.token" ] && break
  kill -KILL "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=
  rm -rf "$WORK/data"
done
[ -n "$SERVER_PID" ] || fail "the head did not start"
# The head speaks TLS with its cluster CA (docs/cluster.md).
for _ in $(seq 1 100); do [ -s "$WORK/data/tls/ca.crt" ] && break; sleep 0.1; done
export AMLCTL_ADDR="https://127.0.0.1:$PORT" AMLCTL_TOKEN AMLCTL_CA_FILE="$WORK/data/tls/ca.crt"
AMLCTL_TOKEN=$(tr -d '[:space:]' <"$WORK/data/admin.token")
export AMLCTL_CONFIG="$WORK/no-config"
ctl() { timeout 180 "$AMLCTL" "$@"; }
for _ in $(seq 1 100); do ctl compute list >/dev/null 2>&1 && break; sleep 0.1; done
ctl compute create cluster --name gpu --vm-size gpu-1 --max-nodes 1 \
  --idle-seconds-before-scaledown 600 --provider local || fail "creating the gpu cluster"

# --- 3. GPU runs through the process runtime ---------------------------------
say "run 1: amlctl job submit --target gpu --gpus 1 --wait -- nvidia-smi -L (and the env it got)"
ctl job submit --target gpu --gpus 1 --wait -- sh -c \
  'echo "CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES"; echo "NVIDIA_VISIBLE_DEVICES=$NVIDIA_VISIBLE_DEVICES"; nvidia-smi -L' \
  | tee "$WORK/run1.txt"
[ "${PIPESTATUS[0]}" = 0 ] || fail "the nvidia-smi run did not succeed"
GIVEN=$(sed -n 's/^CUDA_VISIBLE_DEVICES=//p' "$WORK/run1.txt")
grep -qx "NVIDIA_VISIBLE_DEVICES=$GIVEN" "$WORK/run1.txt" || fail "NVIDIA_VISIBLE_DEVICES differs from CUDA_VISIBLE_DEVICES"
printf '%s\n' "$SMI_UUIDS" | grep -qx -- "$GIVEN" || fail "the run was given '$GIVEN', not one GPU UUID of this machine"
echo "OK: the run was given $GIVEN"

say "amlctl compute list-nodes gpu"
ctl compute list-nodes gpu

CUDA_PROBE='
import ctypes, os, sys
try:
    cuda = ctypes.CDLL("libcuda.so.1")
except OSError as e:
    print("CUDA probe: libcuda.so.1 not loadable:", e); sys.exit(3)
print("CUDA_VISIBLE_DEVICES=%r" % os.environ.get("CUDA_VISIBLE_DEVICES"))
rc = cuda.cuInit(0)
if rc != 0:
    print("cuInit returned %d (100 = no device visible)" % rc); print("cuda devices: 0"); sys.exit(0)
n = ctypes.c_int(); cuda.cuDeviceGetCount(ctypes.byref(n))
print("cuda devices: %d" % n.value)
for i in range(n.value):
    d = ctypes.c_int(); cuda.cuDeviceGet(ctypes.byref(d), i)
    name = ctypes.create_string_buffer(256); cuda.cuDeviceGetName(name, 256, d)
    mem = ctypes.c_size_t(); cuda.cuDeviceTotalMem_v2(ctypes.byref(mem), d)
    print("  cuda device %d: %s, %d MiB" % (i, name.value.decode(), mem.value >> 20))
'
if command -v python3 >/dev/null; then
  say "run 2: CUDA driver-API probe with --gpus 1 (CUDA must see exactly 1 device)"
  ctl job submit --target gpu --gpus 1 --wait -- python3 -c "$CUDA_PROBE" | tee "$WORK/run2.txt"
  rc=${PIPESTATUS[0]}
  if [ "$rc" = 3 ]; then
    echo "SKIPPED: libcuda.so.1 is not loadable here"
  else
    [ "$rc" = 0 ] || fail "the CUDA probe run failed (exit $rc)"
    grep -qx "cuda devices: 1" "$WORK/run2.txt" || fail "CUDA did not see exactly the 1 device given"
    echo "OK: CUDA sees exactly the device it was given"
    say "run 3: CUDA probe in a CPU run (--gpus 0) on the GPU node: it must see none"
    ctl job submit --target gpu --gpus 0 --wait -- python3 -c "$CUDA_PROBE" | tee "$WORK/run3.txt"
    [ "${PIPESTATUS[0]}" = 0 ] || fail "the CPU probe run failed"
    grep -qx "cuda devices: 0" "$WORK/run3.txt" || fail "a CPU run could see a GPU"
    echo "OK: a CPU run sees no GPU"
  fi
else
  echo "(python3 not found: CUDA probes skipped)"
fi

say "runs 4 and 5: two 1-GPU runs at once on a gpu-1 node; the second must wait for the GPU"
A=$(ctl job submit --target gpu --gpus 1 -- sh -c 'echo "A got $CUDA_VISIBLE_DEVICES"; sleep 6' | sed -n 's/^Submitted run \([^ ]*\) .*/\1/p')
B=$(ctl job submit --target gpu --gpus 1 -- sh -c 'echo "B got $CUDA_VISIBLE_DEVICES"' | sed -n 's/^Submitted run \([^ ]*\) .*/\1/p')
[ -n "$A" ] && [ -n "$B" ] || fail "submitting runs 4 and 5"
# While A holds the node's GPU (placed, then running for 6s), B must be
# queued with a reason that names GPUs.
REASON=
for _ in $(seq 1 50); do
  ctl job show "$B" -o json >"$WORK/b.json" 2>/dev/null
  REASON=$(sed -n 's/^  "reason": "\(.*\)",$/\1/p' "$WORK/b.json" | head -n1)
  case "$REASON" in *GPU*) break ;; esac
  sleep 0.1
done
echo "while $A runs, $B: $REASON"
case "$REASON" in *GPU*) ;; *) fail "the second run does not wait with a reason naming GPUs: '$REASON'" ;; esac
ctl compute list-nodes gpu
for id in "$A" "$B"; do
  for _ in $(seq 1 300); do
    ctl job show "$id" -o json >"$WORK/r.json" 2>/dev/null
    grep -q '"state": "\(Completed\|Failed\|Canceled\)"' "$WORK/r.json" && break
    sleep 0.1
  done
  grep -q '"state": "Completed"' "$WORK/r.json" || fail "run $id did not complete"
  ctl job logs "$id"
done

say "GPU CHECK PASSED in $(($(date +%s) - START))s on $(nvidia-smi --query-gpu=name --format=csv,noheader | sort | uniq -c | sed 's/^ *//' | paste -sd, -) (driver $(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n1))"
