#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install what xdpguard's tests, VM, benchmarks and packaging need on a
# Debian 12 machine (make demo, make test, ...; plain builds only check,
# scripts/check-build-tools.sh). Idempotent: every step
# checks first and does nothing when its tool is already there.
set -euo pipefail

# The package lists and tool versions (scripts/packages.sh): everything,
# the build's and the tests'.
. "$(dirname "$0")/packages.sh"
PACKAGES=("${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}")

log() { printf 'bootstrap: %s\n' "$*"; }

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if ((${#missing[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		log "missing Debian packages: ${missing[*]}; run this as root or install them"
		exit 1
	fi
	log "installing ${#missing[@]} Debian packages: ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
		| grep -E '^(Setting up|E:)' | sed 's/^/  /' || true
	for p in "${missing[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			{ log "failed to install $p"; exit 1; }
	done
fi

export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo >/dev/null || { log "cargo not found; install Rust with rustup first"; exit 1; }

if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
	log "adding rustup component rust-src"
	rustup component add rust-src
fi

if [[ "$(bindgen --version 2>/dev/null)" != "bindgen $BINDGEN_VERSION" ]]; then
	log "building bindgen-cli $BINDGEN_VERSION (about 2 minutes)"
	LIBCLANG_PATH=/usr/lib/llvm-19/lib cargo install -q bindgen-cli --locked --version "$BINDGEN_VERSION"
fi

if [[ "$(bpf-linker --version 2>/dev/null)" != "bpf-linker $BPF_LINKER_VERSION" ]]; then
	log "building bpf-linker $BPF_LINKER_VERSION against LLVM 22 (a few minutes)"
	LLVM_SYS_221_PREFIX=/usr/lib/llvm-22 RUSTFLAGS="-L /usr/lib/llvm-22/lib" \
		cargo install -q bpf-linker --locked --version "$BPF_LINKER_VERSION" \
		--no-default-features --features llvm-22
fi
log "toolchain ready: $(rustc --version), $(bindgen --version), $(bpf-linker --version)"
