#!/usr/bin/env bash
# Scan a guest console log for kernel splats. Prints each report and exits 1
# if there is any.
set -u
log=$1
pat='WARNING:|BUG:|Oops|Kernel panic|general protection fault|KASAN:|KFENCE:|UBSAN:'
pat+='|possible circular locking|possible recursive locking|inconsistent lock state'
pat+='|suspicious RCU usage|lock held when returning|unsafe lock order|INFO: task .* blocked'
pat+='|soft lockup|hung_task|kmemleak:|DEBUG_LOCKS_WARN_ON|refcount_t:|list_add corruption|list_del corruption'
if grep -qaE "$pat" "$log"; then
	echo "==> FAIL: kernel reported a problem on the console ($log):"
	grep -naE "$pat" "$log" | head -5 | while IFS=: read -r n _; do
		sed -n "$((n > 5 ? n - 5 : 1)),$((n + 45))p" "$log"
		echo "----"
	done | head -200
	exit 1
fi
exit 0
