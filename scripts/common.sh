# shellcheck shell=bash
# Shared settings for the project's scripts. Sourced, never run.

set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/base.env
. "$TOP/scripts/base.env"
# scripts/try-base.sh tries the series on another point release: it sets
# NETFILE_TRY_BASE and its own build directory, the pin stays as it is.
if [ -n "${NETFILE_TRY_BASE:-}" ]; then
	BASE_VERSION=$NETFILE_TRY_BASE
fi

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
	liburing-dev gnuplot-nox socat xfsprogs e2fsprogs strace
)

# apt-cache madison's answer for the base package, as one string. Read
# whole into a variable, never piped into an early-exit reader: under
# pipefail the pattern "apt-cache | grep -q" fails whenever grep stops before # pipefail-safe: a comment
# apt-cache has written everything (SIGPIPE, status 141).
# Fails only if apt-cache itself fails.
base_madison() {
	apt-cache madison "$BASE_PKG" 2>/dev/null
}

# Every version in madison output $1, one per line, as apt lists them.
madison_versions() {
	local line ver
	while IFS= read -r line; do
		# "linux-source-6.12 | 6.12.118-1~deb12u1 | http://... Packages"
		ver=${line#*|}
		ver=${ver%%|*}
		ver=${ver//[[:space:]]/}
		[ -z "$ver" ] || printf '%s\n' "$ver"
	done <<< "$1"
}

# True if madison output $1 lists version $2 (on any line).
madison_has() {
	local v
	while IFS= read -r v; do
		[ "$v" != "$2" ] || return 0
	done < <(madison_versions "$1")
	return 1
}

# The newest version in madison output $1 (dpkg ordering), or nothing.
madison_newest() {
	local v best=
	while IFS= read -r v; do
		if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$best"; then
			best=$v
		fi
	done < <(madison_versions "$1")
	printf '%s' "$best"
}

# Explain, on stderr, that apt no longer serves the pin, and how to move it.
pin_gone_message() {
	local newest=$1
	printf 'error: apt does not serve the pinned base %s=%s (scripts/base.env).\n' \
		"$BASE_PKG" "$BASE_VERSION" >&2
	if [ -z "$newest" ]; then
		printf 'error: apt serves no %s at all: add bookworm-security to the apt sources and run apt-get update.\n' \
			"$BASE_PKG" >&2
		return 0
	fi
	printf 'error: the newest %s apt serves is %s. Debian'"'"'s security archive keeps\n' \
		"$BASE_PKG" "$newest" >&2
	printf 'error: only a window of point releases. To move the pin (and re-test):\n' >&2
	printf '  sed -i '"'"'s/^BASE_VERSION=.*/BASE_VERSION=%s/'"'"' scripts/base.env\n' "$newest" >&2
	printf 'error: or first try the series on it without moving the pin: scripts/try-base.sh --newest\n' >&2
}

# Check that apt serves the pinned base, refreshing the lists once if
# not. Returns 0 if it does; otherwise explains and returns 1.
check_base_served() {
	local madison
	madison=$(base_madison) || madison=
	madison_has "$madison" "$BASE_VERSION" && return 0
	say "apt does not list $BASE_PKG=$BASE_VERSION; running apt-get update"
	as_root apt-get update -qq || true
	madison=$(base_madison) ||
		die "apt-cache madison $BASE_PKG failed; is apt working on this machine?"
	madison_has "$madison" "$BASE_VERSION" && return 0
	pin_gone_message "$(madison_newest "$madison")"
	return 1
}

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
	check_base_served || exit 1
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
