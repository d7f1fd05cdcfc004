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
trap xg_cleanup EXIT
ktap_print_header
ktap_set_plan 14

xg_unload
R=$(mktemp -u XXXX | tr 'A-Z' 'a-z')
M="xhm$R" # names starting with $M match ifaces=$M*
N="xhn$R" # names starting with $N do not
SUBNET=0

# mkveth NAME: a veth NAME (up, 10.99.K.1/24) with its peer in a new
# namespace (10.99.K.2/24); records the namespace in NS_<NAME>.
mkveth() {
	local name=$1 ns="ns-$(mktemp -u XXXXXX)"
	SUBNET=$((SUBNET + 1))
	ip netns add "$ns"
	XG_NETNS+=("$ns")
	ip link add "$name" type veth peer name p"$name" netns "$ns"
	XG_LINKS+=("$name")
	ip addr add "10.99.$SUBNET.1/24" dev "$name"
	ip link set "$name" up
	ip -n "$ns" addr add "10.99.$SUBNET.2/24" dev p"$name"
	ip -n "$ns" link set lo up
	ip -n "$ns" link set p"$name" up
	printf -v "NS_${name//[^a-zA-Z0-9]/_}" '%s' "$ns"
	printf -v "IP_${name//[^a-zA-Z0-9]/_}" '%s' "10.99.$SUBNET.1"
}
ns_of() { local v="NS_${1//[^a-zA-Z0-9]/_}"; echo "${!v}"; }
ip_of() { local v="IP_${1//[^a-zA-Z0-9]/_}"; echo "${!v}"; }

# pings NAME: replies to 3 pings from NAME's peer namespace to NAME.
pings() {
	ip netns exec "$(ns_of "$1")" ping -q -n -c 3 -i 0.2 -W 1 "$(ip_of "$1")" 2>/dev/null |
		sed -n 's/.* \([0-9]\+\) received.*/\1/p'
}
in_links() { grep -q "^$1 [0-9]* \(native\|generic\) [0-9]*$" "$XG_SYSFS/links"; }
not_in_links() { ! grep -q "^$1 " "$XG_SYSFS/links"; }
xdp_is() { [[ $(xg_xdp_mode "$1") == "$2" ]]; }

# The number of XDP links bpftool sees equals the lines of `links`.
links_match_bpftool() {
	local want have
	want=$(wc -l <"$XG_SYSFS/links")
	have=$(bpftool -j link show | jq '[.[] | select(.type == "xdp")] | length')
	[[ $want == "$have" ]] || fail "links has $want lines, bpftool $have xdp links"
}

mkveth "${M}0"
mkveth "${N}0"

patterns_at_load() {
	insmod "$XG_KO" ifaces="lo0nope*,${M}*" mode=auto || fail "insmod failed"
	in_links "${M}0" || fail "links: $(cat "$XG_SYSFS/links")"
	not_in_links "${N}0" || fail "links: $(cat "$XG_SYSFS/links")"
	xdp_is "${M}0" xdp || fail "${M}0: $(xg_xdp_mode "${M}0"), want native xdp"
	xdp_is "${N}0" none || fail "${N}0 has XDP attached"
	links_match_bpftool
}
check "ifaces= pattern attaches the matching veth at load and not the other" patterns_at_load

hotplug() {
	mkveth "${M}1"
	mkveth "${N}1"
	xg_wait in_links "${M}1" || fail "hot-plugged ${M}1 not attached: $(cat "$XG_SYSFS/links")"
	xdp_is "${M}1" xdp || fail "${M}1: $(xg_xdp_mode "${M}1"), want native xdp"
	sleep 0.5
	not_in_links "${N}1" || fail "${N}1 attached: $(cat "$XG_SYSFS/links")"
	xdp_is "${N}1" none || fail "${N}1 has XDP attached"
	links_match_bpftool
	grep -q "^attached ${M}1 ifindex [0-9]* mode native link [0-9]* by hotplug$" "$XG_SYSFS/status" ||
		fail "status: $(cat "$XG_SYSFS/status")"
}
check "a matching veth created later is attached, a non-matching one is not" hotplug

drop_on_hotplugged() {
	local got
	got=$(pings "${M}1")
	[[ $got == 3 ]] || fail "before the rule: $got of 3 replies"
	xg_snapshot
	xg_apply <<EOF || return 1
[[rule]]
action = "deny"
src = "10.99.0.0/16"
EOF
	got=$(pings "${M}1")
	[[ $got == 0 ]] || fail "with the deny rule: $got of 3 replies through ${M}1"
	[[ $(xg_delta rule_deny) -ge 3 ]] || fail "rule_deny grew by $(xg_delta rule_deny), want >= 3"
	# The non-matching veth is not guarded: its pings still pass.
	got=$(pings "${N}1")
	[[ $got == 3 ]] || fail "unguarded ${N}1: $got of 3 replies"
	xg_apply <<<'default = "allow"' || return 1
}
check "a deny rule drops traffic on the hot-plugged veth only" drop_on_hotplugged

