#!/usr/bin/env bash
# Runs inside the VM (scripts/demo.sh): stock smbd next to smbd with the
# netfile VFS module, in one boot, one smbd serving both shares. SMB2
# WRITEs (smbclient put) and READs (get) of 8 MiB payloads, 1 and 4
# clients at once, on tmpfs and on XFS on the virtio-blk scratch disk.
# Prints a table: throughput, smbd's system CPU per GiB (all smbd
# processes: the parent's reaped children), and module/stock ratios.
#
#   samba/guest-smb-bench.sh [MiB per client] [rounds]
set -uo pipefail

TOP=${TOP:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=samba/guest-smb.sh
. "$TOP/samba/guest-smb.sh"

MIB=${1:-64}
ROUNDS=${2:-3}
HZ=$(getconf CLK_TCK)

# smbd's system time so far, in ticks: its own and its exited children's
smbd_sys_ticks() {
	awk '{ print $15 + $17 }' "/proc/$SMBD_PID/stat"
}

# One run: @1 clients, op @2 (put|get), share @3; prints "MB/s sys_s_per_GiB".
run_once() {
	local clients=$1 op=$2 share=$3 i t0 t1 s0 s1 pids=()
	s0=$(smbd_sys_ticks)
	t0=$(date +%s.%N)
	for i in $(seq "$clients"); do
		(cd "$D/data" &&
		 if [ "$op" = put ]; then
			smb - "$share" -c "put bench.src bench.$i" > /dev/null
		 else
			smb - "$share" -c "get bench.$i bench.back.$i" > /dev/null
		 fi) &
		pids+=($!)
	done
	wait "${pids[@]}"
	t1=$(date +%s.%N)
	# the children exit when their connection closes; give the parent
	# a moment to reap them so that their time is counted
	sleep 0.5
	s1=$(smbd_sys_ticks)
	awk -v b=$((clients * MIB)) -v t0="$t0" -v t1="$t1" -v s=$((s1 - s0)) -v hz="$HZ" \
		'BEGIN { printf "%.1f %.2f\n", b * 1.048576 / (t1 - t0), s / hz / (b / 1024) }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

bench_fs() {
	local fs=$1 op clients share r mbs sys
	for op in put get; do
		for clients in 1 4; do
			local row="| $fs | $([ $op = put ] && echo WRITE || echo READ) | $clients |"
			local -A m=() c=()
			for share in stock share; do
				local runs=()
				for r in $(seq "$ROUNDS"); do
					runs+=("$(run_once "$clients" "$op" "$share")")
				done
				m[$share]=$(printf '%s\n' "${runs[@]}" | cut -d' ' -f1 | median)
				c[$share]=$(printf '%s\n' "${runs[@]}" | cut -d' ' -f2 | median)
			done
			row+=" ${m[stock]} | ${m[share]} | $(awk -v a="${m[share]}" -v b="${m[stock]}" 'BEGIN { printf "%.2fx", a / b }') |"
			row+=" ${c[stock]} | ${c[share]} | $(awk -v a="${c[share]}" -v b="${c[stock]}" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }') |"
			echo "$row"
		done
	done
}

bench_main() {
	setup_dirs && write_conf && setup_veth || return 1
	start_smbd || return 1
	make_file "$D/data/bench.src" $((MIB << 20)) bench
	echo "# $(smbd --version); $MIB MiB per client in 8 MiB SMB2 requests, median of $ROUNDS"
	echo "| fs | op | clients | stock MB/s | netfile MB/s | ratio | stock smbd sys s/GiB | netfile sys s/GiB | ratio |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
	bench_fs tmpfs
	# the same on XFS on the virtio-blk scratch disk, both shares
	if mkfs.xfs -q -f /dev/vda > /dev/null 2>&1; then
		mkdir -p /tmp/xfs
		mount /dev/vda /tmp/xfs
		mkdir -p /tmp/xfs/share /tmp/xfs/stock
		mount --bind /tmp/xfs/share "$D/share"
		mount --bind /tmp/xfs/stock "$D/stock"
		bench_fs xfs
		umount "$D/share" "$D/stock" /tmp/xfs
	else
		echo "# no mkfs.xfs or scratch disk: XFS rows skipped"
	fi
	echo "# netfile.stats: recvfile bytes $(stat_sum recvfile_bytes)," \
	     "sendfile calls $(stat_sum sendfile_calls), completions $(stat_sum completions)," \
	     "fallbacks $(stat_sum fallbacks)"
	kill "$SMBD_PID"
	wait "$SMBD_PID" 2> /dev/null
	return 0
}

bench_main
