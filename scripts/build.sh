#!/usr/bin/env bash
# Build everything the VM needs: the assembled kernel (bzImage), uapi headers,
# the project's kselftests, the upstream selftests we run as regressions, and
# the samples/benchmarks. Incremental and ccache'd.
#
#   scripts/build.sh [--release | --base]
#
# --release builds only a second kernel, in build/obj-release, from the
# same configuration without its debug block (no lockdep, KFENCE, DEBUG_VM,
# fault injection): what scripts/bench.sh --release measures.
# --base builds only the pristine base tree, without the series, with the
# test configuration, in build/base/obj: the unpatched kernel that
# scripts/upstream-compare.sh runs the upstream selftests on.
. "$(dirname "$0")/common.sh"

release=0 base=0
case "${1:-}" in
--release) release=1 ;;
--base) base=1 ;;
"") ;;
*) die "usage: $0 [--release | --base]" ;;
esac

FRAGMENTS=("$TOP/kconfig/qemu-test.config")
[ -n "${EXTRA_CONFIG:-}" ] && FRAGMENTS+=("$EXTRA_CONFIG")
if [ "$release" = 1 ]; then
	OBJ=$BUILD/obj-release
	mkdir -p "$BUILD"
	# everything from the debug block to the end of the fragment goes
	sed '/^# --- debug options/,$d' "$TOP/kconfig/qemu-test.config" \
		> "$BUILD/kconfig-release.config"
	FRAGMENTS=("$BUILD/kconfig-release.config")
fi

kmake() { make -C "$SRC" O="$OBJ" -j"$JOBS" CC="ccache gcc" HOSTCC="ccache gcc" "$@"; }

