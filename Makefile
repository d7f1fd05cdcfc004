# SPDX-License-Identifier: GPL-2.0
#
# xdpguard: a Rust-for-Linux module that loads and attaches a Rust XDP program.
#
#   make            test kernel, BPF program, module (installs nothing)
#   make demo       boot the test kernel and watch xdpguard drop a source
#   make test       host tests + build + kselftests in the test VM
#   make kernel-debug   the debug test kernel (clang, KASAN, lockdep, kmemleak, ...)
#   make test-debug     all kselftests on the debug kernel, then a kmemleak scan
#   make stress         the stress kselftests (STRESS_KERNEL=test or debug)
#   make opt-levels     the program at every opt-level, a module for each (build/opt)
#   make KDIR=/path/to/rust-enabled/kernel/tree   build against another kernel
#   make install [DESTDIR=] [PREFIX=/usr/local]   module, CLI, man pages, ...
#   make deb        Debian source and binary packages in build/deb/
#
# KDIR must be a built kernel tree with CONFIG_RUST=y and its Rust metadata,
# made by the same rustc and bindgen as the ones in PATH (checked first).

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
export XDPGUARD_CACHE ?= $(HOME)/.cache/xdpguard

# Without KDIR= on the command line, build the cached test kernel first.
# KDIR is the keyed tree of this checkout's config (not the linux-test link,
# which another checkout may re-point); it is evaluated when used, after
# the `kernel` target (and `setup`, for the goals that run it) made sure
# the tools that go into the key are here.
ifeq ($(origin KDIR),undefined)
KDIR = $(shell scripts/build-kernel.sh --print-kdir)
MODULE_DEPS := kernel
endif

# A tree built with clang needs LLVM= for the module too (check-toolchain.sh).
KMAKE = $(MAKE) -C $(KDIR) M=$(CURDIR) $(shell scripts/check-toolchain.sh --make-args $(KDIR))

# The debug kernel and the module built against it. Kbuild (6.12) writes
# objects next to the sources, so the debug module is built from a copy of
# them in build/debug/src and never touches rust/xdpguard/xdpguard.ko.
DEBUG_KDIR = $(shell scripts/build-kernel.sh --flavour debug --print-kdir)
DEBUG_SRC := build/debug/src
DEBUG_KO := build/debug/xdpguard.ko
# Per-test timeout (s) on the debug kernel (KASAN and lockdep under TCG).
DEBUG_TIMEOUT ?= 3000
# The debug kernel under TCG on a busy host can go 21 s (the default) without
# an RCU grace period while nothing is wrong; 300 s is the longest allowed,
# so a real stall is still reported. ACPI's _PRT method (PCI interrupt
# routing) then also runs into its 30 s loop timeout, the virtio devices
# get no interrupt and the 9p root hangs: route through the BIOS tables.
DEBUG_APPEND := "rcupdate.rcu_cpu_stall_timeout=300 pci=noacpi"

# Its own target directory: RUSTC_BOOTSTRAP=1 is part of cargo's
# fingerprint, so sharing target/ would rebuild the host crates (syn, serde,
# ...) each time make alternates between the program and the CLI.
CARGO_BPF := RUSTC_BOOTSTRAP=1 cargo build --locked --release -p xdpguard-bpf \
	--target bpfel-unknown-none -Z build-std=core --target-dir target/bpf
BPF_ELF := target/bpf/bpfel-unknown-none/release/xdpguard-bpf
SKEL_BIN := target/release/xdpguard-skel
SKEL := rust/xdpguard/skel_generated.rs
MODULE := rust/xdpguard/xdpguard.ko

.PHONY: all setup kernel bpf skel module modules cli test host-test selftests selftests-vm-1 selftests-vm-2 demo \
	difftest bench bench-smoke icount-check icount-baseline import-bench rust-analyzer clean distclean \
	install install-cli install-module uninstall dkms-src deb \
	pkg-test install-test dkms-test intree-test \
	kernel-debug module-debug test-debug stress limiter-test opt-levels htmldocs

comma := ,

all: module

# Installs missing Debian packages and Rust tools; a no-op when all is there.
setup:
	@scripts/bootstrap.sh

