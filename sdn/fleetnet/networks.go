package fleetnet

// The fleet-network side of the network routes: create, list, inspect,
// remove and prune, as plain methods; proxy's handlers read the request,
// call these and write the answer.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/moby/moby/api/types/network"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/fanout"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/sdn"
	"github.com/clocker/clocker/sdn/ipam"
)

// NetworkRequest is what the controller reads of a network create body
// (the engine's NetworkCreateRequest, addresses as the client typed them).
type NetworkRequest struct {
	Name       string
	Driver     string
	Internal   bool
	Attachable bool
	EnableIPv6 bool
	Labels     map[string]string
	Options    map[string]string
	IPAM       *IPAMRequest
}

// IPAMRequest is the IPAM part of a network create. Options stay as sent
// (null when absent, as an engine shows them back).
type IPAMRequest struct {
	Driver  string
	Options map[string]string
	Config  []IPAMConfigRequest
}

// IPAMConfigRequest is one subnet of a network create, with the
// addresses the user reserves (AuxiliaryAddresses, by name).
type IPAMConfigRequest struct {
	Subnet, IPRange, Gateway string
	AuxiliaryAddresses       map[string]string `json:",omitempty"`
}

// IsFleet tells whether a create makes a fleet network: the default
// driver, bridge or overlay, unless it asks for one host (-o
// clocker.scope=local, a name HOST/NAME, the label io.clocker.host) or
// names a built-in network.
func (c *Controller) IsFleet(req NetworkRequest) bool {
	if req.Options[sdn.OptionScope] == sdn.ScopeLocal || req.Labels[labels.Host] != "" || builtinNetworks[req.Name] ||
		!(req.Driver == "" || req.Driver == "bridge" || req.Driver == "overlay") {
		return false
	}
	if hn, name, ok := strings.Cut(req.Name, "/"); ok && name != "" {
		if _, ok := c.fleet.Host(hn); ok {
			return false
		}
	}
	return true
}

// Create allocates a fleet network. No engine is changed until a
// container joins it, so a refused create leaves nothing anywhere. A name
// any healthy host has a network of already is a conflict; the caller
// holds the name against concurrent creates.
func (c *Controller) Create(ctx context.Context, req NetworkRequest) (sdn.Network, error) {
	if req.Name == "" {
		return sdn.Network{}, errdefs.New(errdefs.ErrInvalid, "invalid name: ")
	}
	if req.IPAM != nil && req.IPAM.Driver != "" && req.IPAM.Driver != "default" {
		return sdn.Network{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("IPAM driver %q: fleet networks use Clocker's", req.IPAM.Driver))
	}
	spec := ipam.Spec{
		Name: req.Name, Driver: req.Driver, Internal: req.Internal, Attachable: req.Attachable,
		Labels: req.Labels, Options: req.Options, EnableIPv6: req.EnableIPv6,
	}
	if req.IPAM != nil {
		spec.IPAMOptions = req.IPAM.Options
	}
	if err := setSubnets(&spec, req); err != nil {
		return sdn.Network{}, err
	}
	var hs []*hosts.Host
	for _, h := range c.fleet.Hosts() {
		if h.Healthy() {
			hs = append(hs, h)
		}
	}
	if len(hs) == 0 {
		return sdn.Network{}, errdefs.New(errdefs.ErrUnavailable, "no host of the fleet is available")
	}
	lists, err := listAll(ctx, hs)
	if err != nil {
		return sdn.Network{}, err
	}
	// A fleet network stays clear of the hosts' underlay addresses and of
	// the engines' own networks (not their copies of fleet networks, which
	// the allocator keeps apart itself).
	for _, h := range c.fleet.Hosts() {
		if a, ok := underlayAddr(h); ok {
			spec.Exclude = append(spec.Exclude, netip.PrefixFrom(a, 32))
		}
	}
	for _, l := range lists {
		for _, n := range l {
			if n.Name == req.Name && !builtinNetworks[n.Name] {
				return sdn.Network{}, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("network with name %s already exists", req.Name))
			}
			if c.IsCopy(n.Labels) {
				continue
			}
			for _, cfg := range n.IPAM.Config {
				if cfg.Subnet.IsValid() {
					spec.Exclude = append(spec.Exclude, cfg.Subnet.Masked())
				}
			}
		}
	}
	n, err := c.alloc.Create(spec)
	if err != nil {
		return sdn.Network{}, err
	}
	c.log.Info("fleet network created", "network", n.Name, "subnet", n.Subnet, "vni", n.VNI)
	return n, nil
}

