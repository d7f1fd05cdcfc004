#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# S5 of issue 13: a per-source rate limiter is exact across CPUs. Four
# senders pinned to four CPUs send UDP from the SAME source address at the
# same time through a veth with generic XDP, which runs on the sending CPU
# (veth_xmit -> netif_rx -> that CPU's backlog), so four CPUs charge one
# bucket concurrently. The passes must stay within
#
#   B + P x elapsed_min - SLACK  <=  passes  <=  B + P x elapsed_max + 4
#
# (the lower bound capped by what was offered), where elapsed is read from
# the guest's CLOCK_MONOTONIC (the clock of bpf_ktime_get_ns):
# elapsed_max = last sender's end - first sender's start (no frame of the
# run is seen outside it), elapsed_min = last "before the last send" -
# first "after the first send" (the first frame is seen no later, the
# last no earlier). SLACK = 5: one packet interval per CPU (each of the
# four CPUs reads the clock before its compare-and-exchange lands, so a
# frame may be judged up to one interval early) plus one for the rounding
# down of B + P x elapsed.
#
# Needs 4 CPUs: skipped with fewer (make selftests boots 2), unless
# XDPGUARD_LIMITER_STRICT=1 (make limiter-test, which boots 4), where
# fewer CPUs is a failure, so a skip cannot hide a failing run.
source "$(dirname "$0")/lib.sh"

CPUS=$(nproc)
if ((CPUS < 4)); then
	if [[ ${XDPGUARD_LIMITER_STRICT:-0} == 1 ]]; then
		ktap_print_header
		ktap_set_plan 1
		# A kernel built with CONFIG_NR_CPUS=2 ignores the others.
		cap=$(dmesg | grep -o 'CPU limit of [0-9]* reached' | head -n 1)
		ktap_test_fail "the guest has $CPUS CPUs; this run needs at least 4 (qemu/run.sh --smp 4 and a kernel with CONFIG_NR_CPUS >= 4)${cap:+; dmesg: $cap}"
		ktap_finished
	fi
	ktap_exit_skip "needs at least 4 CPUs, the guest has $CPUS (make limiter-test boots 4)"
fi
xg_require
command -v taskset >/dev/null || ktap_exit_skip "taskset is not installed"
SENDER=$(mktemp --suffix=.py)
trap 'xg_cleanup; kill $(jobs -p) 2>/dev/null; rm -f "$SENDER"' EXIT
ktap_print_header
ktap_set_plan 6

PPS=${XDPGUARD_LIMITER_PPS:-100}
BURST=${XDPGUARD_LIMITER_BURST:-200}
DURATION=${XDPGUARD_LIMITER_SECONDS:-3}
# Each sender offers at most this many frames a second (far above PPS;
# an unpaced flood from four emulated CPUs starves the host).
SENDER_RATE=1500
SLACK=5

cat >"$SENDER" <<'EOF'
import json, os, socket, struct, sys, time
iface, dst_mac, start_at, duration, rate, sport = sys.argv[1:7]
start_at, duration, rate, sport = float(start_at), float(duration), float(rate), int(sport)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
own = s.getsockname()[4][:6]
udp = struct.pack("!HHHH", sport, 9, 12, 0) + b"xg13"
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 32, 1, 0, 64, 17, 0,
                 socket.inet_aton("192.0.2.2"), socket.inet_aton("192.0.2.1"))
frame = bytes.fromhex(dst_mac.replace(":", "")) + own + b"\x08\x00" + ip + udp
while time.monotonic() < start_at:
    time.sleep(0.001)
t_start = time.monotonic()
s.send(frame)
t_first = time.monotonic()
sent, t_last = 1, t_first
end = t_start + duration
while True:
    now = time.monotonic()
    if now >= end:
        break
    # Paced: catch up to `rate` frames a second since the start.
    due = int((now - t_start) * rate) + 1
    if sent >= due:
        time.sleep(0.0005)
        continue
    t_last = time.monotonic()
    s.send(frame)
    sent += 1
t_end = time.monotonic()
print(json.dumps({"cpu": os.sched_getaffinity(0).pop(), "sent": sent, "t_start": t_start,
                  "t_first": t_first, "t_last": t_last, "t_end": t_end}))
EOF

xg_unload
xg_mark
xg_veth_pair
ip link set "$XG_IF" down
ip -n "$XG_NS" link set "$XG_PEER" down
ip link set "$XG_IF" addrgenmode none
ip -n "$XG_NS" link set "$XG_PEER" addrgenmode none
ip link set "$XG_IF" up
ip -n "$XG_NS" link set "$XG_PEER" up
xg_veth_addrs 192.0.2.1/24 192.0.2.2/24
# GRO would give the veth a NAPI context (one CPU at a time).
command -v ethtool >/dev/null && ethtool -K "$XG_IF" gro off >/dev/null 2>&1
ip netns exec "$XG_NS" ethtool -K "$XG_PEER" gro off >/dev/null 2>&1
MAC=$(cat /sys/class/net/$XG_IF/address)
PEER_MAC=$(ip -n "$XG_NS" -j link show "$XG_PEER" | jq -r '.[0].address')
ip -n "$XG_NS" neigh replace 192.0.2.1 lladdr "$MAC" dev "$XG_PEER" nud permanent
ip neigh replace 192.0.2.2 lladdr "$PEER_MAC" dev "$XG_IF" nud permanent

insmod "$XG_KO" ifaces="$XG_IF" mode=generic || ktap_exit_skip "insmod failed; see xdpguard_load.sh"
generic_mode() {
	local m
	m=$(xg_xdp_mode "$XG_IF")
	[[ $m == xdpgeneric ]] || fail "$XG_IF has XDP mode $m, want xdpgeneric"
}
check "the guarded veth runs generic XDP (on the sending CPU)" generic_mode

