#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Host test of issue 14's build promise: plain builds install nothing.
#  1. `make -n` with and without KDIR= plans no bootstrap and no apt-get;
#     `make -n test` does plan the bootstrap.
#  2. check-build-tools.sh with no tools in PATH names each missing tool once,
#     says nothing was installed and exits 1.
set -uo pipefail
cd "$(dirname "$0")/.."
n=0 fails=0
ok() { n=$((n + 1)); echo "ok $n $1"; }
no() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n $1"; }

echo "TAP version 13"
echo "1..5"
for args in "KDIR=/nonexistent" "KDIR=/nonexistent module cli" ""; do
	plan=$(make -n $args 2>&1)
	if grep -qE 'bootstrap\.sh|apt-get' <<<"$plan"; then
		no "make -n $args plans an installation"
	else
		ok "make -n $args installs nothing"
	fi
done
plan=$(make -n test 2>&1)
if grep -q 'scripts/bootstrap.sh' <<<"$plan"; then
	ok "make -n test runs the bootstrap"
else
	no "make -n test does not run the bootstrap"
fi
# /usr/bin and /bin hold no cargo or bpf-linker (rustup puts them in ~/.cargo/bin).
out=$(env -i PATH=/usr/bin:/bin HOME=/nonexistent /bin/bash scripts/check-build-tools.sh cli bpf 2>&1)

rc=$?
if ((rc == 1)) && [[ $(grep -c "cargo (install" <<<"$out") == 1 ]] && grep -q 'Nothing was installed' <<<"$out"; then
	ok "missing tools are named, exit 1"
else
	no "check-build-tools.sh without tools: rc $rc: $out"
fi
exit $((fails > 0))