sysfs_attach_detach() {
	local got
	echo "${N}0" >"$XG_SYSFS/attach" || fail "attach write failed"
	in_links "${N}0" || fail "links: $(cat "$XG_SYSFS/links")"
	xdp_is "${N}0" xdp || fail "${N}0: $(xg_xdp_mode "${N}0")"
	# Idempotent: attaching again succeeds and changes nothing.
	echo "${N}0" >"$XG_SYSFS/attach" || fail "second attach write failed"
	[[ $(grep -c "^${N}0 " "$XG_SYSFS/links") == 1 ]] || fail "links: $(cat "$XG_SYSFS/links")"
	xg_apply <<EOF || return 1
[[rule]]
action = "deny"
src = "10.99.0.0/16"
EOF
	got=$(pings "${N}0")
	[[ $got == 0 ]] || fail "attached by sysfs, deny rule: $got of 3 replies"
	echo "${N}0" >"$XG_SYSFS/detach" || fail "detach write failed"
	not_in_links "${N}0" || fail "links: $(cat "$XG_SYSFS/links")"
	xg_wait xdp_is "${N}0" none || fail "${N}0 still has XDP after detach"
	got=$(pings "${N}0")
	[[ $got == 3 ]] || fail "after detach: $got of 3 replies"
	echo "${N}0" >"$XG_SYSFS/detach" || fail "detaching a detached interface failed"
	xg_apply <<<'default = "allow"' || return 1
	xg_wait links_match_bpftool
}
check "sysfs attach and detach take effect on traffic, and are idempotent" sysfs_attach_detach

sysfs_errors() {
	local out
	xg_mark
	out=$( (echo nosuch0x >"$XG_SYSFS/attach") 2>&1) && fail "attach of a missing interface succeeded"
	[[ $out == *"No such device"* ]] || fail "attach nosuch0x: '$out', want ENODEV"
	xg_dmesg_since | grep -qF "xdpguard: attach: no interface named 'nosuch0x'" || fail "dmesg: $(xg_dmesg_since | grep xdpguard)"
	out=$( (echo "a/b" >"$XG_SYSFS/attach") 2>&1) && fail "attach of a/b succeeded"
	[[ $out == *"Invalid argument"* ]] || fail "attach a/b: '$out', want EINVAL"
	out=$( (echo nosuch0x >"$XG_SYSFS/detach") 2>&1) && fail "detach of a missing interface succeeded"
	[[ $out == *"No such device"* ]] || fail "detach nosuch0x: '$out', want ENODEV"
	[[ $(stat -c %a "$XG_SYSFS/attach") == 200 ]] || fail "attach mode $(stat -c %a "$XG_SYSFS/attach")"
}
check "sysfs attach/detach errors are write() errnos with a dmesg line" sysfs_errors

deleted() {
	mkveth "${M}2"
	xg_wait in_links "${M}2" || fail "${M}2 not attached"
	xg_mark
	ip link del "${M}2"
	not_in_links "${M}2" || fail "deleted ${M}2 still in links: $(cat "$XG_SYSFS/links")"
	xg_dmesg_since | grep -qF "xdpguard: ${M}2: removed" || fail "dmesg: $(xg_dmesg_since | grep xdpguard)"
	xg_wait links_match_bpftool
}
check "a deleted interface disappears from links and its link is freed" deleted

renamed() {
	# Attached, renamed to a non-matching name: stays attached, new name.
	ip link set "${M}0" down
	ip link set "${M}0" name "${N}9"
	ip link set "${N}9" up
	XG_LINKS+=("${N}9")
	printf -v "NS_${N}9" '%s' "$(ns_of "${M}0")"
	printf -v "IP_${N}9" '%s' "$(ip_of "${M}0")"
	in_links "${N}9" || fail "renamed ${N}9 not in links: $(cat "$XG_SYSFS/links")"
	not_in_links "${M}0" || fail "old name still in links"
	xdp_is "${N}9" xdp || fail "${N}9: $(xg_xdp_mode "${N}9")"
	# Not attached, renamed to a matching name: attached.
	ip link set "${N}1" down
	ip link set "${N}1" name "${M}8"
	ip link set "${M}8" up
	XG_LINKS+=("${M}8")
	xg_wait in_links "${M}8" || fail "${M}8 (renamed into the pattern) not attached: $(cat "$XG_SYSFS/links")"
	grep -q "^attached ${M}8 .* by rename$" "$XG_SYSFS/status" || fail "status: $(cat "$XG_SYSFS/status")"
	links_match_bpftool
}
check "renames: an attachment follows its device; a rename into the pattern attaches" renamed

