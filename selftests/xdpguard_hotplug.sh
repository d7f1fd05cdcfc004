#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Interfaces coming and going while xdpguard is loaded: ifaces= patterns
# attach matching veths (at load and when they appear later) and leave the
# others alone; /sys/module/xdpguard/bpf/attach and detach work at runtime;
# policy= and monitor= take effect at load; a deleted, renamed or moved
# interface is reflected in `links`; rmmod leaves nothing behind.
#
# Every veth has its peer in its own namespace, which pings the veth's
# address in the initial namespace: the pings cross the guarded ingress.
source "$(dirname "$0")/lib.sh"

xg_require
ktap_print_header
ktap_set_plan 15

xg_unload
R=$(mktemp -u XXXX | tr 'A-Z' 'a-z')
M="xhm$R" # names starting with $M match ifaces=$M*
N="xhn$R" # names starting with $N do not
# Check functions run in subshells (see check in lib.sh), so what mkveth
# makes is recorded in a file: "NAME NAMESPACE ADDRESS" lines.
VETHS=$(mktemp)
trap 'while read -r n ns _; do ip link del "$n" 2>/dev/null; ip netns del "$ns" 2>/dev/null; done <"$VETHS"; rm -f "$VETHS"; xg_cleanup' EXIT

# mkveth NAME: a veth NAME (up, 10.99.K.1/24) with its peer pNAME in a new
# namespace (10.99.K.2/24).
mkveth() {
	local name=$1 ns k
	ns="ns-$(mktemp -u XXXXXX)"
	k=$(($(wc -l <"$VETHS") + 1))
	ip netns add "$ns"
	echo "$name $ns 10.99.$k.1" >>"$VETHS"
	ip link add "$name" type veth peer name p"$name" netns "$ns"
	ip addr add "10.99.$k.1/24" dev "$name"
	ip link set "$name" up
	ip -n "$ns" addr add "10.99.$k.2/24" dev p"$name"
	ip -n "$ns" link set lo up
	ip -n "$ns" link set p"$name" up
}
# alias NEW OLD: NEW is OLD renamed (same namespace and address).
alias_veth() { awk -v n="$1" -v o="$2" '$1 == o { print n, $2, $3 }' "$VETHS" >>"$VETHS"; }
ns_of() { awk -v n="$1" '$1 == n { print $2; exit }' "$VETHS"; }
ip_of() { awk -v n="$1" '$1 == n { print $3; exit }' "$VETHS"; }

# pings NAME: replies to 3 pings from NAME's peer namespace to NAME.
pings() {
	ip netns exec "$(ns_of "$1")" ping -q -n -c 3 -i 0.2 -W 1 "$(ip_of "$1")" 2>/dev/null |
		sed -n 's/.* \([0-9]\+\) received.*/\1/p'
}
no_xdp_in() { [[ $(ip -n "$1" -d -j link show dev "$2" | jq -r '.[0].xdp.mode // "none"') == none ]]; }
in_links() { grep -q "^$1 [0-9]* \(native\|generic\) [0-9]*$" "$XG_SYSFS/links"; }
not_in_links() { ! grep -q "^$1 " "$XG_SYSFS/links"; }
xdp_is() { [[ $(xg_xdp_mode "$1") == "$2" ]]; }

# The number of XDP links bpftool sees equals the lines of `links`.
links_match_bpftool() {
	local want have
	want=$(wc -l <"$XG_SYSFS/links")
	have=$(bpftool -j link show | jq '[.[] | select(.type == "xdp")] | length')
	[[ $want == "$have" ]] || fail "links has $want lines, bpftool $have xdp links" || return
}

mkveth "${M}0"
mkveth "${N}0"

patterns_at_load() {
	insmod "$XG_KO" ifaces="lo0nope*,${M}*" mode=auto || fail "insmod failed" || return
	in_links "${M}0" || fail "links: $(cat "$XG_SYSFS/links")" || return
	not_in_links "${N}0" || fail "links: $(cat "$XG_SYSFS/links")" || return
	xdp_is "${M}0" xdp || fail "${M}0: $(xg_xdp_mode "${M}0"), want native xdp" || return
	xdp_is "${N}0" none || fail "${N}0 has XDP attached" || return
	links_match_bpftool
}
check "ifaces= pattern attaches the matching veth at load and not the other" patterns_at_load

