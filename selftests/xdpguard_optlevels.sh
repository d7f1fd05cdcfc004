#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The program built at every opt-level the build allows (make opt-levels:
# build/opt/xdpguard-O<L>.ko, scripts/bpf-opt-levels.sh) must pass the
# verifier: a bound the verifier needs must not depend on what LLVM keeps.
# For each module: insmod on a veth (the verifier accepted the program and
# it is attached), a denied ping is dropped and sampled (`xdpguard log`
# decodes the captured bytes: the bpf_xdp_load_bytes path ran), rmmod
# leaves nothing. A level the build skipped (the program does not build
# or link there, or keeps a call) fails with the build's reason: every
# level builds today. Skipped when build/opt holds neither a module nor a
# build summary, or holds modules of another kernel (make test-debug boots
# the debug kernel).
#
#   ns-XXXX (sender)             initial namespace (guarded)
#   xpXXXX 192.0.2.2             xgXXXX 192.0.2.1   <- xdpguard-O<L>.ko
source "$(dirname "$0")/lib.sh"

OPT_DIR=${XDPGUARD_OPT_DIR:-$XG_DIR/../build/opt}
shopt -s nullglob
KOS=("$OPT_DIR"/xdpguard-O*.ko)
shopt -u nullglob
((${#KOS[@]})) || [[ -s $OPT_DIR/summary.txt ]] || ktap_exit_skip "no modules in $OPT_DIR (make opt-levels)"
# Built against this kernel? (release and build version of the tree,
# recorded by the build script; another kernel's module must not be loaded.)
if [[ -f $OPT_DIR/kernel.txt ]]; then
	want="$(uname -r) $(uname -v)"
	built=$(cat "$OPT_DIR/kernel.txt")
	[[ $built == "$want" ]] || ktap_exit_skip "modules in $OPT_DIR are for '$built', this kernel is '$want'"
fi
XG_KO=${KOS[0]:-$XG_KO}
xg_require
trap xg_cleanup EXIT
ktap_print_header

# (No process substitution: the guest has no /dev/fd.)
SKIPPED=()
skipped=$(grep ' skipped: ' "$OPT_DIR/summary.txt" 2>/dev/null)
[[ -n $skipped ]] && mapfile -t SKIPPED <<<"$skipped"
ktap_set_plan $((4 * ${#KOS[@]} + ${#SKIPPED[@]}))

for line in "${SKIPPED[@]}"; do
	ktap_print_msg "${line#* skipped: }"
	ktap_test_fail "${line%% *}: builds"
done

xg_unload
xg_veth_pair
xg_veth_addrs 192.0.2.1/24 192.0.2.2/24
# Static neighbours: nothing but the pings crosses the guarded link.
mac=$(cat "/sys/class/net/$XG_IF/address")
peer_mac=$(ip -n "$XG_NS" -j link show "$XG_PEER" | jq -r '.[0].address')
ip -n "$XG_NS" neigh replace 192.0.2.1 lladdr "$mac" dev "$XG_PEER" nud permanent
ip neigh replace 192.0.2.2 lladdr "$peer_mac" dev "$XG_IF" nud permanent

loads() {
	insmod "$1" ifaces="$XG_IF" && return 0
	# The module prints the end of the verifier log ("xdpguard: verifier:
	# ..."): its last instructions, then why it refused.
	local log
	log=$(xg_dmesg_since | grep 'xdpguard: ')
	grep 'verifier: [0-9]*: ' <<<"$log" | tail -n 3 >&2
	grep -v 'verifier: [0-9]*: ' <<<"$log" >&2
	fail "insmod $(basename "$1") failed"
}

attached() {
	xg_wait grep -q "^$XG_IF [0-9]* native [0-9]*$" "$XG_SYSFS/links" ||
		fail "links file: '$(cat "$XG_SYSFS/links")', want $XG_IF native"
}

# What the verifier and JIT made of it, for the log.
prog_info() {
	bpftool -j prog show id "$(xg_prog_id)" 2>/dev/null |
		jq -r '"\(.bytes_xlated / 8) instructions, \(.bytes_jited) bytes JIT-compiled"'
}

dropped_and_sampled() {
	local got log
	xg_apply <<-EOF || return
		[[rule]]
		action = "deny"
		src = "192.0.2.2"
	EOF
	got=$(ip netns exec "$XG_NS" ping -q -n -c 3 -i 0.2 -W 1 192.0.2.1 2>/dev/null |
		sed -n 's/.* \([0-9]\+\) received.*/\1/p')
	[[ $got == 0 ]] || fail "${got:-?} of 3 pings from the denied source answered" || return
	log=$("$XG_CLI" log --count 1 --timeout 5 2>&1)
	echo "$log"
	grep -q "$XG_IF drop (rule_deny rule 1) 192.0.2.2 -> 192.0.2.1 icmp type 8 code 0 len 98" <<<"$log" ||
		fail "no decoded sample of the dropped ping" || return
}

unloads() {
	rmmod xdpguard || fail "rmmod failed" || return
	xg_wait xg_no_objects_left
}

for ko in "${KOS[@]}"; do
	level=$(basename "$ko" .ko)
	level=${level#xdpguard-}
	xg_unload 2>/dev/null
	xg_mark
	t=$SECONDS
	check "$level: insmod: the verifier accepts the program" loads "$ko"
	if ! xg_loaded; then
		for what in "attached to the veth" "a denied ping is dropped and sampled" "rmmod leaves nothing"; do
			ktap_test_skip "$level: $what" "not loaded"
		done
		continue
	fi
	check "$level: attached to the veth" attached
	ktap_print_msg "$level: $(prog_info)"
	check "$level: a denied ping is dropped and sampled" dropped_and_sampled
	check "$level: rmmod leaves nothing" unloads
	ktap_print_msg "$level: $((SECONDS - t)) s"
done

ktap_finished
