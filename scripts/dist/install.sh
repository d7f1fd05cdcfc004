#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make install` / `make uninstall` of xdpguard. Every file and directory
# install creates is written to a manifest,
# $DESTDIR$DATADIR/xdpguard/install-manifest, and uninstall removes exactly
# those (directories only when empty), then the manifest.
#
# Usage: install.sh cli|module|uninstall
#
#   cli        the xdpguard CLI (SBINDIR), its man pages (MANDIR/man8, man4 for the
#              module, man5 for the rule file), bash,
#              zsh and fish completions, the udev rule that pins the maps
#              (UDEVRULESDIR/70-xdpguard.rules), xdpguard.service (SYSTEMDUNITDIR,
#              not enabled) and the modprobe.d example
#              (SYSCONFDIR/modprobe.d/xdpguard.conf; an existing one is kept)
#   module     the module, through the kernel's modules_install (KDIR,
#              INSTALL_MOD_PATH, default $DESTDIR), into
#              lib/modules/KERNELRELEASE/updates/
#   uninstall  remove what the manifest lists
#
# Variables (environment): DESTDIR, PREFIX (/usr/local), SBINDIR, MANDIR,
# DATADIR, SYSCONFDIR (/etc, or $PREFIX/etc for other prefixes than
# /usr and /usr/local), UDEVRULESDIR, SYSTEMDUNITDIR, KDIR, INSTALL_MOD_PATH,
# XDPGUARD_BIN (target/release/xdpguard), NO_MANIFEST=1 (packaging: the
# package manager keeps the file list).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
mode=${1:?usage: install.sh cli|module|uninstall}
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
SBINDIR=${SBINDIR:-$PREFIX/sbin}
DATADIR=${DATADIR:-$PREFIX/share}
MANDIR=${MANDIR:-$DATADIR/man}
case "$PREFIX" in
/usr | /usr/local) SYSCONFDIR=${SYSCONFDIR:-/etc} ;;
*) SYSCONFDIR=${SYSCONFDIR:-$PREFIX/etc} ;;
esac
# udev reads rules from /lib/udev/rules.d (packages) and /etc/udev/rules.d
# (the administrator's): a /usr/local install is the administrator's.
if [[ "$PREFIX" == /usr ]]; then
	UDEVRULESDIR=${UDEVRULESDIR:-/lib/udev/rules.d}
else
	UDEVRULESDIR=${UDEVRULESDIR:-$SYSCONFDIR/udev/rules.d}
fi
# systemd units: the packages' directory, or the administrator's.
if [[ "$PREFIX" == /usr ]]; then
	SYSTEMDUNITDIR=${SYSTEMDUNITDIR:-/lib/systemd/system}
else
	SYSTEMDUNITDIR=${SYSTEMDUNITDIR:-$SYSCONFDIR/systemd/system}
fi
BIN=${XDPGUARD_BIN:-$ROOT/target/release/xdpguard}
MANIFEST="$DATADIR/xdpguard/install-manifest"

log() { printf 'install: %s\n' "$*"; }

[[ -z "$DESTDIR" || "$mode" == uninstall ]] || mkdir -p "$DESTDIR"

# Manifest lines: "f PATH" or "d PATH", PATH without DESTDIR.
# The manifest's own directories are in it too.
record() {
	[[ "${NO_MANIFEST:-}" == 1 ]] && return 0
	if [[ ! -f "$DESTDIR$MANIFEST" ]]; then
		local made
		made=$(mkdirs "$(dirname "$MANIFEST")" print)
		: >"$DESTDIR$MANIFEST"
		[[ -z "$made" ]] || sed 's/^/d /' <<<"$made" >>"$DESTDIR$MANIFEST"
	fi
	echo "$1 $2" >>"$DESTDIR$MANIFEST"
}

# mkdirs DIR [print]: creates DIR and its missing parents and records each
# one created (or prints it, for the manifest's own directories).
mkdirs() {
	local dir=$1 d missing=()
	d=$dir
	while [[ "$d" != / && ! -d "$DESTDIR$d" ]]; do
		missing=("$d" "${missing[@]}")
		d=$(dirname "$d")
	done
	for d in "${missing[@]}"; do
		mkdir "$DESTDIR$d"
		if [[ "${2:-}" == print ]]; then echo "$d"; else record d "$d"; fi
	done
}

# put MODE SRC DEST
put() {
	mkdirs "$(dirname "$3")"
	install -m "$1" "$2" "$DESTDIR$3"
	record f "$3"
	log "$DESTDIR$3"
}

