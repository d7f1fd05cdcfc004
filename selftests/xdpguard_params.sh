#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Bad module parameters fail insmod with EINVAL and a dmesg line that says
# what to fix, and leave nothing behind: no module, no BPF objects, no XDP.
# An interface that another XDP program holds fails insmod and an attach
# write with EBUSY and a dmesg line naming the interface.
source "$(dirname "$0")/lib.sh"

xg_require
trap xg_cleanup EXIT
ktap_print_header
ktap_set_plan 16

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
		fail "insmod $* succeeded"; return 1
	fi
	# kmod's insmod says "Invalid parameters" for EINVAL, busybox's "Invalid argument".
	[[ $out == *"Invalid parameters"* || $out == *"Invalid argument"* ]] ||
		fail "insmod $*: '$out', want EINVAL" || return
	xg_dmesg_since | grep -qF "xdpguard: $want" || fail "dmesg lacks 'xdpguard: $want': $(xg_dmesg_since | grep xdpguard)" || return
	! xg_loaded || fail "module loaded" || return
	xg_wait xg_no_objects_left || return 1
	[[ $(xg_xdp_mode "$XG_IF") == none ]] || fail "$XG_IF has XDP attached" || return
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
		fail "insmod succeeded"; return 1
	fi
	xg_dmesg_since | grep -qF "xdpguard: $DUMMY: cannot attach in native mode" || fail "dmesg: $(xg_dmesg_since | grep xdpguard)" || return
	! xg_loaded || fail "module loaded" || return
	xg_wait xg_no_objects_left || return 1
	xg_wait test "$(xg_xdp_mode "$XG_IF")" == none || fail "$XG_IF still has XDP attached" || return
}
check "an attach failure after a good attach undoes everything" native_refused_midway

# Another XDP program, not xdpguard's: xdp-filter's allow-all object from
# xdp-tools (Debian installs it under /usr/lib/<triplet>/bpf), attached with
# `ip link` as an operator would, without a BPF link.
FOREIGN=
for f in /usr/lib/*/bpf/xdpfilt_alw_all.o /usr/lib/bpf/xdpfilt_alw_all.o /usr/share/xdp-tools/xdpfilt_alw_all.o; do
	[[ -f $f ]] && { FOREIGN=$f; break; }
done

foreign_off() {
	ip link set dev "$XG_IF" xdpgeneric off 2>/dev/null
	ip link set dev "$XG_IF" xdpdrv off 2>/dev/null
}

# busy MODE: with the foreign program attached in MODE (xdpdrv or
# xdpgeneric), insmod ifaces=$XG_IF (mode=auto) must fail with EBUSY, say in
# dmesg which interface and what to do, leave nothing of its own and leave
# the other program where it was.
busy() {
	local mode=$1 want out
	[[ $mode == xdpdrv ]] && want=xdp || want=xdpgeneric
	ip link set dev "$XG_IF" "$mode" obj "$FOREIGN" sec xdp || fail "ip link set dev $XG_IF $mode obj $FOREIGN failed" || return
	[[ $(xg_xdp_mode "$XG_IF") == "$want" ]] || fail "ip link shows '$(xg_xdp_mode "$XG_IF")' after attaching $FOREIGN, want $want" || return
	xg_mark
	if out=$(insmod "$XG_KO" ifaces="$XG_IF" 2>&1); then
		rmmod xdpguard
		fail "insmod succeeded over another XDP program"; return 1
	fi
	[[ $out == *"Device or resource busy"* ]] || fail "insmod: '$out', want EBUSY (Device or resource busy)" || return
	xg_dmesg_since | grep -qF "xdpguard: $XG_IF: cannot attach: " || fail "dmesg does not name $XG_IF: $(xg_dmesg_since | grep xdpguard)" || return
	xg_dmesg_since | grep -qF "another XDP program is attached; remove it first" || fail "dmesg does not say what to do: $(xg_dmesg_since | grep xdpguard)" || return
	! xg_loaded || fail "module loaded" || return
	xg_wait xg_no_objects_left || return 1
	[[ $(xg_xdp_mode "$XG_IF") == "$want" ]] || fail "the other program is gone: ip link shows '$(xg_xdp_mode "$XG_IF")'" || return
}

# busy_attach: the same through the attach file of a loaded module: the
# write fails with EBUSY, status lists the failure, and once the other
# program is removed the same write attaches.
busy_attach() {
	local out
	insmod "$XG_KO" || fail "insmod without ifaces= failed" || return
	ip link set dev "$XG_IF" xdpdrv obj "$FOREIGN" sec xdp || fail "ip link set dev $XG_IF xdpdrv obj $FOREIGN failed" || return
	xg_mark
	if out=$( (echo "$XG_IF" >"$XG_SYSFS/attach") 2>&1); then
		fail "attach write succeeded over another XDP program"; return 1
	fi
	[[ $out == *"Device or resource busy"* ]] || fail "attach write: '$out', want EBUSY (Device or resource busy)" || return
	xg_dmesg_since | grep -qF "xdpguard: $XG_IF: cannot attach: " || fail "dmesg does not name $XG_IF: $(xg_dmesg_since | grep xdpguard)" || return
	grep -qx "failed $XG_IF error EBUSY by sysfs" "$XG_SYSFS/status" || fail "status: $(cat "$XG_SYSFS/status")" || return
	[[ -z $(cat "$XG_SYSFS/links") ]] || fail "links: $(cat "$XG_SYSFS/links")" || return
	foreign_off
	echo "$XG_IF" >"$XG_SYSFS/attach" || fail "attach after removing the other program failed" || return
	grep -q "^$XG_IF [0-9]* native [0-9]*$" "$XG_SYSFS/links" || fail "links: $(cat "$XG_SYSFS/links")" || return
}

# in_turn FUNCTION ARGS...: runs it, then removes the module and the
# foreign program whatever happened, so the next check starts clean.
in_turn() {
	local rc=0
	"$@" || rc=1
	xg_unload
	foreign_off
	return $rc
}

for t in "insmod over a native XDP program fails with EBUSY:busy xdpdrv" \
	"insmod over a generic XDP program fails with EBUSY:busy xdpgeneric" \
	"an attach write over another XDP program fails with EBUSY:busy_attach"; do
	if [[ -n $FOREIGN ]]; then
		check "${t%%:*}" in_turn ${t#*:}
	else
		ktap_test_skip "${t%%:*}" "no xdpfilt_alw_all.o (install xdp-tools)"
	fi
done

ktap_finished
