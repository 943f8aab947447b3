#!/bin/bash
# Build the lab's base root filesystem from Debian packages and write it as a tarball.
#   build-base.sh <work-dir> <out.tar> <deb-cache-dir> <mirror> [suite]
# Runs debootstrap (variant minbase), then apt-get inside the chroot with services kept
# from starting (policy-rc.d) and no PostgreSQL cluster created (the images make their own).
set -euo pipefail
work=$1 out=$2 cache=$3 mirror=$4 suite=${5:-trixie}
here=$(cd "$(dirname "$0")" && pwd)
pkgs=$(grep -v '^\s*#' "$here/base.packages" | xargs)
root=$work/rootfs

cleanup() {
  umount "$root/proc" 2>/dev/null || true
  umount "$root/var/cache/apt/archives" 2>/dev/null || true
}
trap cleanup EXIT

rm -rf "$root"
mkdir -p "$root" "$cache"
debootstrap --variant=minbase --components=main --cache-dir="$cache" "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -20 "$work/debootstrap.log" >&2; exit 1; }

printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
mkdir -p "$root/etc/postgresql-common/createcluster.d"
echo 'create_main_cluster = false' >"$root/etc/postgresql-common/createcluster.d/opsdeck-lab.conf"
printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\npath-include /usr/share/locale/locale.alias\n' \
  >"$root/etc/dpkg/dpkg.cfg.d/opsdeck-lab-nodoc"
echo "deb $mirror $suite main" >"$root/etc/apt/sources.list"
mount -t proc proc "$root/proc"
mount --bind "$cache" "$root/var/cache/apt/archives"
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
  sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $pkgs" >"$work/apt.log" 2>&1 ||
  { tail -30 "$work/apt.log" >&2; exit 1; }
cleanup
rm -f "$root/usr/sbin/policy-rc.d"
# PostgreSQL's optional LLVM JIT is a third of the image; the images run with jit = off.
rm -f "$root"/usr/lib/x86_64-linux-gnu/libLLVM*.so* "$root"/usr/lib/x86_64-linux-gnu/libz3.so*
rm -rf "$root"/usr/lib/postgresql/*/lib/llvmjit* "$root"/usr/lib/postgresql/*/lib/bitcode
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log "$root"/usr/share/doc/* "$root"/usr/share/man/*
# nginx and caddy log to the container's stdout/stderr, as the official images do.
ln -sf /dev/stdout "$root/var/log/nginx/access.log"
ln -sf /dev/stderr "$root/var/log/nginx/error.log"
tar --numeric-owner -C "$root" -cf "$out.tmp" . && mv "$out.tmp" "$out"
rm -rf "$root"
