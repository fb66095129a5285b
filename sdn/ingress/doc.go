// Package ingress makes published ports reachable at the manager's own
// address, as Swarm mode's routing mesh does for services: a published
// host port is held fleet-wide, and the manager forwards it to the host
// where the container publishes it.
//
// Two layers. The Table (the manager side: it reads the fleet's caches)
// decides who holds each port; the forwards carry the traffic.
//
//	docker run -p 8080:80 ─► create pipeline, CreateStep (step.go)
//	   validate: host port syntax, nothing taken
//	   bind:     on the placed host, 8080 claimed fleet-wide (a random
//	             port from the range for -P, -p 80, HostPort 0), the
//	             listener opened, PortBindings made explicit
//	             ─► engine ─► done: the claim given to the container the
//	                               cache shows (undo: port and listener freed)
//
//	host caches (Generation) ─► Table.Run ─► reconcile (table.go):
//	   a holder per published port of every created or running container
//	   on a healthy host; a forward per held port, pointed at host IP:port
//	   while the container runs; closed when it stops, is removed, or its
//	   host goes down (claims of creates in flight kept)
//
//	start ─► CheckStart: refused if another container holds its port
//	inspect / ps ─► ShowInspect / ShowList: HostIp shown as the ingress
//	                address (ingress off, a nil Table: the host's own)
//
// NewTable opens the forwards and re-establishes the holders from the
// caches; it starts nothing. Run keeps the table in step until its ctx
// ends, then closes every forward (Close; Wait waits for it: kernel
// forwards are rules that would outlive the process).
//
// A host that publishes in the manager's own network namespace (a unix
// socket engine, or one at a local address) gets no forward: its port is
// already there. Its ports are held fleet-wide all the same.
//
// The forwards, behind one interface (Forwards, made by Start), know
// nothing of hosts or containers: the table opens, points and closes them
// by Key. Kernel is iptables DNAT rules (kernel_linux.go); the userland
// Forwarder (userland.go) is one TCP or UDP listener per published port,
// each forwarding to one target address; the Kernel hands it the ports it
// cannot forward.
//
//	client ─► manager ADDR:PORT (listener, bound at create)
//	               │  target set while the container runs
//	               ▼
//	          host IP:PORT (the engine's own published port) ─► container
//
// A listener can be open without a target (the container is created, not
// yet started): TCP connections then wait a moment for one, UDP datagrams
// are dropped.
package ingress
