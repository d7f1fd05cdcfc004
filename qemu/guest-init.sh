#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# PID 1 of the xdpguard test VM. The root file system is the host's, shared
# read-only over 9p; give the guest its own writable /tmp, /run and /var
# directories, the kernel file systems, then run the command qemu/run.sh wrote to
# the output share and report its exit status there.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug
mount -t bpf bpf /sys/fs/bpf
# XGREPO (from the kernel command line) is the repository. If it lives under
# a directory that gets a tmpfs here (CI may clone into /tmp), hold it on a
# bind mount and move it back on top of the tmpfs.
held=
for d in /tmp /run /var/tmp /var/log /var/lib; do
	case "$XGREPO/" in
	"$d"/*) mount --bind "$XGREPO" /mnt && held=1 ;;
	esac
	mount -t tmpfs -o mode=0755 tmpfs "$d"
	if [ -n "$held" ]; then
		mkdir -p "$XGREPO"
		mount --move /mnt "$XGREPO"
		held=
	fi
done
chmod 1777 /tmp /var/tmp
mkdir -p /run/xgout /run/netns /var/lib/dhcp
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 xgout /run/xgout
ip link set lo up
hostname xdpguard-vm 2>/dev/null

# The command's output goes to the console, which run.sh shows.
sh /run/xgout/cmd.sh </dev/null
rc=$?

dmesg >/run/xgout/dmesg.txt
echo "$rc" >/run/xgout/exit-code
sync
umount /run/xgout
# reboot(2) directly: there is no init system to ask. With -no-reboot,
# QEMU exits.
exec busybox reboot -f
