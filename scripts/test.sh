#!/usr/bin/env bash
# Build the patched kernel and the tests, boot it under QEMU, run every
# selftest, and print "N passed, N failed, N skipped" as the last line.
# Exit status is non-zero if anything failed, including a kernel warning,
# BUG, lockdep or KFENCE report on the guest console.
#
#   scripts/test.sh [-t COLLECTION:TEST]... [--no-upstream] [--no-build]
. "$(dirname "$0")/common.sh"

build=1 args=()
while [ $# -gt 0 ]; do
	case "$1" in
	--no-build) build=0; shift ;;
	-t) args+=(-t "$2"); shift 2 ;;
	*) args+=("$1"); shift ;;
	esac
done

# The install logic itself, against stubbed apt (scripts/setup-test.sh).
setup_checks=()
mapfile -t setup_checks < <("$TOP/scripts/setup-test.sh" || true)
[ ${#setup_checks[@]} -gt 0 ] || setup_checks=("setup: scripts/setup-test.sh ran=fail")
printf '%s\n' "${setup_checks[@]}" >&2

t0=$SECONDS
[ "$build" = 0 ] || "$TOP/scripts/build.sh"
# Debian's smbd with the VFS module: built once per Samba version and
# module source, cached outside the clone (scripts/samba-build.sh). A
# failure here fails that check, not the kernel's tests.
samba_check=ok
if [ "$build" = 1 ] && ! "$TOP/scripts/samba-build.sh"; then
	samba_check=fail
fi
tb=$SECONDS

set +e
"$TOP/scripts/vm-run.sh" --name tests --timeout "${TEST_TIMEOUT:-3600}" -- \
	scripts/guest-tests.sh "${args[@]}"
rc=$?
set -e
run_dir=$BUILD/vm/tests

checks=("${setup_checks[@]}" "samba: VFS module built=$samba_check" "guest finished and reported status 0=$([ "$rc" -eq 0 ] || [ "$rc" -eq 126 ] && echo ok || echo fail)")
if "$TOP/scripts/console-check.sh" "$run_dir/console.log" > /dev/null; then
	checks+=("kernel console free of warnings, BUG, lockdep and KFENCE reports=ok")
else
	checks+=("kernel console free of warnings, BUG, lockdep and KFENCE reports=fail")
fi
echo
echo "build $((tb - t0)) s, boot + tests $((SECONDS - tb)) s; console log: $run_dir/console.log"
"$TOP/scripts/ktap-summary.py" "$run_dir/out/results.tap" "${checks[@]}"
