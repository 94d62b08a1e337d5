#!/usr/bin/env bash
# Installs what amld's tests need on a fresh Debian machine, once: Python 3
# for the example job, iproute2 for the multi-head tests. Go modules come through the module proxy.
set -euo pipefail
need=()
command -v python3 >/dev/null || need+=(python3)
# The multi-head tests put each head in a network namespace (ip netns).
command -v ip >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing ${need[*]}; run as root or install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
go mod download
