#!/usr/bin/env bash
# Build-test the assembled series on other architectures: a small
# configuration (tinyconfig plus networking, io_uring and, on arm64, the
# 32-bit compat table) that compiles everything the series adds and the
# system call tables it wires up. Not part of the test command: it needs
# a cross compiler (gcc-aarch64-linux-gnu for arm64; i386 uses the host
# gcc) and is run by hand before posting the series.
#
#   scripts/cross-build.sh [arm64|i386]...   (default: both)
#
# Each build goes to build/cross-ARCH; the log to build/logs/cross-ARCH.log.
# Afterwards the generated syscall tables are checked for recvfile.
. "$(dirname "$0")/common.sh"

[ -d "$SRC/.git" ] || die "no assembled tree: run scripts/build.sh first"
[ $# -gt 0 ] || set -- arm64 i386

cross_config() {
	cat <<-EOF
	CONFIG_NET=y
	CONFIG_INET=y
	CONFIG_IPV6=y
	CONFIG_UNIX=y
	CONFIG_IO_URING=y
	CONFIG_MULTIUSER=y
	CONFIG_FILE_LOCKING=y
	CONFIG_TMPFS=y
	CONFIG_PROC_FS=y
	CONFIG_SYSFS=y
	CONFIG_BLOCK=y
	CONFIG_EXT4_FS=y
	EOF
	case "$1" in
	arm64) printf 'CONFIG_COMPAT=y\n' ;;
	esac
}

build_arch() {
	local arch=$1 cross="" obj=$BUILD/cross-$1 log=$LOGS/cross-$1.log tbl
	local -a mk

	case "$arch" in
	arm64)
		cross=aarch64-linux-gnu-
		command -v ${cross}gcc > /dev/null ||
			die "no ${cross}gcc: apt-get install gcc-aarch64-linux-gnu"
		;;
	i386) ;;
	*) die "unknown architecture $arch (arm64 or i386)" ;;
	esac
	mkdir -p "$obj" "$LOGS"
	mk=(make -C "$SRC" O="$obj" ARCH="$arch" CROSS_COMPILE="$cross"
	    CC="ccache ${cross}gcc" -j"$JOBS")
	cross_config "$arch" > "$obj/cross.config"
	say "cross build $arch: $obj (log $log)"
	{
		"${mk[@]}" tinyconfig
		"$SRC/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "$obj/cross.config"
		"${mk[@]}" olddefconfig
		"${mk[@]}" vmlinux
	} > "$log" 2>&1 || { tail -30 "$log"; die "cross build $arch failed"; }

	# recvfile must be in the generated tables, at its number.
	for tbl in $(find "$obj/arch" -name 'syscall_table_*.h' -o -name 'syscalls_*.h' \
		     -o -name 'unistd_*.h' | sort); do
		if grep -E '(__NR_recvfile|sys_recvfile)' "$tbl" > /dev/null; then
			say "  $(basename "$tbl"): $(grep -hE '__NR_recvfile|sys_recvfile' "$tbl" |
				tr -s ' \t' ' ' | paste -sd';' -)"
		fi
	done
	grep -E '^(CONFIG_COMPAT|CONFIG_INET|CONFIG_IO_URING)=' "$obj/.config" |
		paste -sd' ' - | sed 's/^/==>   config: /' >&2
	say "cross build $arch: ok"
}

for a in "$@"; do
	build_arch "$a"
done