# Per-CPU packets of one xdpg_stats entry: "N0 N1 N2 ...". The entries
# are slots reason * 3 + outcome (stat_slot in rust/abi): rule_allow (2)
# passed is 6, rate_limit (7) dropped is 22.
STATS_ID=$(xg_map_id xdpg_stats)
SLOT_RULE_ALLOW_PASSED=6
SLOT_RATE_LIMIT_DROPPED=22
percpu() { # INDEX
	bpftool -j map lookup id "$STATS_ID" key "$1" 0 0 0 |
		jq -r '[.values[] | .value[0:8] | map(ltrimstr("0x")) | reverse | join("")] | join(" ")' |
		tr ' ' '\n' | while read -r h; do echo $((16#$h)); done | tr '\n' ' '
}

xg_apply <<EOF
[[limit]]
name = "per-source"
pps = $PPS
burst = $BURST

[[rule]]
action = "limit"
limit = "per-source"
src = "192.0.2.2"
proto = "udp"
EOF

OUT=$(mktemp -d)
allow0=$(percpu $SLOT_RULE_ALLOW_PASSED)
limit0=$(percpu $SLOT_RATE_LIMIT_DROPPED)
xg_snapshot
start_at=$(python3 -c "import time; print(time.monotonic() + 2.5)")
for cpu in 0 1 2 3; do
	ip netns exec "$XG_NS" taskset -c "$cpu" python3 "$SENDER" "$XG_PEER" "$MAC" "$start_at" \
		"$DURATION" "$SENDER_RATE" $((40000 + cpu)) >"$OUT/$cpu.json" &
done
wait
sleep 0.5
allow1=$(percpu $SLOT_RULE_ALLOW_PASSED)
limit1=$(percpu $SLOT_RATE_LIMIT_DROPPED)
passes=$(xg_delta rule_allow)
limited=$(xg_delta rate_limit)
rule=$(xg_rule_counter 1)
R=$(cat "$OUT"/*.json | jq -s --argjson p "$PPS" --argjson b "$BURST" '{
	sent: (map(.sent) | add),
	cpus: (map(.cpu) | unique | length),
	emax: ((map(.t_end) | max) - (map(.t_start) | min)),
	emin: ((map(.t_last) | max) - (map(.t_first) | min))
} | . + {upper: ($b + $p * .emax), lower: ($b + $p * .emin)}')
rm -rf "$OUT"
offered=$((passes + limited))
ktap_print_msg "sent $(jq .sent <<<"$R") frames from 4 CPUs; XDP saw $offered: $passes passed, $limited rate_limit"
ktap_print_msg "elapsed $(jq -r '.emin * 1000 | floor' <<<"$R") to $(jq -r '.emax * 1000 | floor' <<<"$R") ms: B + P x elapsed = $(jq -r '.lower | floor' <<<"$R") to $(jq -r '.upper | floor' <<<"$R")"
# per_cpu: each CPU's passes + drops of the run, from the per-CPU counter
# lists before and after (no process substitution: the guest has no /dev/fd).
per_cpu() {
	awk -v a="$allow0" -v b="$allow1" -v c="$limit0" -v d="$limit1" 'BEGIN {
		n = split(a, A, " "); split(b, B, " "); split(c, C, " "); split(d, D, " ")
		for (i = 1; i <= n; i++) printf "%d ", B[i] - A[i] + D[i] - C[i]
	}'
}
ktap_print_msg "per-CPU passes+drops: $(per_cpu)"

four_cpus() {
	local n
	(($(jq .cpus <<<"$R") == 4)) || fail "the senders ran on $(jq .cpus <<<"$R") distinct CPUs" || return
	n=$(per_cpu | tr ' ' '\n' | awk '$1 > 0 { n++ } END { print n + 0 }')
	((n >= 4)) || fail "only $n CPUs ran the program on these frames, want 4"
}
check "4 CPUs charged the one bucket (per-CPU counters of the run)" four_cpus

accounted() {
	((rule == offered)) || fail "rule counter $rule, rule_allow + rate_limit $offered" || return
	((offered > 0)) || fail "XDP saw none of the frames"
}
check "every frame of the rule is counted once: passed (rule_allow) or limited (rate_limit)" accounted

upper() {
	jq -e --argjson n "$passes" '$n <= .upper + 4' <<<"$R" >/dev/null ||
		fail "$passes passed, more than B + P x elapsed_max + 4 = $(jq -r '.upper + 4 | floor' <<<"$R")"
}
check "passes <= burst + rate x elapsed + 4 with 4 CPUs on one bucket" upper

lower() {
	jq -e --argjson n "$passes" --argjson o "$offered" --argjson s "$SLACK" \
		'$n >= ([$o, .lower] | min) - $s' <<<"$R" >/dev/null ||
		fail "$passes passed, fewer than min(offered $offered, B + P x elapsed_min $(jq -r '.lower | floor' <<<"$R")) - $SLACK"
}
check "passes >= min(offered, burst + rate x elapsed) - $SLACK (never stricter than configured)" lower

no_splat() {
	local log rc=0
	log=$(mktemp)
	xg_dmesg_since >"$log"
	if [[ -x $XG_DIR/../qemu/check-splats.sh ]]; then
		"$XG_DIR/../qemu/check-splats.sh" "$log" || rc=1
	elif grep -E 'WARNING:|BUG:|Oops|Call Trace:|KASAN:|UBSAN:' "$log"; then
		rc=1
	fi
	rm -f "$log"
	((rc == 0)) || fail "kernel splat (lines above)"
}
check "no kernel splat in dmesg during the test" no_splat

ktap_finished
