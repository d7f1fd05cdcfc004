#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Stress: fault injection on the insmod path. A load with fail-nth set out
# of reach counts the fault points (slab and page allocations) insmod's
# task passes through; then, for each N tried, the Nth one fails
# (failslab and fail_page_alloc through /proc/thread-self/fail-nth, see
# xgfailnth.py). Every failure must be a clean insmod error (the module is
# not loaded), or, where the kernel tolerates the failure, a working load;
# either way bpftool's program, map and link counts return to what they
# were, kmemleak (debug kernel) suspects nothing and the kernel logs no
# splat. The kernel's own allocation-failure warnings are expected here
# (see xg_alloc_warnings).
# XDPGUARD_FAULT_TRIES: how many points to fail (default 0: every one);
# with fewer than the points, the first TRIES/2 and TRIES/2 spread evenly
# over the rest.
source "$(dirname "$0")/lib.sh"

xg_require
FI=/sys/kernel/debug
[[ -d $FI/failslab && -d $FI/fail_page_alloc && -e /proc/self/fail-nth ]] ||
	ktap_exit_skip "kernel without FAILSLAB, FAIL_PAGE_ALLOC and FAULT_INJECTION_DEBUG_FS (make stress STRESS_KERNEL=debug)"
TRIES=${XDPGUARD_FAULT_TRIES:-0}

saved=()
fi_set() {
	saved+=("$(cat "$FI/$1") $FI/$1")
	echo "$2" >"$FI/$1"
}
fi_restore() {
	local s
	for s in "${saved[@]}"; do echo "${s% *}" >"${s##* }"; done
	saved=()
}
trap 'fi_restore; xg_alloc_warnings end; xg_cleanup' EXIT
ktap_print_header
ktap_set_plan 4

xg_unload
xg_veth_pair
BASE=$(xg_bpf_counts)
xg_kmemleak_available && xg_kmemleak_clear

# fail-nth counts every call to an enabled fault point; make GFP_KERNEL and
# order-0 allocations eligible (by default only atomic ones and order >= 1
# pages are), and print one line per injected failure, no stack.
for f in failslab fail_page_alloc; do
	fi_set $f/ignore-gfp-wait N
	fi_set $f/verbose 1
done
fi_set fail_page_alloc/ignore-gfp-highmem N
fi_set fail_page_alloc/min-order 0

# The fault points of one load: fail-nth set beyond reach.
out=$("$XG_DIR/xgfailnth.py" 1000000000 "$XG_KO" "ifaces=$XG_IF")
left=${out##*left=}
[[ $out == "errno=0 injected=0 "* ]] && rmmod xdpguard
POINTS=$((1000000000 - left))
ktap_print_msg "insmod passes $POINTS fault points ($out)"
if ((TRIES == 0 || TRIES >= POINTS)); then
	NS=$(seq 1 "$POINTS")
else
	NS=$( (seq 1 $((TRIES / 2)); for ((k = 1; k <= TRIES - TRIES / 2; k++)); do
		echo $((TRIES / 2 + k * (POINTS - TRIES / 2) / (TRIES - TRIES / 2))); done) | sort -nu)
fi

declare -A errors
FAILED=0 TOLERATED=0 TRIED=0
sweep() {
	local n out errno injected
	xg_alloc_warnings begin
	for n in $NS; do
		out=$("$XG_DIR/xgfailnth.py" "$n" "$XG_KO" "ifaces=$XG_IF") || fail "N=$n: xgfailnth.py: $out"
		TRIED=$((TRIED + 1))
		errno=${out#errno=} errno=${errno%% *}
		injected=${out#*injected=} injected=${injected%% *}
		if ((injected == 0)); then
			# Fewer points this time (the count varies a little).
			((errno == 0)) || fail "N=$n: no fault injected, yet insmod failed with errno $errno"
			rmmod xdpguard || fail "N=$n: rmmod failed"
		elif ((errno == 0)); then
			# The kernel absorbed the failure; the module must work.
			TOLERATED=$((TOLERATED + 1))
			grep -q "^$XG_IF " "$XG_SYSFS/links" || fail "N=$n: loaded after a tolerated failure but $XG_IF is not attached"
			rmmod xdpguard || fail "N=$n: rmmod failed"
		else
			FAILED=$((FAILED + 1))
			errors[$errno]=$((${errors[$errno]:-0} + 1))
			! xg_loaded || fail "N=$n: insmod failed (errno $errno) but the module is loaded"
		fi
		xg_wait xg_counts_are "$BASE" || fail "N=$n (errno $errno): objects leaked"
		[[ $(xg_xdp_mode "$XG_IF") == none ]] || fail "N=$n: $XG_IF kept XDP"
	done
	xg_alloc_warnings end
	declare -p TRIED FAILED TOLERATED errors >"$STATE"
}
STATE=$(mktemp)
start=$(date +%s)
check "each fault point of insmod tried fails cleanly or is absorbed, nothing leaked" sweep
[[ -s $STATE ]] && source "$STATE"
rm -f "$STATE"
summary=""
for e in "${!errors[@]}"; do summary+=" errno $e x${errors[$e]}"; done
ktap_print_msg "failed $TRIED of $POINTS fault points: $FAILED clean insmod errors ($summary ), $TOLERATED absorbed, in $(($(date +%s) - start)) s"
fi_restore

loads_after() {
	insmod "$XG_KO" ifaces="$XG_IF" || fail "insmod failed after the sweep"
	[[ $(xg_xdp_mode "$XG_IF") != none ]] || fail "$XG_IF not attached"
	rmmod xdpguard
	xg_wait xg_counts_are "$BASE"
}
check "insmod works after the sweep" loads_after

no_splat_region() {
	local d
	d=$(dmesg)
	# Every injected failure logged its one line (verbose=1), and no
	# warning beyond the allocator's own.
	grep -q 'FAULT_INJECTION: forcing a failure' <<<"$d" || fail "no injected failure was logged"
	! grep -E 'WARNING:|BUG:|KASAN:|refcount_t:|DEBUG_LOCKS_WARN_ON|possible (circular|recursive) locking' <<<"$d" ||
		fail "the kernel complained during the sweep (see above)"
}
check "the kernel logged the injected failures and no warning" no_splat_region

xg_check_kmemleak
ktap_finished
