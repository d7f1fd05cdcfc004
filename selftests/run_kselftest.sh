#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the xdpguard kselftests (TEST_PROGS of the Makefile here) the way the
# kselftest runner does: KTAP on stdout, each test's own KTAP nested as "# "
# diagnostics, the timeout from ./settings, exit 4 counted as a skip.
# Ends with the totals of all subtests and exits non-zero on any failure.
# Usage: run_kselftest.sh [TEST...]
set -u
DIR=$(cd "$(dirname "$0")" && pwd)
cd "$DIR"
# XDPGUARD_KSFT_TIMEOUT overrides ./settings (the debug kernel is slower).
timeout=${XDPGUARD_KSFT_TIMEOUT:-$(sed -n 's/^timeout=//p' settings)}
if (($#)); then
	tests=("$@")
else
	read -r -a tests <<<"$(sed -n 's/^TEST_PROGS *:= *//p' Makefile)"
fi

echo "TAP version 13"
echo "1..${#tests[@]}"
n=0 failed=0 sub_pass=0 sub_fail=0 sub_skip=0
for t in "${tests[@]}"; do
	n=$((n + 1))
	echo "# timeout set to $timeout"
	echo "# selftests: xdpguard: $t"
	log=$(mktemp)
	start=$SECONDS
	timeout -k 10 "$timeout" "./$t" >"$log" 2>&1
	rc=$?
	sed 's/^/# /' "$log"
	echo "# $t: $((SECONDS - start)) s"
	skipped=$(grep -cE '^ok [0-9]+ .*# SKIP' "$log")
	sub_pass=$((sub_pass + $(grep -cE '^ok [0-9]+ ' "$log") - skipped))
	sub_skip=$((sub_skip + skipped))
	sub_fail=$((sub_fail + $(grep -cE '^not ok [0-9]+ ' "$log")))
	rm -f "$log"
	case $rc in
	0) echo "ok $n selftests: xdpguard: $t" ;;
	4) echo "ok $n selftests: xdpguard: $t # SKIP"; sub_skip=$((sub_skip + 1)) ;;
	124) echo "not ok $n selftests: xdpguard: $t # TIMEOUT $timeout seconds"; failed=1; sub_fail=$((sub_fail + 1)) ;;
	*) echo "not ok $n selftests: xdpguard: $t # exit=$rc"; failed=1
	   # A test that died before reporting still counts as a failure.
	   ((sub_fail == 0)) && sub_fail=1 ;;
	esac
done
echo "selftests: $sub_pass passed, $sub_fail failed, $sub_skip skipped"
exit $failed
