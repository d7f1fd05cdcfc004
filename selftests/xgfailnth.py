#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""insmod with the Nth fault-injection point of the call made to fail.

Usage: xgfailnth.py N MODULE [PARAM=VALUE...]

Writes N to /proc/thread-self/fail-nth (Documentation/fault-injection/
fault-injection.rst: the Nth call to an enabled fault point in this task
fails), loads MODULE with finit_module(2) and reads fail-nth back: 0 means
the Nth point was reached and failed, non-zero that the load needed fewer
than N fault points. Prints "errno=E injected=0|1 left=L" (errno 0:
loaded; L: how many of the N calls were not reached, so a huge N counts
the fault points of the load: N - L).
Only the task's own calls count: work the module defers to a workqueue is
not covered.
"""
import ctypes
import os
import sys

SYS_FINIT_MODULE = 313  # x86_64


def main():
    n = int(sys.argv[1])
    params = ctypes.c_char_p(" ".join(sys.argv[3:]).encode())
    libc = ctypes.CDLL(None, use_errno=True)
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    syscall.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    mod = os.open(sys.argv[2], os.O_RDONLY)
    nth = os.open("/proc/thread-self/fail-nth", os.O_RDWR)
    arg = str(n).encode()
    # Nothing between this write and the syscall may enter the kernel.
    os.write(nth, arg)
    rc = syscall(SYS_FINIT_MODULE, mod, params, 0)
    err = ctypes.get_errno() if rc != 0 else 0
    left = int(os.pread(nth, 32, 0).decode().strip() or "0")
    os.write(nth, b"0")
    print(f"errno={err} injected={int(left == 0)} left={left}")


main()
