#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Stress: interface churn and unload races, with ifaces= patterns.
#  - 100 veth pairs created and deleted while xdpguard is loaded with
#    ifaces=xgc*: devices called xgc* are attached when they appear (links
#    lists them, ip link shows XDP), the others (xgn*, and every peer) are
#    not; some matching ones are deleted at once, racing their attach; at
#    the end links names no deleted device and no XDP link is left.
#  - rmmod racing writes to /sys/module/xdpguard/bpf/attach and detach.
#  - rmmod racing hot-plugged matching devices.
# Nothing may be left behind (bpftool counts, kmemleak on the debug kernel);
# qemu/run.sh fails the run on any kernel splat.
source "$(dirname "$0")/lib.sh"

xg_require
PAIRS=${XDPGUARD_STRESS_PAIRS:-100}
ROUNDS=${XDPGUARD_STRESS_ROUNDS:-20}

del_churn_links() {
	local l
	for l in $(ip -j link show | jq -r '.[].ifname | select(test("^xg[cnr][0-9]"))'); do
		ip link del "$l" 2>/dev/null
	done
	return 0
}
trap 'xg_cleanup; del_churn_links' EXIT
ktap_print_header

xg_unload
del_churn_links
BASE=$(xg_bpf_counts)
# The patterns and hot-plug are module features (issue 5): skip cleanly on a
# module that lacks them.
if ! insmod "$XG_KO" 'ifaces=xgc*' 2>/dev/null; then
	ktap_exit_skip "this module does not take ifaces= patterns"
fi
if [[ ! -e $XG_SYSFS/attach ]]; then
	rmmod xdpguard
	ktap_exit_skip "this module has no $XG_SYSFS/attach"
fi
ktap_set_plan 6
xg_kmemleak_available && xg_kmemleak_clear

# links_has NAME: NAME has a line in the links file.
links_has() { awk -v n="$1" '$1 == n { f = 1 } END { exit !f }' "$XG_SYSFS/links"; }
attached() { links_has "$1" && [[ $(xg_xdp_mode "$1") != none ]]; }

# One batch: B pairs, even ones matching (xgcN, peer xgnNp), odd ones not
# (xgnN, peer xgnNp); plus one matching pair deleted right after creation.
churn() {
	local b i n name matching=() others=() per=10
	for ((b = 0; b < PAIRS / per; b++)); do
		matching=() others=()
		for ((i = 0; i < per; i++)); do
			n=$((b * per + i))
			if ((n % 2 == 0)); then name=xgc$n; matching+=("$name"); else name=xgn$n; others+=("$name"); fi
			ip link add "$name" type veth peer name "xgn${n}p" || fail "cannot create veth $name"
			others+=("xgn${n}p")
			ip link set "$name" up
			ip link set "xgn${n}p" up
		done
		ip link add "xgc${b}x" type veth peer name "xgn${b}xp" && ip link del "xgc${b}x"
		for name in "${matching[@]}"; do
			xg_wait attached "$name" ||
				fail "batch $b: $name (matches xgc*) not attached; links: $(cat $XG_SYSFS/links)"
		done
		for name in "${others[@]}"; do
			! links_has "$name" || fail "batch $b: $name (no match) is in links"
			[[ $(xg_xdp_mode "$name") == none ]] || fail "batch $b: $name (no match) has XDP"
		done
		for ((i = 0; i < per; i++)); do
			n=$((b * per + i))
			if ((n % 2 == 0)); then ip link del "xgc$n"; else ip link del "xgn$n"; fi
		done
	done
}
start=$(date +%s)
check "$PAIRS veth pairs hot-plugged: xgc* attached, the others not" churn
ktap_print_msg "churn took $(($(date +%s) - start)) s"

forgotten() {
	local l
	xg_wait bash -c "! grep -q . $XG_SYSFS/links" || fail "links still lists: $(cat $XG_SYSFS/links)"
	l=$(bpftool -j link show | jq '[.[] | select(.type == "xdp")] | length')
	((l == 0)) || fail "$l XDP links left while no guarded device exists"
}
check "deleted devices are forgotten: links empty, no XDP link left" forgotten

unload_clean() {
	rmmod xdpguard || fail "rmmod failed"
	xg_wait xg_counts_are "$BASE"
}
check "rmmod after the churn leaves nothing behind" unload_clean

# rmmod_busy: rmmod, retried for up to 5 s while the module is in use (a
# file of its sysfs directory may hold a reference for an instant).
rmmod_busy() {
	local t
	for t in $(seq 50); do
		rmmod xdpguard 2>/dev/null && return 0
		sleep 0.1
	done
	rmmod xdpguard
}

# rmmod racing runtime attaches and detaches through sysfs.
ip link add xgatt type veth peer name xgattp
ip link set xgatt up
ip link set xgattp up
XG_LINKS+=(xgatt)
XG_IF=xgatt
rmmod_vs_attach() {
	local i bg
	for ((i = 1; i <= ROUNDS; i++)); do
		insmod "$XG_KO" || fail "insmod $i failed"
		(
			while [[ -e $XG_SYSFS/attach ]]; do
				echo "$XG_IF" >"$XG_SYSFS/attach"
				echo "$XG_IF" >"$XG_SYSFS/detach"
			done
		) 2>/dev/null &
		bg=$!
		sleep "0.$((RANDOM % 4))"
		rmmod_busy || { kill "$bg"; fail "rmmod $i racing attach failed"; }
		wait "$bg"
		! xg_loaded || fail "round $i: module still loaded"
		[[ $(xg_xdp_mode "$XG_IF") == none ]] || fail "round $i: $XG_IF kept XDP after rmmod"
	done
	xg_wait xg_counts_are "$BASE"
}
check "rmmod racing sysfs attach/detach ($ROUNDS rounds)" rmmod_vs_attach

# rmmod racing hot-plugged devices that match ifaces=.
rmmod_vs_hotplug() {
	local i bg
	for ((i = 1; i <= ROUNDS; i++)); do
		insmod "$XG_KO" 'ifaces=xgr*' || fail "insmod $i failed"
		(
			k=0
			while xg_loaded && ((k < 200)); do
				ip link add "xgr$k" type veth peer name "xgr${k}p"
				ip link set "xgr$k" up
				ip link del "xgr$k"
				k=$((k + 1))
			done
		) 2>/dev/null &
		bg=$!
		sleep "0.$((RANDOM % 6))"
		rmmod_busy || { kill "$bg"; fail "rmmod $i racing hot-plug failed"; }
		wait "$bg"
		del_churn_links
	done
	xg_wait xg_counts_are "$BASE"
}
check "rmmod racing hot-plugged matching devices ($ROUNDS rounds)" rmmod_vs_hotplug

xg_check_kmemleak
ktap_finished
