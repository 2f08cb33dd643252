#!/usr/bin/env bash
# Builds the rootfs of the smoke-test image: Debian's static busybox (sh, httpd,
# wget, nslookup, nc, ...) plus /www/index.html. Usage: build-smoke-rootfs.sh DIR
set -euo pipefail
root=${1:?usage: build-smoke-rootfs.sh DIR}
bb=/bin/busybox
[[ -x $bb ]] || { echo "build-smoke-rootfs: $bb missing (apt-get install busybox-static)" >&2; exit 1; }
if ldd "$bb" >/dev/null 2>&1; then echo "build-smoke-rootfs: $bb is not static" >&2; exit 1; fi
mkdir -p "$root"/{bin,etc,tmp,www,root,var/run}
chmod 1777 "$root/tmp"
install -m 0755 "$bb" "$root/bin/busybox"
for applet in $("$bb" --list); do
  [[ $applet == busybox ]] || ln -sf busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
echo kubetrain-smoke-ok >"$root/www/index.html"
