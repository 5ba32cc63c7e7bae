# shellcheck shell=bash
# Shared settings for the project's scripts. Sourced, never run.

set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/base.env
. "$TOP/scripts/base.env"

BUILD=${BUILD:-$TOP/build}
SRC=$BUILD/linux          # assembled source tree (git; base + patches + new files)
ASM=$BUILD/assemble       # scratch worktree where the series is put together
OBJ=$BUILD/obj            # kbuild output (O=)
# top-level directories whose files the repo may hold at their in-tree paths
NEW_FILE_DIRS=(arch block Documentation drivers fs include io_uring kernel lib mm net samples tools)
HDR=$BUILD/usr            # installed uapi headers
KST=$BUILD/kselftest      # installed kselftests
LOGS=$BUILD/logs
JOBS=${JOBS:-$(nproc)}
SELFTEST_DIR=netfile      # tools/testing/selftests/<this>

export CCACHE_DIR=${CCACHE_DIR:-$BUILD/ccache}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
export CCACHE_BASEDIR=$BUILD
export CCACHE_SLOPPINESS=time_macros,include_file_mtime,include_file_ctime

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Packages a fresh Debian 12 machine needs for the whole job.
HOST_PKGS=(
	"$BASE_PKG=$BASE_VERSION"
	build-essential bc bison flex libelf-dev libssl-dev cpio xz-utils rsync git
	ccache python3 qemu-system-x86 busybox-static iproute2
	liburing-dev gnuplot-nox socat xfsprogs e2fsprogs
)

host_setup() {
	local missing=() p name want have
	for p in "${HOST_PKGS[@]}"; do
		name=${p%%=*}
		want=${p#*=}
		have=$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null || true)
		case "$have" in
		"install ok installed "*)
			[ "$name" = "$p" ] || [ "${have##* }" = "$want" ] || missing+=("$p")
			;;
		*) missing+=("$p") ;;
		esac
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	say "installing host packages: ${missing[*]}"
	if ! apt-cache madison "$BASE_PKG" 2>/dev/null | grep -qF " $BASE_VERSION "; then
		as_root apt-get update -qq || true
	fi
	if ! apt-cache madison "$BASE_PKG" | grep -qF " $BASE_VERSION "; then
		die "apt does not serve the pinned base $BASE_PKG=$BASE_VERSION (scripts/base.env); pick a version from 'apt-cache madison $BASE_PKG' and re-test"
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends --allow-downgrades "${missing[@]}" >&2
}

# The kernel a measurement (bench.sh, profile.sh) boots: build what it
# needs unless $1 is 0 (the test build also makes the user-space
# programs), and for the release kernel ($2 = 1) point vm-run.sh at it.
measurement_kernel() {
	local build=$1 release=$2
	if [ "$build" = 1 ]; then
		"$TOP/scripts/build.sh"
		[ "$release" = 0 ] || "$TOP/scripts/build.sh" --release
	fi
	[ "$release" = 0 ] || export KERNEL=$BUILD/obj-release/arch/x86/boot/bzImage
}
