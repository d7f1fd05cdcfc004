// SPDX-License-Identifier: GPL-2.0
/*
 * C accessors for what Rust cannot reach through the 6.12 bindings:
 * struct net_device is opaque there, and RCU read locking is inline.
 * Rust-for-Linux keeps such helpers in rust/helpers/; these are xdpguard's.
 */
#include <linux/netdevice.h>
#include <linux/rcupdate.h>
#include <net/net_namespace.h>

#include "helpers.h"

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
