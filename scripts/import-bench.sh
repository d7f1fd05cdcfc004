#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Times `xdpguard import` of 100 000 and 1 000 000 CIDRs into a freshly
# loaded module (run in the test VM by `make import-bench`; not a test).
# Prints the CLI's summary lines (total, read, compile, write) and the
# peak memory of each import.
set -eu
cd "$(dirname "$0")/.."
X=${XDPGUARD_CLI:-target/release/xdpguard}
KO=${XDPGUARD_KO:-rust/xdpguard/xdpguard.ko}
DIR=$(mktemp -d)
export XDPGUARD_STATE_DIR=$DIR/state
trap 'rmmod xdpguard 2>/dev/null; ip link del xgib0 2>/dev/null; rm -rf "$DIR"' EXIT

python3 - "$DIR" <<'PY'
import ipaddress, random, sys
random.seed(1)
def write(path, n):
    with open(path, "w") as f:
        f.write(f"# {n} entries: 90% IPv4 (/32 and /24), 10% IPv6 /64\n")
        seen = set()
        while len(seen) < n:
            r = random.random()
            if r < 0.6:
                e = f"{ipaddress.IPv4Address(random.getrandbits(32))}"
            elif r < 0.9:
                e = f"{ipaddress.IPv4Address(random.getrandbits(24) << 8)}/24"
            else:
                e = f"{ipaddress.IPv6Address(0x20010db8 << 96 | random.getrandbits(32) << 64)}/64"
            if e not in seen:
                seen.add(e)
                f.write(e + "\n")
write(sys.argv[1] + "/100k.txt", 100_000)
write(sys.argv[1] + "/1m.txt", 1_000_000)
PY

ip link add xgib0 type veth peer name xgib1
ip link set xgib0 up
insmod "$KO" ifaces=xgib0
run() {
	local out rss
	out=$( { /usr/bin/time -f "%M" "$X" import --quiet "$@" 2>"$DIR/time"; } ) || {
		cat "$DIR/time"
		return 1
	}
	rss=$(tail -1 "$DIR/time")
	echo "import $*: $out; peak RSS $((rss / 1024)) MiB"
}
run --deny --name bench "$DIR/100k.txt"
run --deny --name bench --replace "$DIR/1m.txt"
run --deny --name bench --replace "$DIR/1m.txt"
start=$(date +%s.%N)
"$X" add deny --src 192.0.2.1 >/dev/null
echo "add of one rule next to 1 000 000 entries: $(echo "$(date +%s.%N) - $start" | bc) s"
echo "import-bench: $(nproc) CPUs, $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB"
