// Package sdn owns fleet networks: networks whose members run on different
// hosts of the fleet yet share one subnet, reach each other directly and
// find each other by name.
//
// The manager allocates; each host's agent applies.
//
//	            clocker serve (manager)
//	docker network create ─┐
//	                       ▼
//	  sdn/ipam.Allocator: subnet from the fleet pool (or the user's),
//	  a VNI, and per member host a slice (ip-range) with its own gateway;
//	  persisted in bbolt (internal/store, bucket "networks")
//	                       │
//	    Network.Engine(host): the same-named bridge network to create
//	    on that host's engine (subnet, ip-range, gateway, bridge name, MTU)
//	    Network.HostNetwork(host, underlay): what that host's agent applies
//	                       │
//	    ┌──────────────────┼───────────────────┐
//	    ▼                  ▼                   ▼
//	agent on h1        agent on h2         agent on h3    (clocker agent)
//	Provider.Apply:  bridge ckb-… ◄── VXLAN device ckv-… (VNI, dstport 4789,
//	                 nolearning, MTU 1450) ── FDB 00:00:00:00:00:00 dst <peer>
//	                 for every other member host          (sdn/vxlan)
//	sdn/dns.Server on the host's DNS address (its default bridge gateway)
//	and each gateway: the querier's networks' names → addresses
//	(A; AAAA on dual-stack networks, else an empty answer), the rest →
//	upstream or NXDOMAIN                                       (sdn/dns)
//
// Addresses, for a /24 subnet and the default eight slices:
//
//	10.200.0.0/24   subnet, the same on every host
//	10.200.0.0/27   h1's slice, gateway 10.200.0.1  (the bridge's address on h1)
//	10.200.0.32/27  h2's slice, gateway 10.200.0.33 (the bridge's address on h2)
//	…
//
// A dual-stack network (--ipv6 --subnet fd00::/64) has an IPv6 subnet
// too, split into as many slices: each host's slice has both parts, at
// the same index, and its engine network gets the IPv6 part as a second
// IPAM config. The overlay is layer 2, so it carries IPv6 unchanged; the
// underlay stays IPv4.
//
// Containers get their host's DNS address as DNS server, whatever their
// networks; Docker's embedded resolver answers the names it knows and
// forwards the rest there, and the agent answers each querier (known by
// its address, AgentState.Clients, or by the subnet it is in) the names
// of the fleet networks it is on then.
//
// Providers register by name (RegisterProvider, NewProvider); "vxlan" is
// built in. A provider re-learns what is in place from the kernel, so an
// agent restart neither loses nor duplicates state: Reconcile applies the
// desired networks and removes the provider's leftovers.
//
// sdn and its agent side (ipam, dns, vxlan, agent) import neither proxy
// nor hosts: the manager passes host names and underlay addresses in.
// Only the manager side knows the fleet's hosts: sdn/fleetnet (the
// controller, the agents' deployment, the create step; see its
// README.md) and sdn/ingress (the fleet-wide table of published ports and
// its forwards).
package sdn
