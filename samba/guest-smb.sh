#!/usr/bin/env bash
# Runs inside the test VM (scripts/guest-tests.sh): Debian's own smbd with
# the netfile VFS module (build/samba/netfile.so), on loopback and across
# a veth pair into a network namespace, driven by Debian's smbclient and
# smbtorture. Prints KTAP.
#
#   samba/guest-smb.sh [--quick]
#
# What each test shows:
#  - put/get of 1 byte to 64 MiB, over loopback and veth, byte-exact;
#  - the module's counters: WRITE payloads went through recvfile(2), READs
#    through sendfile(2) with a completion for every call;
#  - a signed connection (the control) takes no recvfile path;
#  - disk full on a 4 MiB tmpfs: NT_STATUS_DISK_FULL, the rest of the
#    payload drained, and the next request on the connection still works;
#  - strace of smbd: the WRITE payload is syscall 474's (recvfile) return
#    values, the READ sendfile()'s, and no read-type call carried it;
#  - smbtorture smb2.rw; smb2.read, smb2.compound (WRITEs in compounds,
#    which must not take the recvfile path) and smb2.compound_async, each
#    compared with the same suite on the share without the module;
#  - a guest connection (smbd acting as nobody): the module's lock file is
#    still usable, so READs are protected and nothing falls back;
#  - a server-side copy (scopy, smbtorture smb2.ioctl.copy_chunk_*) waits
#    for a locked destination range as a WRITE does;
#  - a WRITE whose range stays locked longer than "netfile:lock wait
#    limit": NT_STATUS_IO_TIMEOUT, the payload drained, the connection in
#    sync;
#  - a READ racing an overwrite of the same range from another connection,
#    with netem delay (and, once, loss: retransmissions) on the veth: the
#    reader gets the old bytes or the new ones, never a mix.
set -uo pipefail

TOP=${TOP:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${BUILD:-$TOP/build}
SO=$BUILD/samba/netfile.so
VFSDIR=/usr/lib/x86_64-linux-gnu/samba/vfs
D=/tmp/smb
PORT=445
PW=netfile
LOCK_WAIT_LIMIT=15	# seconds (the module's default is 60)
quick=0
[ "${1:-}" = --quick ] && quick=1

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n samba: $*"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n samba: $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }
log() { sed 's/^/# /'; }

# A file of @2 bytes of a pattern named by @3 (different seeds differ in
# every 8-byte word).
make_file() {
	python3 - "$1" "$2" "$3" <<-'EOF'
	import sys, hashlib
	path, size, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3]
	block = b"".join(hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(2048))
	with open(path, "wb") as f:
	    while size > 0:
	        f.write(block[:size])
	        size -= len(block[:size])
	EOF
}

smb() {	# smb [netns] share commands...
	local ns=$1 share=$2; shift 2
	local host=127.0.0.1
	local -a pre=()
	case "$ns" in
	smbc) host=10.99.0.1 ;;	# the veth pair (setup_veth)
	smbn) host=10.79.0.1 ;;	# the virtio-net pair (samba/guest-smb-bench.sh)
	esac
	[ "$ns" = - ] || pre=(ip netns exec "$ns")
	"${pre[@]}" smbclient "//$host/$share" -p "$PORT" -U "root%$PW" \
		-s "$D/client.conf" -m SMB3 "$@" 2>&1
}

# Sum of field @1 over the lines the module appended to netfile.stats.
stat_sum() {
	local f=$1
	[ -f "$D/lock/netfile.stats" ] || { echo 0; return; }
	sed -n "s/.* $f=\([0-9]*\).*/\1/p" "$D/lock/netfile.stats" |
		awk '{ s += $1 } END { printf "%.0f\n", s }'
}

setup_dirs() {
	rm -rf "$D"
	mkdir -p "$D"/{lock,state,cache,pid,private,ncalrpc,share,eqshare,stock,tiny,vfs,data,gshare}
	chmod 1777 "$D/gshare"
	mount -t tmpfs -o size=4m tmpfs "$D/tiny"
	# smbd loads modules only from its vfs directory: lay a copy with
	# ours over it (the root file system is read-only here)
	cp -a "$VFSDIR/." "$D/vfs/"
	cp "$SO" "$D/vfs/netfile.so"
	mount --bind "$D/vfs" "$VFSDIR"
}

