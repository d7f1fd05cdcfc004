// SPDX-License-Identifier: GPL-2.0
/*
 * C accessors for what Rust cannot reach through the 6.12 bindings:
 * struct net_device is opaque there, and RCU read locking, get_file(),
 * alloc_ordered_workqueue() and netdev_notifier_info_to_dev() are inline
 * or macros. Rust-for-Linux keeps such helpers in rust/helpers/; these are
 * xdpguard's. xdpguard serves the initial network namespace only.
 */
#include <linux/bpf.h>
#include <linux/fcntl.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/netdevice.h>
#include <linux/rcupdate.h>
#include <linux/rtnetlink.h>
#include <linux/string.h>
#include <linux/workqueue.h>
#include <net/net_namespace.h>

#include "helpers.h"

static_assert(sizeof(((struct xdpguard_netdev *)0)->name) == IFNAMSIZ);

/* xdpguard_ifindex_by_name - ifindex of @name in init_net, 0 if none. */
int xdpguard_ifindex_by_name(const char *name)
{
	struct net_device *dev;
	int ifindex = 0;

	rcu_read_lock();
	dev = dev_get_by_name_rcu(&init_net, name);
	if (dev)
		ifindex = dev->ifindex;
	rcu_read_unlock();
	return ifindex;
}

/*
 * xdpguard_name_by_index - copy the name of device @ifindex of init_net
 * into @name (IFNAMSIZ bytes). Takes rtnl, which orders it with renames.
 * Returns 0 or -ENODEV.
 */
int xdpguard_name_by_index(int ifindex, char *name)
{
	struct net_device *dev;
	int ret = -ENODEV;

	rtnl_lock();
	dev = __dev_get_by_index(&init_net, ifindex);
	if (dev) {
		memcpy(name, dev->name, IFNAMSIZ);
		ret = 0;
	}
	rtnl_unlock();
	return ret;
}

/*
 * xdpguard_netdevs - copy the ifindex and name of up to @max devices of
 * init_net into @out, under rtnl. Returns the number of devices, which may
 * exceed @max (call again with a larger array).
 */
int xdpguard_netdevs(struct xdpguard_netdev *out, int max)
{
	struct net_device *dev;
	int n = 0;

	rtnl_lock();
	for_each_netdev(&init_net, dev) {
		if (n < max) {
			out[n].ifindex = dev->ifindex;
			memcpy(out[n].name, dev->name, IFNAMSIZ);
		}
		n++;
	}
	rtnl_unlock();
	return n;
}

/*
 * xdpguard_install_file - install a new reference to @file as a new fd of
 * the current task (O_CLOEXEC). Returns the fd or a negative errno.
 */
int xdpguard_install_file(struct file *file)
{
	int fd = get_unused_fd_flags(O_CLOEXEC);

	if (fd < 0)
		return fd;
	fd_install(fd, get_file(file));
	return fd;
}

/* xdpguard_alloc_wq - the module's ordered workqueue (one item at a time). */
struct workqueue_struct *xdpguard_alloc_wq(void)
{
	return alloc_ordered_workqueue("xdpguard", 0);
}

/*
 * Netdevice notifier on init_net only. Registration replays NETDEV_REGISTER
 * for the devices already there, unregistration NETDEV_UNREGISTER.
 */
int xdpguard_notifier_register(struct notifier_block *nb)
{
	return register_netdevice_notifier_net(&init_net, nb);
}

void xdpguard_notifier_unregister(struct notifier_block *nb)
{
	unregister_netdevice_notifier_net(&init_net, nb);
}

/*
 * xdpguard_notifier_dev - decode a netdevice notifier call (rtnl held):
 * set *@what to an xdpguard_netdev_event, copy the device's name into @name
 * (IFNAMSIZ bytes) and return its ifindex; 0 for events xdpguard ignores or
 * devices outside init_net. A NETDEV_UNREGISTER of a device that stays
 * registered is a move to another namespace.
 */
int xdpguard_notifier_dev(unsigned long event, void *info, char *name, int *what)
{
	struct net_device *dev = netdev_notifier_info_to_dev(info);

	ASSERT_RTNL();
	switch (event) {
	case NETDEV_REGISTER:
		*what = XDPGUARD_NETDEV_REGISTER;
		break;
	case NETDEV_UNREGISTER:
		*what = dev->reg_state == NETREG_REGISTERED ?
			XDPGUARD_NETDEV_MOVED : XDPGUARD_NETDEV_UNREGISTER;
		break;
	case NETDEV_CHANGENAME:
		*what = XDPGUARD_NETDEV_RENAME;
		break;
	default:
		return 0;
	}
	if (!net_eq(dev_net(dev), &init_net))
		return 0;
	memcpy(name, dev->name, IFNAMSIZ);
	return dev->ifindex;
}

/*
 * xdpguard_link_detach - detach @link from its device now, as the
 * BPF_LINK_DETACH command does, instead of when its last reference goes:
 * bpf_link_put() defers that release to a workqueue, and an attach to the
 * same device before it has run fails with -EBUSY. An XDP link's detach
 * takes rtnl: never call with rtnl held. A link whose device has gone
 * (or that was detached before) is left as it is.
 */
void xdpguard_link_detach(struct bpf_link *link)
{
	if (link->ops->detach)
		link->ops->detach(link);
}
