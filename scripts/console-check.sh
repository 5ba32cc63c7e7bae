#!/usr/bin/env bash
# Scan a guest console log for kernel splats. Prints each report and exits 1
# if there is any.
set -euo pipefail
log=$1
pat='WARNING:|BUG:|Oops|Kernel panic|general protection fault|KASAN:|KFENCE:|UBSAN:'
pat+='|possible circular locking|possible recursive locking|inconsistent lock state'
pat+='|suspicious RCU usage|lock held when returning|unsafe lock order|INFO: task .* blocked'
pat+='|soft lockup|hung_task|kmemleak:|DEBUG_LOCKS_WARN_ON|refcount_t:|list_add corruption|list_del corruption'
# grep -m stops reading its file, never a pipe's writer (pipefail-safe).
mapfile -t hits < <(grep -naE -m 5 "$pat" "$log" || true)
[ ${#hits[@]} -gt 0 ] || exit 0
echo "==> FAIL: kernel reported a problem on the console ($log):"
for h in "${hits[@]}"; do
	n=${h%%:*}
	sed -n "$((n > 5 ? n - 5 : 1)),$((n + 40))p" "$log"
	echo "----"
done
exit 1
