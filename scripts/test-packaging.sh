#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Packaging tests (make install-test, dkms-test, intree-test; see
# Documentation/packaging.rst). Each prints "ok"/"not ok" lines and exits
# non-zero on the first failure; each leaves the machine as it found it.
#
#   install  make install into a DESTDIR: every file in place, the udev rule
#            names the installed CLI; make uninstall leaves nothing behind.
#   dkms     installs build/deb/*.deb (make deb) with dpkg: the DKMS postinst
#            skips the host's kernel (no Rust) and the install succeeds;
#            builds the module with DKMS (in a private DKMS tree) for the
#            test kernel and boots it in the VM with the installed CLI
#            (scripts/pkg-smoke.sh); a kernel tree recording another rustc
#            and one without Rust give their messages and no compiler run;
#            purges the packages.
#   intree   adds xdpguard to the test kernel tree seen through an overlay
#            in a private mount namespace (the cached tree never changes),
#            enables CONFIG_XDPGUARD=m, builds it and boots the in-tree
#            module in the VM with the smoke test.
#
# Usage: test-packaging.sh install|dkms|intree
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$HOME/.cargo/bin:$PATH"
cd "$ROOT"
mode=${1:?usage: test-packaging.sh install|dkms|intree}
KDIR=$(scripts/build-kernel.sh --print-kdir)
KREL=$(cat "$KDIR/include/config/kernel.release")
VERSION=$(scripts/dist/version.sh)
WORK=$ROOT/build/pkg-test/${mode%-build}

n=0
ok() { n=$((n + 1)); echo "ok $n $*"; }
die() { n=$((n + 1)); echo "not ok $n $*" >&2; exit 1; }
step() { echo "# $*"; }

