#!/usr/bin/env bash
# A test of the install logic in scripts/common.sh (host_setup and the
# check that apt serves the pinned base), run on the host against stubbed
# apt-cache, apt-get and dpkg-query. Prints one "NAME=ok" or "NAME=fail"
# line per case (scripts/test.sh counts them) and exits 1 if any failed.
#
#   scripts/setup-test.sh [-v]     -v: show each case's stderr
. "$(dirname "$0")/common.sh"

verbose=0
[ "${1:-}" != -v ] || verbose=1

stub=$(mktemp -d)
trap 'rm -rf "$stub"' EXIT
mkdir -p "$stub/bin"

# apt-cache madison: prints $stub/madison, then $STUB_FILL filler lines
# (enough to fill a pipe, so an early-exit reader would kill it with
# SIGPIPE), and exits $STUB_RC.
cat > "$stub/bin/apt-cache" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
echo "$*" >> "$STUB/apt-cache.calls"
cat "$STUB/madison"
i=0
while [ "$i" -lt "${STUB_FILL:-0}" ]; do
	echo "linux-source-6.12 | 6.12.$i-1~deb12u1 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages"
	i=$((i + 1))
done
exit "${STUB_RC:-0}"
EOF
cat > "$stub/bin/apt-get" <<'EOF'
#!/usr/bin/env bash
echo "$*" >> "$STUB/apt-get.calls"
EOF
# dpkg-query -W -f=... NAME: "install ok installed VERSION" for the
# packages listed in $stub/installed ("NAME VERSION" lines).
cat > "$stub/bin/dpkg-query" <<'EOF'
#!/usr/bin/env bash
name=${!#}
while read -r n v; do
	[ "$n" = "$name" ] && { printf 'install ok installed %s' "$v"; exit 0; }
done < "$STUB/installed"
exit 1
EOF
chmod +x "$stub/bin"/*
export STUB=$stub PATH=$stub/bin:$PATH
# as_root runs sudo when not root; the stubs need neither.
as_root() { "$@"; }

line() { printf '%s | %s | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages\n' "$BASE_PKG" "$1"; }

failed=0
result() {
	if [ "$2" = 0 ]; then
		echo "setup: $1=ok"
	else
		echo "setup: $1=fail"
		failed=1
	fi
	[ "$verbose" = 0 ] || sed 's/^/    /' "$stub/err"
}

# Run check_base_served in a subshell (it may exit) with the stubbed apt;
# its stderr goes to $stub/err, its status is returned.
# Sets rc; never trips set -e.
served() {
	rm -f "$stub"/*.calls
	rc=0
	(check_base_served) 2> "$stub/err" || rc=$?
}

# host_setup likewise, in a subshell.
setup() {
	rm -f "$stub"/*.calls
	rc=0
	(host_setup) 2> "$stub/err" || rc=$?
}

calls() { [ -f "$stub/$1.calls" ] && wc -l < "$stub/$1.calls" || echo 0; }

# 1. The pin on the first line: served, no apt-get update.
{ line "$BASE_VERSION"; line 6.12.107-1~deb12u1; } > "$stub/madison"
served
result "pin on the first line of apt-cache madison" \
	"$([ "$rc" = 0 ] && [ "$(calls apt-get)" = 0 ] && echo 0 || echo 1)"

# 2. The pin below newer versions (what broke every fresh machine).
{ line 6.12.999-1~deb12u1; line 6.12.200-1~deb12u1; line "$BASE_VERSION"; } > "$stub/madison"
served
result "pin on a later line" "$([ "$rc" = 0 ] && echo 0 || echo 1)"

# 3. apt-cache writing far more than a pipe holds after the pin: a reader
# that stops at the match would kill it with SIGPIPE. First show that the
# stub really provokes that in the old "apt-cache | grep -q" form, then # pipefail-safe: a comment
# that the check does not depend on it.
{ line 6.12.999-1~deb12u1; line "$BASE_VERSION"; } > "$stub/madison"
export STUB_FILL=20000
old_rc=0
(set -o pipefail; apt-cache madison "$BASE_PKG" | grep -qF " $BASE_VERSION ") || old_rc=$? # pipefail-safe: provokes SIGPIPE on purpose
served
unset STUB_FILL
[ "$verbose" = 0 ] || echo "    old pipeline status $old_rc (141 = SIGPIPE)"
result "pin found while an early-exit reader would SIGPIPE apt-cache" \
	"$([ "$rc" = 0 ] && [ "$old_rc" != 0 ] && echo 0 || echo 1)"

# 4. The pin absent: refresh once, then a plain error that names the pin,
# the newest served version, and a one-line change that works.
{ line 6.12.130-1~deb12u1; line 6.12.200-1~deb12u1; line 6.12.99-1~deb12u1; } > "$stub/madison"
served
fix=$(grep -E "^  sed -i 's/\^BASE_VERSION=" "$stub/err" || true)
cp "$TOP/scripts/base.env" "$stub/base.env"
fixed=
if [ -n "$fix" ]; then
	(cd "$stub" && eval "${fix/scripts\/base.env/base.env}") &&
		fixed=$(BASE_VERSION=; . "$stub/base.env"; echo "$BASE_VERSION")
fi
ok=1
[ "$rc" != 0 ] && [ "$(calls apt-get)" = 1 ] &&
	grep -qF "$BASE_PKG=$BASE_VERSION" "$stub/err" &&
	grep -qF "newest $BASE_PKG apt serves is 6.12.200-1~deb12u1" "$stub/err" &&
	[ "$fixed" = 6.12.200-1~deb12u1 ] && ok=0
result "pin absent: names the pin and the newest, the one-line change moves it" "$ok"

# 5. No such package at all (no security archive in the sources).
: > "$stub/madison"
served
ok=1
[ "$rc" != 0 ] && grep -qF 'apt serves no' "$stub/err" && ok=0
result "package not served at all" "$ok"

# 6. apt-cache itself failing is an error, not "not served".
export STUB_RC=100
: > "$stub/madison"
served
unset STUB_RC
ok=1
[ "$rc" != 0 ] && grep -qF 'apt-cache madison' "$stub/err" && grep -qF failed "$stub/err" && ok=0
result "apt-cache failing is reported as such" "$ok"

# 7. Newest by dpkg's ordering, not by position or string order.
m=$(line 6.12.99-1~deb12u1; line 6.12.118-1~deb12u1; line 6.12.118-1~deb12u1+b1; line 6.12.9-1)
result "newest version by dpkg ordering" \
	"$([ "$(madison_newest "$m")" = 6.12.118-1~deb12u1+b1 ] && echo 0 || echo 1)"

# 8. host_setup on a machine that has everything: no apt call at all.
: > "$stub/installed"
for p in "${HOST_PKGS[@]}"; do
	if [ "${p%%=*}" = "$p" ]; then echo "$p 1.0"; else echo "${p%%=*} ${p#*=}"; fi
done > "$stub/installed"
setup
result "host_setup with everything installed calls no apt" \
	"$([ "$rc" = 0 ] && [ "$(calls apt-get)" = 0 ] && [ "$(calls apt-cache)" = 0 ] && echo 0 || echo 1)"

# 9. host_setup on a fresh machine whose apt lists the pin on a later
# line installs the pinned base with the rest.
: > "$stub/installed"
{ line 6.12.999-1~deb12u1; line "$BASE_VERSION"; } > "$stub/madison"
setup
ok=1
[ "$rc" = 0 ] && grep -qF -- "install -y" "$stub/apt-get.calls" &&
	grep -qF -- "$BASE_PKG=$BASE_VERSION" "$stub/apt-get.calls" && ok=0
result "host_setup on a fresh machine installs the pinned base" "$ok"

# 10. ... and stops with the pin's message when apt has moved on.
{ line 6.12.999-1~deb12u1; } > "$stub/madison"
setup
ok=1
[ "$rc" != 0 ] && grep -qF 'scripts/base.env' "$stub/err" &&
	! grep -qF -- "install -y" "$stub/apt-get.calls" && ok=0
result "host_setup stops before installing when the pin is gone" "$ok"

# 11. The test summary: a suite that bailed out before its tests (a
# fresh machine once ran the Samba suite without Samba's VFS directory)
# counts every test it planned as failed, not as nothing.
printf 'TAP version 13\n1..2\nok 1 a\nok 2 b\nTAP version 13\n1..3\nBail out! setup\n' \
	> "$stub/bail.tap"
out=$("$TOP/scripts/ktap-summary.py" "$stub/bail.tap" || true)
result "test summary counts a bailed-out suite's planned tests as failed" \
	"$([ "${out##*$'\n'}" = "2 passed, 3 failed, 0 skipped" ] && echo 0 || echo 1)"

exit "$failed"
