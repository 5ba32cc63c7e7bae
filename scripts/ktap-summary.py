#!/usr/bin/env python3
"""Count test results in the KTAP written by scripts/guest-tests.sh.

Each harness test case (a nested "ok N name" line) counts once. A program
whose own result is "not ok" while none of its cases failed (it crashed or
timed out) counts as one more failure. Programs without nested cases count
by their own line. Each top-level document ("TAP version", then a plan
"1..N") must report N results: a "Bail out!" or a suite that stops early
counts every planned result it did not report as a failure, so that a
suite that never ran cannot look green. Extra checks (guest status,
console scan) are passed as NAME=ok|fail arguments. Prints the failures,
then the summary line.
"""
import re
import sys

TOP = re.compile(r'^(not ok|ok) \d+ (.*?)(?:\s+#\s*(SKIP|XFAIL|TODO)\b.*)?$')
PLAN = re.compile(r'^1\.\.(\d+)')
BAIL = re.compile(r'^Bail out!\s*(.*)$')
NESTED = re.compile(r'^# (not ok|ok) \d+ (.*?)(?:\s+#\s*(SKIP|XFAIL|TODO)\b.*)?$')


class Document:
    """Results reported against the plan of one top-level TAP document."""

    def __init__(self):
        self.plan, self.seen, self.bail = None, 0, None

    def missing(self):
        """Failures for what the plan promised and the document lacks."""
        if self.plan is not None and self.seen < self.plan:
            why = f'bailed out: {self.bail}' if self.bail is not None else 'stopped'
            return self.plan - self.seen, \
                f'{self.plan - self.seen} of {self.plan} planned tests never reported ({why})'
        if self.bail is not None:
            return 1, f'bailed out: {self.bail}'
        return 0, None


def count(lines):
    passed, failed, skipped, failures = 0, 0, 0, []
    cases = []
    doc = Document()

    def close(doc):
        n, why = doc.missing()
        if n:
            failures.append(why)
        return n

    for line in lines:
        line = line.rstrip('\n')
        if line.startswith('TAP version') or line.startswith('KTAP version'):
            failed += close(doc)
            doc = Document()
            continue
        m = PLAN.match(line)
        if m and doc.plan is None:
            doc.plan = int(m.group(1))
            continue
        m = BAIL.match(line)
        if m:
            doc.bail = m.group(1)
            continue
        m = NESTED.match(line)
        if m:
            cases.append(m.groups())
            continue
        m = TOP.match(line)
        if not m:
            continue
        status, name, directive = m.groups()
        doc.seen += 1
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
    failed += close(doc)
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