# Plain builds (make, make module, make KDIR=..., make cli, make install)
# install nothing: they check their tools and say what is missing
# (scripts/check-build-tools.sh; check-toolchain.sh for KDIR). The goals
# that boot the VM, benchmark or package run the bootstrap first.
SETUP_GOALS := setup demo test host-test selftests limiter-test difftest bench bench-smoke \
	icount-check icount-baseline htmldocs \
	import-bench stress test-debug kernel-debug module-debug opt-levels \
	pkg-test install-test dkms-test intree-test deb dkms-src
NEED_SETUP := $(if $(filter $(SETUP_GOALS),$(MAKECMDGOALS)),setup)

kernel: $(NEED_SETUP)
	@scripts/check-build-tools.sh kernel
	@scripts/build-kernel.sh

# The BPF ELF is kept as build/xdpguard.bpf.o for llvm-objdump and loaders.
bpf: $(NEED_SETUP)
	@scripts/check-build-tools.sh bpf
	$(CARGO_BPF)
	@mkdir -p build && cp $(BPF_ELF) build/xdpguard.bpf.o

skel: bpf
	cargo build --locked --release -q -p xdpguard-skel
	$(SKEL_BIN) $(BPF_ELF) $(SKEL)

modules: module
# RUSTC= is the rustc check-toolchain.sh found to match the kernel: the
# first in PATH, or a versioned one (Ubuntu's rustc-1.XX).
module: skel $(MODULE_DEPS)
	@scripts/check-toolchain.sh $(KDIR)
	$(KMAKE) $$(scripts/check-toolchain.sh --print-vars $(KDIR)) modules
	@echo "built $(MODULE)"

kernel-debug: setup
	@scripts/check-build-tools.sh kernel
	@scripts/build-kernel.sh --flavour debug

module-debug: skel kernel-debug
	@scripts/check-toolchain.sh $(DEBUG_KDIR)
	rm -rf $(DEBUG_SRC) && mkdir -p $(DEBUG_SRC)
	scripts/dist/module-sources.sh | cpio -pdm --quiet $(DEBUG_SRC)
	$(MAKE) -C $(DEBUG_KDIR) M=$(CURDIR)/$(DEBUG_SRC) \
		$(shell scripts/check-toolchain.sh --make-args $(DEBUG_KDIR)) modules
	cp $(DEBUG_SRC)/rust/xdpguard/xdpguard.ko $(DEBUG_KO)
	@echo "built $(DEBUG_KO) against $(DEBUG_KDIR)"

# The program at every opt-level (OPT_LEVELS), a skeleton and a module for
# each (build/opt/xdpguard-O<L>.ko), from one shared target dir
# (target/bpf-opt: `core` is built once); levels that do not build are
# reported and skipped (scripts/bpf-opt-levels.sh). xdpguard_optlevels.sh
# loads each: the verifier must accept the program at every level.
OPT_LEVELS ?= 0 1 2 3 s z
opt-levels: skel $(MODULE_DEPS)
	@scripts/check-toolchain.sh $(KDIR)
	KDIR=$(KDIR) SKEL_BIN=$(SKEL_BIN) scripts/bpf-opt-levels.sh $(OPT_LEVELS)

# The CLI and the differential test (userspace, run inside the VM too).
cli: $(NEED_SETUP)
	@scripts/check-build-tools.sh cli
	cargo build --locked --release -p xdpguard-user

host-test: bpf
	cargo test --locked --workspace --exclude xdpguard-bpf
	scripts/test-build-tools.sh

# Sizes of the stress tests inside `make test` and `make test-debug`;
# `make stress` runs them at full size (the scripts' defaults: 200 cycles,
# 100 veth pairs, 20 race rounds, every fault point).
SMOKE_STRESS := XDPGUARD_STRESS_CYCLES=10 XDPGUARD_STRESS_PAIRS=10 \
	XDPGUARD_STRESS_ROUNDS=2 XDPGUARD_FAULT_TRIES=20
# The differential test's smoke run: its 100 000 frames against 100 rule
# sets (each set a commit, about 0.6 s under TCG); `make difftest`: 500 a set.
SMOKE_DIFF := XDPGUARD_DIFF_PER_SET=1000
# Opt-levels built and loaded by `make selftests`: the three that broke
# before (Documentation/testing.rst); `make opt-levels` and
# `make selftests OPT_LEVELS="0 1 2 3 s z"` do all six.
SMOKE_OPT_LEVELS := 0 1 z

