#!/usr/bin/env bash
# Runs inside the VM (scripts/demo.sh): stock smbd next to smbd with the
# netfile VFS module, in one boot, one smbd serving both shares. SMB2
# WRITEs (smbclient put) and READs (get) of 8 MiB payloads, 1 and 4
# clients at once: over loopback on tmpfs and on XFS on the virtio-blk
# scratch disk, and through the virtio-net pair of scripts/vm-run.sh
# --nic-pair (a real driver: the pages of a READ stay in flight until the
# peer ACKs them, instead of being copied on local delivery) on tmpfs.
# Prints a table: throughput, smbd's system CPU per GiB (all smbd
# processes: the parent's reaped children), and module/stock ratios, the
# last one net of what a connection costs without data (its set-up and
# tear-down, the same for both shares and large under TCG; "-" when the
# data cost less than that, too little to tell).
#
#   samba/guest-smb-bench.sh [MiB per client] [rounds]
#
# SMB_BENCH_OPS (put get), SMB_BENCH_PATHS (loopback virtio-net) and
# SMB_BENCH_FS (tmpfs xfs) pick a part of the table, e.g. the READ rows
# through the NIC with more rounds:
#   scripts/vm-run.sh --nic-pair -- env SMB_BENCH_OPS=get \
#	SMB_BENCH_PATHS=virtio-net SMB_BENCH_FS=tmpfs samba/guest-smb-bench.sh 64 5
set -uo pipefail

TOP=${TOP:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=samba/guest-smb.sh
. "$TOP/samba/guest-smb.sh"

MIB=${1:-64}
ROUNDS=${2:-3}
HZ=$(getconf CLK_TCK)
NIC_MTU=61440

# smbd's system time so far, in ticks: its own and its exited children's
smbd_sys_ticks() {
	awk '{ print $15 + $17 }' "/proc/$SMBD_PID/stat"
}

# Segments TCP has retransmitted so far, in the root netns and in @1 (or -).
retrans_segs() {
	local ns=$1
	{
		cat /proc/net/snmp
		[ "$ns" = - ] || ip netns exec "$ns" cat /proc/net/snmp
	} | awk '/^Tcp:/ && $13 ~ /^[0-9]+$/ { n += $13 } END { print n + 0 }'
}

# One run: @1 clients, op @2 (put|get|ls), share @3, client netns @4 (or -);
# prints "MB/s sys_ticks retransmitted_segments".
run_once() {
	local clients=$1 op=$2 share=$3 ns=$4 i t0 t1 s0 s1 r0 r1 pids=()
	r0=$(retrans_segs "$ns")
	s0=$(smbd_sys_ticks)
	t0=$(date +%s.%N)
	for i in $(seq "$clients"); do
		(cd "$D/data" &&
		 case "$op" in
		 put) smb "$ns" "$share" -c "put bench.src bench.$i" ;;
		 get) smb "$ns" "$share" -c "get bench.$i bench.back.$i" ;;
		 ls) smb "$ns" "$share" -c "ls bench.src" ;;
		 esac > /dev/null) &
		pids+=($!)
	done
	wait "${pids[@]}"
	t1=$(date +%s.%N)
	# the children exit when their connection closes; give the parent
	# a moment to reap them so that their time is counted
	sleep 0.5
	s1=$(smbd_sys_ticks)
	r1=$(retrans_segs "$ns")
	awk -v b=$((clients * MIB)) -v t0="$t0" -v t1="$t1" -v s=$((s1 - s0)) \
		-v r=$((r1 - r0)) \
		'BEGIN { printf "%.1f %d %d\n", b * 1.048576 / (t1 - t0), s, r }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# What @1 connections to share @2 cost smbd without data, in ticks.
declare -A SETUP=()
measure_setup() {
	local share clients r runs
	for share in stock share; do
		for clients in 1 4; do
			runs=()
			for r in 1 2 3; do
				runs+=("$(run_once "$clients" ls "$share" - | cut -d' ' -f2)")
			done
			SETUP[$share.$clients]=$(printf '%s\n' "${runs[@]}" | median)
		done
	done
	echo "# connection without data, smbd sys ticks (1/$HZ s), 1 and 4 clients:" \
	     "stock ${SETUP[stock.1]} ${SETUP[stock.4]}, netfile ${SETUP[share.1]} ${SETUP[share.4]}"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }'; }

# the files the READ rows get, when no WRITE rows run before them
seed_files() {
	local share i
	[[ " ${SMB_BENCH_OPS:-put get} " != *" put "* ]] || return 0
	for share in stock share; do
		for i in 1 2 3 4; do
			[ -f "$D/$share/bench.$i" ] || cp "$D/data/bench.src" "$D/$share/bench.$i"
		done
	done
}