write_conf() {
	cat > "$D/smb.conf" <<-EOF
	[global]
	  smb ports = $PORT
	  interfaces = lo 10.99.0.1/24 ${SMB_MORE_INTERFACES:-}
	  bind interfaces only = yes
	  disable netbios = yes
	  lock directory = $D/lock
	  state directory = $D/state
	  cache directory = $D/cache
	  pid directory = $D/pid
	  private dir = $D/private
	  ncalrpc dir = $D/ncalrpc
	  passdb backend = tdbsam:$D/private/passdb.tdb
	  map to guest = bad user
	  load printers = no
	  printing = bsd
	  printcap name = /dev/null
	  disable spoolss = yes
	  log file = $D/log.%m
	  log level = 1
	  min receivefile size = 16384
	  use sendfile = yes
	  aio read size = 0
	  server multi channel support = no
	  guest account = nobody
	  netfile:lock wait limit = $LOCK_WAIT_LIMIT
	[share]
	  path = $D/share
	  read only = no
	  vfs objects = netfile
	[eqshare]
	  path = $D/eqshare
	  read only = no
	  vfs objects = netfile
	  netfile:io_uring = no
	[gshare]
	  path = $D/gshare
	  read only = no
	  guest ok = yes
	  guest only = yes
	  vfs objects = netfile
	[tiny]
	  path = $D/tiny
	  read only = no
	  vfs objects = netfile
	[stock]
	  path = $D/stock
	  read only = no
	EOF
	cat > "$D/client.conf" <<-EOF
	[global]
	  client min protocol = SMB3
	  smb ports = $PORT
	EOF
}

setup_veth() {
	ip netns add smbc
	ip link add smbv0 type veth peer name smbv1
	ip link set smbv1 netns smbc
	ip addr add 10.99.0.1/24 dev smbv0
	ip link set smbv0 up
	ip -n smbc addr add 10.99.0.2/24 dev smbv1
	ip -n smbc link set smbv1 up
	ip -n smbc link set lo up
}

start_smbd() {
	printf '%s\n%s\n' "$PW" "$PW" | pdbedit -s "$D/smb.conf" -a -t -u root > /dev/null 2>&1
	# its own session: smbd signals its process group when it exits
	setsid smbd -F --no-process-group -s "$D/smb.conf" > "$D/smbd.out" 2>&1 &
	SMBD_PID=$!
	for _ in $(seq 100); do
		smb - share -c 'ls' > /dev/null && return 0
		sleep 0.3
	done
	log < "$D/smbd.out"
	return 1
}