hotplug() {
	mkveth "${M}1"
	mkveth "${N}1"
	xg_wait in_links "${M}1" || fail "hot-plugged ${M}1 not attached: $(cat "$XG_SYSFS/links")" || return
	xdp_is "${M}1" xdp || fail "${M}1: $(xg_xdp_mode "${M}1"), want native xdp" || return
	sleep 0.5
	not_in_links "${N}1" || fail "${N}1 attached: $(cat "$XG_SYSFS/links")" || return
	xdp_is "${N}1" none || fail "${N}1 has XDP attached" || return
	links_match_bpftool
	grep -q "^attached ${M}1 ifindex [0-9]* mode native link [0-9]* by hotplug$" "$XG_SYSFS/status" ||
		fail "status: $(cat "$XG_SYSFS/status")" || return
}
check "a matching veth created later is attached, a non-matching one is not" hotplug

drop_on_hotplugged() {
	local got
	got=$(pings "${M}1")
	[[ $got == 3 ]] || fail "before the rule: $got of 3 replies" || return
	xg_snapshot
	xg_apply <<EOF || return 1
[[rule]]
action = "deny"
src = "10.99.0.0/16"
EOF
	got=$(pings "${M}1")
	[[ $got == 0 ]] || fail "with the deny rule: $got of 3 replies through ${M}1" || return
	[[ $(xg_delta rule_deny) -ge 3 ]] || fail "rule_deny grew by $(xg_delta rule_deny), want >= 3" || return
	# The non-matching veth is not guarded: its pings still pass.
	got=$(pings "${N}1")
	[[ $got == 3 ]] || fail "unguarded ${N}1: $got of 3 replies" || return
	xg_apply <<<'default = "allow"' || return 1
}
check "a deny rule drops traffic on the hot-plugged veth only" drop_on_hotplugged

sysfs_attach_detach() {
	local got
	echo "${N}0" >"$XG_SYSFS/attach" || fail "attach write failed" || return
	in_links "${N}0" || fail "links: $(cat "$XG_SYSFS/links")" || return
	xdp_is "${N}0" xdp || fail "${N}0: $(xg_xdp_mode "${N}0")" || return
	# Idempotent: attaching again succeeds and changes nothing.
	echo "${N}0" >"$XG_SYSFS/attach" || fail "second attach write failed" || return
	[[ $(grep -c "^${N}0 " "$XG_SYSFS/links") == 1 ]] || fail "links: $(cat "$XG_SYSFS/links")" || return
	xg_apply <<EOF || return 1
[[rule]]
action = "deny"
src = "10.99.0.0/16"
EOF
	got=$(pings "${N}0")
	[[ $got == 0 ]] || fail "attached by sysfs, deny rule: $got of 3 replies" || return
	echo "${N}0" >"$XG_SYSFS/detach" || fail "detach write failed" || return
	not_in_links "${N}0" || fail "links: $(cat "$XG_SYSFS/links")" || return
	xg_wait xdp_is "${N}0" none || fail "${N}0 still has XDP after detach" || return
	got=$(pings "${N}0")
	[[ $got == 3 ]] || fail "after detach: $got of 3 replies" || return
	echo "${N}0" >"$XG_SYSFS/detach" || fail "detaching a detached interface failed" || return
	xg_apply <<<'default = "allow"' || return 1
	xg_wait links_match_bpftool
}
check "sysfs attach and detach take effect on traffic, and are idempotent" sysfs_attach_detach

not_failed() { ! grep -q "^failed $1 " "$XG_SYSFS/status"; }

detach_attach_at_once() {
	local i alt="xha$R"
	for i in 1 2 3 4 5; do
		echo "${N}0" >"$XG_SYSFS/attach" ||
			fail "attach $i failed: $(grep '^failed' "$XG_SYSFS/status")" || return
		echo "${N}0" >"$XG_SYSFS/detach" || fail "detach $i failed" || return
		# Off the device when the write returns, not some time later.
		xdp_is "${N}0" none || fail "detach $i returned with ${N}0 in $(xg_xdp_mode "${N}0")" || return
	done
	# An alternative name attaches the device; links show its own name.
	ip link property add dev "${N}0" altname "$alt" || fail "cannot add altname $alt" || return
	echo "$alt" >"$XG_SYSFS/attach" || fail "attach by altname $alt failed" || return
	in_links "${N}0" || fail "attached as $alt: links: $(cat "$XG_SYSFS/links")" || return
	echo "${N}0" >"$XG_SYSFS/detach" || fail "detach by its own name failed" || return
	not_in_links "${N}0" || fail "still in links: $(cat "$XG_SYSFS/links")" || return
	xdp_is "${N}0" none || fail "${N}0 in $(xg_xdp_mode "${N}0") after detach" || return
	ip link property del dev "${N}0" altname "$alt"
	not_failed "${N}0" || fail "status: $(cat "$XG_SYSFS/status")" || return
	xg_wait links_match_bpftool
}
check "detach then attach at once, 5 times, and by an alternative name" detach_attach_at_once

