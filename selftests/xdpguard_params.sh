#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Bad module parameters fail insmod with EINVAL and a dmesg line that says
# what to fix, and leave nothing behind: no module, no BPF objects, no XDP.
source "$(dirname "$0")/lib.sh"

xg_require
trap xg_cleanup EXIT
ktap_print_header
ktap_set_plan 13

xg_unload
xg_veth_pair
DUMMY="xd$(mktemp -u XXXXXX)"
ip link add "$DUMMY" type dummy
XG_LINKS+=("$DUMMY")

# refused "dmesg text" PARAMS...: insmod must fail with EINVAL, log the text
# and leave no trace.
refused() {
	local want=$1 out
	shift
	xg_mark
	if out=$(insmod "$XG_KO" "$@" 2>&1); then
		rmmod xdpguard
		fail "insmod $* succeeded"
	fi
	[[ $out == *"Invalid argument"* ]] || fail "insmod $*: '$out', want Invalid argument (EINVAL)"
	xg_dmesg_since | grep -qF "xdpguard: $want" || fail "dmesg lacks 'xdpguard: $want': $(xg_dmesg_since | grep xdpguard)"
	! xg_loaded || fail "module loaded"
	xg_wait xg_no_objects_left || return 1
	[[ $(xg_xdp_mode "$XG_IF") == none ]] || fail "$XG_IF has XDP attached"
}

check "unknown interface is refused" \
	refused "ifaces=: no interface named 'nosuch0' in the initial network namespace" ifaces=nosuch0
check "unknown mode is refused" \
	refused "mode=fast: unknown mode; use mode=auto, mode=native or mode=generic" ifaces="$XG_IF" mode=fast
check "over-long interface name is refused" \
	refused "ifaces=: 'waytoolonginterfacename' is longer than 15 bytes" ifaces=waytoolonginterfacename
check "interface listed twice is refused" \
	refused "ifaces=: '$XG_IF' is listed twice" ifaces="$XG_IF,$XG_IF"
check "a good interface before a missing one is not left attached" \
	refused "ifaces=: no interface named 'nosuch1'" ifaces="$XG_IF,nosuch1"
check "a pattern with an unclosed [ is refused" \
	refused "ifaces=: 'veth[0-9': '[' without a closing ']'" ifaces="$XG_IF,veth[0-9"
check "a pattern with a backwards range is refused" \
	refused "ifaces=: 'veth[9-0]': a range in '[9-0]' runs backwards" "ifaces=veth[9-0]"
check "an over-long pattern is refused" \
	refused "ifaces=: pattern 'x*$(printf 'y%.0s' $(seq 70))' is longer than 64 bytes" "ifaces=x*$(printf 'y%.0s' $(seq 70))"
check "a pattern with a character no name can hold is refused" \
	refused "ifaces=: 'veth/*' is not a valid pattern" "ifaces=veth/*"
check "a pattern listed twice is refused" \
	refused "ifaces=: 'veth*' is listed twice" "ifaces=veth*,veth*"
check "unknown policy is refused" \
	refused "policy=block: unknown policy; use policy=allow or policy=deny" ifaces="$XG_IF" policy=block
check "bad monitor value is refused" \
	refused "monitor=maybe: use monitor=0 (off) or monitor=1" ifaces="$XG_IF" monitor=maybe

native_refused_midway() {
	# The veth attaches natively, then the dummy (no native XDP) fails:
	# the veth's link must be undone.
	local out
	xg_mark
	if out=$(insmod "$XG_KO" ifaces="$XG_IF,$DUMMY" mode=native 2>&1); then
		rmmod xdpguard
		fail "insmod succeeded"
	fi
	xg_dmesg_since | grep -qF "xdpguard: $DUMMY: cannot attach in native mode" || fail "dmesg: $(xg_dmesg_since | grep xdpguard)"
	! xg_loaded || fail "module loaded"
	xg_wait xg_no_objects_left || return 1
	xg_wait test "$(xg_xdp_mode "$XG_IF")" == none || fail "$XG_IF still has XDP attached"
}
check "an attach failure after a good attach undoes everything" native_refused_midway

ktap_finished
