#!/usr/bin/env bash
# The main job: build the patched kernel, boot it under QEMU, and run the
# receive-path benchmark in the guest (a loopback TCP peer sends N MiB,
# the receiver writes it to a tmpfs file with each back end), printing a
# table of throughput, receiver system time per GiB, and ratios.
#
#   scripts/demo.sh [--no-build] [-s MiB] [-r rounds] [-m methods]
. "$(dirname "$0")/common.sh"

build=1 args=()
while [ $# -gt 0 ]; do
	case "$1" in
	--no-build) build=0; shift ;;
	*) args+=("$1"); shift ;;
	esac
done
[ ${#args[@]} -gt 0 ] || args=(-s "${DEMO_MIB:-1024}" -r "${DEMO_ROUNDS:-3}")

[ "$build" = 0 ] || "$TOP/scripts/build.sh"
"$TOP/scripts/vm-run.sh" --name demo --timeout 3600 -- \
	sh -c "\"$BUILD/bin/xfer_bench\" -d /tmp $(printf '%q ' "${args[@]}") | tee \"\$VM_OUT/xfer_bench.txt\""
echo
say "results: $BUILD/vm/demo/out/xfer_bench.txt"
cat "$BUILD/vm/demo/out/xfer_bench.txt"