// setSubnets puts the request's IPAM configs into spec: one IPv4 and
// one IPv6 subnet at most (a dual-stack network), each with its range and
// gateway. A config whose subnet is not an IPv6 CIDR counts as IPv4 (the
// allocator judges its syntax).
func setSubnets(spec *ipam.Spec, req NetworkRequest) error {
	if req.IPAM == nil {
		return nil
	}
	var have4, have6 bool
	for _, cfg := range req.IPAM.Config {
		p, err := netip.ParsePrefix(cfg.Subnet)
		if v6 := err == nil && p.Addr().Is6() && !p.Addr().Is4In6(); v6 {
			if have6 {
				return errdefs.New(errdefs.ErrInvalid, "a fleet network takes one IPv6 subnet at most")
			}
			have6 = true
			spec.Subnet6, spec.IPRange6, spec.Gateway6, spec.Aux6 = cfg.Subnet, cfg.IPRange, cfg.Gateway, cfg.AuxiliaryAddresses
			continue
		}
		if have4 {
			return errdefs.New(errdefs.ErrInvalid, "a fleet network takes one IPv4 subnet at most")
		}
		have4 = true
		spec.Subnet, spec.IPRange, spec.Gateway, spec.Aux = cfg.Subnet, cfg.IPRange, cfg.Gateway, cfg.AuxiliaryAddresses
	}
	return nil
}

// listAll lists the networks of every host of hs at once; the first
// failure, in hs's order, is the error.
func listAll(ctx context.Context, hs []*hosts.Host) ([][]network.Summary, error) {
	answers := fanout.Each(hs, func(h *hosts.Host) ([]network.Summary, error) { return engineNetworks(ctx, h) })
	if err := fanout.FirstError(answers); err != nil {
		return nil, err
	}
	lists := make([][]network.Summary, len(hs))
	for i, a := range answers {
		lists[i] = a.Value
	}
	return lists, nil
}

