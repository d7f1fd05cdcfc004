/* SPDX-License-Identifier: GPL-2.0 */
/* C accessors used by the Rust side of xdpguard (see ffi/). */
#ifndef XDPGUARD_HELPERS_H
#define XDPGUARD_HELPERS_H

#include <linux/types.h>

struct bpf_link;
struct file;
struct notifier_block;
struct workqueue_struct;

/* One network device: what ffi/netdev.rs's `NetdevEntry` mirrors. */
struct xdpguard_netdev {
	int ifindex;
	char name[16];
};

int xdpguard_ifindex_by_name(const char *name);
int xdpguard_name_by_index(int ifindex, char *name);
int xdpguard_netdevs(struct xdpguard_netdev *out, int max);
int xdpguard_install_file(struct file *file);
void xdpguard_link_detach(struct bpf_link *link);
struct workqueue_struct *xdpguard_alloc_wq(void);
int xdpguard_notifier_register(struct notifier_block *nb);
void xdpguard_notifier_unregister(struct notifier_block *nb);
/* What xdpguard_notifier_dev reports (ffi/netdev.rs mirrors these values). */
enum xdpguard_netdev_event {
	XDPGUARD_NETDEV_OTHER = 0,
	XDPGUARD_NETDEV_REGISTER = 1,
	XDPGUARD_NETDEV_UNREGISTER = 2,
	XDPGUARD_NETDEV_MOVED = 3,	/* NETDEV_UNREGISTER of a netns move */
	XDPGUARD_NETDEV_RENAME = 4,
};

int xdpguard_notifier_dev(unsigned long event, void *info, char *name, int *what);

#endif