bench_rows() {	# bench_rows PATH FS NETNS
	local path=$1 fs=$2 ns=$3 op clients share gib
	[[ " ${SMB_BENCH_PATHS:-loopback virtio-net} " == *" $path "* ]] || return 0
	[[ " ${SMB_BENCH_FS:-tmpfs xfs} " == *" $fs "* ]] || return 0
	for op in ${SMB_BENCH_OPS:-put get}; do
		for clients in 1 4; do
			local -A m=() c=() net=()
			gib=$(awk -v b=$((clients * MIB)) 'BEGIN { print b / 1024 }')
			# rounds alternate which share goes first, so that drift
			# over the run (the host's load, the page cache) is shared
			local -A runs=()
			local r first second
			for r in $(seq "$ROUNDS"); do
				first=stock second=share
				[ $((r % 2)) = 1 ] || { first=share second=stock; }
				for share in $first $second; do
					runs[$share]+="$(run_once "$clients" "$op" "$share" "$ns")"$'\n'
				done
			done
			local spread=""
			for share in stock share; do
				local ticks
				ticks=$(printf '%s' "${runs[$share]}" | cut -d' ' -f2 | median)
				m[$share]=$(printf '%s' "${runs[$share]}" | cut -d' ' -f1 | median)
				c[$share]=$(awk -v t="$ticks" -v hz="$HZ" -v g="$gib" \
					'BEGIN { printf "%.2f", t / hz / g }')
				net[$share]=$((ticks - ${SETUP[$share.$clients]}))
				spread+=$(printf '%s' "${runs[$share]}" | sort -n | awk -v s="$share" '
					{ v[NR] = $1; r += $3 }
					END { printf " %s %s-%s MB/s, %d retransmitted;", s, v[1], v[NR], r }')
			done
			SPREAD+=("# $path $fs $([ "$op" = put ] && echo WRITE || echo READ) $clients:${spread%;}")
			# data that costs less than a connection: the difference
			# is noise, print no ratio
			local netratio=-
			if [ "${net[stock]}" -ge "${SETUP[stock.$clients]}" ] &&
			   [ "${net[share]}" -ge "${SETUP[share.$clients]}" ]; then
				netratio=$(ratio "${net[share]}" "${net[stock]}")
			fi
			printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
				"$path" "$fs" "$([ $op = put ] && echo WRITE || echo READ)" "$clients" \
				"${m[stock]}" "${m[share]}" "$(ratio "${m[share]}" "${m[stock]}")" \
				"${c[stock]}" "${c[share]}" "$(ratio "${c[share]}" "${c[stock]}")" \
				"$netratio"
		done
	done
}

# The virtio-net pair: eth1 into namespace smbn for the clients, eth0 for
# smbd. The hub has no offloads: a large MTU keeps the per-packet cost of
# software checksums and segmentation down, as in the fsrv benchmark.
setup_nic() {
	[ -e /sys/class/net/eth0 ] && [ -e /sys/class/net/eth1 ] || return 1
	ip netns add smbn &&
	ip link set eth1 netns smbn &&
	ip link set eth0 mtu "$NIC_MTU" &&
	ip addr add 10.79.0.1/24 dev eth0 &&
	ip link set eth0 up &&
	ip -n smbn link set eth1 mtu "$NIC_MTU" &&
	ip -n smbn addr add 10.79.0.2/24 dev eth1 &&
	ip -n smbn link set eth1 up &&
	ip -n smbn link set lo up &&
	ip netns exec smbn sysctl -qw net.ipv4.tcp_no_metrics_save=1
}

bench_main() {
	local nic=0
	# kernel messages (XFS mount notes) stay out of the table
	dmesg -n 1
	setup_dirs && write_conf && setup_veth || return 1
	# every connection starts from the same TCP state: none inherits the
	# ssthresh or RTT that the last run to the same address left behind
	sysctl -qw net.ipv4.tcp_no_metrics_save=1
	if setup_nic; then
		nic=1
		SMB_MORE_INTERFACES=10.79.0.1/24
		write_conf
	fi
	start_smbd || return 1
	make_file "$D/data/bench.src" $((MIB << 20)) bench
	echo "# $(smbd --version); $MIB MiB per client in 8 MiB SMB2 requests, median of $ROUNDS"
	measure_setup
	seed_files
	echo "| path | fs | op | clients | stock MB/s | netfile MB/s | ratio | stock smbd sys s/GiB | netfile sys s/GiB | ratio | ratio net of set-up |"
	echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	SPREAD=()
	bench_rows loopback tmpfs -
	if [ "$nic" = 1 ]; then
		bench_rows virtio-net tmpfs smbn
	else
		echo "# no virtio-net pair (vm-run.sh --nic-pair): NIC rows skipped"
	fi
	# the same on XFS on the virtio-blk scratch disk, both shares
	if mkfs.xfs -q -f /dev/vda > /dev/null 2>&1; then
		mkdir -p /tmp/xfs
		mount /dev/vda /tmp/xfs
		mkdir -p /tmp/xfs/share /tmp/xfs/stock
		mount --bind /tmp/xfs/share "$D/share"
		mount --bind /tmp/xfs/stock "$D/stock"
		seed_files
		bench_rows loopback xfs -
		[ "$nic" = 0 ] || bench_rows virtio-net xfs smbn
		umount "$D/share" "$D/stock" /tmp/xfs
	else
		echo "# no mkfs.xfs or scratch disk: XFS rows skipped"
	fi
	echo "# Spread over the rounds (lowest-highest throughput) and TCP segments"
	echo "# retransmitted in all of them, per row and share:"
	printf '%s\n' "${SPREAD[@]}"
	echo "# netfile.stats: recvfile bytes $(stat_sum recvfile_bytes)," \
	     "sendfile calls $(stat_sum sendfile_calls) (through io_uring $(stat_sum uring_sends))," \
	     "completions $(stat_sum completions), fallbacks $(stat_sum fallbacks)"
	kill "$SMBD_PID"
	wait "$SMBD_PID" 2> /dev/null
	return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	bench_main
fi
