#!/usr/bin/env bash
# Installs what amld's tests need on a fresh Debian machine, once: Python 3
# for the example job, Open MPI for the MPI runs, debootstrap for `make
# images`, OpenSSH's server for the attach tests, iproute2 for the
# multi-head tests. Go modules come through the module proxy. (The Docker
# Engine comes with the machine.)
set -euo pipefail
need=()
command -v python3 >/dev/null || need+=(python3)
# gcc: cgo, for the NVML GPU inventory (github.com/NVIDIA/go-nvml) and its tests.
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v debootstrap >/dev/null || need+=(debootstrap) # make images
# OpenSSH's sshd and ssh-keygen: the attach tests run a real sshd.
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
# Open MPI (mpirun, orted) and mpicc for the MPI tests.
command -v mpirun >/dev/null || need+=(openmpi-bin)
command -v mpicc >/dev/null || need+=(libopenmpi-dev)
# The multi-head tests put each head in a network namespace (ip netns).
command -v ip >/dev/null || need+=(iproute2)
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