# Every option a fragment asks for must be in the final .config as asked.
check_config() {
	local cfg=$1 frag line opt bad=0
	for frag in "${FRAGMENTS[@]}"; do
		while IFS= read -r line; do
			case "$line" in
			CONFIG_*=*)
				grep -qxF "$line" "$cfg" || { echo "  wanted $line, got: $(grep -E "^(# )?${line%%=*}[= ]" "$cfg" || echo unset)"; bad=1; }
				;;
			"# CONFIG_"*" is not set")
				opt=${line#\# }; opt=${opt%% *}
				! grep -q "^$opt=" "$cfg" || { echo "  wanted $opt unset"; bad=1; }
				;;
			esac
		done < "$frag"
	done
	return $bad
}

make_config() {
	local tmp=$BUILD/kconfig.tmp
	rm -rf "$tmp"; mkdir -p "$tmp"
	(cd "$SRC" && scripts/kconfig/merge_config.sh -n -O "$tmp" "${FRAGMENTS[@]}") \
		> "$tmp.log" 2>&1 || { cat "$tmp.log"; die "merge_config failed"; }
	make -C "$SRC" O="$tmp" olddefconfig >> "$tmp.log" 2>&1
	check_config "$tmp/.config" || die "required kernel options did not survive olddefconfig (kconfig/*.config); log: $tmp.log"
	mkdir -p "$OBJ"
	if ! cmp -s "$tmp/.config" "$OBJ/.config"; then
		say "kernel config changed"
		cp "$tmp/.config" "$OBJ/.config"
	fi
	rm -rf "$tmp" "$tmp.log"
}

build_kernel() {
	say "building kernel (make -j$JOBS, ccache; log $LOGS/kernel-build.log)"
	local t0=$SECONDS
	local targets=(bzImage headers)
	grep -q '^CONFIG_MODULES=y' "$OBJ/.config" && targets+=(modules)
	if ! kmake "${targets[@]}" > "$LOGS/kernel-build.log" 2>&1; then
		grep -E -m 40 'error|Error' "$LOGS/kernel-build.log" >&2 || true
		die "kernel build failed; full log $LOGS/kernel-build.log"
	fi
	grep -E 'warning:' "$LOGS/kernel-build.log" | grep -v -m 20 '^scripts/' >&2 || true
	say "kernel built in $((SECONDS - t0)) s"
}

build_selftests() {
	say "building kselftests: $SELFTEST_DIR"
	rm -rf "$KST"
	make -C "$SRC/tools/testing/selftests" O="$OBJ" TARGETS="$SELFTEST_DIR" \
		KHDR_INCLUDES="-isystem $OBJ/usr/include" \
		INSTALL_PATH="$KST" install > "$LOGS/selftests-build.log" 2>&1 ||
		{ tail -40 "$LOGS/selftests-build.log" >&2; die "selftest build failed"; }
}

# Upstream selftests in the neighbourhood of this series, built as single
# programs against the tree's headers (a full TARGETS=net build wants clang).
build_upstream_tests() {
	local out=$BUILD/upstream-tests net=$SRC/tools/testing/selftests/net
	mkdir -p "$out"
	local t
	for t in msg_zerocopy io_uring_zerocopy_tx tcp_mmap; do
		local extra=()
		# As net/Makefile does for these programs.
		[ "$t" = io_uring_zerocopy_tx ] && extra=(-I"$SRC/tools/include")
		[ "$t" = tcp_mmap ] && extra=(-lcrypto)
		gcc -O2 -Wall -isystem "$OBJ/usr/include" \
			-o "$out/$t" "$net/$t.c" -lpthread "${extra[@]}" > "$LOGS/upstream-$t.log" 2>&1 ||
			{ cat "$LOGS/upstream-$t.log" >&2; die "building upstream net/$t failed"; }
	done
	# splice/: the pseudo-filesystem splice tests, run from their own dir.
	mkdir -p "$out/splice"
	for t in default_file_splice_read splice_read; do
		gcc -O2 -Wall -isystem "$OBJ/usr/include" -o "$out/splice/$t" \
			"$SRC/tools/testing/selftests/splice/$t.c" > "$LOGS/upstream-$t.log" 2>&1 ||
			{ cat "$LOGS/upstream-$t.log" >&2; die "building upstream splice/$t failed"; }
	done
	cp "$SRC"/tools/testing/selftests/splice/*.sh "$out/splice/"
	# short_splice_read.sh reads the sysfs files of this module
	rm -f "$out/splice/test_module.ko"
	[ ! -f "$OBJ/lib/test_module.ko" ] || cp "$OBJ/lib/test_module.ko" "$out/splice/"
}

build_samples() {
	local out=$BUILD/bin f
	mkdir -p "$out"
	for f in "$SRC"/samples/netfile/*.c; do
		[ -e "$f" ] || continue
		gcc -O2 -Wall -Wextra -isystem "$OBJ/usr/include" -o "$out/$(basename "$f" .c)" "$f" \
			-lpthread -luring || die "building $f failed"
	done
}

# A worktree of the pristine base next to its own obj dir, so that the
# relative paths ccache sees (CCACHE_BASEDIR) match the patched build's.
checkout_base() {
	local tree=$BUILD/base/linux
	if [ ! -e "$tree/.git" ]; then
		git -C "$SRC" worktree prune
		mkdir -p "$BUILD/base"
		git -C "$SRC" worktree add -q --detach "$tree" base
	fi
	git -C "$tree" checkout -q -f --detach base
	git -C "$tree" clean -q -fdx
	SRC=$tree
	OBJ=$BUILD/base/obj
	LOGS=$LOGS/base
	mkdir -p "$LOGS"
}

mkdir -p "$LOGS"
host_setup
"$TOP/scripts/assemble.sh"
if [ "$base" = 1 ]; then
	checkout_base
	make_config
	build_kernel
	say "built: $OBJ/arch/x86/boot/bzImage (pristine $BASE_VERSION, no series)"
	exit 0
fi
make_config
if [ "$release" = 1 ]; then
	LOGS=$LOGS/release
	mkdir -p "$LOGS"
	build_kernel
	say "built: $OBJ/arch/x86/boot/bzImage (no debug options)"
	exit 0
fi
build_kernel
build_selftests
build_upstream_tests
build_samples
[ -z "$(git -C "$SRC" status --porcelain)" ] || say "warning: the build wrote into $SRC"
say "built: $OBJ/arch/x86/boot/bzImage"
