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
pattern+='lockdep|KASAN:|UBSAN:|kmemleak:.*(new suspected|unreferenced)|unreferenced object|'
pattern+='rcu_(sched|preempt).*stall|blocked for more than|Call Trace:'
if grep -E -n "$pattern" "$1"; then
	exit 1
fi
exit 0