// underlayAddr is the address other hosts reach h at: its engine's TCP
// address. Engines on a unix socket have none (a one-host fleet).
func underlayAddr(h *hosts.Host) (netip.Addr, bool) {
	if h.Endpoint.Network != "tcp" {
		return netip.Addr{}, false
	}
	host, _, err := net.SplitHostPort(h.Endpoint.Address)
	if err != nil {
		return netip.Addr{}, false
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap(), !a.IsLoopback()
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return netip.Addr{}, false
	}
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip); ok && a.Unmap().Is4() && !a.IsLoopback() {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// Object is a fleet network as the engine API shows a network (inspect
// and list).
type Object struct {
	Name       string
	ID         string `json:"Id"`
	Created    string
	Scope      string
	Driver     string
	EnableIPv6 bool
	IPAM       ObjectIPAM
	Internal   bool
	Attachable bool
	Ingress    bool
	ConfigFrom struct{ Network string }
	ConfigOnly bool
	// Containers are the endpoints of every member host's copy, by
	// container ID, as the engines wrote them (empty in lists).
	Containers map[string]json.RawMessage
	Options    map[string]string
	Labels     map[string]string
}

// ObjectIPAM is the IPAM part of an Object: the network's IPv4 subnet,
// then its IPv6 one if it has one.
type ObjectIPAM struct {
	Driver  string
	Options map[string]string
	Config  []ObjectIPAMConfig
}

// ObjectIPAMConfig is a subnet of a fleet network, with the user's
// --ip-range and --gateway.
type ObjectIPAMConfig struct {
	Subnet             string
	IPRange            string            `json:",omitempty"`
	Gateway            string            `json:",omitempty"`
	AuxiliaryAddresses map[string]string `json:",omitempty"`
}

// object shows n with containers.
func object(n sdn.Network, containers map[string]json.RawMessage) Object {
	cfg := ObjectIPAMConfig{Subnet: n.Subnet.String(), AuxiliaryAddresses: auxStrings(n.Aux)}
	if n.IPRange.IsValid() {
		cfg.IPRange = n.IPRange.String()
	}
	if n.Gateway.IsValid() {
		cfg.Gateway = n.Gateway.String()
	} else if r := n.Range(); r.IsValid() && !n.UserSubnet {
		// The first host slice's gateway (ipam's slice 0), the address an
		// engine would pick: clients expect a Gateway in the IPAM config
		// when the pool was chosen for them (an engine shows none for a
		// --subnet without --gateway).
		cfg.Gateway = r.Masked().Addr().Next().String()
	}
	cfgs := []ObjectIPAMConfig{cfg}
	if n.Subnet6.IsValid() {
		cfg6 := ObjectIPAMConfig{Subnet: n.Subnet6.String(), AuxiliaryAddresses: auxStrings(n.Aux6)}
		if n.IPRange6.IsValid() {
			cfg6.IPRange = n.IPRange6.String()
		}
		if n.Gateway6.IsValid() {
			cfg6.Gateway = n.Gateway6.String()
		}
		cfgs = append(cfgs, cfg6)
	}
	o := Object{
		Name: n.Name, ID: n.ID, Created: n.Created.Format(time.RFC3339Nano),
		Scope: scopeOf(n.Driver), Driver: n.Driver, EnableIPv6: n.EnableIPv6,
		IPAM:     ObjectIPAM{Driver: "default", Options: maps.Clone(n.IPAMOptions), Config: cfgs},
		Internal: n.Internal, Attachable: n.Attachable,
		Containers: containers, Options: map[string]string{}, Labels: map[string]string{},
	}
	if o.Driver == "" {
		o.Driver = "bridge"
	}
	for k, v := range n.Options {
		o.Options[k] = v
	}
	for k, v := range n.Labels {
		o.Labels[k] = v
	}
	return o
}

// auxStrings shows auxiliary addresses as inspect does (nil: none).
func auxStrings(aux map[string]netip.Addr) map[string]string {
	if len(aux) == 0 {
		return nil
	}
	out := make(map[string]string, len(aux))
	for k, a := range aux {
		out[k] = a.String()
	}
	return out
}

// scopeOf is the Scope a fleet network shows: what a client that created
// it with that driver expects. A bridge network is "local", as on one
// engine (compose, SDKs and scripts check it), though it spans hosts; an
// overlay network is "global", as classic multi-host overlay networks
// showed it.
func scopeOf(driver string) string {
	if driver == "overlay" {
		return "global"
	}
	return "local"
}

// Inspect shows n with the containers of every member host (their
// copies read at once).
func (c *Controller) Inspect(ctx context.Context, n sdn.Network) (Object, error) {
	var hs []*hosts.Host
	for _, name := range n.Members() {
		if h, ok := c.fleet.Host(name); ok && h.Healthy() {
			hs = append(hs, h)
		}
	}
	copies := readCopies(ctx, hs, n)
	if err := fanout.FirstError(copies); err != nil {
		return Object{}, err
	}
	out := map[string]json.RawMessage{}
	for _, cp := range copies {
		for id, ep := range cp.Value.info.containers {
			out[id] = ep
		}
	}
	return object(n, out), nil
}

// hostCopy is a host's copy of a fleet network, as inspectCopy read it
// (ok false: the host has none).
type hostCopy struct {
	h    *hosts.Host
	info copyInfo
	ok   bool
}

// readCopies reads the copies of n on hs at once, in hs's order.
func readCopies(ctx context.Context, hs []*hosts.Host, n sdn.Network) []fanout.Result[hostCopy] {
	return fanout.Each(hs, func(h *hosts.Host) (hostCopy, error) {
		info, ok, err := inspectCopy(ctx, h, n)
		return hostCopy{h, info, ok}, err
	})
}

// List shows the fleet networks for GET /networks, filtered by name, id,
// label, driver, scope and type as an engine does (rawFilters in either
// of its forms; filters the engines refused already are ignored).
func (c *Controller) List(rawFilters string) []Object {
	f := parseFilters(rawFilters)
	if f == nil {
		return nil // the engines refused it already
	}
	match := func(key string, ok func(v string) bool) bool {
		vs := f[key]
		if len(vs) == 0 {
			return true
		}
		for _, v := range vs {
			if ok(v) {
				return true
			}
		}
		return false
	}
	var out []Object
	for _, n := range c.alloc.List() {
		o := object(n, map[string]json.RawMessage{})
		if !match("name", func(v string) bool { return strings.Contains(n.Name, v) }) ||
			!match("id", func(v string) bool { return strings.HasPrefix(n.ID, v) }) ||
			!match("driver", func(v string) bool { return v == o.Driver }) ||
			!match("scope", func(v string) bool { return v == o.Scope }) ||
			!match("type", func(v string) bool { return v == "custom" }) ||
			!matchLabels(f["label"], n.Labels) {
			continue
		}
		out = append(out, o)
	}
	return out
}

// Remove removes n from every host and then from the fleet; refused
// (forbidden, as an engine refuses) while any host's copy has endpoints,
// and while a member host is unavailable.
func (c *Controller) Remove(ctx context.Context, n sdn.Network) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var healthy []*hosts.Host
	for _, h := range c.fleet.Hosts() {
		if !h.Healthy() {
			if _, member := n.Hosts[h.Name]; member {
				return errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf(
					"network %s has members on host %s, which is unavailable: %v", n.Name, h.Name, h.Unavailable()))
			}
			continue
		}
		healthy = append(healthy, h)
	}
	var copies []hostCopy
	for _, cp := range readCopies(ctx, healthy, n) {
		if cp.Err != nil {
			return cp.Err
		}
		if !cp.Value.ok {
			continue
		}
		if len(cp.Value.info.containers) > 0 {
			return errdefs.New(errdefs.ErrForbidden, fmt.Sprintf(
				"error while removing network: network %s id %s has active endpoints (on host %s)", n.Name, n.ID, cp.Value.h.Name))
		}
		copies = append(copies, cp.Value)
	}
	if err := fanout.FirstError(fanout.Each(copies, func(cp hostCopy) (struct{}, error) {
		return struct{}{}, removeCopy(ctx, cp.h, n, cp.info)
	})); err != nil {
		return err
	}
	if _, err := c.alloc.Remove(n.ID); err != nil {
		return err
	}
	c.log.Info("fleet network removed", "network", n.Name)
	c.Changed()
	return nil
}

