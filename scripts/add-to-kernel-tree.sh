#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Add xdpguard to a kernel source tree as drivers/net/xdpguard, with the
# Kconfig option CONFIG_XDPGUARD (tristate: built in or a module), so a
# distribution that builds its own kernel can ship it. The module's sources
# keep the repository's layout under drivers/net/xdpguard/ (rust/xdpguard/,
# rust/abi/src/), so main.rs's relative #[path] includes hold unchanged.
# Running it again refreshes the sources; the Kconfig and Makefile hooks are
# added once.
#
# Usage: add-to-kernel-tree.sh KSRC     (then: make menuconfig, or
#        scripts/config -m XDPGUARD && make olddefconfig)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KSRC=${1:?usage: add-to-kernel-tree.sh KSRC}
[[ -f "$KSRC/drivers/net/Kconfig" && -f "$KSRC/drivers/net/Makefile" ]] ||
	{ echo "add-to-kernel-tree: $KSRC is not a kernel source tree (no drivers/net/Kconfig)" >&2; exit 1; }
grep -q '^endif # NETDEVICES' "$KSRC/drivers/net/Kconfig" ||
	{ echo "add-to-kernel-tree: no 'endif # NETDEVICES' in $KSRC/drivers/net/Kconfig" >&2; exit 1; }

files=$("$ROOT/scripts/dist/module-sources.sh" "$ROOT")
dest=$KSRC/drivers/net/xdpguard
rm -rf "$dest"
while IFS= read -r f; do
	# The top-level Kbuild is the out-of-tree entry; in the tree,
	# drivers/net/xdpguard/Makefile takes its place.
	[[ "$f" == Kbuild ]] && continue
	install -D -m 0644 "$ROOT/$f" "$dest/$f"
done <<<"$files"

# The module's Kbuild builds with obj-m; in the tree it follows the option.
sed -i 's/^obj-m\([[:space:]]*[:+]\?=\)/obj-$(CONFIG_XDPGUARD)\1/' "$dest/rust/xdpguard/Kbuild"
grep -q '^obj-$(CONFIG_XDPGUARD)' "$dest/rust/xdpguard/Kbuild" ||
	{ echo "add-to-kernel-tree: rust/xdpguard/Kbuild has no obj-m line to convert" >&2; exit 1; }

cat >"$dest/Makefile" <<'MK'
# SPDX-License-Identifier: GPL-2.0
# xdpguard, added by xdpguard's scripts/add-to-kernel-tree.sh.
obj-$(CONFIG_XDPGUARD) += rust/xdpguard/
MK

cat >"$dest/Kconfig" <<'KC'
# SPDX-License-Identifier: GPL-2.0
# xdpguard, added by xdpguard's scripts/add-to-kernel-tree.sh.
config XDPGUARD
	tristate "xdpguard: XDP packet filter written in Rust"
	depends on RUST && BPF_SYSCALL && NET
	help
	  xdpguard loads its companion XDP program through the kernel's
	  verifier and JIT, attaches it with BPF links to the network
	  devices named by its ifaces= parameter, and filters packets by
	  rules held in BPF maps, which the xdpguard command manages.

	  To compile this as a module, choose M here: the module will be
	  called xdpguard. If unsure, say N.
KC

if ! grep -q 'source "drivers/net/xdpguard/Kconfig"' "$KSRC/drivers/net/Kconfig"; then
	sed -i 's|^endif # NETDEVICES|source "drivers/net/xdpguard/Kconfig"\n\nendif # NETDEVICES|' "$KSRC/drivers/net/Kconfig"
fi
if ! grep -q 'CONFIG_XDPGUARD' "$KSRC/drivers/net/Makefile"; then
	printf 'obj-$(CONFIG_XDPGUARD) += xdpguard/\n' >>"$KSRC/drivers/net/Makefile"
fi
echo "add-to-kernel-tree: added drivers/net/xdpguard (CONFIG_XDPGUARD) to $KSRC"
