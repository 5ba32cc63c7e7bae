#!/usr/bin/env bash
# Boot the built kernel under QEMU with the host root shared read-only over
# 9p, run one command as PID 1's child, power off, and exit with the
# command's status. Fails if the console shows a kernel warning, BUG, lockdep,
# KASAN/KFENCE report, Oops or panic, or if the wall-clock limit is hit.
#
#   scripts/vm-run.sh [--timeout SEC] [--smp N] [--mem SIZE] [--name NAME]
#                     [--nic-pair] -- CMD [ARGS...]
#
# --nic-pair adds two virtio-net ports (eth0, eth1) that QEMU joins with a
# hub: a network path through a real driver, for the benchmark.
#
# The command runs with cwd = the repo, a writable tmpfs at /tmp and the
# directory $VM_OUT (shared back to the host as build/vm/NAME/out).
. "$(dirname "$0")/common.sh"

timeout_s=1800 smp=2 mem=4G name=run nic_pair=0
while [ $# -gt 0 ]; do
	case "$1" in
	--timeout) timeout_s=$2; shift 2 ;;
	--smp) smp=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--name) name=$2; shift 2 ;;
	--nic-pair) nic_pair=1; shift ;;
	--) shift; break ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || die "usage: $0 [--timeout SEC] [--smp N] [--mem SIZE] [--name NAME] -- CMD..."

KERNEL=${KERNEL:-$OBJ/arch/x86/boot/bzImage}
[ -f "$KERNEL" ] || die "no kernel at $KERNEL: run scripts/build.sh"

run_dir=$BUILD/vm/$name
rm -rf "$run_dir"; mkdir -p "$run_dir/out"
console=$run_dir/console.log
# A sparse scratch disk (/dev/vda in the guest) for tests that need real
# writeback: page cache that memory pressure can clean and reclaim.
truncate -s "${VM_SCRATCH_SIZE:-2G}" "$run_dir/scratch.img"
{
	printf 'cd %q\n' "$TOP"
	printf '%q ' "$@"; printf '\n'
} > "$run_dir/cmd"

nics=()
if [ "$nic_pair" = 1 ]; then
	nics=(-netdev hubport,id=hp0,hubid=0 -device virtio-net-pci,netdev=hp0
	      -netdev hubport,id=hp1,hubid=0 -device virtio-net-pci,netdev=hp1)
fi

qemu_base() {
	local accel=$1 out=$2 init_arg=$3
	local -a a=(qemu-system-x86_64 -machine q35 -smp "$smp" -m "$mem"
		-display none -vga none -monitor none -serial stdio -no-reboot
		-kernel "$KERNEL"
		-fsdev local,id=root,path=/,security_model=none,readonly=on,multidevs=remap
		-device virtio-9p-pci,fsdev=root,mount_tag=/dev/root
		-fsdev "local,id=out,path=$out,security_model=none"
		-device virtio-9p-pci,fsdev=out,mount_tag=vmout
		-drive "file=$out/../scratch.img,if=virtio,format=raw,cache=unsafe,discard=unmap"
		"${nics[@]}"
		-append "root=/dev/root rootfstype=9p rootflags=trans=virtio,version=9p2000.L,msize=262144,cache=loose ro console=ttyS0 panic=-1 loglevel=6 nokaslr $init_arg")
	if [ "$accel" = kvm ]; then
		a+=(-accel kvm -cpu host)
	else
		a+=(-accel tcg,thread=multi -cpu max)
	fi
	printf '%s\n' "${a[@]}"
}

# KVM only if /dev/kvm really boots a stock kernel; PVM's /dev/kvm hangs at
# "Decompressing Linux". The answer is cached per host boot and kernel.
pick_accel() {
	if [ -n "${VM_ACCEL:-}" ]; then echo "$VM_ACCEL"; return; fi
	[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo tcg; return; }
	local key cache=$BUILD/vm/kvm-probe
	key="$(cat /proc/sys/kernel/random/boot_id) $(stat -c %Y "$KERNEL")"
	if [ -f "$cache" ] && [ "$(head -1 "$cache")" = "$key" ]; then
		tail -1 "$cache"; return
	fi
	local pdir=$BUILD/vm/probe result=tcg
	rm -rf "$pdir"; mkdir -p "$pdir/out"
	truncate -s 64M "$pdir/scratch.img"
	mapfile -t q < <(qemu_base kvm "$pdir/out" "init=$TOP/scripts/guest-init.sh netfile.probe=1")
	if timeout -k 2 20 "${q[@]}" < /dev/null > "$pdir/console.log" 2>&1 &&
	   grep -q NETFILE_PROBE_OK "$pdir/console.log"; then
		result=kvm
	fi
	printf '%s\n%s\n' "$key" "$result" > "$cache"
	echo "$result"
}

accel=$(pick_accel)
mapfile -t qemu < <(qemu_base "$accel" "$run_dir/out" "init=$TOP/scripts/guest-init.sh netfile.top=$TOP netfile.job=$run_dir/cmd")
say "booting $(basename "$KERNEL") ($accel, $smp cpus, $mem, limit ${timeout_s}s); console: $console"

set +e
timeout -k 10 "$timeout_s" "${qemu[@]}" < /dev/null 2>&1 | tee "$console" |
	if [ -n "${VM_QUIET:-}" ]; then cat > /dev/null; else cat; fi
qrc=${PIPESTATUS[0]}
set -e

rc=0
if [ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ]; then
	say "FAIL: guest killed after ${timeout_s}s wall-clock limit"
	rc=124
elif [ ! -f "$run_dir/out/status" ]; then
	say "FAIL: guest ended without reporting a status (qemu exit $qrc)"
	rc=125
else
	rc=$(cat "$run_dir/out/status")
fi

if ! "$TOP/scripts/console-check.sh" "$console"; then
	[ "$rc" -ne 0 ] || rc=126
fi
exit "$rc"
