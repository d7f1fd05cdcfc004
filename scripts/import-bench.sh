#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Times `xdpguard import` of 100 000 and 1 000 000 CIDRs into a freshly
# loaded module (run in the test VM by `make import-bench`; not a test),
# for two kinds of list: scattered over the address space and clustered
# the way the address tables can hold them. Prints the CLI's summary
# lines (total, read, compile, write) and the peak memory of each import,
# or why the list was not imported; then an add and a delete of one
# rule next to the million.
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
# scattered: 60% IPv4 hosts, 30% IPv4 /24s and 10% IPv6 /64s, anywhere
# (the /24s in nearly every /16, the /64s under 2001:db8::/32 with 32
# random bits); clustered: the same share of IPv4 hosts anywhere, the
# /24s inside 11.0.0.0-26.255.255.255 (4 096 /16s) and IPv6 /128 hosts
# instead of /64s: what the address tables hold
# (Documentation/design.rst, "Room").
def write(path, n, clustered):
    with open(path, "w") as f:
        kind = "clustered" if clustered else "scattered"
        f.write(f"# {n} entries, {kind}\n")
        seen = set()
        while len(seen) < n:
            r = random.random()
            if r < 0.6:
                e = f"{ipaddress.IPv4Address(random.getrandbits(32))}"
            elif r < 0.9 and clustered:
                e = f"{ipaddress.IPv4Address((11 << 24) + (random.getrandbits(20) << 8))}/24"
            elif r < 0.9:
                e = f"{ipaddress.IPv4Address(random.getrandbits(24) << 8)}/24"
            elif clustered:
                e = f"{ipaddress.IPv6Address(0x20010db8 << 96 | random.getrandbits(64))}"
            else:
                e = f"{ipaddress.IPv6Address(0x20010db8 << 96 | random.getrandbits(32) << 64)}/64"
            if e not in seen:
                seen.add(e)
                f.write(e + "\n")
for kind in ("scattered", "clustered"):
    write(f"{sys.argv[1]}/{kind}-100k.txt", 100_000, kind == "clustered")
    write(f"{sys.argv[1]}/{kind}-1m.txt", 1_000_000, kind == "clustered")
PY

ip link add xgib0 type veth peer name xgib1
ip link set xgib0 up
insmod "$KO" ifaces=xgib0
# run ARGS...: one import, its summary line and peak RSS; a list the
# tables cannot hold is reported as not imported, with the CLI's reason.
run() {
	local out rss rc=0
	out=$( { /usr/bin/time -f "%M" "$X" import --quiet "$@" 2>"$DIR/time"; } ) || rc=$?
	rss=$(tail -1 "$DIR/time")
	if ((rc)); then
		echo "import $*: not imported (exit $rc): $(grep -v '^Command exited' "$DIR/time" | head -n -1)"
		return 1
	fi
	echo "import $*: $out; peak RSS $((rss / 1024)) MiB"
}
timed() {
	local start
	start=$(date +%s.%N)
	"$X" "$@" >/dev/null
	echo "$* next to the list: $(echo "$(date +%s.%N) - $start" | bc) s"
}
for kind in scattered clustered; do
	"$X" set default allow >/dev/null
	run --deny --name bench "$DIR/$kind-100k.txt" || continue
	run --deny --name bench --replace "$DIR/$kind-1m.txt" || continue
	run --deny --name bench --replace "$DIR/$kind-1m.txt" || continue
	timed add deny --src 192.0.2.1
	timed delete deny --src 192.0.2.1
	run --deny --name bench --replace "$DIR/$kind-100k.txt" >/dev/null || true
done
# The same million as a rule file: `apply` parses TOML instead of a list.
python3 - "$DIR/clustered-1m.txt" "$DIR/clustered-1m.toml" <<'PY'
import sys
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as out:
    out.write('[[rule]]\naction = "deny"\nsrc = [\n')
    for line in f:
        if not line.startswith("#"):
            out.write(f'  "{line.strip()}",\n')
    out.write("]\n")
PY
for n in 1 2; do
	start=$(date +%s.%N)
	/usr/bin/time -f "%M" "$X" apply "$DIR/clustered-1m.toml" >/dev/null 2>"$DIR/time"
	echo "apply of the clustered 1 000 000 as TOML ($n): $(echo "$(date +%s.%N) - $start" | bc) s; peak RSS $(($(tail -1 "$DIR/time") / 1024)) MiB"
	"$X" apply /dev/null >/dev/null 2>&1 || "$X" set default allow >/dev/null
done
echo "import-bench: $(nproc) CPUs, $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB"