cleanups=()
cleanup() {
	local i
	for ((i = ${#cleanups[@]} - 1; i >= 0; i--)); do
		eval "${cleanups[i]}" || true
	done
}
trap cleanup EXIT

# vm NAME KO CLI: the smoke test in the test VM.
vm() {
	XDPGUARD_KO=$2 XDPGUARD_CLI=$3 qemu/run.sh --name "$1" --timeout 600 -- scripts/pkg-smoke.sh ||
		die "smoke test of $2 in the VM (build/vm/$1/console.log)"
	ok "the module loads in the VM; a deny rule applied by $3 drops traffic; rmmod detaches"
}

test_install() {
	local dest=$WORK/root
	rm -rf "$WORK"
	mkdir -p "$WORK"
	step "make install DESTDIR=$dest PREFIX=/usr"
	# make install = install.sh cli and module after building (make module cli).
	{ DESTDIR=$dest PREFIX=/usr scripts/dist/install.sh cli &&
		DESTDIR=$dest PREFIX=/usr KDIR=$KDIR scripts/dist/install.sh module; } >"$WORK/install.log" 2>&1 ||
		{ cat "$WORK/install.log"; die "make install"; }
	local f
	for f in usr/sbin/xdpguard usr/share/man/man8/xdpguard.8 usr/share/man/man8/xdpguard-apply.8 \
		usr/share/man/man4/xdpguard.4 usr/share/man/man5/xdpguard.toml.5 \
		lib/systemd/system/xdpguard.service \
		usr/share/bash-completion/completions/xdpguard usr/share/zsh/vendor-completions/_xdpguard \
		usr/share/fish/vendor_completions.d/xdpguard.fish lib/udev/rules.d/70-xdpguard.rules \
		etc/modprobe.d/xdpguard.conf "lib/modules/$KREL/updates/rust/xdpguard/xdpguard.ko" \
		usr/share/xdpguard/install-manifest; do
		[[ -f "$dest/$f" ]] || die "make install did not install /$f"
	done
	ok "make install puts the CLI, man pages, completions, udev rule, modprobe example and module in place"
	grep -qx 'ACTION=="add", SUBSYSTEM=="module", KERNEL=="xdpguard", RUN+="/usr/sbin/xdpguard pin --wait 30"' \
		"$dest/lib/udev/rules.d/70-xdpguard.rules" || die "udev rule without /usr/sbin/xdpguard"
	ok "the udev rule runs the installed /usr/sbin/xdpguard"
	# The unit as systemd reads it from the installed tree (its binary
	# there; man pages are not looked up in the host's database).
	local v
	v=$(systemd-analyze verify --man=no --root="$dest" /lib/systemd/system/xdpguard.service 2>&1) ||
		die "systemd-analyze verify xdpguard.service: $v"
	[[ -z "$v" ]] || die "systemd-analyze verify xdpguard.service printed: $v"
	grep -qx 'ExecStart=/usr/sbin/xdpguard restore --wait 30' "$dest/lib/systemd/system/xdpguard.service" ||
		die "xdpguard.service does not run /usr/sbin/xdpguard restore --wait 30"
	ok "xdpguard.service runs the installed restore; systemd-analyze verify is clean"
	[[ "$(modinfo -F vermagic "$dest/lib/modules/$KREL/updates/rust/xdpguard/xdpguard.ko")" == "$KREL "* ]] ||
		die "installed module's vermagic is not $KREL"
	ok "the installed module is built for $KREL"
	# Nothing outside the manifest, nothing in it missing.
	diff <(cd "$dest" && find . -type f | sed 's|^\.||' | grep -v '^/usr/share/xdpguard/install-manifest$' | sort) \
		<(awk '$1 == "f" { print $2 }' "$dest/usr/share/xdpguard/install-manifest" | sort) ||
		die "the manifest does not list exactly the installed files"
	ok "the manifest lists exactly the installed files"
	step "make uninstall DESTDIR=$dest PREFIX=/usr"
	make -s uninstall DESTDIR="$dest" PREFIX=/usr >>"$WORK/install.log" 2>&1 ||
		{ cat "$WORK/install.log"; die "make uninstall"; }
	[[ ! -e "$dest" || -z "$(find "$dest" -mindepth 1)" ]] ||
		die "make uninstall left: $(find "$dest" -mindepth 1 | head)"
	ok "make uninstall removes every file and directory install made"
	rm -rf "$WORK"
}

test_dkms() {
	local debs=(build/deb/xdpguard_"${VERSION}"_*.deb build/deb/xdpguard-dkms_"${VERSION}"_all.deb)
	[[ -f "${debs[0]}" && -f "${debs[1]}" ]] || die "no packages in build/deb (make deb)"
	for p in xdpguard xdpguard-dkms; do
		if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'installed'; then
			die "$p is already installed on this machine; the test would remove it (dpkg --purge $p first)"
		fi
	done
	rm -rf "$WORK"
	mkdir -p "$WORK"
	cleanups+=("dpkg --purge xdpguard xdpguard-dkms >>'$WORK/dpkg.log' 2>&1; rm -rf '$WORK'")

	step "dpkg -i ${debs[*]}"
	# The dkms postinst builds for the running kernel and the newest one in
	# /lib/modules; without Rust (or without headers) DKMS skips them.
	dpkg -i "${debs[@]}" >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log"; die "dpkg -i"; }
	sed 's/^/#   /' "$WORK/dpkg.log" | grep -iv '^#   \(selecting\|preparing\|unpacking\|(reading\)' || true
	[[ -x /usr/sbin/xdpguard && -f /usr/src/xdpguard-$VERSION/dkms.conf ]] || die "packages did not install their files"
	dkms status xdpguard | grep -q "xdpguard/$VERSION" || die "the postinst did not add xdpguard to DKMS"
	ok "dpkg -i installs both packages; the postinst adds the module to DKMS and skips kernels it cannot build for"

	# A private DKMS tree: the build leaves /var/lib/dkms as it is.
	local tree=$WORK/dkms
	mkdir -p "$tree"
	dkms add --dkmstree "$tree" -m xdpguard -v "$VERSION" >/dev/null
	step "dkms build -k $KREL --kernelsourcedir $KDIR"
	local start=$SECONDS
	dkms build --dkmstree "$tree" -m xdpguard -v "$VERSION" -k "$KREL" --kernelsourcedir "$KDIR" \
		>"$WORK/dkms-build.log" 2>&1 || { cat "$WORK/dkms-build.log" "$tree"/xdpguard/"$VERSION"/build/make.log; die "dkms build"; }
	local ko=$tree/xdpguard/$VERSION/$KREL/$(uname -m)/module/xdpguard.ko
	[[ -f "$ko" ]] || die "dkms build left no $ko"
	[[ "$(modinfo -F vermagic "$ko")" == "$KREL "* ]] || die "vermagic of $ko is not $KREL"
	ok "dkms build for the test kernel $KREL makes xdpguard.ko ($((SECONDS - start)) s)"
	mkdir -p build/pkg-test
	cp "$ko" build/pkg-test/xdpguard-dkms.ko
	cleanups+=("rm -f '$ROOT/build/pkg-test/xdpguard-dkms.ko'")

	# A tree recording another rustc: the check stops the build with its
	# paragraph, before any compiler runs.
	local fake=$WORK/kernel-rustc-1.78
	mkdir -p "$fake/include/config" "$fake/rust"
	cp "$KDIR/.config" "$fake/"
	cp "$KDIR/include/config/auto.conf" "$KDIR/include/config/kernel.release" "$fake/include/config/"
	for f in libkernel.rmeta libcore.rmeta libmacros.so; do ln -s "$KDIR/rust/$f" "$fake/rust/$f"; done
	sed -i 's/^CONFIG_RUSTC_VERSION_TEXT=.*/CONFIG_RUSTC_VERSION_TEXT=rustc 1.78.0 (9b00956e5 2024-04-29)/' \
		"$fake/include/config/auto.conf"
	local out rc=0
	out=$(dkms build --dkmstree "$tree" -m xdpguard -v "$VERSION" -k "$KREL-mismatch" --kernelsourcedir "$fake" 2>&1 >/dev/null) || rc=$?
	printf '%s\n' "$out" | sed 's/^/#   /'
	((rc != 0)) || die "dkms build succeeded against a kernel built by another rustc"
	local flat
	flat=$(tr '\n' ' ' <<<"$out")
	for want in "the kernel was built with 'rustc 1.78.0 (9b00956e5 2024-04-29)'" \
		"but the rustc found is '$(rustc --version)'" "rustup toolchain install 1.78.0"; do
		[[ "$flat" == *"$want"* ]] || die "the mismatch message lacks: $want"
	done
	! grep -q 'error\[E\|rustc.*--edition' "$tree/xdpguard/$VERSION/build/make.log" ||
		die "the compiler ran despite the mismatch (make.log)"
	ok "a kernel recording another rustc: one paragraph naming both rustc versions and the rustup command; no compiler run"

	# A kernel without Rust: DKMS skips it (77), as the postinst does.
	sed -i 's/^CONFIG_RUST=y/# CONFIG_RUST is not set/' "$fake/.config"
	rc=0
	dkms build --dkmstree "$tree" -m xdpguard -v "$VERSION" -k "$KREL-norust" --kernelsourcedir "$fake" >/dev/null 2>&1 || rc=$?
	((rc == 77)) || die "dkms build for a kernel without Rust exited $rc, want 77 (skipped)"
	ok "a kernel without CONFIG_RUST is skipped (BUILD_EXCLUSIVE_CONFIG, exit 77)"
	# Older than 6.12: skipped as well.
	rc=0
	dkms build --dkmstree "$tree" -m xdpguard -v "$VERSION" -k 6.11.0 --kernelsourcedir "$KDIR" >/dev/null 2>&1 || rc=$?
	((rc == 77)) || die "dkms build for 6.11.0 exited $rc, want 77 (skipped)"
	ok "a kernel older than 6.12 is skipped (BUILD_EXCLUSIVE_KERNEL)"

	vm pkg-dkms build/pkg-test/xdpguard-dkms.ko /usr/sbin/xdpguard

	step "dpkg --purge xdpguard xdpguard-dkms"
	dpkg --purge xdpguard xdpguard-dkms >>"$WORK/dpkg.log" 2>&1 || { tail "$WORK/dpkg.log"; die "dpkg --purge"; }
	[[ ! -e /usr/sbin/xdpguard && ! -e /usr/src/xdpguard-$VERSION && ! -e /var/lib/dkms/xdpguard ]] ||
		die "purge left files behind"
	ok "dpkg --purge removes the packages and their DKMS registration"
}

# In-tree build in a private mount namespace: an overlay mounted over the
# cached tree's own path takes every write (in $WORK/upper), so the build
# sees the paths it was built with (a tree at another path rebuilds
# objtool and, with it, every object) and the cached tree, shared with
# other checkouts, never changes. Runs as "intree-build" under unshare.
intree_build() {
	mkdir -p "$WORK/upper" "$WORK/ovl"
	mount -t overlay overlay -o "lowerdir=$KDIR,upperdir=$WORK/upper,workdir=$WORK/ovl" "$KDIR"
	scripts/add-to-kernel-tree.sh "$KDIR" | sed 's/^/# /'
	scripts/add-to-kernel-tree.sh "$KDIR" >/dev/null
	(($(grep -c 'drivers/net/xdpguard/Kconfig' "$KDIR/drivers/net/Kconfig") == 1 &&
		$(grep -c CONFIG_XDPGUARD "$KDIR/drivers/net/Makefile") == 1)) ||
		die "running add-to-kernel-tree.sh twice duplicated its hooks"
	ok "add-to-kernel-tree.sh adds drivers/net/xdpguard and its hooks (once, when run twice)"

	(cd "$KDIR" && scripts/config --module XDPGUARD && make -s olddefconfig)
	grep -qx CONFIG_XDPGUARD=m "$KDIR/.config" || die "CONFIG_XDPGUARD=m did not stick (dependencies?)"
	ok "CONFIG_XDPGUARD=m is accepted by Kconfig (RUST, BPF_SYSCALL, NET)"

	step "make drivers/net/xdpguard/rust/xdpguard/xdpguard.ko (log: $WORK/build.log)"
	local start=$SECONDS
	(cd "$KDIR" && make -j"$(($(nproc) + 1))" drivers/net/xdpguard/rust/xdpguard/xdpguard.ko) >"$WORK/build.log" 2>&1 ||
		{ tail -n 30 "$WORK/build.log"; die "in-tree build"; }
	local ko=$KDIR/drivers/net/xdpguard/rust/xdpguard/xdpguard.ko
	[[ -f "$ko" ]] || die "no $ko"
	[[ "$(modinfo -F vermagic "$ko")" == "$KREL "* ]] || die "vermagic of $ko is not $KREL"
	[[ "$(modinfo -F intree "$ko")" == Y ]] || die "$ko is not marked intree"
	ok "the in-tree build makes xdpguard.ko for $KREL, marked intree ($((SECONDS - start)) s)"
	cp "$ko" "$WORK/xdpguard-intree.ko"
	echo "$n" >"$WORK/count"
}

test_intree() {
	rm -rf "$WORK"
	mkdir -p "$WORK"
	cleanups+=("rm -rf '$WORK'")
	unshare --mount --propagation private "$0" intree-build ||
		die "in-tree build (needs root, unshare and overlayfs)"
	n=$(cat "$WORK/count")
	[[ -f "$KDIR/.xdpguard-complete" && ! -e "$KDIR/drivers/net/xdpguard" ]] ||
		die "the cached kernel tree was modified"
	ok "the cached kernel tree is unchanged"
	mkdir -p build/pkg-test
	cp "$WORK/xdpguard-intree.ko" build/pkg-test/
	cleanups+=("rm -f '$ROOT/build/pkg-test/xdpguard-intree.ko'")
	vm pkg-intree build/pkg-test/xdpguard-intree.ko target/release/xdpguard
}

case "$mode" in
install) test_install ;;
dkms) test_dkms ;;
intree) test_intree ;;
intree-build) intree_build; exit 0 ;;
*) echo "test-packaging.sh: unknown mode $mode" >&2; exit 2 ;;
esac
echo "# test-packaging $mode: $n passed"
