/* SPDX-License-Identifier: GPL-2.0 */
/* C accessors used by the Rust side of xdpguard (see ffi.rs). */
#ifndef XDPGUARD_HELPERS_H
#define XDPGUARD_HELPERS_H

int xdpguard_ifindex_by_name(const char *name);

#endif
