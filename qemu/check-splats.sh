#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Exit 1, printing the lines, if a kernel log holds any splat: warnings,
# bugs, oopses, panics, refcount errors, lockdep, KASAN/UBSAN and kmemleak
# reports, RCU stalls, hung tasks.
# Usage: check-splats.sh DMESG-FILE
set -euo pipefail
pattern='WARNING:|BUG:|Oops|Kernel panic|general protection fault|refcount_t:|'
pattern+='possible circular locking|possible recursive locking|inconsistent lock state|'
pattern+='turning off the locking correctness validator|DEBUG_LOCKS_WARN_ON|KASAN:|UBSAN:|kmemleak:.*(new suspected|unreferenced)|unreferenced object|'
pattern+='rcu_(sched|preempt).*stall|blocked for more than|Call Trace:'
# Between the markers of selftests/lib.sh's xg_alloc_warnings, the stack
# dump that follows a warn_alloc() line ("page allocation failure",
# "vmalloc error": the kernel reporting an allocation that fault injection
# failed on purpose) is expected; anything else there still counts.
filter_expected() {
	awk '
		/xdpguard-selftest: expected allocation failure warnings begin/ { region = 1 }
		/xdpguard-selftest: expected allocation failure warnings end/ { region = 0 }
		region && /(page allocation failure|vmalloc error): / { allow = 8 }
		{
			if (allow > 0 && /Call Trace:/) { allow = 0; print ""; next }
			if (allow > 0) allow--
			print
		}' "$1"
}
if filter_expected "$1" | grep -E -n "$pattern"; then
	exit 1
fi
exit 0
