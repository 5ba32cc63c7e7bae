#!/usr/bin/env bash
# The main job: build the patched kernel, boot it under QEMU, and run the
# Samba-style benchmark in the guest: samples/netfile/fsrv serving SMB2-like
# WRITE and READ requests with every back end (read/write through a buffer,
# the splice pipe pair, recvfile, io_uring with the pipe-less splice, and
# the after-ACK completions), interleaved, in one boot. Prints the table
# of throughput, server system time per GiB, syscalls per request and
# ratios, and plots it under build/bench/. Then, in a second boot, Debian's
# own smbd with and without the netfile VFS module (samba/), side by side:
# 8 MiB SMB2 WRITEs and READs, 1 and 4 clients, tmpfs and XFS.
#
#   scripts/demo.sh [--no-build] [fsrv bench options]   (default: --short)
#   scripts/demo.sh --xfer [--no-build] [-s MiB] [-r rounds]
#       the single-stream receive benchmark (xfer_bench) instead
. "$(dirname "$0")/common.sh"

build=1 xfer=0 args=()
while [ $# -gt 0 ]; do
	case "$1" in
	--no-build) build=0; shift ;;
	--xfer) xfer=1; shift ;;
	*) args+=("$1"); shift ;;
	esac
done

if [ "$xfer" = 0 ]; then
	[ ${#args[@]} -gt 0 ] || args=(--short)
	[ "$build" = 1 ] || args=(--no-build "${args[@]}")
	"$TOP/scripts/bench.sh" "${args[@]}"
	# Then Debian's smbd, stock next to the netfile VFS module, in one
	# boot (samba/guest-smb-bench.sh).
	[ "$build" = 0 ] || "$TOP/scripts/samba-build.sh"
	mkdir -p "$BUILD/bench"
	"$TOP/scripts/vm-run.sh" --name smb-bench --timeout 3600 --nic-pair -- \
		sh -c "samba/guest-smb-bench.sh ${DEMO_SMB_MIB:-64} ${DEMO_SMB_ROUNDS:-1} | tee \"\$VM_OUT/samba.txt\""
	cp "$BUILD/vm/smb-bench/out/samba.txt" "$BUILD/bench/samba.txt"
	echo
	say "Samba: stock smbd vs smbd with vfs_netfile ($BUILD/bench/samba.txt)"
	cat "$BUILD/bench/samba.txt"
	exit 0
fi

[ ${#args[@]} -gt 0 ] || args=(-s "${DEMO_MIB:-1024}" -r "${DEMO_ROUNDS:-3}")
[ "$build" = 0 ] || "$TOP/scripts/build.sh"
"$TOP/scripts/vm-run.sh" --name demo --timeout 3600 -- \
	sh -c "\"$BUILD/bin/xfer_bench\" -d /tmp $(printf '%q ' "${args[@]}") | tee \"\$VM_OUT/xfer_bench.txt\""
echo
say "results: $BUILD/vm/demo/out/xfer_bench.txt"
cat "$BUILD/vm/demo/out/xfer_bench.txt"