moved() {
	local ns
	ns=$(ns_of "${M}1")
	in_links "${M}1" || fail "${M}1 not attached"
	ip link set "${M}1" netns "$ns"
	not_in_links "${M}1" || fail "moved ${M}1 still in links"
	xg_wait test "$(ip -n "$ns" -d -j link show dev "${M}1" | jq -r '.[0].xdp.mode // "none"')" == none ||
		fail "${M}1 keeps XDP in $ns"
	# And back: it matches, so it is attached again.
	ip -n "$ns" link set "${M}1" netns 1
	ip link set "${M}1" up
	xg_wait in_links "${M}1" || fail "${M}1 not attached after coming back"
	xg_wait links_match_bpftool
}
check "an interface leaving the namespace is detached, one entering it attached" moved

status_file() {
	local s
	s=$(cat "$XG_SYSFS/status")
	grep -qx "ifaces lo0nope\*,${M}\*" <<<"$s" || fail "status: $s"
	grep -qx "mode auto" <<<"$s" && grep -qx "policy allow" <<<"$s" && grep -qx "monitor 0" <<<"$s" ||
		fail "status: $s"
	grep -qx "prog $(xg_prog_id) jited [0-9]*" <<<"$s" || fail "status: $s"
	[[ $(grep -c '^attached ' <<<"$s") == $(wc -l <"$XG_SYSFS/links") ]] || fail "status: $s"
}
check "status shows the parameters, program and attachments" status_file

rmmod_clean() {
	rmmod xdpguard || fail "rmmod failed"
	xg_wait xg_no_objects_left || return 1
	local d
	for d in "${N}9" "${M}8" "${M}1" "${N}0"; do
		xdp_is "$d" none || fail "$d keeps XDP after rmmod"
	done
}
check "rmmod leaves no program, map, link or XDP attachment" rmmod_clean

policy_deny() {
	local got
	insmod "$XG_KO" ifaces="${N}0" policy=deny || fail "insmod policy=deny failed"
	xg_snapshot
	got=$(pings "${N}0")
	[[ $got == 0 ]] || fail "policy=deny: $got of 3 replies"
	[[ $(xg_delta default_deny) -ge 3 ]] || fail "default_deny grew by $(xg_delta default_deny)"
	grep -qx "policy deny" "$XG_SYSFS/status" || fail "status: $(cat "$XG_SYSFS/status")"
	rmmod xdpguard
}
check "policy=deny drops what no rule allows from load on (ARP still passes)" policy_deny

monitor_mode() {
	local got
	insmod "$XG_KO" ifaces="${N}0" policy=deny monitor=1 || fail "insmod monitor=1 failed"
	xg_snapshot
	got=$(pings "${N}0")
	[[ $got == 3 ]] || fail "monitor=1: $got of 3 replies"
	[[ $(xg_delta monitor) -ge 3 ]] || fail "monitor counter grew by $(xg_delta monitor)"
	rmmod xdpguard
}
check "monitor=1 counts what policy=deny would drop and drops nothing" monitor_mode

no_ifaces_then_attach() {
	insmod "$XG_KO" || fail "insmod without ifaces= failed"
	[[ ! -s $XG_SYSFS/links ]] || fail "links not empty"
	echo "${N}0" >"$XG_SYSFS/attach" || fail "attach failed"
	in_links "${N}0" || fail "links: $(cat "$XG_SYSFS/links")"
	# A new interface matches no pattern: not attached.
	mkveth "${M}3"
	sleep 0.5
	not_in_links "${M}3" || fail "${M}3 attached without ifaces="
	rmmod xdpguard
	xg_wait xg_no_objects_left
}
check "without ifaces= nothing is attached until written to attach" no_ifaces_then_attach

rmmod_during_attach() {
	# Interfaces appear while the module goes away: no leak, no splat.
	local i
	insmod "$XG_KO" ifaces="${M}*" || fail "insmod failed"
	for i in 4 5 6; do
		ip link add "${M}c$i" type veth peer name "${N}c$i"
		XG_LINKS+=("${M}c$i")
	done
	rmmod xdpguard || fail "rmmod failed"
	xg_wait xg_no_objects_left || return 1
	for i in 4 5 6; do
		xdp_is "${M}c$i" none || fail "${M}c$i keeps XDP"
	done
}
check "rmmod right after hot-plug events leaves nothing behind" rmmod_during_attach

ktap_finished