# Runs the kselftests in two VMs booted from the test kernel, side by side:
# a TCG guest with 2 vCPUs keeps about one host core busy while the tests
# run (the verifier, the CLI and one packet at a time are serial), so on the
# 2-core machine two guests take about half the wall time of one
# (Documentation/testing.rst has the figures). SELFTESTS_1 is the first
# guest's share, chosen by the tests' times so both take about as long
# (948 s and 952 s of tests in the run of 2026-12-04);
# the second guest runs every other test of TEST_PROGS, so a new test runs
# there unless it is listed here. Each guest's output is printed as a
# block when it ends (make -O); build/vm/selftests-1 and -2 keep the logs.
# Each VM's own limit: 80 min; a hung test still ends at the 1200 s of
# selftests/settings.
SELFTESTS_1 := xdpguard_cli_rules.sh xdpguard_rules.sh xdpguard_load.sh \
	xdpguard_params.sh xdpguard_bench_suite.sh xdpguard_optlevels.sh
SELFTESTS_2 = $(filter-out $(SELFTESTS_1),$(TEST_PROGS))
SELFTESTS_VM = $(SMOKE_STRESS) $(SMOKE_DIFF) qemu/run.sh --timeout 4800
selftests: OPT_LEVELS = $(SMOKE_OPT_LEVELS)
selftests: module cli opt-levels
	$(MAKE) --no-print-directory -j2 -O selftests-vm-1 selftests-vm-2

# The two guests of make selftests, without its builds (make runs them).
selftests-vm-1:
	$(SELFTESTS_VM) --name selftests-1 -- selftests/run_kselftest.sh $(SELFTESTS_1)
selftests-vm-2:
	$(SELFTESTS_VM) --name selftests-2 -- selftests/run_kselftest.sh $(SELFTESTS_2)

# The per-source rate limiter across 4 CPUs (S5 of issue 13): it needs a
# guest with 4 CPUs, so make selftests (2 CPUs) skips it and this run,
# where fewer CPUs would be a failure rather than a skip, boots 4.
limiter-test: module cli
	XDPGUARD_LIMITER_STRICT=1 qemu/run.sh --name limiter-test --smp 4 --timeout 900 -- \
		selftests/run_kselftest.sh xdpguard_limiter.sh

# The differential test at scale: CASES frames (default 2 million). Each
# rule set goes through the CLI's one commit path (read back, repair,
# records), about 0.6 s a set under TCG, so the test's own timeout is the
# VM's, not the 1200 s of selftests/settings.
CASES ?= 2000000
difftest: module cli
	XDPGUARD_KSFT_TIMEOUT=7000 XDPGUARD_DIFF_CASES=$(CASES) qemu/run.sh --name difftest --timeout 7200 -- \
		selftests/run_kselftest.sh xdpguard_difftest.sh

# CI's entry point (.ci/run): host tests, every kselftest (stress tests at
# smoke size, the benchmark suite's smoke run), the regression check of the
# program's instructions per packet and the packaging tests.
test: htmldocs host-test selftests limiter-test icount-check pkg-test

# Documentation/ as HTML in build/htmldocs (Debian's python3-sphinx and
# graphviz; Documentation/conf.py). -W: a warning, a broken :doc: or :ref:
# or a diagram that does not render fails the build, and make test.
htmldocs: $(NEED_SETUP)
	@command -v sphinx-build >/dev/null && command -v dot >/dev/null || \
		{ echo "htmldocs needs sphinx-build and dot: apt-get install python3-sphinx graphviz (or make setup)" >&2; exit 1; }
	sphinx-build -W --keep-going -q -b html -d build/htmldocs/.doctrees Documentation build/htmldocs
	@echo "built build/htmldocs/index.html"

# The regression check of the program's cost (selftests/xdpguard_icount.sh,
# Documentation/performance.rst): instructions per packet of a fixed set of
# frames and rule sets under QEMU's instruction counting, against
# selftests/icount-baseline.csv; fails on growth above 2 %. make selftests
# skips it (no icount there). icount-baseline rewrites the baseline from a
# run: do it in the commit that changes the program's cost, and say why.
ICOUNT_VM := qemu/run.sh --icount --smp 1 --timeout 900
icount-check: module cli
	$(ICOUNT_VM) --name icount -- selftests/run_kselftest.sh xdpguard_icount.sh

