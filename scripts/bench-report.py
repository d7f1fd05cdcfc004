#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Report of the side-by-side benchmark: table on stdout, CSV and plots.

Usage: bench-report.py VMDIR OUTDIR

VMDIR holds what scripts/bench-suite.py wrote in the VM (runs.csv,
load.csv, meta.txt). OUTDIR gets table.txt (what is printed), summary.csv
(medians and ratios), ratios.csv (every contender against every other, same
size and packet), load.csv, and the plots throughput.{svg,png},
cpu.{svg,png} and load.{svg,png} (when matplotlib is installed).
"""
import csv
import os
import shutil
import statistics
import sys
import time

ORDER = ["none", "xdpguard-native", "xdpguard-generic", "xdp-filter", "nftables", "iptables",
         "ipset"]
REF = "xdpguard-native"


def host_info():
    model = "unknown CPU"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    load = open("/proc/loadavg").read().split()[:3]
    return f"{os.cpu_count()} x {model}, load average {' '.join(load)}"


def fmt(x, nd=0):
    if x is None:
        return "-"
    return f"{x:,.{nd}f}".replace(",", " ")


def main(vmdir, outdir):
    os.makedirs(outdir, exist_ok=True)
    meta = dict(l.strip().split("=", 1) for l in open(os.path.join(vmdir, "meta.txt")) if "=" in l)
    runs = list(csv.DictReader(open(os.path.join(vmdir, "runs.csv"))))
    loads = list(csv.DictReader(open(os.path.join(vmdir, "load.csv"))))
    shutil.copy(os.path.join(vmdir, "load.csv"), os.path.join(outdir, "load.csv"))
    shutil.copy(os.path.join(vmdir, "runs.csv"), os.path.join(outdir, "runs.csv"))

    med = {}
    for key in {(r["contender"], int(r["size"]), r["packet"]) for r in runs}:
        rs = [r for r in runs if (r["contender"], int(r["size"]), r["packet"]) == key]
        m = {f: statistics.median(float(r[f]) for r in rs)
             for f in ["pps", "pass_pps", "drop_pps", "cpu_ns", "softirq_ns"]}
        m["sent"] = sum(int(r["sent"]) for r in rs)
        m["passed"] = sum(int(r["passed"]) for r in rs)
        m["n"] = len(rs)
        med[key] = m
    sizes = sorted({int(l["size"]) for l in loads if int(l["size"]) > 0})
    contenders = [c for c in ORDER if any(k[0] == c for k in med) or any(l["contender"] == c for l in loads)]
    status = {(l["contender"], int(l["size"])): l for l in loads}

    def get(c, s, p):
        return med.get((c, 0 if c == "none" else s, p))

    accel = meta.get("accel", "unknown")
    out = []
    out.append(f"xdpguard side-by-side benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    out.append(f"host: {host_info()}")
    out.append(f"guest: {meta.get('guest_cpus')} vCPUs, kernel {meta.get('guest_kernel')}, QEMU accelerator: {accel.upper()}")
    out.append(f"traffic: pktgen, 64-byte IPv4/UDP, native XDP redirect hop, into the guarded veth; {meta.get('duration')} s per measurement, "
               f"median of {meta.get('reps')}; rule-set load timeout {meta.get('load_timeout')} s")
    if accel == "tcg-icount":
        out.append("NOTE: under QEMU instruction counting the guest clock advances 1 ns per instruction: a")
        out.append("      rate is frames per 10^9 guest instructions and ns are instructions (exact, repeatable;")
        out.append("      cache misses do not show); load times are by that clock too, not wall time.")
    elif accel != "kvm":
        out.append("NOTE: under QEMU TCG (no KVM) every instruction is emulated: absolute packet rates and")
        out.append("      ns are NOT meaningful; the ratios between contenders measured in this run are.")
    out.append("")
    out.append("match = source in the deny list (should be dropped); other = source in no entry (should pass).")
    out.append("kpps = thousand frames per second handled; x none = rate / rate with no filter;")
    out.append(f"x {REF} = rate / xdpguard native's rate; cpu = busy CPU ns per frame (softirq = receive path).")
    out.append("")
    hdr = (f"{'size':>8} {'contender':<17} {'load s':>7} | {'match kpps':>10} {'x none':>6} {'x xdpg':>6} "
           f"{'cpu ns':>8} {'softirq':>8} {'verdict':>7} | {'other kpps':>10} {'x none':>6} {'x xdpg':>6} "
           f"{'cpu ns':>8} {'softirq':>8} {'verdict':>7}")
    out.append(hdr)
    out.append("-" * len(hdr))
    summary = [["size", "contender", "load_status", "load_s", "packet", "pps", "pass_pps", "drop_pps",
                "cpu_ns", "softirq_ns", "ratio_none", "ratio_xdpguard_native", "verdict_ok"]]
    base_rows = []
    for s in sizes:
        for c in contenders:
            if c == "none":
                st = {"status": "ok", "load_s": "0"}
            else:
                st = status.get((c, s))
            if st is None:
                continue
            cells = []
            for p in ["match", "nomatch"]:
                m = get(c, s, p)
                if st["status"] != "ok" or m is None:
                    cells.append(None)
                    continue
                b = get("none", s, p)
                x = get(REF, s, p)
                rn = m["pps"] / b["pps"] if b else None
                rx = m["pps"] / x["pps"] if x else None
                want_drop = p == "match" and c != "none"
                ok = (m["passed"] == 0) if want_drop else (m["passed"] >= 0.9 * m["sent"])
                cells.append((m, rn, rx, ok))
                summary.append([s, c, st["status"], st["load_s"], p, round(m["pps"]), round(m["pass_pps"]),
                                round(m["drop_pps"]), round(m["cpu_ns"]), round(m["softirq_ns"]),
                                f"{rn:.3f}" if rn else "", f"{rx:.3f}" if rx else "", int(ok)])
            line = f"{s:>8} {c:<17} {fmt(float(st['load_s']), 2) if st['status'] == 'ok' else '-':>7} |"
            if st["status"] != "ok":
                line += f" {st['status']}: {st['note']}"
                summary.append([s, c, st["status"], "", "", "", "", "", "", "", "", "", ""])
            else:
                for cell in cells:
                    if cell is None:
                        line += f" {'-':>10} {'':>6} {'':>6} {'':>8} {'':>8} {'':>7} |"
                        continue
                    m, rn, rx, ok = cell
                    line += (f" {fmt(m['pps'] / 1000, 1):>10} {fmt(rn, 2):>6} {fmt(rx, 2):>6} "
                             f"{fmt(m['cpu_ns']):>8} {fmt(m['softirq_ns']):>8} "
                             f"{('drop' if m['passed'] == 0 else 'pass') + ('' if ok else '!'):>7} |")
                line = line.rstrip(" |")
            out.append(line)
        out.append("")
    out.append("verdict: what the receiver saw (drop: no frame reached UDP; pass: frames reached it);")
    out.append("a '!' marks a verdict other than intended. xdp-filter matches exact addresses only (no")
    out.append("CIDRs): it holds each CIDR's network address, which is enough for these two packets.")
    out.append("")

    # Every contender against every other, same size and packet.
    ratios = [["size", "packet", "contender", "against", "ratio_pps"]]
    for s in sizes:
        for p in ["match", "nomatch"]:
            have = [c for c in contenders if get(c, s, p) and (c == "none" or status.get((c, s), {}).get("status") == "ok")]
            if not have:
                continue
            out.append(f"{s} entries, {'matching' if p == 'match' else 'other'} packet: rate of row / rate of column")
            out.append(f"{'':<17}" + "".join(f"{c[:10]:>11}" for c in have))
            for c in have:
                row = f"{c:<17}"
                for d in have:
                    r = get(c, s, p)["pps"] / max(get(d, s, p)["pps"], 1e-9)
                    row += f"{r:>11.2f}"
                    ratios.append([s, p, c, d, f"{r:.4f}"])
                out.append(row)
            out.append("")

    # Control plane.
    out.append("control plane: seconds to load each rule-set size (one load each)")
    out.append(f"{'contender':<17}" + "".join(f"{s:>22}" for s in sizes))
    for c in contenders:
        if c == "none":
            continue
        row = f"{c:<17}"
        for s in sizes:
            st = status.get((c, s))
            if st is None:
                cell = "-"
            elif st["status"] == "ok":
                cell = f"{float(st['load_s']):.2f}"
            elif st["status"] == "timeout":
                cell = st["note"]
            else:
                cell = f"{st['status']}"
            row += f"{cell:>22}"
        out.append(row)
    out.append("xdpguard: `xdpguard apply` of a generated TOML file (a bulk `xdpguard import` is not used);")
    out.append("xdp-filter: `xdp-filter load` + one `xdp-filter ip` process per address; nftables: `nft -f`;")
    out.append("iptables: `iptables-legacy-restore`; ipset: `ipset restore` + one iptables rule.")

    text = "\n".join(out) + "\n"
    print(text, end="")
    open(os.path.join(outdir, "table.txt"), "w").write(text)
    with open(os.path.join(outdir, "summary.csv"), "w", newline="") as f:
        csv.writer(f).writerows(summary)
    with open(os.path.join(outdir, "ratios.csv"), "w", newline="") as f:
        csv.writer(f).writerows(ratios)
    plots(outdir, sizes, contenders, get, status, accel)


def plots(outdir, sizes, contenders, get, status, accel):
    if os.environ.get("XDPGUARD_BENCH_NO_PLOTS"):
        return
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench-report: no matplotlib (python3-matplotlib): no plots")
        return
    note = {"kvm": "", "tcg-icount": " (QEMU icount: per 10^9 instructions)"}.get(
        accel, " (QEMU TCG: compare ratios, not absolute values)")
    for name, field, ylabel, scale in [("throughput", "pps", "kpps (frames per second / 1000)", 1e-3),
                                       ("cpu", "cpu_ns", "CPU ns per frame", 1.0)]:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
        for ax, p, title in [(axes[0], "match", "matching packet (dropped)"),
                             (axes[1], "nomatch", "other packet (passed)")]:
            for c in contenders:
                xs, ys = [], []
                for s in sizes:
                    ok = c == "none" or status.get((c, s), {}).get("status") == "ok"
                    m = get(c, s, p)
                    if ok and m:
                        xs.append(s)
                        ys.append(m[field] * scale)
                if xs:
                    ax.plot(xs, ys, marker="o", label=c, linestyle="--" if c == "none" else "-")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("deny entries (CIDRs)")
            ax.set_title(title)
            ax.grid(True, which="both", alpha=0.3)
        axes[0].set_ylabel(ylabel)
        axes[1].legend(fontsize=8)
        fig.suptitle(f"{ylabel}{note}", fontsize=10)
        fig.tight_layout()
        for ext in ["svg", "png"]:
            fig.savefig(os.path.join(outdir, f"{name}.{ext}"), dpi=100)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for c in contenders:
        if c == "none":
            continue
        xs, ys = [], []
        for s in sizes:
            st = status.get((c, s))
            if st and st["status"] == "ok":
                xs.append(s)
                ys.append(max(float(st["load_s"]), 1e-3))
        if xs:
            ax.plot(xs, ys, marker="o", label=c)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("deny entries (CIDRs)")
    ax.set_ylabel("seconds to load")
    ax.set_title(f"control plane{note}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    for ext in ["svg", "png"]:
        fig.savefig(os.path.join(outdir, f"load.{ext}"), dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