// matchLabels tells whether labels meet every condition (KEY or
// KEY=VALUE), as an engine's label filter asks: all of them, not any.
func matchLabels(conds []string, labels map[string]string) bool {
	for _, cond := range conds {
		k, v, eq := strings.Cut(cond, "=")
		have, ok := labels[k]
		if !ok || eq && have != v {
			return false
		}
	}
	return true
}

// parseFilters reads a filters parameter in either of its forms
// ({"k":{"v":true}} or {"k":["v"]}); nil when it is neither.
func parseFilters(raw string) map[string][]string {
	out := map[string][]string{}
	if raw == "" {
		return out
	}
	var set map[string]map[string]bool
	if json.Unmarshal([]byte(raw), &set) == nil {
		for k, vs := range set {
			for v := range vs {
				out[k] = append(out[k], v)
			}
		}
		return out
	}
	if json.Unmarshal([]byte(raw), &out) == nil {
		return out
	}
	return nil
}

// EnginePruneFilters adds label!=io.clocker.network.id to the filters of
// an engine's network prune, so that the engines keep their copies of
// fleet networks (those are the controller's to remove). A prune that
// has a label! filter of its own is sent as it is (label! values must all
// match), and an idle copy it removes is made again when a container next
// joins.
func (c *Controller) EnginePruneFilters(filters string) string {
	f := parseFilters(filters)
	if f == nil || len(f["label!"]) > 0 {
		return filters
	}
	f["label!"] = []string{sdn.LabelNetworkID}
	b, err := json.Marshal(f)
	if err != nil {
		return filters
	}
	return string(b)
}

// Prune removes the fleet networks no host is a member of (label and
// label! filters apply; with until, none is pruned) and returns their
// names.
func (c *Controller) Prune(filters string) []string {
	f := parseFilters(filters)
	if f == nil || len(f["until"]) > 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, n := range c.alloc.List() {
		if len(n.Hosts) > 0 || !matchLabels(f["label"], n.Labels) || len(f["label!"]) > 0 && matchLabels(f["label!"], n.Labels) {
			continue
		}
		if _, err := c.alloc.Remove(n.ID); err != nil {
			c.log.Warn("fleet network prune", "network", n.Name, "err", err)
			continue
		}
		out = append(out, n.Name)
	}
	if len(out) > 0 {
		c.Changed()
	}
	return out
}
