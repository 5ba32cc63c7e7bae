#!/usr/bin/env bash
# Run the upstream selftests that this series must not regress on the
# patched kernel and on the pristine base kernel, the same binaries with
# the same configuration, one boot each, and print them side by side.
# A test counts as passed when it gives the same result on both kernels;
# the last line is "N passed, N failed".
#
#   scripts/upstream-compare.sh [--no-build]
#
# Longer than the README's test command (a second kernel build, cold the
# first time, and two boots of about 6 minutes each under TCG).
. "$(dirname "$0")/common.sh"

build=1
[ "${1:-}" = --no-build ] && build=0

if [ "$build" = 1 ]; then
	"$TOP/scripts/build.sh"
	"$TOP/scripts/build.sh" --base
fi

run_on() {
	local name=$1 kernel=$2 module=$3
	say "upstream selftests on the $name kernel"
	KERNEL=$kernel VM_QUIET=1 "$TOP/scripts/vm-run.sh" --name "upstream-$name" \
		--timeout 1800 -- scripts/guest-tests.sh --only-upstream \
		--module "$module" || say "$name kernel: run status $?"
}

run_on patched "$OBJ/arch/x86/boot/bzImage" "$BUILD/upstream-tests/splice/test_module.ko"
run_on base "$BUILD/base/obj/arch/x86/boot/bzImage" "$BUILD/base/obj/lib/test_module.ko"

cd "$TOP"
python3 - "$BUILD/vm/upstream-patched" "$BUILD/vm/upstream-base" <<'EOF'
import re
import subprocess
import sys


def results(run_dir):
    res = {}
    try:
        with open(run_dir + "/out/results.tap") as f:
            for line in f:
                m = re.match(r"(not ok|ok) \d+ upstream: (.*?)(?: # (.*))?$",
                             line.rstrip("\n"))
                if m:
                    res[m.group(2)] = (m.group(1), m.group(3) or "")
    except OSError:
        pass
    return res


def console_clean(run_dir):
    return subprocess.run(["scripts/console-check.sh", run_dir + "/console.log"],
                          stdout=subprocess.DEVNULL).returncode == 0


patched, base = results(sys.argv[1]), results(sys.argv[2])
names = list(dict.fromkeys(list(base) + list(patched)))
passed = failed = 0
print()
print("| upstream test | patched | unpatched | same |")
print("|---|---|---|---|")
for n in names:
    p = patched.get(n, ("missing", ""))
    b = base.get(n, ("missing", ""))
    same = p[0] == b[0] and p[0] != "missing"
    # a test that fails on both kernels is not a regression, but it
    # proves nothing either: count only tests that pass on both
    ok = same and p[0] == "ok"
    passed += ok
    failed += not ok
    print(f"| {n} | {p[0]} {p[1]} | {b[0]} {b[1]} | {'yes' if same else 'NO'} |")
for label, d in (("patched", sys.argv[1]), ("unpatched", sys.argv[2])):
    ok = console_clean(d)
    passed += ok
    failed += not ok
    print(f"| kernel console of the {label} run clean | {'yes' if ok else 'NO'} | | |")
print()
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed or not names else 0)
EOF
