#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Rule sets of the side-by-side benchmark, one per size, in every contender's format.

Usage: bench-rules.py [--dev IFACE] OUTDIR SIZE...

For each SIZE, OUTDIR/SIZE/ gets the same deny list as
  cidrs.txt       one CIDR a line
  xdpguard.toml   one deny rule holding the list (xdpguard apply)
  nft.conf        netdev ingress chain on IFACE, an interval set (nft -f)
  iptables.rules  raw PREROUTING, one DROP rule per CIDR (iptables-restore)
  ipset.restore   a hash:net set (ipset restore)
  xdp-filter.sh   one `xdp-filter ip` command per entry: xdp-filter matches
                  exact addresses only, so it gets each CIDR's network address
An existing SIZE directory with a complete `done` stamp is kept.

The list: SIZE-1 non-overlapping IPv4 CIDRs of mixed lengths (/20 to /32)
from 16.0.0.0 upwards, then MATCH/32 last, so that the matching packet
walks the whole list where a contender evaluates rules in order (iptables).
NOMATCH is in no entry.
"""
import os
import sys

MATCH = "198.18.0.7"
NOMATCH = "198.18.1.9"
LENGTHS = [32, 32, 32, 32, 30, 28, 24, 20]


def ip(n):
    return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def cidrs(size):
    out = []
    cur = 16 << 24
    for i in range(size - 1):
        plen = LENGTHS[i % len(LENGTHS)]
        span = 1 << (32 - plen)
        cur = (cur + span - 1) // span * span
        out.append(f"{ip(cur)}/{plen}")
        cur += span
    assert cur < (198 << 24)
    out.append(f"{MATCH}/32")
    return out


def write(path, lines):
    with open(path + ".tmp", "w") as f:
        f.writelines(lines)
    os.rename(path + ".tmp", path)


def generate(outdir, size, dev):
    d = os.path.join(outdir, str(size))
    if os.path.exists(os.path.join(d, "done")):
        return d
    os.makedirs(d, exist_ok=True)
    nets = cidrs(size)
    write(os.path.join(d, "cidrs.txt"), (n + "\n" for n in nets))
    write(
        os.path.join(d, "xdpguard.toml"),
        [f"# {size} CIDRs (bench-rules.py)\n", "[[rule]]\n", 'action = "deny"\n', "src = [\n"]
        + [f'  "{n}",\n' for n in nets]
        + ["]\n"],
    )
    write(
        os.path.join(d, "nft.conf"),
        ["table netdev xgbench {\n", "  set deny {\n", "    type ipv4_addr\n", "    flags interval\n",
         "    elements = {\n"]
        + [f"      {n},\n" for n in nets]
        + ["    }\n", "  }\n", "  chain ingress {\n",
           f'    type filter hook ingress device "{dev}" priority -500; policy accept;\n',
           "    ip saddr @deny drop\n", "  }\n", "}\n"],
    )
    write(
        os.path.join(d, "iptables.rules"),
        ["*raw\n", ":PREROUTING ACCEPT [0:0]\n", ":OUTPUT ACCEPT [0:0]\n"]
        + [f"-A PREROUTING -s {n} -j DROP\n" for n in nets]
        + ["COMMIT\n"],
    )
    maxelem = max(65536, 2 * size)
    hashsize = 1 << max(10, (size - 1).bit_length())
    write(
        os.path.join(d, "ipset.restore"),
        [f"create xgbench hash:net family inet hashsize {hashsize} maxelem {maxelem}\n"]
        + [f"add xgbench {n}\n" for n in nets],
    )
    write(
        os.path.join(d, "xdp-filter.sh"),
        [f"xdp-filter ip -m src {n.split('/')[0]}\n" for n in nets],
    )
    write(os.path.join(d, "done"), [f"{size}\n"])
    return d


def main(argv):
    dev = "xgb1"
    if len(argv) > 2 and argv[1] == "--dev":
        dev = argv[2]
        argv = argv[:1] + argv[3:]
    if len(argv) < 3:
        sys.exit(__doc__)
    for s in argv[2:]:
        generate(argv[1], int(s), dev)


if __name__ == "__main__":
    main(sys.argv)
