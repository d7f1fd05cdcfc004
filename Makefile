# SPDX-License-Identifier: GPL-2.0
#
# xdpguard: a Rust-for-Linux module that loads and attaches a Rust XDP program.
#
#   make            bootstrap (once), test kernel, BPF program, module
#   make demo       boot the test kernel and watch xdpguard drop a source
#   make test       host tests + build + kselftests in the test VM
#   make KDIR=/path/to/rust-enabled/kernel/tree   build against another kernel
#
# KDIR must be a built kernel tree with CONFIG_RUST=y and its Rust metadata,
# made by the same rustc and bindgen as the ones in PATH (checked first).

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
export XDPGUARD_CACHE ?= $(HOME)/.cache/xdpguard

# Without KDIR= on the command line, build the cached test kernel first.
# KDIR is the keyed tree of this checkout's config (not the linux-test link,
# which another checkout may re-point); it is evaluated when used, after
# `setup` has installed the tools that go into the key.
ifeq ($(origin KDIR),undefined)
KDIR = $(shell scripts/build-kernel.sh --print-kdir)
MODULE_DEPS := kernel
endif

CARGO_BPF := RUSTC_BOOTSTRAP=1 cargo build --locked --release -p xdpguard-bpf \
	--target bpfel-unknown-none -Z build-std=core
BPF_ELF := target/bpfel-unknown-none/release/xdpguard-bpf
SKEL_BIN := target/release/xdpguard-skel
SKEL := rust/xdpguard/skel_generated.rs
MODULE := rust/xdpguard/xdpguard.ko

.PHONY: all setup kernel bpf skel module modules cli test host-test selftests demo \
	difftest bench bench-smoke rust-analyzer clean distclean

comma := ,

all: module

# Installs missing Debian packages and Rust tools; a no-op when all is there.
setup:
	@scripts/bootstrap.sh

kernel: setup
	@scripts/build-kernel.sh

# The BPF ELF is kept as build/xdpguard.bpf.o for llvm-objdump and loaders.
bpf: setup
	$(CARGO_BPF)
	@mkdir -p build && cp $(BPF_ELF) build/xdpguard.bpf.o

skel: bpf
	cargo build --locked --release -q -p xdpguard-skel
	$(SKEL_BIN) $(BPF_ELF) $(SKEL)

modules: module
module: skel $(MODULE_DEPS)
	@scripts/check-toolchain.sh $(KDIR)
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules
	@echo "built $(MODULE)"

# The CLI and the differential test (userspace, run inside the VM too).
cli: setup
	cargo build --locked --release -p xdpguard

host-test: bpf
	cargo test --locked --workspace --exclude xdpguard-bpf

# Runs the kselftests in a VM booted from the test kernel.
selftests: module cli
	qemu/run.sh --name selftests -- selftests/run_kselftest.sh

# The differential test at scale: CASES frames (default 2 million).
CASES ?= 2000000
difftest: module cli
	XDPGUARD_DIFF_CASES=$(CASES) qemu/run.sh --name difftest --timeout 7200 -- \
		selftests/run_kselftest.sh xdpguard_difftest.sh

test: host-test selftests

# The benchmark (not a test): xdpguard-bench (per-packet ns of the program)
# and the side-by-side suite (pktgen through a veth into xdpguard, xdp-filter,
# nftables, iptables, ipset and no filter at BENCH_SIZES deny entries).
# Tables on the console; table.txt, CSV and plots in build/bench/. The rule
# sets are generated on the host (fast) into build/bench/rules/.
PYTHON ?= /usr/bin/python3
BENCH_SIZES ?= 1,100,10000,1000000
BENCH_DURATION ?= 1.5
BENCH_REPS ?= 3
BENCH_LOAD_TIMEOUT ?= 90
BENCH_PROG_ARGS ?= --runs 3 --xdp-filter-max 100
BENCH_SUITE_ARGS = --sizes $(BENCH_SIZES) --duration $(BENCH_DURATION) --reps $(BENCH_REPS) \
	--load-timeout $(BENCH_LOAD_TIMEOUT) --rules build/bench/rules
BENCH_ACCEL = $(shell qemu/accel.sh $$(scripts/build-kernel.sh --print-kdir)/arch/x86/boot/bzImage)
bench: module cli
	$(PYTHON) scripts/bench-rules.py build/bench/rules $(subst $(comma), ,$(BENCH_SIZES))
	XDPGUARD_BENCH_ACCEL=$(BENCH_ACCEL) XDPGUARD_BENCH_ARGS="$(BENCH_PROG_ARGS)" \
	XDPGUARD_BENCH_SUITE_ARGS="$(BENCH_SUITE_ARGS)" \
		qemu/run.sh --name bench --mem 4G --timeout 7200 -- scripts/bench.sh
	@mkdir -p build/bench && cp build/vm/bench/bench.csv build/bench/prog.csv
	$(PYTHON) scripts/bench-report.py build/vm/bench/suite build/bench

# A quick run of the suite that asserts every contender's verdicts (the
# kselftest xdpguard_bench_suite.sh; also part of make selftests).
bench-smoke: module cli
	XDPGUARD_BENCH_ACCEL=$(BENCH_ACCEL) qemu/run.sh --name bench-smoke --timeout 900 -- \
		selftests/run_kselftest.sh xdpguard_bench_suite.sh

demo: module cli
	qemu/run.sh --name demo -- scripts/demo.sh

rust-analyzer: skel
	$(MAKE) -C $(KDIR) M=$(CURDIR) rust-analyzer

clean:
	-[ -d "$(KDIR)" ] && $(MAKE) -C $(KDIR) M=$(CURDIR) clean
	rm -rf build $(SKEL)

distclean: clean
	cargo clean