# put then get @2 bytes over @1 (netns or -), compare.
roundtrip() {
	local ns=$1 size=$2 share=${3:-share} name
	name=rt-$size-${ns//-/lo}
	make_file "$D/data/$name" "$size" "$name" &&
	(cd "$D/data" && smb "$ns" "$share" -c "put $name; get $name $name.back") | log &&
	cmp "$D/data/$name" "$D/data/$name.back" &&
	cmp "$D/data/$name" "$D/$share/$name"
}

# A 4 MiB share, an 8 MiB WRITE: DISK_FULL, then the same connection
# writes and reads a small file correctly.
disk_full_stays_in_sync() {
	local out
	make_file "$D/data/big" $((8 << 20)) big
	make_file "$D/data/small" 70000 small
	out=$(cd "$D/data" && smb - tiny -c 'put big big; del big; put small small; get small small.back')
	printf '%s\n' "$out" | log
	[[ "$out" == *NT_STATUS_DISK_FULL* ]] &&
	cmp "$D/data/small" "$D/data/small.back" &&
	cmp "$D/data/small" "$D/tiny/small" &&
	[ "$(stat_sum drained)" -gt 0 ]
}

# A guest connection: smbd acts as nobody when it serves it, and the
# module opens a lock-file descriptor for every READ it protects.
guest_user() {
	local f=$D/data/guest fb0 co0 sc0 fb co sc out
	fb0=$(stat_sum fallbacks) co0=$(stat_sum completions)
	sc0=$(stat_sum sendfile_calls)
	make_file "$f" $((8 << 20)) guest
	out=$(cd "$D/data" && smbclient //127.0.0.1/gshare -p "$PORT" -N \
		-s "$D/client.conf" -m SMB3 -c 'put guest; get guest guest.back' 2>&1)
	printf '%s\n' "$out" | log
	fb=$(($(stat_sum fallbacks) - fb0)) co=$(($(stat_sum completions) - co0))
	sc=$(($(stat_sum sendfile_calls) - sc0))
	echo "# as $(stat -c %U "$D/gshare/guest"): sendfile calls $sc, completions $co, fallbacks $fb"
	cmp "$f" "$f.back" && cmp "$f" "$D/gshare/guest" &&
	[ "$(stat -c %U "$D/gshare/guest")" = nobody ] &&
	[ "$sc" -gt 0 ] && [ "$co" = "$sc" ] && [ "$fb" = 0 ] &&
	[ -z "$(grep -h 'netfile: cannot open' "$D"/log.* 2> /dev/null || true)" ]
}

# Hold a POSIX lock on the whole lock file for @1 seconds, in the
# background ($HOLDER); it conflicts with every OFD lock of the module, as
# a READ in flight does with a write. Returns once the lock is held.
hold_lockfile() {
	rm -f "$D/locked"
	python3 - "$D/lock/netfile.lock" "$D/locked" "$1" <<-'EOF' &
	import fcntl, sys, time
	f = open(sys.argv[1], "r+")
	fcntl.lockf(f, fcntl.LOCK_EX)
	open(sys.argv[2], "w").close()
	time.sleep(float(sys.argv[3]))
	EOF
	HOLDER=$!
	for _ in $(seq 100); do [ -e "$D/locked" ] && return 0; sleep 0.1; done
	kill "$HOLDER" 2> /dev/null
	return 1
}

# Hold a POSIX lock on the whole lock file (it conflicts with the
# module's OFD locks) for longer than the limit: the first WRITE gives up
# with NT_STATUS_IO_TIMEOUT and its payload is drained; the next one, on
# the same connection, goes through once the lock is gone.
lock_wait_limit() {
	local out t0 to0 to
	to0=$(stat_sum wait_timeouts)
	make_file "$D/data/lw1" $((1 << 20)) lw1
	make_file "$D/data/lw2" 70000 lw2
	hold_lockfile $((LOCK_WAIT_LIMIT + 6)) || return 1
	t0=$(date +%s)
	out=$(cd "$D/data" && smb - share -c 'put lw1; put lw2; get lw2 lw2.back')
	wait "$HOLDER"
	printf '%s\n' "$out" | log
	to=$(($(stat_sum wait_timeouts) - to0))
	echo "# $(($(date +%s) - t0)) s, wait timeouts $to"
	[[ "$out" == *NT_STATUS_IO_TIMEOUT* ]] && [ "$to" -ge 1 ] &&
	cmp "$D/data/lw2" "$D/data/lw2.back" && cmp "$D/data/lw2" "$D/share/lw2"
}

# Server-side copy (smbclient scopy: FSCTL_SRV_COPYCHUNK, copy_file_range()
# in smbd) into a file whose range is locked (a POSIX lock on the whole
# lock file stands for a READ in flight) waits, as a WRITE does, then
# copies byte-exact; the same copy on the share without the module does
# not wait (the control).
copy_waits() {	# copy_waits SHARE HOLD_SECONDS: prints the copy's seconds
	local share=$1 hold=$2 t0 out
	make_file "$D/$share/sc-src" $((3 << 20 | 5)) sc-src
	rm -f "$D/$share/sc-dst"	# scopy creates it
	hold_lockfile "$hold" || return 1
	t0=$(date +%s)
	out=$(smb - "$share" -c 'scopy sc-src sc-dst')
	echo $(($(date +%s) - t0))
	wait "$HOLDER"
	printf '%s\n' "$out" | log >&2
	[[ "$out" != *NT_STATUS* ]] && cmp "$D/$share/sc-src" "$D/$share/sc-dst" >&2
}

server_side_copy() {
	local c0 c mod ctl hold=5
	c0=$(stat_sum copies)
	mod=$(copy_waits share "$hold") || return 1
	c=$(($(stat_sum copies) - c0))
	ctl=$(copy_waits stock "$hold") || return 1
	echo "# scopy with a READ's lock held for $hold s: $mod s with the module" \
	     "(copies under the lock: $c), $ctl s on the share without it"
	[ "$mod" -ge $((hold - 1)) ] && [ "$ctl" -lt $((hold - 1)) ] && [ "$c" -ge 1 ]
}

# A signed connection must not take the recvfile path (smbd reads the
# whole PDU to check the signature).
signed_control() {
	local before after
	before=$(stat_sum recvfile_bytes)
	make_file "$D/data/signed" $((4 << 20)) signed
	(cd "$D/data" && smb - share --client-protection=sign -c 'put signed signed') | log
	after=$(stat_sum recvfile_bytes)
	echo "# recvfile bytes before $before after $after"
	cmp "$D/data/signed" "$D/share/signed" && [ "$before" = "$after" ]
}

# Every READ that sendfile() served got its completions (after the
# connection ended), and WRITE payloads went through recvfile.
counters() {
	echo "# $(tail -n 3 "$D/lock/netfile.stats" 2>/dev/null | tr '\n' ' ')"
	local rb sc co fb us
	rb=$(stat_sum recvfile_bytes)
	sc=$(stat_sum sendfile_calls)
	co=$(stat_sum completions)
	fb=$(stat_sum fallbacks)
	us=$(stat_sum uring_sends)
	echo "# recvfile_bytes=$rb sendfile_calls=$sc completions=$co fallbacks=$fb uring_sends=$us"
	# the eqshare round trip went through the error queue, the rest
	# through io_uring
	[ "$rb" -gt $((64 << 20)) ] && [ "$sc" -gt 0 ] && [ "$co" = "$sc" ] &&
	[ "$fb" = 0 ] && [ "$us" -gt 0 ] && [ "$us" -lt "$sc" ]
}

# strace on the running smbd (-f follows the child the connection forks):
# an 8 MiB put and get. strace 6.1 does not know recvfile, so it prints
# syscall 474 as syscall_0x1da, whatever the -e filter. The payload must
# be the sum of recvfile's returns for the WRITE and of sendfile's for
# the READ; no read, readv, recvfrom or recvmsg may return 64 KiB or more.
# sum_returns NAME: the positive returns of NAME in strace.out (in hex for
# a call strace does not know)
sum_returns() {
	awk -v name="$1" '
	function num(v,	  n, i) {
		if (v !~ /^0x/)
			return v + 0
		for (i = 3; i <= length(v); i++)
			n = n * 16 + index("0123456789abcdef", substr(v, i, 1)) - 1
		return n
	}
	(index($0, name "(") || index($0, "<... " name " resumed>")) &&
	$NF ~ /^(0x[0-9a-f]+|[0-9]+)$/ { s += num($NF) }
	END { printf "%d\n", s }' "$D/strace.out"
}

strace_proof() {
	local size=$((8 << 20)) st rf sf big ue ub0 ub us0 us
	command -v strace > /dev/null || { echo "# no strace"; return 1; }
	make_file "$D/data/traced" "$size" traced
	cp "$D/data/traced" "$D/eqshare/traced"
	ub0=$(stat_sum sendfile_bytes)
	us0=$(stat_sum uring_sends)
	strace -f -qq -e signal=none -o "$D/strace.out" \
		-e trace=sendfile,read,readv,recvfrom,recvmsg,io_uring_enter \
		-p "$SMBD_PID" &
	st=$!
	# strace prints nothing on attach: wait until it has stopped smbd once
	sleep 2
	# the WRITE, and a READ through io_uring (the default)
	(cd "$D/data" && smb - share -c 'put traced traced; get traced traced.back') | log
	# the connection's smbd appends its counters when it ends, after
	# smbclient has gone: give it a moment
	for _ in $(seq 50); do
		ub=$(($(stat_sum sendfile_bytes) - ub0))
		[ "$ub" -lt "$size" ] || break
		sleep 0.1
	done
	us=$(($(stat_sum uring_sends) - us0))
	# a READ through sendfile(2) and the error queue (netfile:io_uring = no)
	(cd "$D/data" && smb - eqshare -c 'get traced traced.eq') | log
	kill -INT "$st"
	wait "$st"
	# a call another process interrupts ends on a "<... NAME resumed>" line
	rf=$(sum_returns 'syscall_0x1da')
	sf=$(sum_returns 'sendfile')
	ue=$(grep -c 'io_uring_enter(' "$D/strace.out")
	big=$(awk '/(^|[ <])(read|readv|recvfrom|recvmsg)(\(| resumed)/ &&
		   $NF ~ /^[0-9]+$/ && $NF >= 65536' "$D/strace.out" | wc -l)
	grep -m 2 'syscall_0x1da(' "$D/strace.out" | log
	grep -m 2 'io_uring_enter(' "$D/strace.out" | log
	grep -m 1 'sendfile(' "$D/strace.out" | log
	echo "# strace: recvfile returned $rf bytes; io_uring READ: $ue io_uring_enter calls," \
	     "module counted $ub bytes in $us splices; error-queue READ: sendfile returned $sf;" \
	     "read-type calls of 64 KiB or more: $big"
	cmp "$D/data/traced" "$D/share/traced" && cmp "$D/data/traced" "$D/data/traced.back" &&
	cmp "$D/data/traced" "$D/data/traced.eq" &&
	[ "$rf" = "$size" ] && [ "$ub" = "$size" ] && [ "$us" -gt 0 ] && [ "$ue" -gt 0 ] &&
	[ "$sf" = "$size" ] && [ "$big" = 0 ]
}

# smbtorture_run SUITE SHARE: prints smbtorture's output, returns its status
smbtorture_run() {
	local ops=500
	[ "$quick" = 1 ] && ops=100
	(cd "$D" && TMPDIR=$D timeout 900 smbtorture "//127.0.0.1/$2" \
		-p "$PORT" -U "root%$PW" -s "$D/client.conf" --target=samba3 \
		--num-ops=$ops "$1" 2>&1)
}

torture() {	# torture SUITE: must pass whole on the module's share
	local out rc
	out=$(smbtorture_run "$1" share)
	rc=$?
	printf '%s\n' "$out" | tail -n 15 | log
	[ "$rc" = 0 ] && [[ "$out" != *failure:* ]]
}

# torture_like_stock SUITE: the suite on the share without the module, then
# on the module's share. The shares have no streams module, so tests that
# need one fail on both; every test that passes on the stock share must
# pass with the module, and some must pass.
torture_like_stock() {
	local stock mod lost
	stock=$(smbtorture_run "$1" stock)
	mod=$(smbtorture_run "$1" share)
	lost=$(comm -23 <(sed -n 's/^success: //p' <<< "$stock" | sort) \
			<(sed -n 's/^success: //p' <<< "$mod" | sort))
	echo "# $1: stock $(grep -c '^success:' <<< "$stock") passed," \
	     "$(grep -c '^failure:' <<< "$stock") failed; with the module" \
	     "$(grep -c '^success:' <<< "$mod") passed, $(grep -c '^failure:' <<< "$mod") failed"
	grep '^failure:' <<< "$mod" | log
	[ -n "$lost" ] && { echo "# passed on stock only:"; log <<< "$lost"; }
	[ -z "$lost" ] && [ "$(grep -c '^success:' <<< "$mod")" -gt 0 ]
}

# One connection READs an 8 MiB file in a loop while another overwrites
# it in place, alternating two patterns; 20 ms of netem delay on the veth
# (the reader's path) keeps the READ's pages in flight. Each READ and each
# WRITE is one SMB2 request of the whole file (samba/smb_race.py, through
# Samba's own client library). Every READ must be all old or all new.
race_once() {	# race_once SHARE: prints the reader's lines, returns its status
	local share=$1 a=$D/data/pat-a b=$D/data/pat-b rc wrc
	cp "$a" "$D/$share/race"
	/usr/bin/python3 "$TOP/samba/smb_race.py" write 127.0.0.1 "$D/client.conf" \
		"$share" race "$a" "$b" 24 > "$D/race-writer.out" 2>&1 &
	local writer=$!
	ip netns exec smbc /usr/bin/python3 "$TOP/samba/smb_race.py" read \
		10.99.0.1 "$D/client.conf" "$share" race "$a" "$b" 16 2>&1
	rc=$?
	wait "$writer"
	wrc=$?
	log < "$D/race-writer.out"
	[ "$wrc" = 0 ] || return 2
	return "$rc"
}

# TCP segments retransmitted so far (this network namespace: the server's).
tcp_retrans() {
	awk '$1 == "Tcp:" { if (!col) { for (i = 2; i <= NF; i++)
		if ($i == "RetransSegs") col = i; next } print $col }' /proc/net/snmp
}