icount-baseline: module cli
	XDPGUARD_BENCH_PARTS=prog XDPGUARD_BENCH_ARGS=--fixed $(ICOUNT_VM) --name icount-baseline -- scripts/bench.sh
	{ echo "# xdpguard-bench --fixed under qemu/run.sh --icount --smp 1 (make icount-baseline), $$(date -u +%F)," \
		"commit $$(git rev-parse --short HEAD)$$(git diff --quiet HEAD -- rust || echo ' with uncommitted changes in rust/')," \
		"kernel $$(basename $(KDIR))"; cat build/vm/icount-baseline/bench.csv; } >selftests/icount-baseline.csv
	@echo "wrote selftests/icount-baseline.csv; commit it with the change that moved the figures, saying why"

# The whole kselftest suite on the debug kernel, then two kmemleak scans:
# any splat (KASAN, lockdep, ...) or suspected leak fails the run. The
# stress tests (the module's lifecycle) run first: under TCG the whole
# suite takes over an hour here, and they are what the debug kernel is for.
TEST_PROGS = $(shell sed -n 's/^TEST_PROGS *:= *//p' selftests/Makefile)
DEBUG_ORDER = $(STRESS_PROGS) $(filter-out $(STRESS_PROGS),$(TEST_PROGS))
test-debug: module-debug cli
	$(SMOKE_STRESS) XDPGUARD_KO=$(CURDIR)/$(DEBUG_KO) XDPGUARD_KSFT_TIMEOUT=$(DEBUG_TIMEOUT) \
		qemu/run.sh --name test-debug --timeout 14400 \
		--append $(DEBUG_APPEND) \
		--kernel $(DEBUG_KDIR)/arch/x86/boot/bzImage -- selftests/run_debug.sh $(DEBUG_ORDER)

# The stress kselftests alone, on the test kernel (default) or, with
# STRESS_KERNEL=debug, on the debug kernel followed by a kmemleak scan;
# full size, or the smoke size of `make test` with STRESS_SIZE=smoke.
STRESS_KERNEL ?= test
STRESS_SIZE ?= full
STRESS_ENV := $(if $(filter smoke,$(STRESS_SIZE)),$(SMOKE_STRESS))
STRESS_PROGS = $(shell sed -n 's/^STRESS_PROGS *:= *//p' selftests/Makefile)
ifeq ($(STRESS_KERNEL),debug)
stress: module-debug cli
	$(STRESS_ENV) XDPGUARD_KO=$(CURDIR)/$(DEBUG_KO) XDPGUARD_KSFT_TIMEOUT=$(DEBUG_TIMEOUT) \
		qemu/run.sh --name stress-debug --timeout 14400 \
		--append $(DEBUG_APPEND) \
		--kernel $(DEBUG_KDIR)/arch/x86/boot/bzImage -- selftests/run_debug.sh $(STRESS_PROGS)
else
stress: module cli
	$(STRESS_ENV) XDPGUARD_KSFT_TIMEOUT=3600 qemu/run.sh --name stress --timeout 10800 -- \
		selftests/run_kselftest.sh $(STRESS_PROGS)
endif

# The benchmark (not a test): xdpguard-bench (the program's cost per
# packet) and the side-by-side suite (pktgen through a veth into xdpguard,
# xdp-filter, nftables, iptables, ipset and no filter at BENCH_SIZES deny
# entries). Tables on the console; table.txt, CSV and plots in build/bench/.
# The rule sets are generated on the host (fast) into build/bench/rules/.
# BENCH_MODE=icount (default): one vCPU under QEMU's instruction counting,
# figures in instructions (exact, repeatable; cache misses do not show);
# BENCH_MODE=timing: the accelerator qemu/accel.sh picks (KVM where it
# works), figures in ns (Documentation/performance.rst).
BENCH_MODE ?= icount
ifeq ($(BENCH_MODE),timing)
BENCH_VM :=
BENCH_PROG_ARGS ?= --runs 3 --xdp-filter-max 100
else ifeq ($(BENCH_MODE),icount)
BENCH_VM := --icount --smp 1
BENCH_PROG_ARGS ?= --xdp-filter-max 100
else
$(error BENCH_MODE=$(BENCH_MODE): icount or timing)
endif
PYTHON ?= /usr/bin/python3
BENCH_SIZES ?= 1,100,10000,1000000
BENCH_DURATION ?= 1.5
BENCH_REPS ?= 3
BENCH_LOAD_TIMEOUT ?= 90
BENCH_SUITE_ARGS = --sizes $(BENCH_SIZES) --duration $(BENCH_DURATION) --reps $(BENCH_REPS) \
	--load-timeout $(BENCH_LOAD_TIMEOUT) --rules build/bench/rules
