#!/bin/sh
# Runs in the guest (see scripts/profile.sh). perf (the host's binary: the
# guest's root is the host's) samples the whole guest on cpu-clock while
# fsrv moves 8 MiB payloads over loopback with one back end at a time; the
# report keeps the server process (fsrv-server and its io-wq workers).
#
#   guest-profile.sh FSRV W:backend|R:backend ...   (output in $VM_OUT)
set -u
fsrv=$1 out=${VM_OUT:?}
shift
for spec in "$@"; do
	op=${spec%%:*} b=${spec#*:}
	if [ "$op" = W ]; then
		sel="-W $b -R none"
	else
		sel="-W none -R $b"
	fi
	name=$op-$b
	# shellcheck disable=SC2086
	perf record -q -N -B -a -e cpu-clock -F 499 -o /tmp/perf.data -- \
		"$fsrv" bench -d /tmp/fsrv -s 256 -r 1 -p 8m -c 1 -n lo $sel \
		> "$out/profile-$name.run" 2>&1
	perf report -i /tmp/perf.data --stdio --sort comm 2>/dev/null |
		grep -v '^#' | grep -v '^$' > "$out/profile-$name.comm"
	perf report -i /tmp/perf.data --stdio --comms fsrv-server \
		--sort sym --percent-limit 0.7 2>/dev/null |
		grep -v '^$' > "$out/profile-$name.txt"
	rm -f /tmp/perf.data
done
