#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The kselftests on the debug kernel: forget what kmemleak suspected during
# boot, run the tests (all of TEST_PROGS, or the ones named), then scan for
# leaks twice and fail, printing the report, if kmemleak suspects anything.
# KASAN, lockdep and the other checkers report in dmesg, which qemu/run.sh
# checks after the run.
# Usage: run_debug.sh [TEST...]
set -u
DIR=$(cd "$(dirname "$0")" && pwd)
source "$DIR/lib.sh"

if ! xg_kmemleak_available; then
	echo "run_debug.sh: this kernel has no kmemleak (not the debug kernel?)" >&2
	exit 1
fi
xg_kmemleak_clear
start=$(date +%s)
"$DIR/run_kselftest.sh" "$@"
rc=$?
echo "run_debug.sh: tests took $(($(date +%s) - start)) s"
start=$(date +%s)
if xg_kmemleak_check; then
	echo "kmemleak: no suspected leaks ($(($(date +%s) - start)) s to scan)"
else
	echo "kmemleak: suspected leaks (report above); failing the run"
	rc=1
fi
exit $rc