BENCH_ACCEL = $(if $(BENCH_VM),tcg-icount,$(shell qemu/accel.sh $$(scripts/build-kernel.sh --print-kdir)/arch/x86/boot/bzImage))
bench: module cli
	$(PYTHON) scripts/bench-rules.py build/bench/rules $(subst $(comma), ,$(BENCH_SIZES))
	XDPGUARD_BENCH_ACCEL=$(BENCH_ACCEL) XDPGUARD_BENCH_ARGS="$(BENCH_PROG_ARGS)" \
	XDPGUARD_BENCH_SUITE_ARGS="$(BENCH_SUITE_ARGS)" \
		qemu/run.sh $(BENCH_VM) --name bench --mem 4G --timeout 7200 -- scripts/bench.sh
	@mkdir -p build/bench && cp build/vm/bench/bench.csv build/bench/prog.csv
	$(PYTHON) scripts/bench-report.py build/vm/bench/suite build/bench

# Quick runs of both that assert every frame's and every contender's
# verdicts (the kselftests xdpguard_bench.sh and xdpguard_bench_suite.sh;
# also part of make selftests, there without icount).
bench-smoke: module cli
	XDPGUARD_BENCH_ACCEL=$(BENCH_ACCEL) qemu/run.sh $(BENCH_VM) --name bench-smoke --timeout 900 -- \
		selftests/run_kselftest.sh xdpguard_bench.sh xdpguard_bench_suite.sh

# Times `xdpguard import` of 100 000 and 1 000 000 CIDRs in the VM (not a test).
import-bench: module cli
	qemu/run.sh --name import-bench --timeout 3600 -- scripts/import-bench.sh

demo: module cli
	qemu/run.sh --name demo -- scripts/demo.sh

# Installation (Documentation/packaging.rst). install.sh keeps a manifest
# in $(DESTDIR)$(PREFIX)/share/xdpguard/ and uninstall removes what it lists.
# Only install.sh sees these (in cargo's environment they would rebuild).
PREFIX ?= /usr/local
INSTALL_ENV = DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" SBINDIR="$(SBINDIR)" \
	MANDIR="$(MANDIR)" DATADIR="$(DATADIR)" SYSCONFDIR="$(SYSCONFDIR)" \
	UDEVRULESDIR="$(UDEVRULESDIR)" INSTALL_MOD_PATH="$(INSTALL_MOD_PATH)"

install: install-module install-cli

install-cli: cli
	$(INSTALL_ENV) scripts/dist/install.sh cli

install-module: module
	$(INSTALL_ENV) KDIR="$(KDIR)" scripts/dist/install.sh module

uninstall:
	$(INSTALL_ENV) scripts/dist/install.sh uninstall

# The DKMS source tree (what xdpguard-dkms puts in /usr/src).
VERSION = $(shell scripts/dist/version.sh)
dkms-src: skel
	rm -rf build/dkms
	scripts/dist/dkms-tree.sh build/dkms/xdpguard-$(VERSION)

# Debian source and binary packages, and lintian, into build/deb/.
deb: skel
	scripts/dist/build-deb.sh

# Packaging tests (scripts/test-packaging.sh): install-test is a DESTDIR
# install/uninstall round trip; dkms-test builds the .debs, installs them,
# builds the module with DKMS for the test kernel, boots it and checks the
# rustc-mismatch message, then purges the packages; intree-test adds
# xdpguard to a copy of the test kernel tree and boots the in-tree module.
pkg-test: install-test dkms-test intree-test

install-test: module cli
	scripts/test-packaging.sh install

dkms-test: deb kernel
	scripts/test-packaging.sh dkms

intree-test: skel kernel
	scripts/test-packaging.sh intree

rust-analyzer: skel
	$(KMAKE) rust-analyzer

clean:
	-[ -d "$(KDIR)" ] && $(KMAKE) clean
	rm -rf build $(SKEL)

distclean: clean
	cargo clean
