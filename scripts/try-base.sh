#!/usr/bin/env bash
# Try the series on another Debian 6.12 point release without moving the
# pin: install that linux-source-6.12, apply the patches to it, build,
# boot and run the README's tests, all in build/try-VERSION (the ccache is
# shared with the main build). Prints the test summary and, if everything
# passed, the one-line change that moves the pin in scripts/base.env.
#
#   scripts/try-base.sh [--newest | VERSION] [scripts/test.sh options]
#
# --newest (the default) takes the newest version apt serves. The next
# run of any other script reinstalls the pinned package.
. "$(dirname "$0")/common.sh"

want=--newest
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
	want=$1
	shift
elif [ "${1:-}" = --newest ]; then
	shift
fi

madison=$(base_madison) || die "apt-cache madison $BASE_PKG failed"
if [ "$want" = --newest ]; then
	newest=$(madison_newest "$madison")
	if [ -z "$newest" ]; then
		as_root apt-get update -qq || true
		madison=$(base_madison) || die "apt-cache madison $BASE_PKG failed"
		newest=$(madison_newest "$madison")
	fi
	[ -n "$newest" ] || die "apt serves no $BASE_PKG; add bookworm-security to the apt sources"
	want=$newest
fi
madison_has "$madison" "$want" ||
	die "apt does not serve $BASE_PKG=$want; it serves: $(madison_versions "$madison" | tr '\n' ' ')"

pinned=$BASE_VERSION
if [ "$want" = "$pinned" ]; then
	say "$want is the pinned base already; running the tests on it"
fi
say "trying the series on $BASE_PKG $want (pinned: $pinned)"

# Share the main build's ccache: most objects do not change between
# point releases.
export CCACHE_DIR=${CCACHE_DIR:-$TOP/build/ccache}
export NETFILE_TRY_BASE=$want
export BUILD=$TOP/build/try-$want
mkdir -p "$BUILD"

rc=0
"$TOP/scripts/test.sh" "$@" || rc=$?
echo
if [ "$rc" = 0 ]; then
	say "the series applies, builds and passes its tests on $want"
	if [ "$want" != "$pinned" ]; then
		echo "to move the pin:"
		echo "  sed -i 's/^BASE_VERSION=.*/BASE_VERSION=$want/' scripts/base.env"
		echo "then scripts/export-patches.sh if any patch needed a fix, and the README's base line."
	fi
else
	say "$want: failed (status $rc); the build tree is $BUILD/assemble (see scripts/export-patches.sh for fixing a patch)"
fi
exit "$rc"
