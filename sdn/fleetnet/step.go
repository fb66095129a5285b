package fleetnet

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/clocker/clocker/admission"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/scheduler"
	"github.com/clocker/clocker/sdn"
)

// StepName is the name of CreateStep in the create pipeline.
const StepName = "fleet-networks"

// CreateStep is the create pipeline's step for the networks a container
// joins:
//
//   - validate: an address asked for (--ip) on a fleet network lies in its
//     subnet (its syntax was checked when the body was decoded);
//   - prepare: a per-host network pins the create to the host that has
//     it; an --ip on a fleet network allows only the hosts that can hand
//     it out (see allowFor); a fleet network itself pins nothing;
//   - bind: the chosen host joins every fleet network the container is on
//     (its IPAM slice, its engine's copy), and the container gets the
//     host's fleet DNS (HostConfig.Dns and the io.clocker.dns label);
//     references by ID become names, the engine's copy knowing only the
//     name. Undo gives back what the bind joined; Done has nothing to do.
type CreateStep struct {
	fleet *hosts.Fleet
	nets  *Controller // nil: fleet networks are off, every network is per host
}

// NewCreateStep makes the step over fleet's hosts and nets's networks
// (nets nil: fleet networks are off).
func NewCreateStep(fleet *hosts.Fleet, nets *Controller) *CreateStep {
	return &CreateStep{fleet: fleet, nets: nets}
}

// Name is StepName.
func (*CreateStep) Name() string { return StepName }

// network is the fleet network ref names, if fleet networks are on.
func (s *CreateStep) network(ref string) (sdn.Network, bool) {
	if s.nets == nil {
		return sdn.Network{}, false
	}
	return s.nets.Network(ref)
}

// Validate refuses an --ip or --ip6 of the wrong family or outside its
// fleet network's subnet, and a pair of them that no one host can hand
// out (they lie in slices of different indexes). It reads the allocator
// and changes nothing.
func (s *CreateStep) Validate(c *admission.Create) error {
	for _, ref := range userNetworks(c.Spec) {
		n, ok := s.network(ref)
		if !ok {
			continue
		}
		if err := checkAddrs(n, requestedIPs(c.Spec, ref)); err != nil {
			return err
		}
	}
	return nil
}

// checkAddrs checks the addresses asked for in n (--ip, --ip6; invalid:
// not asked for) against n's subnets.
func checkAddrs(n sdn.Network, ips Addrs) error {
	if ips.V4.IsValid() && !ips.V4.Unmap().Is4() {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid IPv4 address: %s", ips.V4))
	}
	if ips.V6.IsValid() && (!ips.V6.Is6() || ips.V6.Is4In6()) {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid IPv6 address: %s", ips.V6))
	}
	for _, ip := range ips.list() {
		if sub, ok := n.SubnetOf(ip); !ok || !sub.Contains(ip.Unmap()) {
			return outsideSubnet(ip)
		}
	}
	if ips.V4.IsValid() && ips.V6.IsValid() {
		i4, ok4 := n.SliceIndex(ips.V4)
		i6, ok6 := n.SliceIndex(ips.V6)
		if ok4 && ok6 && i4 != i6 {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf(
				"Invalid address %s: fleet network %s hands out %s and %s on different hosts "+
					"(each host has a slice of both subnets, at the same index): pick addresses of one host's slices",
				ips.V6, n.Name, ips.V4, ips.V6))
		}
	}
	return nil
}

// Prepare adds a pin per per-host network (a network no healthy host has
// is not found) and an allowed set of hosts per --ip on a fleet network.
func (s *CreateStep) Prepare(ctx context.Context, c *admission.Create) error {
	for _, ref := range userNetworks(c.Spec) {
		n, ok := s.network(ref)
		if !ok {
			h := s.hostWith(ctx, ref)
			if h == nil {
				return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("network %s not found", ref))
			}
			c.Request.Pins = append(c.Request.Pins, scheduler.Pin{Host: h.Name, Reason: "network " + ref})
			continue
		}
		for _, ip := range requestedIPs(c.Spec, ref).list() {
			allow, err := s.nets.allowFor(n, ip.Unmap())
			if err != nil {
				return err
			}
			c.Request.Allow = append(c.Request.Allow, allow)
		}
	}
	return nil
}

