#!/usr/bin/env bash
# Build the image through its test stage with podman (no Docker engine here). No image
# registry is reachable, so the debian:bookworm-slim base is made locally with debootstrap
# from Debian's packages and imported, when podman does not have it yet.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends podman debootstrap >/dev/null
fi
base=localhost/debian:bookworm-slim
if ! podman image exists "$base"; then
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase bookworm "$rootfs" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >/dev/null
  tar -C "$rootfs" -c . | podman import - "$base" >/dev/null
  echo "selfheal: made $base with debootstrap"
fi
# The test stage installs Python packages; lend it this machine's certificate authorities,
# which may include a proxy's that a fresh image does not know.
trust=()
if [ -r /etc/ssl/certs/ca-certificates.crt ]; then
  trust=(--volume /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro --build-arg PIP_CERT=/run/host-ca.crt)
fi
podman build --isolation=chroot --pull=never --build-arg BASE_IMAGE="$base" "${trust[@]}" \
       --target "${TARGET:-test}" -t "selfheal:${TARGET:-test}" .
