#!/usr/bin/env bash
# Runs in the guest (see scripts/profile.sh). perf (the host's binary: the
# guest's root is the host's) samples the whole guest on cpu-clock while
# fsrv moves 8 MiB payloads over loopback with one back end at a time. The
# samples and the guest's kallsyms go to $VM_OUT for the host to report.
#
#   guest-profile.sh FSRV W:backend|R:backend ...   (output in $VM_OUT)
set -euo pipefail
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
	perf record -q -N -B -a -e cpu-clock -F 999 -o /tmp/perf.data -- \
		"$fsrv" bench -d /tmp/fsrv -s 1024 -r 1 -p 8m -c 1 -n lo $sel \
		> "$out/profile-$name.run" 2>&1
	# reported on the host (scripts/profile.sh) against this kallsyms
	mv /tmp/perf.data "$out/profile-$name.data"
done
cat /proc/kallsyms > "$out/kallsyms"
