/* SPDX-License-Identifier: GPL-2.0 */
/* C accessors used by the Rust side of xdpguard (see ffi.rs). */
#ifndef XDPGUARD_HELPERS_H
#define XDPGUARD_HELPERS_H

#include <linux/types.h>

struct file;
struct notifier_block;
struct workqueue_struct;

/* One network device: what ffi.rs's `NetdevEntry` mirrors. */
struct xdpguard_netdev {
	int ifindex;
	char name[16];
};

int xdpguard_ifindex_by_name(const char *name);
int xdpguard_name_by_index(int ifindex, char *name);
int xdpguard_netdevs(struct xdpguard_netdev *out, int max);
int xdpguard_install_file(struct file *file);
struct workqueue_struct *xdpguard_alloc_wq(void);
int xdpguard_notifier_register(struct notifier_block *nb);
void xdpguard_notifier_unregister(struct notifier_block *nb);
int xdpguard_notifier_dev(void *info, char *name, bool *registered);

#endif