// hostWith is the first healthy host, in the fleet's order, that has a
// network ref names.
func (s *CreateStep) hostWith(ctx context.Context, ref string) *hosts.Host {
	for _, h := range s.fleet.Hosts() {
		if !h.Healthy() {
			continue
		}
		if _, err := h.Client().NetworkInspect(ctx, ref, client.NetworkInspectOptions{}); err == nil {
			return h
		}
	}
	return nil
}

// allowFor is the set of hosts that can hand out ip in n: the member
// whose slice holds it; else, when it lies in the slice the next host to
// join gets (the lowest free one), every host not a member yet, for
// whichever of them takes the container joins with that slice (a join of
// another create in between takes it first: the bind then refuses the
// address). No host at all can hand out an address of a free slice that
// is not the next one: that is the client's error, as it was when found
// at the bind.
func (c *Controller) allowFor(n sdn.Network, ip netip.Addr) (scheduler.Allow, error) {
	if cur, err := c.alloc.Get(n.ID); err == nil {
		n = cur
	}
	next, hasNext := c.alloc.NextSlice(n.ID)
	nextText := ""
	if hasNext {
		nextText = fmt.Sprintf("; a host that joins now gets %s", next.Ranges())
	}
	for _, host := range n.Members() {
		if sl := n.Hosts[host]; sl.Holds(ip) {
			return scheduler.Allow{Hosts: map[string]bool{host: true}, Reason: fmt.Sprintf(
				"fleet network %s hands out %s on host %s only (its slice %s%s)", n.Name, ip, host, sl.Ranges(), nextText)}, nil
		}
	}
	if hasNext && next.Holds(ip) {
		allowed := map[string]bool{}
		for _, h := range c.fleet.Hosts() {
			if _, member := n.Hosts[h.Name]; !member {
				allowed[h.Name] = true
			}
		}
		return scheduler.Allow{Hosts: allowed, Reason: fmt.Sprintf(
			"fleet network %s hands out %s on the next host to join it (slice %s), and this host is a member with a slice of its own",
			n.Name, ip, next.Ranges())}, nil
	}
	var slicesText []string
	for _, host := range n.Members() {
		slicesText = append(slicesText, fmt.Sprintf("%s on host %s", n.Hosts[host].Ranges(), host))
	}
	held := "no host is a member yet"
	if len(slicesText) > 0 {
		held = "members hand out " + strings.Join(slicesText, ", ")
	}
	sub, _ := n.SubnetOf(ip)
	return scheduler.Allow{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf(
		"Invalid address %s: no host can hand it out in fleet network %s (each host has its slice of %s; %s%s): pick an address there",
		ip, n.Name, sub, held, nextText))
}

// undoTimeout bounds the engine calls of an undo, which runs whatever
// became of the create's context.
const undoTimeout = 30 * time.Second

// Bind makes c.Host a member of every fleet network the container is on
// and gives the container the host's fleet DNS. On failure nothing it
// joined is left; the undo gives back what it joined.
func (s *CreateStep) Bind(ctx context.Context, c *admission.Create) (admission.Binding, error) {
	if s.nets == nil {
		return admission.Binding{}, nil
	}
	var (
		done               []joined
		gateways, internal []netip.Addr
		renames            = map[string]string{}
		seen               = map[string]bool{} // network IDs joined here
	)
	undo := func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
		defer cancel()
		for i := len(done) - 1; i >= 0; i-- {
			s.nets.unjoin(uctx, done[i])
		}
	}
	for _, ref := range userNetworks(c.Spec) {
		n, ok := s.nets.Network(ref)
		if !ok {
			continue
		}
		if ref != n.Name {
			renames[ref] = n.Name
		}
		if seen[n.ID] {
			continue // named twice (by name and by ID): one join
		}
		seen[n.ID] = true
		j, err := s.nets.join(ctx, n, c.Host, requestedIPs(c.Spec, ref))
		if err != nil {
			undo()
			return admission.Binding{}, err
		}
		done = append(done, j)
		if gw := j.slice.Gateway; !slices.Contains(gateways, gw) {
			gateways = append(gateways, gw)
			if n.Internal {
				internal = append(internal, gw)
			}
		}
	}
	s.setDNS(c, gateways, internal)
	rename(c, renames)
	return admission.Binding{Undo: undo}, nil
}

