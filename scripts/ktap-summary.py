#!/usr/bin/env python3
"""Count test results in the KTAP written by scripts/guest-tests.sh.

Each harness test case (a nested "ok N name" line) counts once. A program
whose own result is "not ok" while none of its cases failed (it crashed or
timed out) counts as one more failure. Programs without nested cases count
by their own line. Extra checks (guest status, console scan) are passed as
NAME=ok|fail arguments. Prints the failures, then the summary line.
"""
import re
import sys

TOP = re.compile(r'^(not ok|ok) \d+ (.*?)(?:\s+#\s*(SKIP|XFAIL|TODO)\b.*)?$')
NESTED = re.compile(r'^# (not ok|ok) \d+ (.*?)(?:\s+#\s*(SKIP|XFAIL|TODO)\b.*)?$')


def count(lines):
    passed, failed, skipped, failures = 0, 0, 0, []
    cases = []
    for line in lines:
        line = line.rstrip('\n')
        m = NESTED.match(line)
        if m:
            cases.append(m.groups())
            continue
        m = TOP.match(line)
        if not m:
            continue
        status, name, directive = m.groups()
        if not cases:
            cases = [(status, name, directive)]
        elif status == 'not ok' and directive is None and \
                not any(c[0] == 'not ok' and c[2] is None for c in cases):
            cases.append(('not ok', name + ' (program failed or timed out)', None))
        for st, nm, dv in cases:
            if dv == 'SKIP':
                skipped += 1
            elif st == 'ok' or dv in ('XFAIL', 'TODO'):
                passed += 1
            else:
                failed += 1
                failures.append(nm)
        cases = []
    return passed, failed, skipped, failures


def main():
    path = sys.argv[1]
    try:
        with open(path, errors='replace') as f:
            passed, failed, skipped, failures = count(f)
    except OSError:
        passed, failed, skipped, failures = 0, 0, 0, []
    for check in sys.argv[2:]:
        name, _, result = check.partition('=')
        if result == 'ok':
            passed += 1
        else:
            failed += 1
            failures.append(name)
    for name in failures:
        print('FAILED: ' + name)
    if passed + failed + skipped == 0:
        failed += 1
        print('FAILED: no test results in ' + path)
    print(f'{passed} passed, {failed} failed, {skipped} skipped')
    return 1 if failed else 0


sys.exit(main())
