#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Side-by-side throughput benchmark: xdpguard against the filters users would pick instead.

Runs as root inside the test VM (scripts/bench.sh; make bench, make bench-smoke).

Traffic: the kernel's pktgen, in namespace xgbgen, sends 64-byte IPv4/UDP
frames (60 bytes + FCS) out of veth xgb0 for --duration seconds; the peer
xgb1, in the initial namespace, is guarded by one contender at a time.
pktgen's thread and the receive path share CPU 0 (veth hands the frame to the
peer's backlog or XDP ring on the sending CPU, and the softirq runs when pktgen
re-enables bottom halves), so the rate pktgen reaches is the rate the
receiver sustains.

Counted at the receiver: a frame that no filter dropped reaches UDP, where no
socket listens on port 9: the initial namespace's Udp NoPorts counter
(/proc/net/snmp) is the number passed; sent minus passed is the number
dropped. CPU time: /proc/stat deltas over the run (busy = user + nice +
system + irq + softirq + steal, and softirq alone, which is the receive
path: veth NAPI, XDP, netfilter, IP, UDP), per frame sent.

Contenders (the same rule set, see bench-rules.py): none (baseline),
xdpguard native and generic (module parameter mode=), xdp-filter (native;
exact addresses: it gets each CIDR's network address), nftables netdev
ingress with an interval set, iptables-legacy raw PREROUTING with one DROP
rule per CIDR, and iptables-legacy raw with one `-m set` rule on an ipset
hash:net.

Writes DIR/runs.csv (one row per measurement), DIR/load.csv (control
plane: seconds to load each size, or why it did not load) and DIR/meta.txt.
"""
import argparse
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
rules = __import__("bench-rules")

NS = "xgbgen"
GEN = "xgb0"
DEV = "xgb1"
RT = "xgbrt"
RT_IN = "xgr0"
RT_OUT = "xgr1"
REDIRECT_LOG = "/tmp/xgbench-redirect.log"
DST = "198.51.100.1"
PACKETS = {"match": rules.MATCH, "nomatch": rules.NOMATCH}
KO = os.environ.get("XDPGUARD_KO", os.path.join(ROOT, "rust/xdpguard/xdpguard.ko"))
CLI = os.environ.get("XDPGUARD_CLI", os.path.join(ROOT, "target/release/xdpguard"))
ALL = ["none", "xdpguard-native", "xdpguard-generic", "xdp-filter", "nftables", "iptables", "ipset"]


def log(msg):
    print(f"bench-suite: {msg}", flush=True)


def sh(cmd, timeout=None, check=True):
    """Runs a shell command in its own process group; kills the whole group on timeout.

    Returns (exit status or None on timeout, seconds, output)."""
    start = time.monotonic()
    p = subprocess.Popen(["sh", "-c", cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True, text=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        return None, time.monotonic() - start, out
    secs = time.monotonic() - start
    if check and p.returncode != 0:
        raise RuntimeError(f"{cmd[:200]}: exit {p.returncode}: {out.strip()[-1000:]}")
    return p.returncode, secs, out


class Net:
    """The veth pair, the generator namespace and pktgen in it."""

    def __init__(self):
        self.cleanup()
        sh(f"ip netns add {NS} && ip netns add {RT} && "
           f"ip link add {GEN} netns {NS} type veth peer name {RT_IN} netns {RT} && "
           f"ip link add {DEV} type veth peer name {RT_OUT} netns {RT} && "
           f"sysctl -qw net.ipv6.conf.{DEV}.disable_ipv6=1 && "
           f"ip netns exec {NS} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 && "
           f"ip netns exec {RT} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 && "
           f"ip addr add {DST}/24 dev {DEV} && ip link set {DEV} up && "
           f"ethtool -K {DEV} gro on && "
           f"ip -n {NS} link set lo up && ip -n {NS} link set {GEN} up && "
           f"ip -n {RT} link set {RT_IN} up && ip -n {RT} link set {RT_OUT} up")
        # The frames pktgen sends are shared skbs (it holds a reference to
        # resend them), which generic XDP must not see (pskb_expand_head
        # BUG_ONs on them). Native XDP in the middle namespace copies each
        # into a fresh page and redirects it into the guarded veth, whose
        # NAPI (GRO on) receives it as a NIC driver would: native XDP sees
        # the raw frame, everything else an skb built for it.
        self.redirect = subprocess.Popen(
            ["ip", "netns", "exec", RT, sys.executable, os.path.join(HERE, "bench-redirect.py"),
             RT_IN, RT_OUT],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(REDIRECT_LOG, "w"))
        for _ in range(300):
            link = subprocess.run(["ip", "-j", "-n", RT, "link", "show", "dev", RT_IN],
                                  capture_output=True, text=True).stdout
            if link and "xdp" in json.loads(link)[0]:
                break
            if self.redirect.poll() is not None:
                raise RuntimeError(f"bench-redirect.py exited: {open(REDIRECT_LOG).read()[-1000:]}")
            time.sleep(0.1)
        else:
            raise RuntimeError("bench-redirect.py did not attach")
        # A process parked in the namespace: its /proc/PID/net/pktgen is that
        # namespace's pktgen, reachable without entering the namespace.
        self.holder = subprocess.Popen(["ip", "netns", "exec", NS, "sleep", "infinity"],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        self.pg = f"/proc/{self.holder.pid}/net/pktgen"
        own = os.readlink("/proc/self/ns/net")
        for _ in range(100):
            if os.readlink(f"/proc/{self.holder.pid}/ns/net") != own and \
                    os.path.exists(f"{self.pg}/kpktgend_0"):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"no pktgen in namespace {NS}")
        mac = open(f"/sys/class/net/{DEV}/address").read().strip()
        self.write("kpktgend_0", "rem_device_all")
        self.write("kpktgend_0", f"add_device {GEN}")
        # veth has no IFF_TX_SKB_SHARING: clone_skb must be 0 (a new skb per frame).
        for c in ["count 0", "clone_skb 0", "pkt_size 60", "delay 0", f"dst {DST}",
                  f"dst_mac {mac}", "udp_src_min 9", "udp_src_max 9", "udp_dst_min 9",
                  "udp_dst_max 9"]:
            self.write(GEN, c)

    def write(self, f, line):
        with open(f"{self.pg}/{f}", "w") as fh:
            fh.write(line + "\n")

    def source(self, addr):
        self.write(GEN, f"src_min {addr}")
        self.write(GEN, f"src_max {addr}")

    @staticmethod
    def snmp_noports():
        lines = [l.split() for l in open("/proc/net/snmp") if l.startswith("Udp:")]
        return int(lines[1][lines[0].index("NoPorts")])

    @staticmethod
    def cpu():
        f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
        # user nice system idle iowait irq softirq steal
        return f[0] + f[1] + f[2] + f[5] + f[6] + f[7], f[6]

    def measure(self, duration):
        hz = os.sysconf("SC_CLK_TCK")
        n0 = self.snmp_noports()
        b0, s0 = self.cpu()
        # pgctrl acts on the writer's namespace. The writer blocks in the
        # write while pktgen runs; a signal to it stops pktgen. The duration
        # counts from when the thread reports the device running.
        p = subprocess.Popen(["ip", "netns", "exec", NS, "sh", "-c",
                              "echo start > /proc/net/pktgen/pgctrl"])
        t0 = time.monotonic()
        while p.poll() is None and time.monotonic() - t0 < 60:
            running = [l for l in open(f"{self.pg}/kpktgend_0") if "Running:" in l]
            if running and GEN in running[0]:
                break
            time.sleep(0.02)
        time.sleep(duration)
        p.send_signal(signal.SIGINT)
        p.wait()
        b1, s1 = self.cpu()
        time.sleep(0.05)
        passed = self.snmp_noports() - n0
        res = open(f"{self.pg}/{GEN}").read()
        m = re.search(r"Result: OK: (\d+)\(c\d+\+d\d+\) usec, (\d+) \(", res)
        if not m:
            raise RuntimeError(f"pktgen gave no result: {res[-400:]}")
        usec, sent = int(m.group(1)), int(m.group(2))
        per = 1e9 / hz / max(sent, 1)
        return {"sent": sent, "usec": usec, "passed": passed,
                "pps": sent * 1e6 / max(usec, 1), "pass_pps": passed * 1e6 / max(usec, 1),
                "drop_pps": (sent - passed) * 1e6 / max(usec, 1),
                "cpu_ns": (b1 - b0) * per, "softirq_ns": (s1 - s0) * per}

    def cleanup(self):
        redirect = getattr(self, "redirect", None)
        if redirect:
            redirect.send_signal(signal.SIGINT)
            try:
                redirect.wait(30)
            except subprocess.TimeoutExpired:
                redirect.kill()
                redirect.wait()
        holder = getattr(self, "holder", None)
        if holder:
            holder.kill()
            holder.wait()
        sh(f"ip link del {DEV} 2>/dev/null; ip netns del {NS} 2>/dev/null; "
           f"ip netns del {RT} 2>/dev/null", check=False)


# Contenders: setup() once, load(size_dir) timed (returns the command's
# status), unload() between sizes, teardown() at the end.
class Contender:
    def setup(self):
        pass

    def load(self, d, timeout):
        return 0, 0.0, ""

    def unload(self):
        pass

    def teardown(self):
        self.unload()


class Xdpguard(Contender):
    def __init__(self, mode):
        self.mode = mode

    def setup(self):
        sh("rmmod xdpguard 2>/dev/null", check=False)
        sh(f"insmod {KO} ifaces={DEV} mode={self.mode}")
        links = open("/sys/module/xdpguard/bpf/links").read()
        if f"{DEV} " not in links or self.mode not in links:
            raise RuntimeError(f"xdpguard did not attach to {DEV} in {self.mode} mode: {links!r}")

    def load(self, d, timeout):
        # A bulk `xdpguard import` is being written; apply compiles the whole
        # TOML file (parse, check, compile, swap the maps in).
        return sh(f"{CLI} apply {d}/xdpguard.toml", timeout, check=False)

    def teardown(self):
        sh("rmmod xdpguard", check=False)


class XdpFilter(Contender):
    def load(self, d, timeout):
        self.unload()
        return sh(f"xdp-filter load -m native -p allow -f ipv4,ipv6,udp,tcp {DEV} && "
                  f"sh -e {d}/xdp-filter.sh", timeout, check=False)

    def unload(self):
        sh(f"xdp-filter unload {DEV} 2>/dev/null", 120, check=False)


class Nft(Contender):
    def load(self, d, timeout):
        return sh(f"nft -f {d}/nft.conf", timeout, check=False)

    def unload(self):
        sh("nft delete table netdev xgbench 2>/dev/null", 600, check=False)


EMPTY_RAW = "printf '*raw\\n:PREROUTING ACCEPT [0:0]\\n:OUTPUT ACCEPT [0:0]\\nCOMMIT\\n' | iptables-legacy-restore"


class Iptables(Contender):
    def load(self, d, timeout):
        return sh(f"iptables-legacy-restore {d}/iptables.rules", timeout, check=False)

    def unload(self):
        sh(EMPTY_RAW, 600, check=False)


class Ipset(Contender):
    def load(self, d, timeout):
        return sh(f"ipset restore -f {d}/ipset.restore && iptables-legacy -t raw -A PREROUTING "
                  "-m set --match-set xgbench src -j DROP", timeout, check=False)

    def unload(self):
        sh(f"{EMPTY_RAW}; ipset destroy xgbench 2>/dev/null", 600, check=False)


def contender(name):
    return {"none": Contender, "xdpguard-native": lambda: Xdpguard("native"),
            "xdpguard-generic": lambda: Xdpguard("generic"), "xdp-filter": XdpFilter,
            "nftables": Nft, "iptables": Iptables, "ipset": Ipset}[name]()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1,100,10000,1000000")
    ap.add_argument("--contenders", default=",".join(ALL))
    ap.add_argument("--duration", type=float, default=2.0, help="seconds of traffic per measurement")
    ap.add_argument("--reps", type=int, default=3, help="measurements per figure (median reported)")
    ap.add_argument("--load-timeout", type=float, default=120.0)
    ap.add_argument("--rules", default="/tmp/xgbench-rules",
                    help="rule-set directory (bench-rules.py); missing sizes are generated")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    os.makedirs(a.out, exist_ok=True)
    dirs = {}
    for s in sizes:
        d = os.path.join(a.rules, str(s))
        if not os.path.exists(os.path.join(d, "done")):
            d = rules.generate("/tmp/xgbench-rules", s, DEV)
        dirs[s] = d

    with open(os.path.join(a.out, "meta.txt"), "w") as f:
        f.write(f"guest_kernel={os.uname().release}\n")
        f.write(f"guest_cpus={os.cpu_count()}\n")
        f.write(f"duration={a.duration}\nreps={a.reps}\nload_timeout={a.load_timeout}\n")
        f.write(f"accel={os.environ.get('XDPGUARD_BENCH_ACCEL', 'unknown')}\n")

    runs = open(os.path.join(a.out, "runs.csv"), "w", newline="")
    rw = csv.writer(runs)
    rw.writerow(["contender", "size", "packet", "rep", "sent", "usec", "passed", "pps",
                 "pass_pps", "drop_pps", "cpu_ns", "softirq_ns"])
    loads = open(os.path.join(a.out, "load.csv"), "w", newline="")
    lw = csv.writer(loads)
    lw.writerow(["contender", "size", "status", "load_s", "note"])

    net = None
    try:
        net = Net()
        for name in a.contenders.split(","):
            c = contender(name)
            log(f"{name}: setting up")
            c.setup()
            given_up = None
            for s in sizes if name != "none" else [0]:
                if given_up:
                    lw.writerow([name, s, "skipped", "", given_up])
                    log(f"{name} {s}: skipped ({given_up})")
                    continue
                rc, secs, out = c.load(dirs[s], a.load_timeout) if s else (0, 0.0, "")
                if rc is None:
                    given_up = f"{s} did not load in {a.load_timeout:.0f} s"
                    lw.writerow([name, s, "timeout", "", f"did not load in {a.load_timeout:.0f} s"])
                    log(f"{name} {s}: did not load in {a.load_timeout:.0f} s")
                    c.unload()
                    continue
                if rc != 0:
                    given_up = f"{s} failed to load"
                    note = out.strip().splitlines()[-1][:200] if out.strip() else f"exit {rc}"
                    lw.writerow([name, s, "failed", "", note])
                    log(f"{name} {s}: failed to load: {out.strip()[-500:]}")
                    c.unload()
                    continue
                lw.writerow([name, s, "ok", f"{secs:.3f}", ""])
                loads.flush()
                log(f"{name} {s}: loaded in {secs:.2f} s")
                for pkt, addr in PACKETS.items():
                    net.source(addr)
                    for rep in range(a.reps):
                        r = net.measure(a.duration)
                        rw.writerow([name, s, pkt, rep, r["sent"], r["usec"], r["passed"],
                                     f"{r['pps']:.0f}", f"{r['pass_pps']:.0f}",
                                     f"{r['drop_pps']:.0f}", f"{r['cpu_ns']:.0f}",
                                     f"{r['softirq_ns']:.0f}"])
                        runs.flush()
                        log(f"{name} {s} {pkt}: sent {r['sent']} passed {r['passed']} "
                            f"{r['pps']:.0f} pps, {r['cpu_ns']:.0f} ns cpu/pkt "
                            f"({r['softirq_ns']:.0f} softirq)")
                c.unload()
            c.teardown()
    finally:
        runs.close()
        loads.close()
        if net:
            net.cleanup()


if __name__ == "__main__":
    main()