install_cli() {
	[[ -x "$BIN" ]] || { echo "install: $BIN not built; run 'make cli' first" >&2; exit 1; }
	local tmp
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' RETURN
	"$BIN" generate man "$tmp/man" >/dev/null
	"$BIN" generate completions "$tmp/comp" >/dev/null

	put 0755 "$BIN" "$SBINDIR/xdpguard"
	local page
	# xdpguard.8 and xdpguard-COMMAND.8 (the CLI is in sbin), xdpguard.4
	# (the module), xdpguard.toml.5 (the rule file): manN by the suffix.
	for page in "$tmp"/man/*.[458]; do
		put 0644 "$page" "$MANDIR/man${page##*.}/$(basename "$page")"
	done
	local zshdir=$DATADIR/zsh/site-functions
	[[ "$PREFIX" == /usr ]] && zshdir=$DATADIR/zsh/vendor-completions
	put 0644 "$tmp/comp/xdpguard" "$DATADIR/bash-completion/completions/xdpguard"
	put 0644 "$tmp/comp/_xdpguard" "$zshdir/_xdpguard"
	put 0644 "$tmp/comp/xdpguard.fish" "$DATADIR/fish/vendor_completions.d/xdpguard.fish"

	sed "s|@SBINDIR@|$SBINDIR|g" "$ROOT/scripts/dist/70-xdpguard.rules.in" >"$tmp/70-xdpguard.rules"
	grep -q "RUN+=\"$SBINDIR/xdpguard pin --wait 30\"" "$tmp/70-xdpguard.rules"
	put 0644 "$tmp/70-xdpguard.rules" "$UDEVRULESDIR/70-xdpguard.rules"
	# Boot-time restore of `xdpguard save`'s file; not enabled here
	# (systemctl enable xdpguard.service, Documentation/admin-guide.rst).
	sed "s|@SBINDIR@|$SBINDIR|g" "$ROOT/scripts/dist/xdpguard.service.in" >"$tmp/xdpguard.service"
	put 0644 "$tmp/xdpguard.service" "$SYSTEMDUNITDIR/xdpguard.service"

	local conf=$SYSCONFDIR/modprobe.d/xdpguard.conf
	if [[ -e "$DESTDIR$conf" ]]; then
		log "keeping the existing $DESTDIR$conf"
	else
		put 0644 "$ROOT/scripts/dist/xdpguard.conf" "$conf"
	fi
	if [[ -z "$DESTDIR" ]] && command -v udevadm >/dev/null && [[ -d /run/udev ]]; then
		udevadm control --reload || true
	fi
}

install_module() {
	local kdir=${KDIR:?install.sh module: set KDIR to the kernel tree the module was built for}
	local ko=$ROOT/rust/xdpguard/xdpguard.ko
	[[ -f "$ko" ]] || { echo "install: $ko not built; run 'make module' first" >&2; exit 1; }
	local krel modpath=${INSTALL_MOD_PATH:-$DESTDIR}
	krel=$(cat "$kdir/include/config/kernel.release")
	local dir="$modpath/lib/modules/$krel/updates"
	# modules_install creates the directories: record the new ones.
	local d=$dir created=() before
	while [[ ! -d "$d" ]]; do
		created=("$d" "${created[@]}")
		d=$(dirname "$d")
	done
	before=$(find "$dir" -type d 2>/dev/null | sort || true)
	# A staged install (DESTDIR) leaves depmod to the package's scripts.
	local depmod=depmod
	[[ -n "$DESTDIR" ]] && depmod=true
	make -s -C "$kdir" M="$ROOT" INSTALL_MOD_PATH="$modpath" INSTALL_MOD_DIR=updates \
		DEPMOD="$depmod" modules_install
	# Paths in the manifest are without DESTDIR.
	local rel
	for d in "${created[@]}"; do
		[[ "$d" == "$dir" ]] || record d "${d#"$DESTDIR"}"
	done
	while IFS= read -r d; do
		record d "${d#"$DESTDIR"}"
	done < <(comm -13 <(echo "$before") <(find "$dir" -type d | sort))
	# Kbuild keeps the module's subdirectory: updates/rust/xdpguard/.
	local f found=0
	while IFS= read -r f; do
		record f "${f#"$DESTDIR"}"
		log "$f"
		found=1
	done < <(find "$dir" -name 'xdpguard.ko*')
	((found)) || { echo "install: modules_install left no xdpguard.ko under $dir" >&2; exit 1; }
}

uninstall() {
	local m="$DESTDIR$MANIFEST"
	[[ -f "$m" ]] || { echo "uninstall: no manifest at $m: nothing installed with these DESTDIR/PREFIX" >&2; exit 1; }
	local kind path rerun_depmod=() list
	list=$(cat "$m")
	rm -f "$m"
	while read -r kind path; do
		[[ "$kind" == f ]] || continue
		rm -f "$DESTDIR$path"
		log "removed $DESTDIR$path"
		if [[ "$path" =~ ^(.*)/lib/modules/([^/]+)/ ]]; then
			rerun_depmod+=("${BASH_REMATCH[1]}|${BASH_REMATCH[2]}")
		fi
	done <<<"$list"
	# The directories, deepest first, when nothing else is in them.
	awk '$1 == "d" { print $2 }' <<<"$list" | sort -r | while read -r path; do
		rmdir "$DESTDIR$path" 2>/dev/null && log "removed $DESTDIR$path/" || true
	done
	local e
	for e in $(printf '%s\n' "${rerun_depmod[@]}" | sort -u); do
		local base=${e%%|*} krel=${e#*|}
		if [[ -z "$DESTDIR" && -f "$base/lib/modules/$krel/modules.dep" ]]; then
			depmod -b "${base:-/}" "$krel" || true
		fi
	done
}

case "$mode" in
cli) install_cli ;;
module) install_module ;;
uninstall) uninstall ;;
*) echo "install.sh: unknown mode $mode" >&2; exit 2 ;;
esac
