#!/usr/bin/env bash
# Where the file server's CPU time goes: boot the test kernel, run fsrv
# with one back end at a time (8 MiB payloads, one loopback connection,
# 1 GiB) under perf, and print each back end's top kernel symbols for
# the server process.
#
#   scripts/profile.sh [--no-build] [--release] [W:backend|R:backend ...]
#   scripts/profile.sh [--no-build] [--release] --samba [MiB]
#
# --samba profiles Debian's smbd instead (samba/guest-smb-profile.sh): one
# smbclient put of MiB (default 256) in 8 MiB SMB2 WRITEs to the share
# without the module, then to the share with it; output
# build/bench/profile-smbd-{stock,share}.{txt,comm}.
# --release profiles the kernel without the debug options
# (scripts/build.sh --release) and names the outputs profile-release-*.
# Default back ends: W:rw W:recvfile W:splice R:sendfile R:sendfile-notif.
# Output: build/bench/profile-<W|R>-<backend>.txt (symbols), .comm
# (samples per process), .run (fsrv's table); the perf.data files and the
# guest's kallsyms stay in build/vm/profile/out.
. "$(dirname "$0")/common.sh"

build=1 specs=() release=0 samba=0
while [ $# -gt 0 ]; do
	case "$1" in
	--no-build) build=0; shift ;;
	--release) release=1; shift ;;
	--samba) samba=1; shift ;;
	*) specs+=("$1"); shift ;;
	esac
done
[ ${#specs[@]} -gt 0 ] || [ "$samba" = 1 ] || specs=(W:rw W:recvfile W:splice R:sendfile R:sendfile-notif)
command -v perf >/dev/null || die "perf not installed (apt install linux-perf)"

measurement_kernel "$build" "$release"
prefix=profile
[ "$release" = 0 ] || prefix=profile-release
out=$BUILD/bench
mkdir -p "$out"

# report NAME DATA COMM: samples per process, then COMM's top symbols
report() {
	local name=$1 data=$2 comm=$3 kallsyms
	kallsyms=$(dirname "$data")/kallsyms
	perf report -i "$data" --kallsyms="$kallsyms" --stdio \
		--sort comm 2>/dev/null | grep -v '^#' | grep -v '^$' \
		> "$out/$prefix-$name.comm" || true
	perf report -i "$data" --kallsyms="$kallsyms" --stdio \
		--comms "$comm" --sort sym --percentage relative \
		--percent-limit 0.5 2>/dev/null |
		grep -v '^#' | grep -v '^$' > "$out/$prefix-$name.txt" || true
	echo "== $name: samples per process"
	sed -n 1,5p "$out/$prefix-$name.comm"
	echo "== $name: $comm, top symbols (% of its samples)"
	sed -n 1,25p "$out/$prefix-$name.txt"
	echo
}

if [ "$samba" = 1 ]; then
	[ "$build" = 0 ] || "$TOP/scripts/samba-build.sh"
	"$TOP/scripts/vm-run.sh" --name smb-profile --timeout 3600 -- \
		samba/guest-smb-profile.sh "${specs[@]}"
	for share in stock share; do
		report "smbd-$share" "$BUILD/vm/smb-profile/out/smb-profile-$share.data" smbd
	done
	say "profiles: $out/$prefix-smbd-*.txt"
	exit 0
fi
"$TOP/scripts/vm-run.sh" --name profile --timeout 3600 -- \
	bash "$TOP/scripts/guest-profile.sh" "$BUILD/bin/fsrv" "${specs[@]}"
vmout=$BUILD/vm/profile/out
for s in "${specs[@]}"; do
	n=${s/:/-}
	data=$vmout/profile-$n.data
	[ -f "$data" ] || { echo "== $s: no samples"; continue; }
	cp "$vmout/profile-$n.run" "$out/$prefix-$n.run"
	report "$n" "$data" fsrv-server
done
say "profiles: $out/$prefix-*.txt (perf.data and kallsyms in $vmout)"
