#!/usr/bin/env bash
# The Samba-style benchmark: build, boot, run samples/netfile/fsrv's driver
# in the guest (every back end of the sample file server, interleaved,
# several rounds, one boot), then print the table and plot it.
#
#   scripts/bench.sh [--no-build] [--short] [fsrv bench options]
#
# Default: 128 MiB per run, 3 rounds, payloads 64k,1m,8m, 1/4/16
# connections, loopback and a veth pair between two network namespaces
# (about 25 minutes under TCG). --short is what scripts/demo.sh runs.
# Output: build/bench/fsrv.txt (table), fsrv.dat, fsrv-write.png,
# fsrv-read.png.
. "$(dirname "$0")/common.sh"

build=1 args=()
while [ $# -gt 0 ]; do
	case "$1" in
	--no-build) build=0; shift ;;
	--short) args+=(-s 64 -r 3 -p 1m,8m -c 1,4 -n lo,veth); shift ;;
	*) args+=("$1"); shift ;;
	esac
done

[ "$build" = 0 ] || "$TOP/scripts/build.sh"
out=$BUILD/bench
mkdir -p "$out"
"$TOP/scripts/vm-run.sh" --name bench --timeout 5400 -- \
	sh -c "\"$BUILD/bin/fsrv\" bench -d /tmp/fsrv -D \"\$VM_OUT/fsrv.dat\" $(printf '%q ' "${args[@]}") | tee \"\$VM_OUT/fsrv.txt\""
cp "$BUILD/vm/bench/out/fsrv.txt" "$BUILD/vm/bench/out/fsrv.dat" "$out/"
"$TOP/scripts/bench-plot.sh" "$out/fsrv.dat" "$out" || echo "(no plot: gnuplot missing?)"
echo
say "table: $out/fsrv.txt; plots: $out/fsrv-write.png $out/fsrv-read.png"