// setDNS gives the container c.Host's DNS address as DNS server (unless
// it names its own, or has the host's or another container's network
// stack, or none). That address is the host's default bridge gateway,
// where its agent answers each container the names of the fleet networks
// it is on at the time of the query: so a container connected to a fleet
// network later resolves its names too. The gateways of internal fleet
// networks follow it (their members have no route to it), and without an
// agent on the host the gateways are all there is.
func (s *CreateStep) setDNS(c *admission.Create, gateways, internal []netip.Addr) {
	fleetDNS := takesFleetDNS(c.Spec)
	servers := []netip.Addr{}
	if fleetDNS {
		if a := s.nets.HostDNS(c.Host.Name); a.IsValid() {
			servers = append(append(servers, a), internal...)
		} else {
			servers = append(servers, gateways...)
		}
		// Docker's resolvers use three at most.
		servers = servers[:min(len(servers), 3)]
	}
	if c.Spec.HostConfig == nil {
		c.Spec.HostConfig = &container.HostConfig{}
	}
	// A recreate carries the servers Clocker gave the container on its
	// old host: replaced (or dropped) too.
	recreated := fleetDNS && len(c.Spec.HostConfig.DNS) > 0
	if len(servers) == 0 && !recreated {
		return
	}
	c.Spec.HostConfig.DNS = servers
	c.Changed("HostConfig", "Dns")
	if len(servers) == 0 {
		c.DeleteLabel(labels.DNS)
		return
	}
	c.SetLabel(labels.DNS, joinAddrs(servers))
}

// rename makes the references to fleet networks by ID (or ID prefix)
// their names.
func rename(c *admission.Create, renames map[string]string) {
	if len(renames) == 0 {
		return
	}
	if hc := c.Spec.HostConfig; hc != nil {
		if to, ok := renames[string(hc.NetworkMode)]; ok {
			hc.NetworkMode = container.NetworkMode(to)
			c.Changed("HostConfig", "NetworkMode")
		}
	}
	if c.Spec.NetworkingConfig == nil {
		return
	}
	eps := c.Spec.NetworkingConfig.EndpointsConfig
	for from, to := range renames {
		if ep, ok := eps[from]; ok {
			delete(eps, from)
			eps[to] = ep
			c.Changed("NetworkingConfig", "EndpointsConfig", from)
			c.Changed("NetworkingConfig", "EndpointsConfig", to)
		}
	}
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

// takesFleetDNS tells whether a create gets its DNS servers from Clocker:
// not when the user gave some (other than those Clocker gave the
// container it recreates), nor with the host's network stack (the host's
// resolv.conf), another container's or none.
func takesFleetDNS(spec *container.CreateRequest) bool {
	hc := spec.HostConfig
	if hc == nil {
		return true
	}
	if mode := string(hc.NetworkMode); mode == "host" || mode == "none" || strings.HasPrefix(mode, "container:") {
		return false
	}
	if len(hc.DNS) == 0 {
		return true
	}
	return spec.Config != nil && spec.Config.Labels[labels.DNS] == joinAddrs(hc.DNS)
}

// Addrs are the addresses a container asks for in a network: --ip and
// --ip6 (a connect's IPv4Address and IPv6Address); invalid: not asked
// for.
type Addrs struct{ V4, V6 netip.Addr }

// list is the addresses asked for.
func (r Addrs) list() []netip.Addr {
	var out []netip.Addr
	for _, a := range []netip.Addr{r.V4, r.V6} {
		if a.IsValid() {
			out = append(out, a)
		}
	}
	return out
}

// requestedIPs are the --ip and --ip6 a create asks for in network ref.
func requestedIPs(spec *container.CreateRequest, ref string) Addrs {
	if spec.NetworkingConfig == nil {
		return Addrs{}
	}
	if ep := spec.NetworkingConfig.EndpointsConfig[ref]; ep != nil && ep.IPAMConfig != nil {
		return Addrs{ep.IPAMConfig.IPv4Address, ep.IPAMConfig.IPv6Address}
	}
	return Addrs{}
}

// userNetworks are the user-defined networks a container joins.
func userNetworks(spec *container.CreateRequest) []string {
	var out []string
	seen := map[string]bool{}
	add := func(n string) {
		if sdn.PerHostNetwork(n) || strings.HasPrefix(n, "container:") || seen[n] {
			return
		}
		seen[n] = true
		out = append(out, n)
	}
	if spec.HostConfig != nil {
		add(string(spec.HostConfig.NetworkMode))
	}
	if spec.NetworkingConfig != nil {
		for n := range spec.NetworkingConfig.EndpointsConfig {
			add(n)
		}
	}
	return out
}