read_vs_overwrite() {	# read_vs_overwrite SHARE [NETEM ARGS...]
	local share=$1 a=$D/data/pat-a b=$D/data/pat-b out rc waits ctl
	local retrans0 retrans
	shift
	[ $# -gt 0 ] || set -- delay 20ms
	make_file "$a" $((8 << 20)) pat-a
	make_file "$b" $((8 << 20)) pat-b
	waits=$(stat_sum write_waits)
	tc qdisc add dev smbv0 root netem "$@" || return 1
	echo "# netem $*"
	retrans0=$(tcp_retrans)
	out=$(race_once "$share")
	rc=$?
	retrans=$(($(tcp_retrans) - retrans0))
	# the control: the same race on the share without the module
	ctl=$(race_once stock)
	tc qdisc del dev smbv0 root
	printf '%s\n' "$out" | log
	echo "# with the module ($share): $(grep -c ': old' <<< "$out") old," \
	     "$(grep -c ': new' <<< "$out") new, $(grep -c MIXED <<< "$out") mixed;" \
	     "writes that waited for an in-flight READ: $(($(stat_sum write_waits) - waits));" \
	     "TCP segments retransmitted: $retrans"
	echo "# control, stock smbd (same race, no module): $(grep -c ': old' <<< "$ctl") old," \
	     "$(grep -c ': new' <<< "$ctl") new, $(grep -c MIXED <<< "$ctl") mixed"
	grep MIXED <<< "$ctl" | log
	# with loss, the race must have met retransmissions to show anything
	[[ " $* " != *" loss "* ]] || [ "$retrans" -gt 0 ] || return 1
	[ "$rc" = 0 ] && [[ "$out" == *": new"* || "$out" == *": old"* ]]
}

main() {
	local sizes=(1 4095 65537 $((1 << 20)) $((8 << 20)) $((64 << 20)))
	local suites=(smb2.read smb2.compound smb2.compound_async 'smb2.ioctl.copy_chunk_*')
	local total=$((${#sizes[@]} + 4 + 11 + ${#suites[@]}))

	echo "TAP version 13"
	echo "1..$total"
	if [ ! -f "$SO" ] || ! command -v smbd > /dev/null || [ ! -d "$VFSDIR" ]; then
		for _ in $(seq "$total"); do
			not_ok "no $SO, no smbd or no $VFSDIR (samba-vfs-modules): run scripts/samba-build.sh"
		done
		return 1
	fi
	setup_dirs && write_conf && setup_veth || { echo "Bail out! samba setup"; return 1; }
	start_smbd || { echo "Bail out! smbd did not start"; return 1; }
	echo "# $(smbd --version), module $(sha256sum "$SO" | cut -c1-12)"

	for s in "${sizes[@]}"; do
		check "put/get $s bytes over loopback, byte-exact" roundtrip - "$s"
	done
	check "put/get 8 MiB across a veth pair, byte-exact" roundtrip smbc $((8 << 20))
	check "put/get 1 MiB + 1 across a veth pair, byte-exact" roundtrip smbc $((1 << 20 | 1))
	check "put/get 8 MiB to a share without the module (stock smbd)" \
		roundtrip - $((8 << 20)) stock
	check "put/get 8 MiB, READ completions on the error queue (netfile:io_uring = no)" \
		roundtrip smbc $((8 << 20)) eqshare
	check "WRITE payloads through recvfile(2), every READ send completed, io_uring and error queue" counters
	check "signed connection: no recvfile path, data intact" signed_control
	check "disk full: NT_STATUS_DISK_FULL, payload drained, connection in sync" \
		disk_full_stays_in_sync
	check "guest connection (smbd as nobody): READs locked and completed, no fallback" \
		guest_user
	check "WRITE held past netfile:lock wait limit: IO_TIMEOUT, drained, connection in sync" \
		lock_wait_limit
	check "server-side copy (scopy) waits for a READ's lock, then copies byte-exact" \
		server_side_copy
	check "strace: WRITE payload in recvfile (syscall 474), READ in io_uring splices or sendfile" strace_proof
	check "smbtorture smb2.rw" torture smb2.rw
	for suite in "${suites[@]}"; do
		check "smbtorture $suite: every test that passes on stock smbd passes" \
			torture_like_stock "$suite"
	done
	check "READ racing an overwrite over veth with netem: old or new, never mixed" \
		read_vs_overwrite share
	check "the same race, READ completions on the error queue (netfile:io_uring = no)" \
		read_vs_overwrite eqshare
	check "the same race with netem loss: retransmitted READ bytes are never new" \
		read_vs_overwrite share delay 2ms loss 1%

	kill "$SMBD_PID" 2> /dev/null
	wait "$SMBD_PID" 2> /dev/null
	grep -h 'netfile' "$D"/log.* 2> /dev/null | tail -n 5 | log
	umount "$VFSDIR" 2> /dev/null
	umount "$D/tiny" 2> /dev/null
	ip netns del smbc 2> /dev/null
	return 0
}

# Run when executed; samba/guest-smb-bench.sh sources it for the set-up.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	main
fi
