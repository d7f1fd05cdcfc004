#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Native XDP forwarder of the side-by-side benchmark: bpf_redirect() every frame from IN to OUT.

Usage: bench-redirect.py IN OUT   (root, in the namespace of IN and OUT)

Loads a four-instruction XDP program (r1 = ifindex of OUT; r2 = 0;
call bpf_redirect; exit) with the bpf(2) system call, attaches it to IN in
native mode with a BPF link, prints "attached" and holds the link until
killed (the program detaches when this process exits). Written out here
because xdp-bench needs kernel BTF, which the test kernel does not have.
x86-64 only (system call number).
"""
import ctypes
import os
import signal
import struct
import sys

SYS_BPF = 321
BPF_PROG_LOAD = 5
BPF_LINK_CREATE = 28
BPF_PROG_TYPE_XDP = 6
BPF_XDP = 37
XDP_FLAGS_DRV_MODE = 1 << 2
BPF_FUNC_redirect = 23


def insn(code, dst=0, src=0, off=0, imm=0):
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def bpf(libc, cmd, attr):
    buf = ctypes.create_string_buffer(attr, 128)
    fd = libc.syscall(SYS_BPF, cmd, buf, 128)
    if fd < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return fd


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ifin = int(open(f"/sys/class/net/{sys.argv[1]}/ifindex").read())
    ifout = int(open(f"/sys/class/net/{sys.argv[2]}/ifindex").read())
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    prog = (insn(0xb7, dst=1, imm=ifout) + insn(0xb7, dst=2, imm=0)
            + insn(0x85, imm=BPF_FUNC_redirect) + insn(0x95))
    prog_buf = ctypes.create_string_buffer(prog, len(prog))
    license = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(65536)
    attr = struct.pack("<IIQQIIQII16s", BPF_PROG_TYPE_XDP, len(prog) // 8,
                       ctypes.addressof(prog_buf), ctypes.addressof(license), 1, len(log),
                       ctypes.addressof(log), 0, 0, b"xgbench_fwd")
    try:
        pfd = bpf(libc, BPF_PROG_LOAD, attr)
    except OSError as e:
        sys.exit(f"bench-redirect: loading the program: {e}\n{log.value.decode(errors='replace')}")
    try:
        bpf(libc, BPF_LINK_CREATE, struct.pack("<IIII", pfd, ifin, BPF_XDP, XDP_FLAGS_DRV_MODE))
    except OSError as e:
        sys.exit(f"bench-redirect: attaching to {sys.argv[1]} in native mode: {e}")
    print("attached", flush=True)
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
