#!/usr/bin/env bash
# Builds every image amld and its tests use, from local material only (no
# registry): the node image (a static amld FROM scratch, which the docker
# provider runs as each node's agent) and the job base image amld/base:cpu
# (Debian bookworm with Python 3 and Open MPI, made with debootstrap from
# the Debian mirror, then `docker import`). An image is rebuilt only when
# what it is made of changed: its amld.content label holds the hash of its
# contents (the binary) or of its recipe (suite, mirror, packages), so a
# second run takes seconds. Needs root (debootstrap, chroot) and a Docker
# Engine.
#
#   NODE_IMAGE (amld/node:latest)  BASE_IMAGE (amld/base:cpu)
# It writes the node image's exact tag to BIN/node/image.
#
#   DEBIAN_MIRROR (http://deb.debian.org/debian)  GO (go)  BIN (./bin)
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
BIN=${BIN:-$PWD/bin}
NODE_IMAGE=${NODE_IMAGE:-amld/node:latest}
BASE_IMAGE=${BASE_IMAGE:-amld/base:cpu}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
BASE_PACKAGES="python3 openmpi-bin"
BASE_RECIPE_VERSION=1 # bump when the steps below change

content_of() {
  docker image inspect --format '{{ index .Config.Labels "amld.content" }}' "$1" 2>/dev/null || true
}

work=$(mktemp -d /var/tmp/amld-images.XXXXXX)
cleanup() {
  if mountpoint -q "$work/base/proc" 2>/dev/null; then umount "$work/base/proc" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The node image: /amld, statically linked (the image has no libc), and /tmp.
mkdir -p "$BIN/node"
CGO_ENABLED=0 $GO build -trimpath -o "$BIN/node/amld" ./cmd/amld
sum=$(sha256sum "$BIN/node/amld" | cut -c1-64)
# Besides NODE_IMAGE, the image is tagged with its content hash, which
# bin/node/image names: tests use exactly the amld they built.
tagged="${NODE_IMAGE%:*}:${sum:0:12}"
if [ "$(content_of "$NODE_IMAGE")" = "$sum" ] && [ "$(content_of "$tagged")" = "$sum" ]; then
  echo "images: $NODE_IMAGE is up to date"
else
  echo "images: building $NODE_IMAGE"
  mkdir -p "$work/node/tmp"
  chmod 1777 "$work/node/tmp"
  install -m 0755 "$BIN/node/amld" "$work/node/amld"
  tar -C "$work/node" --numeric-owner --owner=0 --group=0 -c . |
    docker import \
      --change 'ENTRYPOINT ["/amld"]' \
      --change "LABEL amld.content=$sum" \
      --message "amld node image" - "$tagged" >/dev/null
  docker tag "$tagged" "$NODE_IMAGE"
fi
echo "$tagged" >"$BIN/node/image"

# The job base image.
recipe=$(printf '%s\n' "$BASE_RECIPE_VERSION" "$SUITE" "$MIRROR" "$BASE_PACKAGES" | sha256sum | cut -c1-64)
if [ "$(content_of "$BASE_IMAGE")" = "$recipe" ]; then
  echo "images: $BASE_IMAGE is up to date"
else
  command -v debootstrap >/dev/null || { echo "images: debootstrap is missing (make deps installs it)" >&2; exit 1; }
  echo "images: building $BASE_IMAGE (debootstrap $SUITE, then $BASE_PACKAGES; about a minute)"
  root="$work/base"
  debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  mount -t proc proc "$root/proc"
  chroot "$root" /bin/sh -euc "
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $BASE_PACKAGES >/tmp/apt.log 2>&1 || { tail -20 /tmp/apt.log; exit 1; }
    rm -f /tmp/apt.log
    apt-get clean
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log
  "
  umount "$root/proc"
  : >"$root/etc/resolv.conf"
  tar -C "$root" --numeric-owner -c . |
    docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' \
      --change 'CMD ["/bin/bash"]' \
      --change "LABEL amld.content=$recipe" \
      --message "amld job base image: Debian $SUITE, $BASE_PACKAGES" - "$BASE_IMAGE" >/dev/null
  echo "images: built $BASE_IMAGE"
fi
