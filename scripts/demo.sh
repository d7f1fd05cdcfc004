#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The xdpguard demo, run inside the test VM by `make demo`: guard a veth,
# ping from two sources, deny one, and show the drop and the counters.
set -euo pipefail
source "$(dirname "$0")/../selftests/lib.sh"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
trap xg_cleanup EXIT

xg_unload
xg_veth_pair
ip addr add 192.0.2.1/24 dev "$XG_IF"
ip -n "$XG_NS" addr add 192.0.2.2/24 dev "$XG_PEER"
ip -n "$XG_NS" addr add 192.0.2.66/24 dev "$XG_PEER"

ping_from() {
	local out
	out=$(ip netns exec "$XG_NS" ping -q -n -c 5 -i 0.2 -W 1 -I "$1" 192.0.2.1 2>&1 || true)
	printf '  ping from %-12s %s\n' "$1" "$(grep -o '[0-9]* packets transmitted, [0-9]* received' <<<"$out")"
}

counters() {
	"$XG_CLI" stats --rules | awk '$2 != 0 || NR == 1' | sed 's/^/  /'
}

step "Guarding $XG_IF (192.0.2.1); the sender in namespace $XG_NS has 192.0.2.2 and 192.0.2.66"
echo "  \$ insmod xdpguard.ko ifaces=$XG_IF"
xg_mark
insmod "$XG_KO" ifaces="$XG_IF"
xg_dmesg_since | grep 'xdpguard:' | sed 's/^/  dmesg: /'

step "What the module published in /sys/module/xdpguard/bpf/"
for f in prog_id maps links; do
	sed "s|^|  $f: |" "$XG_SYSFS/$f"
done
echo
bpftool prog show id "$(xg_prog_id)" | sed 's/^/  /'
ip -d link show dev "$XG_IF" | grep -E 'prog/xdp|xdp' | sed 's/^/  /'

step "Both sources reach 192.0.2.1"
ping_from 192.0.2.2
ping_from 192.0.2.66

step "Deny source 192.0.2.66: xdpguard apply rules.toml"
rules=$(mktemp --suffix=.toml)
cat >"$rules" <<EOF
default = "allow"
[[rule]]
action = "deny"
src = "192.0.2.66"
comment = "the demo's bad host"
EOF
sed 's/^/  | /' "$rules"
"$XG_CLI" apply "$rules" | sed 's/^/  /'
ping_from 192.0.2.2
ping_from 192.0.2.66

step "Counters (xdpguard stats --rules; zero rows left out)"
counters

step "Samples of the dropped packets (xdpguard log)"
"$XG_CLI" log --count 3 --timeout 3 | sed 's/^/  /'

step "rmmod xdpguard"
rmmod xdpguard
xg_dmesg_since | grep 'xdpguard:' | tail -n1 | sed 's/^/  dmesg: /'
xg_wait xg_no_objects_left && echo "  no xdpguard program, map or link remains"
ping_from 192.0.2.66
