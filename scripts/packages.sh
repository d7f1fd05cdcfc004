# SPDX-License-Identifier: GPL-2.0
#
# What xdpguard needs, in one place: sourced by bootstrap.sh (which
# installs it all) and check-build-tools.sh (which only checks the build
# part and says what is missing).

# Building: the test kernel (kbuild, Rust-for-Linux's bindgen with
# libclang-19, the kernel source), the BPF program (bpf-linker on LLVM 22)
# and the module.
BUILD_PACKAGES=(
	build-essential flex bison bc libelf-dev libssl-dev kmod cpio xz-utils
	libclang-19-dev
	llvm-22 llvm-22-dev libpolly-22-dev libzstd-dev
	linux-source-6.12
)
# The rest: the debug kernel's clang toolchain (clang-19, lld-19, llvm-19:
# LLVM=-19, the version of bindgen's libclang), the QEMU harness, the tools
# the selftests drive inside the guest, Debian packaging and DKMS (make deb,
# make dkms-test), and the benchmark's contenders (nftables, iptables,
# ipset, xdp-tools) and plots, and the documentation's HTML (make
# htmldocs: sphinx and graphviz for the diagrams), and systemd for
# systemd-analyze verify of xdpguard.service (make install-test).
TEST_PACKAGES=(
	clang-19 lld-19 llvm-19
	qemu-system-x86 busybox-static
	bpftool iproute2 iputils-ping jq python3 tcpdump ethtool procps xdp-tools time
	debhelper dh-dkms dkms lintian
	nftables iptables ipset python3-matplotlib
	python3-sphinx graphviz systemd
)
BINDGEN_VERSION=0.73.2
BPF_LINKER_VERSION=0.13.0
