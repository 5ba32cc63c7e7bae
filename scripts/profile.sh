#!/usr/bin/env bash
# Where the file server's CPU time goes: boot the test kernel, run fsrv
# with one back end at a time (8 MiB payloads, one loopback connection,
# 1 GiB) under perf, and print each back end's top kernel symbols for
# the server process.
#
#   scripts/profile.sh [--no-build] [--release] [W:backend|R:backend ...]
#
# --release profiles the kernel without the debug options
# (scripts/build.sh --release) and names the outputs profile-release-*.
# Default back ends: W:rw W:recvfile W:splice R:sendfile R:sendfile-notif.
# Output: build/bench/profile-<W|R>-<backend>.txt (symbols), .comm
# (samples per process), .run (fsrv's table); the perf.data files and the
# guest's kallsyms stay in build/vm/profile/out.
. "$(dirname "$0")/common.sh"

build=1 specs=() release=0
while [ $# -gt 0 ]; do
	case "$1" in
	--no-build) build=0; shift ;;
	--release) release=1; shift ;;
	*) specs+=("$1"); shift ;;
	esac
done
[ ${#specs[@]} -gt 0 ] || specs=(W:rw W:recvfile W:splice R:sendfile R:sendfile-notif)
command -v perf >/dev/null || die "perf not installed (apt install linux-perf)"

measurement_kernel "$build" "$release"
prefix=profile
[ "$release" = 0 ] || prefix=profile-release
out=$BUILD/bench
mkdir -p "$out"
"$TOP/scripts/vm-run.sh" --name profile --timeout 3600 -- \
	bash "$TOP/scripts/guest-profile.sh" "$BUILD/bin/fsrv" "${specs[@]}"
vmout=$BUILD/vm/profile/out
for s in "${specs[@]}"; do
	n=${s/:/-}
	data=$vmout/profile-$n.data
	[ -f "$data" ] || { echo "== $s: no samples"; continue; }
	cp "$vmout/profile-$n.run" "$out/$prefix-$n.run"
	perf report -i "$data" --kallsyms="$vmout/kallsyms" --stdio \
		--sort comm 2>/dev/null | grep -v '^#' | grep -v '^$' \
		> "$out/$prefix-$n.comm" || true
	perf report -i "$data" --kallsyms="$vmout/kallsyms" --stdio \
		--comms fsrv-server --sort sym --percentage relative \
		--percent-limit 0.5 2>/dev/null |
		grep -v '^#' | grep -v '^$' > "$out/$prefix-$n.txt" || true
	echo "== $s: samples per process"
	head -5 "$out/$prefix-$n.comm"
	echo "== $s: fsrv-server, top symbols (% of the server's samples)"
	head -25 "$out/$prefix-$n.txt"
	echo
done
say "profiles: $out/$prefix-*.txt (perf.data and kallsyms in $vmout)"
