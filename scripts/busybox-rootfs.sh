#!/bin/sh
# busybox-rootfs.sh DIR: assemble a minimal busybox root filesystem in DIR
# from Debian's busybox-static package (/bin/busybox): the binary, a link
# for every applet, /sbin -> bin, /etc/passwd, /etc/group, /tmp (1777) and
# empty /root, /proc, /sys, /dev. Every timestamp is the epoch, so that
# `kiln import` of it always gives the same digest.
#
# BUSYBOX names another busybox binary (another architecture's, from
# `apt-get download busybox-static:arm64` and `dpkg-deb -x`); its applet
# list is then read from BUSYBOX_LIST (default: the host's /bin/busybox of
# the same Debian release) when it cannot run here.
set -eu
dir=${1:?usage: busybox-rootfs.sh DIR}
bb=${BUSYBOX:-/bin/busybox}
list=${BUSYBOX_LIST:-$bb}
if [ ! -f "$bb" ]; then
	echo "busybox-rootfs.sh: $bb is missing: apt-get install busybox-static" >&2
	exit 1
fi
if ! "$bb" --list >/dev/null 2>&1; then
	list=${BUSYBOX_LIST:-/bin/busybox}
fi
if [ ! -x "$list" ] || ! "$list" --list >/dev/null 2>&1; then
	echo "busybox-rootfs.sh: $list is not a static busybox: apt-get install busybox-static" >&2
	exit 1
fi
rm -rf "$dir"
mkdir -p "$dir/bin" "$dir/etc" "$dir/tmp" "$dir/root" "$dir/proc" "$dir/sys" "$dir/dev"
cp "$bb" "$dir/bin/busybox"
for a in $("$list" --list); do
	[ "$a" = busybox ] || ln -s busybox "$dir/bin/$a"
done
ln -s bin "$dir/sbin"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
chmod 1777 "$dir/tmp"
chmod 700 "$dir/root"
chmod 755 "$dir" "$dir/bin" "$dir/etc" "$dir/proc" "$dir/sys" "$dir/dev"
chmod 644 "$dir/etc/passwd" "$dir/etc/group"
find "$dir" -exec touch -h -d @0 {} +
