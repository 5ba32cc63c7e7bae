#!/bin/sh
# PID 1 of the test VM. The root is the host's / over read-only 9p; this
# sets up the rest, runs the job (netfile.job=FILE on the kernel command
# line) as a child, writes its exit status to the results share, powers off.
#
# The one script not under "set -euo pipefail": it is PID 1 (dash, which
# has no pipefail), and PID 1 exiting on a failed mount panics the guest
# before the job's status reaches the host. Each step that can fail says
# so on the console; the job scripts are bash and source common.sh
# (set -euo pipefail; guest-tests.sh then counts failures itself).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/tmp TERM=dumb LC_ALL=C.UTF-8

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# devtmpfs has no /dev/fd or /dev/std* links; kselftest's runner logs to /dev/stdout.
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mkdir -p /dev/pts /dev/shm /dev/.hostroot
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
# Keep a view of the host root: the scratch tmpfs below may cover the
# repository (a CI checkout under /tmp).
mount --bind / /dev/.hostroot
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=755 tmpfs /mnt
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	netfile.top=/tmp/* | netfile.top=/run/* | netfile.top=/mnt/*)
		top=${arg#netfile.top=}
		mkdir -p "$top"
		mount --bind "/dev/.hostroot$top" "$top"
		;;
	esac
done
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null

poweroff_now() {
	sync
	echo o > /proc/sysrq-trigger
	sleep 5
	echo b > /proc/sysrq-trigger
}

job=
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	netfile.probe=1) echo NETFILE_PROBE_OK; poweroff_now ;;
	netfile.job=*) job=${arg#netfile.job=} ;;
	esac
done

mkdir -p /mnt/out
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 vmout /mnt/out ||
	echo "guest-init: cannot mount the results share"
export VM_OUT=/mnt/out
# The runner's scratch disk, for tests that need real writeback.
[ -b /dev/vda ] && export NETFILE_SCRATCH_DISK=/dev/vda

hostname netfile-vm
ip link set lo up
ulimit -c 0
echo 1 > /proc/sys/kernel/sysrq

echo "guest-init: $(uname -r), $(nproc) cpus, running $job"
start=$(cut -d' ' -f1 /proc/uptime)
sh -e "$job" < /dev/null
rc=$?
end=$(cut -d' ' -f1 /proc/uptime)
echo "guest-init: job exited with status $rc after $(echo "$start $end" | awk '{printf "%.0f", $2 - $1}') s"
echo "$rc" > /mnt/out/status
poweroff_now
