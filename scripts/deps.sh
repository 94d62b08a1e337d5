#!/usr/bin/env bash
# Installs what amld's tests need on a fresh Debian machine, once: Python 3
# for the example job, Open MPI for the MPI runs, debootstrap for `make
# images`. Go modules come through the module proxy. (The Docker Engine
# comes with the machine.)
set -euo pipefail
need=()
command -v python3 >/dev/null || need+=(python3)
# gcc: cgo, for the NVML GPU inventory (github.com/NVIDIA/go-nvml) and its tests.
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v debootstrap >/dev/null || need+=(debootstrap) # make images
# Open MPI (mpirun, orted) and mpicc for the MPI tests.
command -v mpirun >/dev/null || need+=(openmpi-bin)
command -v mpicc >/dev/null || need+=(libopenmpi-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing ${need[*]}; run as root or install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${need[@]}" >/dev/null
fi
go mod download
