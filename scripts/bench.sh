#!/usr/bin/env bash
# The Samba-style benchmark: build, boot, run samples/netfile/fsrv's driver
# in the guest (every back end of the sample file server, interleaved,
# several rounds, one boot), then print the table and plot it.
#
#   scripts/bench.sh [--no-build] [--short] [--release] [fsrv bench options]
#
# --release boots a kernel built without the debug options (lockdep,
# KFENCE, DEBUG_VM, fault injection; scripts/build.sh --release) and
# writes fsrv-release.* instead.
#
# Default: 128 MiB per run, 3 rounds, payloads 64k,1m,8m, 1/4/16
# connections, loopback and a veth pair between two network namespaces
# (about 25 minutes under TCG). --short is what scripts/demo.sh runs.
# Output: build/bench/fsrv.txt (table), fsrv.dat, fsrv-write.png,
# fsrv-read.png.
. "$(dirname "$0")/common.sh"

build=1 args=() release=0
while [ $# -gt 0 ]; do
	case "$1" in
	--no-build) build=0; shift ;;
	--release) release=1; shift ;;
	--short) args+=(-s 64 -r 3 -p 1m,8m -c 1,4 -n lo,veth); shift ;;
	*) args+=("$1"); shift ;;
	esac
done

measurement_kernel "$build" "$release"
name=fsrv
[ "$release" = 0 ] || name=fsrv-release
out=$BUILD/bench
mkdir -p "$out"
"$TOP/scripts/vm-run.sh" --name "$name" --timeout 5400 --nic-pair -- \
	sh -c "\"$BUILD/bin/fsrv\" bench -d /tmp/fsrv -D \"\$VM_OUT/$name.dat\" $(printf '%q ' "${args[@]}") | tee \"\$VM_OUT/$name.txt\""
cp "$BUILD/vm/$name/out/$name.txt" "$BUILD/vm/$name/out/$name.dat" "$out/"
"$TOP/scripts/bench-plot.sh" "$out/$name.dat" "$out" || echo "(no plot: gnuplot missing?)"
echo
echo "Targets of the benchmark issue:"
python3 "$TOP/scripts/bench-targets.py" "$out/$name.txt" | tee "$out/$name-targets.txt"
echo
say "table: $out/$name.txt; plots in $out"
