# SPDX-License-Identifier: GPL-2.0
#
# xdpguard: a Rust-for-Linux module that loads and attaches a Rust XDP program.
#
#   make            bootstrap (once), test kernel, BPF program, module
#   make demo       boot the test kernel and watch xdpguard drop a source
#   make test       host tests + build + kselftests in the test VM
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
	difftest bench import-bench rust-analyzer clean distclean \
	install install-cli install-module uninstall dkms-src deb \
	pkg-test install-test dkms-test intree-test

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
	qemu/run.sh --name selftests --timeout 3600 -- selftests/run_kselftest.sh

# The differential test at scale: CASES frames (default 2 million).
CASES ?= 2000000
difftest: module cli
	XDPGUARD_DIFF_CASES=$(CASES) qemu/run.sh --name difftest --timeout 7200 -- \
		selftests/run_kselftest.sh xdpguard_difftest.sh

test: host-test selftests

# The benchmark (not a test): table on the console, CSV in build/vm/bench/.
bench: module cli
	qemu/run.sh --name bench --mem 4G --timeout 7200 -- scripts/bench.sh

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
	$(MAKE) -C $(KDIR) M=$(CURDIR) rust-analyzer

clean:
	-[ -d "$(KDIR)" ] && $(MAKE) -C $(KDIR) M=$(CURDIR) clean
	rm -rf build $(SKEL)

distclean: clean
	cargo clean
