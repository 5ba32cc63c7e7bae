#!/usr/bin/env bash
# Build the Samba VFS module samba/vfs_netfile.c against Debian's own smbd
# (samba/samba.env pins the version) and install Samba, smbclient and
# smbtorture on the host (the test VM runs the host's binaries).
#
#   scripts/samba-build.sh [--setup-only]
#
# samba-dev ships no vfs.h, so the module needs the source package:
# apt-get source samba (a deb-src entry is added if there is none),
# apt-get build-dep, then Debian's own configure step (debian/rules
# bin/configured.stamp, so that symbol versions match the installed
# libraries) and waf for this one target.
#
# The configured tree is a cache outside the clone, in $NETFILE_SAMBA_CACHE
# (default /var/cache/netfile-samba/VERSION): configuring takes minutes, and
# a fresh clone (CI) would otherwise pay it every time. It is rebuilt when
# missing; the module itself is rebuilt when its source changed. The
# result is build/samba/netfile.so.
. "$(dirname "$0")/common.sh"
# shellcheck source=samba/samba.env
. "$TOP/samba/samba.env"

setup_only=0
[ "${1:-}" = --setup-only ] && setup_only=1

# samba-vfs-modules is only a Recommends of samba, and apt runs here
# without them: it holds smbd's vfs directory, which the tests lay the
# module into.
SAMBA_PKGS=(samba samba-vfs-modules smbclient samba-testsuite python3-samba winbind
	    libsmbclient)
CACHE=${NETFILE_SAMBA_CACHE:-/var/cache/netfile-samba/${SAMBA_VERSION//[:+~]/_}}
OUTDIR=$BUILD/samba
# Debian's python, not one that PATH may put first (pyenv): waf needs its
# python3-tdb, python3-ldb, ...
CLEAN_PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin

have_deb_src() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
		 /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		# grep -q would stop early; read the answer whole
		[ -n "$(grep -E '^(deb-src|Types:.*deb-src)' "$f" || true)" ] && return 0
	done
	return 1
}

add_deb_src() {
	have_deb_src && return 0
	say "adding deb-src entries for bookworm (apt-get source samba needs them)"
	as_root tee /etc/apt/sources.list.d/netfile-deb-src.sources > /dev/null <<-EOF
	Types: deb-src
	URIs: http://deb.debian.org/debian
	Suites: bookworm bookworm-updates
	Components: main
	Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

	Types: deb-src
	URIs: http://deb.debian.org/debian-security
	Suites: bookworm-security
	Components: main
	Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	as_root apt-get update -qq
}

# Samba's runtime packages at the pinned version; no service is started.
install_samba() {
	local p have missing=()
	for p in "${SAMBA_PKGS[@]}"; do
		have=$(dpkg-query -W -f='${Status} ${Version}' "$p" 2>/dev/null || true)
		[ "$have" = "install ok installed $SAMBA_VERSION" ] || missing+=("$p=$SAMBA_VERSION")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	say "installing ${missing[*]}"
	# policy-rc.d: do not start smbd/nmbd/winbind on the host
	local prc=/usr/sbin/policy-rc.d made=0
	if [ ! -e "$prc" ]; then
		printf '#!/bin/sh\nexit 101\n' | as_root tee "$prc" > /dev/null
		as_root chmod +x "$prc"
		made=1
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends --allow-downgrades "${missing[@]}" >&2
	[ "$made" = 0 ] || as_root rm -f "$prc"
}

configure_source() {
	local src
	[ -f "$CACHE/src/bin/configured.stamp" ] && return 0
	add_deb_src
	say "Samba source $SAMBA_VERSION into $CACHE (cold: a few minutes)"
	as_root mkdir -p "$CACHE"
	as_root chown "$(id -u):$(id -g)" "$CACHE"
	rm -rf "$CACHE/src" "$CACHE/get"
	mkdir -p "$CACHE/get"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq \
		"samba=$SAMBA_VERSION" >&2
	(cd "$CACHE/get" && apt-get source -qq "samba=$SAMBA_VERSION") >&2
	src=$(find "$CACHE/get" -mindepth 1 -maxdepth 1 -type d -name 'samba-*')
	[ -n "$src" ] || die "apt-get source samba=$SAMBA_VERSION gave no tree"
	mv "$src" "$CACHE/src"
	say "configuring Samba with Debian's arguments (log $LOGS/samba-configure.log)"
	mkdir -p "$LOGS"
	(cd "$CACHE/src" && env PATH="$CLEAN_PATH" debian/rules bin/configured.stamp) \
		> "$LOGS/samba-configure.log" 2>&1 ||
		{ tail -20 "$LOGS/samba-configure.log"; die "Samba configure failed"; }
}

# Put the module into the tree's source3/modules, with its current build
# rule (an older rule from the cache is replaced).
add_module() {
	local mod=$CACHE/src/source3/modules
	cp "$TOP/samba/vfs_netfile.c" "$mod/vfs_netfile.c"
	# what is built is this copy: record its hash, not the source's later
	src_sum=$(sha256sum < "$mod/vfs_netfile.c")
	awk '/^bld.SAMBA3_MODULE\(.vfs_netfile.,/ { skip = 1 }
	     !skip { print }
	     skip && /enabled=True\)/ { skip = 0 }' \
		"$mod/wscript_build" > "$mod/wscript_build.new"
	# liburing: configure found it (Debian builds vfs_io_uring with it)
	cat >> "$mod/wscript_build.new" <<-'EOF'
	bld.SAMBA3_MODULE('vfs_netfile',
	                 subsystem='vfs',
	                 source='vfs_netfile.c',
	                 deps='samba-util uring',
	                 init_function='',
	                 internal_module=False,
	                 enabled=True)
	EOF
	mv "$mod/wscript_build.new" "$mod/wscript_build"
}

build_module() {
	local so
	add_module
	say "building the VFS module (log $LOGS/samba-build.log)"
	# as debian/rules runs waf
	(cd "$CACHE/src" && env PATH="$CLEAN_PATH" PYTHONHASHSEED=1 \
		buildtools/bin/waf -j"$JOBS" build --targets=vfs_netfile) \
		> "$LOGS/samba-build.log" 2>&1 ||
		{ grep -E 'error|warning' "$LOGS/samba-build.log" | tail -20 || true
		  die "the VFS module did not build"; }
	so=$(find "$CACHE/src/bin/default/source3/modules" -name 'libvfs_module_netfile.so' | sort)
	[ -n "$so" ] || die "waf built no libvfs_module_netfile.so"
	mkdir -p "$OUTDIR"
	cp "$so" "$OUTDIR/netfile.so"
	printf '%s\n' "$src_sum" > "$OUTDIR/netfile.so.src"
	say "built: $OUTDIR/netfile.so"
}

install_samba
[ "$setup_only" = 1 ] && exit 0
mkdir -p "$LOGS"
src_sum=
if [ -f "$OUTDIR/netfile.so" ] &&
   [ "$(sha256sum < "$TOP/samba/vfs_netfile.c")" = "$(cat "$OUTDIR/netfile.so.src" 2>/dev/null)" ]; then
	say "VFS module up to date: $OUTDIR/netfile.so"
	exit 0
fi
t0=$SECONDS
configure_source
build_module
say "Samba module step took $((SECONDS - t0)) s"
