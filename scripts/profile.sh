#!/usr/bin/env bash
# Where the file server's CPU time goes: boot the test kernel, run fsrv
# with one back end at a time (8 MiB payloads, one loopback connection,
# 256 MiB) under perf, and print each back end's top kernel symbols for
# the server process.
#
#   scripts/profile.sh [--no-build] [W:backend|R:backend ...]
#
# Default back ends: W:rw W:recvfile W:splice R:sendfile R:sendfile-notif.
# Output: build/bench/profile-<W|R>-<backend>.txt (symbols), .comm
# (samples per process), .run (fsrv's table).
. "$(dirname "$0")/common.sh"

build=1 specs=()
while [ $# -gt 0 ]; do
	case "$1" in
	--no-build) build=0; shift ;;
	*) specs+=("$1"); shift ;;
	esac
done
[ ${#specs[@]} -gt 0 ] || specs=(W:rw W:recvfile W:splice R:sendfile R:sendfile-notif)
command -v perf >/dev/null || die "perf not installed (apt install linux-perf)"

[ "$build" = 0 ] || "$TOP/scripts/build.sh"
out=$BUILD/bench
mkdir -p "$out"
"$TOP/scripts/vm-run.sh" --name profile --timeout 3600 -- \
	sh "$TOP/scripts/guest-profile.sh" "$BUILD/bin/fsrv" "${specs[@]}"
for s in "${specs[@]}"; do
	n=${s/:/-}
	cp "$BUILD/vm/profile/out/profile-$n".{txt,comm,run} "$out/" 2>/dev/null || continue
	echo "== $s: samples per process"
	head -8 "$out/profile-$n.comm"
	echo "== $s: fsrv-server, top kernel symbols"
	grep -E '^ +[0-9]' "$out/profile-$n.txt" | head -25
	echo
done
say "profiles: $out/profile-*.txt"
