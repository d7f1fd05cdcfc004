#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Host test of issue 14's build promise: plain builds install nothing.
#  1. `make -n` with and without KDIR= plans no bootstrap and no apt-get;
#     `make -n test` does plan the bootstrap.
#  2. check-build-tools.sh with no tools in PATH names each missing tool once,
#     says nothing was installed and exits 1.
#  3. check-toolchain.sh against a fake Ubuntu-style kernel tree (rustc
#     1.80.1 and bindgen 0.65.1 recorded): it picks the versioned rustc-1.80
#     over a plain rustc of another version and prints it as RUSTC=; with no
#     matching rustc, on Ubuntu, the message names `apt install rustc-1.80
#     bindgen-0.65`; elsewhere it does not.
set -uo pipefail
cd "$(dirname "$0")/.."
n=0 fails=0
ok() { n=$((n + 1)); echo "ok $n $1"; }
no() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n $1"; }

echo "TAP version 13"
echo "1..8"
for args in "KDIR=/nonexistent" "KDIR=/nonexistent module cli" ""; do
	plan=$(make -n $args 2>&1)
	if grep -qE 'bootstrap\.sh|apt-get' <<<"$plan"; then
		no "make -n $args plans an installation"
	else
		ok "make -n $args installs nothing"
	fi
done
plan=$(make -n test 2>&1)
if grep -q 'scripts/bootstrap.sh' <<<"$plan"; then
	ok "make -n test runs the bootstrap"
else
	no "make -n test does not run the bootstrap"
fi
# /usr/bin and /bin hold no cargo or bpf-linker (rustup puts them in ~/.cargo/bin).
out=$(env -i PATH=/usr/bin:/bin HOME=/nonexistent /bin/bash scripts/check-build-tools.sh cli bpf 2>&1)

rc=$?
if ((rc == 1)) && [[ $(grep -c "cargo (install" <<<"$out") == 1 ]] && grep -q 'Nothing was installed' <<<"$out"; then
	ok "missing tools are named, exit 1"
else
	no "check-build-tools.sh without tools: rc $rc: $out"
fi
# A kernel tree as Ubuntu's linux-headers + linux-lib-rust make it, and
# tools that only print their versions.
fake=$(mktemp -d)
trap 'rm -rf "$fake"' EXIT
mkdir -p "$fake/kdir/include/config" "$fake/kdir/rust" "$fake/bin" "$fake/other"
touch "$fake/kdir/rust/libkernel.rmeta" "$fake/kdir/rust/libcore.rmeta" "$fake/kdir/rust/libmacros.so"
echo 6.12.0-99-generic >"$fake/kdir/include/config/kernel.release"
urustc='rustc 1.80.1 (3f5fd8dd4 2024-08-06) (built from a source tarball)'
printf 'CONFIG_RUST=y\nCONFIG_RUSTC_VERSION_TEXT="%s"\nCONFIG_BINDGEN_VERSION_TEXT="bindgen 0.65.1"\n' \
	"$urustc" >"$fake/kdir/include/config/auto.conf"
tool() { printf '#!/bin/sh\necho "%s"\n' "$2" >"$1"; chmod +x "$1"; }
tool "$fake/bin/rustc-1.80" "$urustc"
tool "$fake/bin/bindgen-0.65" "bindgen 0.65.1"
tool "$fake/other/rustc" "rustc 1.95.0 (59807616e 2026-04-14)"
tool "$fake/other/bindgen" "bindgen 0.73.2"
echo 'ID=ubuntu' >"$fake/ubuntu"
echo 'ID=debian' >"$fake/debian"
ct() { # PATH OS-RELEASE ARGS...
	local path=$1 os=$2
	shift 2
	env -i PATH="$path" HOME=/nonexistent XDPGUARD_OS_RELEASE="$os" /bin/bash scripts/check-toolchain.sh "$@" 2>&1
}
out=$(ct "$fake/other:$fake/bin:/usr/bin:/bin" "$fake/ubuntu" --print-vars "$fake/kdir")
rc=$?
if ((rc == 0)) && [[ "$out" == "RUSTC=$fake/bin/rustc-1.80" ]]; then
	ok "the versioned rustc-1.80 matching the kernel is chosen over another plain rustc"
else
	no "versioned toolchain: rc $rc: $out"
fi
out=$(ct "$fake/other:/usr/bin:/bin" "$fake/ubuntu" "$fake/kdir")
rc=$?
flat=$(tr '\n' ' ' <<<"$out")
if ((rc == 1)) && [[ "$flat" == *"apt install rustc-1.80 bindgen-0.65 "* && "$flat" == *"rustup toolchain install 1.80.1"* ]]; then
	ok "on Ubuntu the mismatch names the packages rustc-1.80 and bindgen-0.65"
else
	no "Ubuntu mismatch message: rc $rc: $out"
fi
out=$(ct "$fake/other:/usr/bin:/bin" "$fake/debian" "$fake/kdir")
rc=$?
flat=$(tr '\n' ' ' <<<"$out")
if ((rc == 1)) && [[ "$flat" != *"apt install rustc-"* && "$flat" == *"Get it with 'rustup toolchain install 1.80.1'"* ]]; then
	ok "elsewhere the mismatch names rustup only"
else
	no "non-Ubuntu mismatch message: rc $rc: $out"
fi
exit $((fails > 0))
