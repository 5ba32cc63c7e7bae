#!/usr/bin/env bash
# Runs inside the test VM (see scripts/test.sh): the project's kselftests
# through the installed run_kselftest.sh, then the upstream selftests this
# series must not regress. Everything goes to the console and, as KTAP, to
# $VM_OUT/results.tap for the host to count.
#
#   guest-tests.sh [-t COLLECTION:TEST]... [--no-upstream] [--only-upstream]
#                  [--module TEST_MODULE_KO] [--soak]
#
# --only-upstream runs only the upstream selftests (not ours, not the
# sample's check), so that scripts/upstream-compare.sh can run the same
# list on the unpatched kernel; --module names the lib/test_module.ko
# built for the running kernel (default: the one build.sh put next to the
# upstream splice tests).
#
# --soak sets NETFILE_SOAK=1: the tests that loop run their long versions
# (e.g. a million sends with completions instead of 100k) and the kselftest
# timeout per program goes from 20 minutes to an hour.
. "$(dirname "$0")/common.sh"
set +e

out=${VM_OUT:-/tmp}/results.tap
sel=() upstream=1 ours=1 soak=
test_module=$BUILD/upstream-tests/splice/test_module.ko
while [ $# -gt 0 ]; do
	case "$1" in
	-t) sel+=(-t "$2"); shift 2 ;;
	--no-upstream) upstream=0; shift ;;
	--only-upstream) ours=0; shift ;;
	--module) test_module=$2; shift 2 ;;
	--soak) export NETFILE_SOAK=1; soak=1; shift ;;
	*) die "unknown argument $1" ;;
	esac
done
[ ${#sel[@]} -eq 0 ] || upstream=0

# Tests write scratch files here; tmpfs, so page-cache only.
export NETFILE_TMPDIR=/tmp

run_upstream() {
	local n=0 name script
	# UDP without "-t 1": that would cut the receiver's 2 s to 1 s while
	# the sender still sends for 1 s after starting 0.2 s later, too
	# little slack under TCG (ECONNREFUSED once the receiver is gone).
	local tests=(
		"msg_zerocopy.sh 4 tcp -t 1"
		"msg_zerocopy.sh 6 tcp -t 1"
		"msg_zerocopy.sh 4 udp"
		"msg_zerocopy.sh 6 udp"
	)
	local ip mode
	for ip in 4 6; do
		for mode in 1 2 3; do
			tests+=("io_uring_zerocopy_tx.sh $ip tcp -m $mode -t 1 -n 1")
			tests+=("io_uring_zerocopy_tx.sh $ip udp -m $mode -t 1 -n 32")
		done
	done
	tests+=("splice/default_file_splice_read.sh")
	tests+=("splice/short_splice_read.sh")
	# 32 GiB (hard-coded) over IPv6 loopback into mmap()ed TCP
	# receive: about 3 minutes under TCG.
	tests+=("tcp_mmap -6 -z")
	echo "TAP version 13"
	echo "1..${#tests[@]}"
	cd "$BUILD/upstream-tests" || return
	for name in "${tests[@]}"; do
		n=$((n + 1))
		script=${name%% *}
		echo "# upstream: $name"
		local log rc label try note=
		for try in 1 2; do
			# shellcheck disable=SC2086
			case "$script" in
			splice/short_splice_read.sh)
				label=$name
				log=$(load_test_module && cd splice &&
				      timeout 300 sh "./${script#splice/}" 2>&1)
				;;
			splice/*)
				label=$name
				log=$(cd splice && timeout 300 sh "./${script#splice/}" 2>&1)
				;;
			tcp_mmap)
				label="net/$name (32 GiB over ::1)"
				log=$(run_tcp_mmap ${name#* } 2>&1)
				;;
			*)
				label=net/$name
				log=$(timeout 300 bash "$SRC/tools/testing/selftests/net/$script" ${name#* } 2>&1)
				;;
			esac
			rc=$?
			printf '%s\n' "$log" | sed 's/^/# /'
			# These scripts start the receiver, sleep 0.2 s and start
			# the sender; under TCG the sender may start late and a
			# UDP receiver that has stopped makes it fail with
			# ECONNREFUSED. Such a timing failure gets one rerun, and
			# the result says so.
			[ "$rc" -ne 0 ] && [ "$try" = 1 ] &&
				[[ "$log" == *'Connection refused'* ]] || break
			echo "# rerun after a timing failure (Connection refused)"
			note=" # passed on rerun after ECONNREFUSED"
		done
		if [ "$rc" -eq 0 ]; then
			echo "ok $n upstream: $label${note}"
		else
			echo "not ok $n upstream: $label # exit $rc"
		fi
	done
}

# short_splice_read.sh modprobes test_module unless it is loaded; the
# guest has busybox but no kmod or modules.dep, so load it here.
load_test_module() {
	[ -d /sys/module/test_module/sections ] && return 0
	[ -f "$test_module" ] || { echo "no $test_module"; return 1; }
	busybox insmod "$test_module"
}

# net/tcp_mmap has no driver script: one server, one client with the
# same options. The server accepts for ever; it is stopped once it has
# reported the whole transfer.
run_tcp_mmap() {
	local bin=$BUILD/upstream-tests/tcp_mmap log=/tmp/tcp_mmap-server.log
	local spid rc
	# line-buffered: the report must be in the log before the kill
	stdbuf -oL -eL "$bin" -s "$@" > "$log" 2>&1 &
	spid=$!
	sleep 1
	timeout 900 "$bin" -H ::1 "$@"
	rc=$?
	for _ in $(seq 60); do
		grep -q '^received' "$log" && break
		sleep 1
	done
	kill "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
	cat "$log"
	[ "$rc" -eq 0 ] || return "$rc"
	# the client sends 1 << 35 bytes and exits 0; the server must have
	# received all of them
	grep -q '^received 32768 MB' "$log"
}

# The sample file server's own check: every WRITE back end read back
# through every READ back end, byte for byte, and the ENOSPC drain.
run_samples() {
	local log rc
	echo "TAP version 13"
	echo "1..1"
	log=$(timeout 600 "$BUILD/bin/fsrv" check /tmp/fsrv-check 2>&1)
	rc=$?
	printf '%s\n' "$log" | sed 's/^/# /'
	if [ "$rc" -eq 0 ]; then
		echo "ok 1 sample: fsrv check"
	else
		echo "not ok 1 sample: fsrv check # exit $rc"
	fi
}

# Debian's smbd with the netfile VFS module: smbclient, smbtorture, disk
# full, a signed control and a READ racing an overwrite (samba/guest-smb.sh).
run_samba() {
	"$TOP/samba/guest-smb.sh" --quick
}

{
	if [ "$ours" = 1 ]; then
		"$KST/run_kselftest.sh" ${soak:+--override-timeout 3600} "${sel[@]}"
	fi
	if [ "$upstream" = 1 ]; then
		[ "$ours" = 0 ] || run_samples
		[ "$ours" = 0 ] || run_samba
		run_upstream
	fi
} 2>&1 | tee "$out"
exit 0