sysfs_errors() {
	local out
	xg_mark
	out=$( (echo nosuch0x >"$XG_SYSFS/attach") 2>&1) && { fail "attach of a missing interface succeeded"; return 1; }
	[[ $out == *"No such device"* ]] || fail "attach nosuch0x: '$out', want ENODEV" || return
	xg_dmesg_since | grep -qF "xdpguard: attach: no interface named 'nosuch0x'" || fail "dmesg: $(xg_dmesg_since | grep xdpguard)" || return
	out=$( (echo "a/b" >"$XG_SYSFS/attach") 2>&1) && { fail "attach of a/b succeeded"; return 1; }
	[[ $out == *"Invalid argument"* ]] || fail "attach a/b: '$out', want EINVAL" || return
	out=$( (echo nosuch0x >"$XG_SYSFS/detach") 2>&1) && { fail "detach of a missing interface succeeded"; return 1; }
	[[ $out == *"No such device"* ]] || fail "detach nosuch0x: '$out', want ENODEV" || return
	[[ $(stat -c %a "$XG_SYSFS/attach") == 200 ]] || fail "attach mode $(stat -c %a "$XG_SYSFS/attach")" || return
}
check "sysfs attach/detach errors are write() errnos with a dmesg line" sysfs_errors

deleted() {
	mkveth "${M}2"
	xg_wait in_links "${M}2" || fail "${M}2 not attached" || return
	xg_mark
	ip link del "${M}2"
	not_in_links "${M}2" || fail "deleted ${M}2 still in links: $(cat "$XG_SYSFS/links")" || return
	xg_dmesg_since | grep -qF "xdpguard: ${M}2: removed" || fail "dmesg: $(xg_dmesg_since | grep xdpguard)" || return
	xg_wait links_match_bpftool
}
check "a deleted interface disappears from links and its link is freed" deleted

renamed() {
	# Attached, renamed to a non-matching name: stays attached, new name.
	ip link set "${M}0" down
	ip link set "${M}0" name "${N}9"
	ip link set "${N}9" up
	alias_veth "${N}9" "${M}0"
	in_links "${N}9" || fail "renamed ${N}9 not in links: $(cat "$XG_SYSFS/links")" || return
	not_in_links "${M}0" || fail "old name still in links" || return
	xdp_is "${N}9" xdp || fail "${N}9: $(xg_xdp_mode "${N}9")" || return
	# Not attached, renamed to a matching name: attached.
	ip link set "${N}1" down
	ip link set "${N}1" name "${M}8"
	ip link set "${M}8" up
	alias_veth "${M}8" "${N}1"
	xg_wait in_links "${M}8" || fail "${M}8 (renamed into the pattern) not attached: $(cat "$XG_SYSFS/links")" || return
	grep -q "^attached ${M}8 .* by rename$" "$XG_SYSFS/status" || fail "status: $(cat "$XG_SYSFS/status")" || return
	links_match_bpftool
}
check "renames: an attachment follows its device; a rename into the pattern attaches" renamed

moved() {
	local ns
	ns=$(ns_of "${M}1")
	in_links "${M}1" || fail "${M}1 not attached" || return
	ip link set "${M}1" netns "$ns"
	not_in_links "${M}1" || fail "moved ${M}1 still in links" || return
	xg_wait no_xdp_in "$ns" "${M}1" ||
		fail "${M}1 keeps XDP in $ns" || return
	# And back: it matches, so it is attached again.
	ip -n "$ns" link set "${M}1" netns 1
	ip link set "${M}1" up
	xg_wait in_links "${M}1" || fail "${M}1 not attached after coming back" || return
	# Out and straight back in: the detach the worker owes runs before the
	# attach the return queues, which therefore succeeds.
	ip link set "${M}1" netns "$ns"
	ip -n "$ns" link set "${M}1" netns 1
	ip link set "${M}1" up
	xg_wait in_links "${M}1" || fail "${M}1 not attached after a quick return: $(cat "$XG_SYSFS/status")" || return
	xdp_is "${M}1" xdp || fail "${M}1: $(xg_xdp_mode "${M}1")" || return
	not_failed "${M}1" || fail "status: $(cat "$XG_SYSFS/status")" || return
	xg_wait links_match_bpftool
}
check "an interface leaving the namespace is detached, one entering it attached" moved

status_file() {
	local s
	s=$(cat "$XG_SYSFS/status")
	grep -qx "ifaces lo0nope\*,${M}\*" <<<"$s" || fail "status: $s" || return
	grep -qx "mode auto" <<<"$s" && grep -qx "policy allow" <<<"$s" && grep -qx "monitor 0" <<<"$s" ||
		fail "status: $s" || return
	grep -qx "prog $(xg_prog_id) jited [0-9]*" <<<"$s" || fail "status: $s" || return
	[[ $(grep -c '^attached ' <<<"$s") == $(wc -l <"$XG_SYSFS/links") ]] || fail "status: $s" || return
}
check "status shows the parameters, program and attachments" status_file

rmmod_clean() {
	rmmod xdpguard || fail "rmmod failed" || return
	xg_wait xg_no_objects_left || return 1
	local d
	for d in "${N}9" "${M}8" "${M}1" "${N}0"; do
		xdp_is "$d" none || fail "$d keeps XDP after rmmod" || return
	done
}
check "rmmod leaves no program, map, link or XDP attachment" rmmod_clean

policy_deny() {
	local got
	insmod "$XG_KO" ifaces="${N}0" policy=deny || fail "insmod policy=deny failed" || return
	xg_snapshot
	got=$(pings "${N}0")
	[[ $got == 0 ]] || fail "policy=deny: $got of 3 replies" || return
	[[ $(xg_delta default_deny) -ge 3 ]] || fail "default_deny grew by $(xg_delta default_deny)" || return
	grep -qx "policy deny" "$XG_SYSFS/status" || fail "status: $(cat "$XG_SYSFS/status")" || return
	rmmod xdpguard
}
check "policy=deny drops what no rule allows from load on (ARP still passes)" policy_deny

monitor_mode() {
	local got
	insmod "$XG_KO" ifaces="${N}0" policy=deny monitor=1 || fail "insmod monitor=1 failed" || return
	xg_snapshot
	got=$(pings "${N}0")
	[[ $got == 3 ]] || fail "monitor=1: $got of 3 replies" || return
	[[ $(xg_delta monitor) -ge 3 ]] || fail "monitor counter grew by $(xg_delta monitor)" || return
	rmmod xdpguard
}
check "monitor=1 counts what policy=deny would drop and drops nothing" monitor_mode

no_ifaces_then_attach() {
	insmod "$XG_KO" || fail "insmod without ifaces= failed" || return
	[[ -z $(cat "$XG_SYSFS/links") ]] || fail "links not empty" || return
	echo "${N}0" >"$XG_SYSFS/attach" || fail "attach failed" || return
	in_links "${N}0" || fail "links: $(cat "$XG_SYSFS/links")" || return
	# A new interface matches no pattern: not attached.
	mkveth "${M}3"
	sleep 0.5
	not_in_links "${M}3" || fail "${M}3 attached without ifaces=" || return
	rmmod xdpguard
	xg_wait xg_no_objects_left
}
check "without ifaces= nothing is attached until written to attach" no_ifaces_then_attach

rmmod_during_attach() {
	# Interfaces appear while the module goes away: no leak, no splat.
	local i
	insmod "$XG_KO" ifaces="${M}*" || fail "insmod failed" || return
	for i in 4 5 6; do
		ip link add "${M}c$i" type veth peer name "${N}c$i"
		echo "${M}c$i none -" >>"$VETHS"
	done
	rmmod xdpguard || fail "rmmod failed" || return
	xg_wait xg_no_objects_left || return 1
	for i in 4 5 6; do
		xdp_is "${M}c$i" none || fail "${M}c$i keeps XDP" || return
	done
}
check "rmmod right after hot-plug events leaves nothing behind" rmmod_during_attach

ktap_finished
