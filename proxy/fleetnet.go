package proxy

// Fleet networks: `docker network create NAME` (driver bridge, overlay or
// none given) makes a network that spans hosts. sdn/ipam allocates it; a
// host becomes a member when its first container joins, which creates the
// same-named bridge network on that host's engine with the host's slice;
// the host's agent (fleetnet_agent.go) joins that bridge to the overlay and
// answers the fleet's names on the slice's gateway. Networks created with
// -o clocker.scope=local, named HOST/NAME or labelled io.clocker.host, and
// any other driver, stay on one host (networks_handlers.go).
//
//	create ─▶ ipam.Create (nothing on any engine yet)
//	run/connect on h ─▶ ipam.Join(n, h) ─▶ engine network on h (n.Engine(h))
//	                 ─▶ agents told (peers, names, which container is where)
//	any run on h ─▶ HostConfig.Dns = h's DNS address (its default bridge
//	                 gateway), where h's agent answers by the querier's networks
//	rm ─▶ refused while any host's copy has endpoints ─▶ copies removed ─▶ ipam.Remove

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/sdn"
	"github.com/clocker/clocker/sdn/ipam"
)

// FleetNets holds the fleet's networks and the agents that carry them.
type FleetNets struct {
	// Alloc allocates and keeps the networks.
	Alloc *ipam.Allocator

	mu      sync.Mutex // one membership change or removal at a time
	changed chan struct{}
	agents  *agents // nil until StartAgents
	// joined is when each host last joined each network ("ID/host"): a
	// host is not made to leave while a create that joined may still be
	// on its way to the engine.
	joined map[string]time.Time
}

// leaveGrace is how long a host stays a member with no container on the
// network after it last joined.
const leaveGrace = 30 * time.Second

// NewFleetNets wraps an allocator.
func NewFleetNets(a *ipam.Allocator) *FleetNets {
	return &FleetNets{Alloc: a, changed: make(chan struct{}, 1), joined: map[string]time.Time{}}
}

// kick tells the agent loop that the desired state may have changed.
func (f *FleetNets) kick() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// fleetNetwork returns the fleet network ref names (ID, name or ID
// prefix), unless ref names a host (HOST/NAME) or fleet networks are off.
func (s *Server) fleetNetwork(ref string) (sdn.Network, bool) {
	if s.Nets == nil || builtinNetworks[ref] {
		return sdn.Network{}, false
	}
	if h, _ := s.qualified(ref); h != nil {
		return sdn.Network{}, false
	}
	n, err := s.Nets.Alloc.Get(ref)
	return n, err == nil
}

// fleetNetworkPinHook tells pins() to leave a network alone: a fleet
// network ties a container to no host.
func (s *Server) fleetNetworkPinHook(ref string) bool {
	_, ok := s.fleetNetwork(ref)
	return ok
}

// engineCall sends one request to a host's engine and reads the answer.
func engineCall(ctx context.Context, h *hosts.Host, method, path string, q url.Values, body io.Reader, ctype string) (int, []byte, error) {
	u := *h.Endpoint.Base
	u.Path = path
	if q != nil {
		u.RawQuery = q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return 0, nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := h.RoundTrip(req)
	if err != nil {
		return 0, nil, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s (%s): %v", h.Name, h.Endpoint.URL, err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: %v", h.Name, err))
	}
	return resp.StatusCode, data, nil
}

// engineJSON is engineCall with a JSON body, an error for any non-2xx.
func engineJSON(ctx context.Context, h *hosts.Host, method, path string, q url.Values, v any) ([]byte, error) {
	var body io.Reader
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	status, data, err := engineCall(ctx, h, method, path, q, body, "application/json")
	if err != nil {
		return nil, err
	}
	if status >= 300 {
		return nil, fmt.Errorf("host %s: %s %s: %w", h.Name, method, path, relayError(status, data))
	}
	return data, nil
}

// engineNetworkInfo is what Clocker reads of a host's copy of a network.
type engineNetworkInfo struct {
	ID         string `json:"Id"`
	Labels     map[string]string
	Containers map[string]json.RawMessage
}

// engineNetwork reads host h's copy of network n; ok is false when h has
// none.
func engineNetwork(ctx context.Context, h *hosts.Host, n sdn.Network) (engineNetworkInfo, bool, error) {
	status, data, err := engineCall(ctx, h, http.MethodGet, "/networks/"+url.PathEscape(n.Name), nil, nil, "")
	if err != nil {
		return engineNetworkInfo{}, false, err
	}
	if status == http.StatusNotFound {
		return engineNetworkInfo{}, false, nil
	}
	if status != http.StatusOK {
		return engineNetworkInfo{}, false, relayError(status, data)
	}
	var info engineNetworkInfo
	if err := json.Unmarshal(data, &info); err != nil {
		return info, false, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: bad network: %v", h.Name, err))
	}
	if info.Labels[sdn.LabelNetworkID] != n.ID {
		return info, false, errdefs.New(errdefs.ErrConflict, fmt.Sprintf(
			"host %s has a network named %s that is not fleet network %s", h.Name, n.Name, n.ID[:12]))
	}
	return info, true, nil
}

// join makes h a member of n: its slice, and its engine's copy of the
// network. The agents are told. An address asked for (--ip) must lie in
// h's slice, for the engine hands out no other: otherwise nothing is made
// and the error is a 400.
func (s *Server) join(ctx context.Context, n sdn.Network, h *hosts.Host, ip netip.Addr) (sdn.HostSlice, error) {
	if ip.IsValid() && !n.Subnet.Contains(ip.Unmap()) {
		return sdn.HostSlice{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf(
			"Invalid address %s: It does not belong to any of this network's subnets", ip))
	}
	s.Nets.mu.Lock()
	defer s.Nets.mu.Unlock()
	if cur, err := s.Nets.Alloc.Get(n.ID); err == nil {
		n = cur
	}
	_, wasMember := n.Hosts[h.Name]
	sl, err := s.Nets.Alloc.Join(n.ID, h.Name)
	if err != nil {
		return sl, err
	}
	if ip.IsValid() && !sl.IPRange.Contains(ip.Unmap()) {
		if !wasMember {
			_ = s.Nets.Alloc.Leave(n.ID, h.Name)
		}
		return sl, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf(
			"Invalid address %s: fleet network %s hands out %s on host %s (each host has its slice of %s): "+
				"pick an address there, or place the container on the host whose slice holds %s",
			ip, n.Name, sl.IPRange, h.Name, n.Subnet, ip))
	}
	s.Nets.joined[n.ID+"/"+h.Name] = time.Now()
	if n, err = s.Nets.Alloc.Get(n.ID); err != nil {
		return sl, err
	}
	if _, ok, err := engineNetwork(ctx, h, n); err != nil || ok {
		s.Nets.kick()
		return sl, err
	}
	en, err := n.Engine(h.Name)
	if err != nil {
		return sl, err
	}
	ipamCfg := map[string]string{"Subnet": en.Subnet.String(), "IPRange": en.IPRange.String(), "Gateway": en.Gateway.String()}
	req := map[string]any{
		"Name": en.Name, "Driver": en.Driver, "CheckDuplicate": true,
		"Internal": en.Internal, "Attachable": en.Attachable,
		"IPAM":    map[string]any{"Driver": "default", "Config": []map[string]string{ipamCfg}},
		"Options": en.Options, "Labels": en.Labels,
	}
	if _, err := engineJSON(ctx, h, http.MethodPost, "/networks/create", nil, req); err != nil {
		if !wasMember {
			_ = s.Nets.Alloc.Leave(n.ID, h.Name)
		}
		return sl, err
	}
	s.Log.Info("fleet network joined", "network", n.Name, "host", h.Name, "range", en.IPRange, "gateway", en.Gateway)
	s.Nets.kick()
	return sl, nil
}

// leaveIdle makes hosts leave the networks none of their containers (in
// any state) is on any more, after leaveGrace: their engine's copy is
// removed and their slice freed; the agents are told.
func (s *Server) leaveIdle(ctx context.Context) {
	s.Nets.mu.Lock()
	defer s.Nets.mu.Unlock()
	used := map[string]map[string]bool{} // host → network names
	for _, h := range s.Fleet.Hosts() {
		used[h.Name] = map[string]bool{}
		for _, c := range h.Containers() {
			if c.Summary.NetworkSettings != nil {
				for name := range c.Summary.NetworkSettings.Networks {
					used[h.Name][name] = true
				}
			}
		}
	}
	left := false
	for _, n := range s.Nets.Alloc.List() {
		for _, host := range n.Members() {
			h, ok := s.Fleet.Host(host)
			if !ok || !h.Healthy() || used[host][n.Name] || time.Since(s.Nets.joined[n.ID+"/"+host]) < leaveGrace {
				continue
			}
			info, ok, err := engineNetwork(ctx, h, n)
			if err != nil || ok && len(info.Containers) > 0 {
				continue
			}
			if ok {
				if _, err := engineJSON(ctx, h, http.MethodDelete, "/networks/"+url.PathEscape(n.Name), nil, nil); err != nil {
					s.Log.Debug("fleet network copy kept", "network", n.Name, "host", host, "err", err)
					continue
				}
			}
			if err := s.Nets.Alloc.Leave(n.ID, host); err != nil {
				s.Log.Warn("fleet network leave", "network", n.Name, "host", host, "err", err)
				continue
			}
			delete(s.Nets.joined, n.ID+"/"+host)
			s.Log.Info("fleet network left", "network", n.Name, "host", host)
			left = true
		}
	}
	if left {
		s.Nets.kick()
	}
}

// fleetCreateHook prepares a create placed on h: every fleet network the
// container joins gets h as a member, and the container gets h's DNS
// address as DNS server (unless it names its own, or has the host's or
// another container's network stack, or none). That address is h's
// default bridge gateway, where h's agent answers each container the names
// of the fleet networks it is on at the time of the query: so a container
// connected to a fleet network later resolves its names too. The gateways
// of internal fleet networks follow it (their members have no route to
// it), and without an agent on h the gateways are all there is. References
// by ID become names, the engine's copy knowing only the name.
func (s *Server) fleetCreateHook(ctx context.Context, h *hosts.Host, spec *container.CreateRequest, body []byte) ([]byte, error) {
	if s.Nets == nil {
		return body, nil
	}
	var (
		gateways, internal []string
		renames            = map[string]string{}
	)
	for _, ref := range userNetworks(spec) {
		n, ok := s.fleetNetwork(ref)
		if !ok {
			continue
		}
		sl, err := s.join(ctx, n, h, requestedIP(spec, ref))
		if err != nil {
			return nil, err
		}
		gw := sl.Gateway.String()
		if !slices.Contains(gateways, gw) {
			gateways = append(gateways, gw)
			if n.Internal {
				internal = append(internal, gw)
			}
		}
		if ref != n.Name {
			renames[ref] = n.Name
		}
	}
	fleetDNS := takesFleetDNS(spec)
	dnsServers := []string{}
	if fleetDNS {
		if a := s.hostDNS(h.Name); a.IsValid() {
			dnsServers = append(dnsServers, a.String())
			dnsServers = append(dnsServers, internal...)
		} else {
			dnsServers = append(dnsServers, gateways...)
		}
		// Docker's resolvers use three at most.
		dnsServers = dnsServers[:min(len(dnsServers), 3)]
	}
	// A recreate carries the servers Clocker gave the container on its
	// old host: replaced (or dropped) too.
	recreated := fleetDNS && spec.HostConfig != nil && len(spec.HostConfig.DNS) > 0
	if len(dnsServers) == 0 && len(renames) == 0 && !recreated {
		return body, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
	}
	hc := map[string]json.RawMessage{}
	if raw, ok := top["HostConfig"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &hc); err != nil {
			return nil, errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
		}
	}
	if len(dnsServers) > 0 || recreated {
		hc["Dns"], _ = json.Marshal(dnsServers)
		labels := map[string]string{}
		if raw, ok := top["Labels"]; ok {
			_ = json.Unmarshal(raw, &labels)
		}
		if labels == nil {
			labels = map[string]string{}
		}
		if len(dnsServers) > 0 {
			labels[dnsLabel] = strings.Join(dnsServers, ",")
		} else {
			delete(labels, dnsLabel)
		}
		top["Labels"], _ = json.Marshal(labels)
	}
	if spec.HostConfig != nil {
		if to, ok := renames[string(spec.HostConfig.NetworkMode)]; ok {
			hc["NetworkMode"], _ = json.Marshal(to)
		}
	}
	top["HostConfig"], _ = json.Marshal(hc)
	if len(renames) > 0 && spec.NetworkingConfig != nil {
		eps := map[string]json.RawMessage{}
		var nc map[string]json.RawMessage
		if err := json.Unmarshal(top["NetworkingConfig"], &nc); err == nil {
			_ = json.Unmarshal(nc["EndpointsConfig"], &eps)
			for from, to := range renames {
				if v, ok := eps[from]; ok {
					delete(eps, from)
					eps[to] = v
				}
			}
			nc["EndpointsConfig"], _ = json.Marshal(eps)
			top["NetworkingConfig"], _ = json.Marshal(nc)
		}
	}
	return json.Marshal(top)
}

// dnsLabel records the DNS servers Clocker gave a container, so that a
// recreate of it (rescheduling, a tool that copies a container's
// configuration) gets those of its new host, not the old host's.
const dnsLabel = labels.DNS

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
	given := make([]string, len(hc.DNS))
	for i, a := range hc.DNS {
		given[i] = a.String()
	}
	return spec.Config != nil && spec.Config.Labels[dnsLabel] == strings.Join(given, ",")
}

// requestedIP is the --ip a create asks for in network ref.
func requestedIP(spec *container.CreateRequest, ref string) netip.Addr {
	if spec.NetworkingConfig == nil {
		return netip.Addr{}
	}
	if ep := spec.NetworkingConfig.EndpointsConfig[ref]; ep != nil && ep.IPAMConfig != nil {
		return ep.IPAMConfig.IPv4Address
	}
	return netip.Addr{}
}

// --- create ------------------------------------------------------------------

// fleetNetworkRequest is what create reads of a NetworkCreateRequest.
type fleetNetworkRequest struct {
	Name       string
	Driver     string
	Internal   bool
	Attachable bool
	EnableIPv6 bool
	Labels     map[string]string
	Options    map[string]string
	IPAM       *struct {
		Driver string
		Config []struct {
			Subnet, IPRange, Gateway string
		}
	}
}

// createNetworkRouted sends a create to the fleet or to one host.
func (s *Server) createNetworkRouted(w http.ResponseWriter, r *http.Request) error {
	if s.Nets == nil {
		return s.createNetwork(w, r)
	}
	var req fleetNetworkRequest
	body, err := s.readObjectRequest(r, &req)
	if err != nil {
		return err
	}
	local := req.Options[sdn.OptionScope] == sdn.ScopeLocal || req.Labels[HostLabel] != "" ||
		builtinNetworks[req.Name] || !(req.Driver == "" || req.Driver == "bridge" || req.Driver == "overlay")
	if h, _ := s.qualified(req.Name); h != nil {
		local = true
	}
	if local {
		if _, ok := s.fleetNetwork(req.Name); ok {
			return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("network with name %s already exists", req.Name))
		}
		if _, ok := req.Options[sdn.OptionScope]; ok {
			// Clocker's option, not the engine's.
			opts := maps.Clone(req.Options)
			delete(opts, sdn.OptionScope)
			raw, _ := json.Marshal(opts)
			if body, err = setFields(body, map[string]json.RawMessage{"Options": raw}); err != nil {
				return errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
			}
		}
		setBody(r, body)
		return s.createNetwork(w, r)
	}
	return s.createFleetNetwork(w, r, req)
}

// createFleetNetwork allocates the network; no engine is touched until a
// container joins it, so a refused create leaves nothing anywhere.
func (s *Server) createFleetNetwork(w http.ResponseWriter, r *http.Request, req fleetNetworkRequest) error {
	if req.Name == "" {
		return errdefs.New(errdefs.ErrInvalid, "invalid name: ")
	}
	if req.EnableIPv6 {
		return errdefs.New(errdefs.ErrInvalid, "fleet networks are IPv4 only: --ipv6 needs -o clocker.scope=local")
	}
	if req.IPAM != nil && req.IPAM.Driver != "" && req.IPAM.Driver != "default" {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("IPAM driver %q: fleet networks use Clocker's", req.IPAM.Driver))
	}
	if req.IPAM != nil && len(req.IPAM.Config) > 1 {
		return errdefs.New(errdefs.ErrInvalid, "a fleet network takes one subnet")
	}
	hs, err := s.healthyHosts()
	if err != nil {
		return err
	}
	defer nameLocks.lock("network/" + req.Name)()
	c, err := s.takeCensus(r, hs, "/networks", req.Name, decodeNetworkList, func(h objectHead) bool { return builtinNetworks[h.Name] })
	if err != nil {
		return err
	}
	if len(c.holders) > 0 {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("network with name %s already exists", req.Name))
	}
	spec := ipam.Spec{
		Name: req.Name, Driver: req.Driver, Internal: req.Internal, Attachable: req.Attachable,
		Labels: req.Labels, Options: req.Options,
	}
	if req.IPAM != nil && len(req.IPAM.Config) == 1 {
		cfg := req.IPAM.Config[0]
		spec.Subnet, spec.IPRange, spec.Gateway = cfg.Subnet, cfg.IPRange, cfg.Gateway
	}
	if spec.Exclude, err = s.excludedSubnets(r.Context(), hs); err != nil {
		return err
	}
	n, err := s.Nets.Alloc.Create(spec)
	if err != nil {
		return err
	}
	s.Log.Info("fleet network created", "network", n.Name, "subnet", n.Subnet, "vni", n.VNI)
	return writeJSON(w, http.StatusCreated, map[string]string{"Id": n.ID, "Warning": ""})
}

// excludedSubnets are what a fleet network must stay clear of: the
// engines' own networks (not the copies of fleet networks) and the hosts'
// underlay addresses.
func (s *Server) excludedSubnets(ctx context.Context, hs []*hosts.Host) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, h := range s.Fleet.Hosts() {
		if a, ok := underlayAddr(h); ok {
			out = append(out, netip.PrefixFrom(a, 32))
		}
	}
	for _, h := range hs {
		data, err := engineJSON(ctx, h, http.MethodGet, "/networks", nil, nil)
		if err != nil {
			return nil, err
		}
		var nets []struct {
			Labels map[string]string
			IPAM   struct{ Config []struct{ Subnet string } }
		}
		if err := json.Unmarshal(data, &nets); err != nil {
			return nil, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: bad network list: %v", h.Name, err))
		}
		for _, n := range nets {
			if n.Labels[sdn.LabelNetworkID] != "" {
				continue
			}
			for _, c := range n.IPAM.Config {
				if p, err := netip.ParsePrefix(c.Subnet); err == nil && p.Addr().Is4() {
					out = append(out, p.Masked())
				}
			}
		}
	}
	return out, nil
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

// --- list, inspect, remove ---------------------------------------------------

// fleetNetworkObject is a fleet network as the engine API shows one.
func (s *Server) fleetNetworkObject(n sdn.Network, containers map[string]json.RawMessage) map[string]any {
	cfg := map[string]string{"Subnet": n.Subnet.String()}
	if n.IPRange.IsValid() {
		cfg["IPRange"] = n.IPRange.String()
	}
	if n.Gateway.IsValid() {
		cfg["Gateway"] = n.Gateway.String()
	}
	opts := map[string]string{}
	for k, v := range n.Options {
		opts[k] = v
	}
	labels := map[string]string{}
	for k, v := range n.Labels {
		labels[k] = v
	}
	driver := n.Driver
	if driver == "" {
		driver = "bridge"
	}
	obj := map[string]any{
		"Name": n.Name, "Id": n.ID, "Created": n.Created.Format(time.RFC3339Nano),
		"Scope": "global", "Driver": driver, "EnableIPv6": false,
		"IPAM":     map[string]any{"Driver": "default", "Options": nil, "Config": []map[string]string{cfg}},
		"Internal": n.Internal, "Attachable": n.Attachable, "Ingress": false,
		"ConfigFrom": map[string]string{"Network": ""}, "ConfigOnly": false,
		"Options": opts, "Labels": labels,
	}
	if containers != nil {
		obj["Containers"] = containers
	}
	return obj
}

// fleetListEntries are the fleet networks for GET /networks, filtered by
// name, id, label, driver, scope and type as an engine does.
func (s *Server) fleetListEntries(rawFilters string) ([]json.RawMessage, error) {
	if s.Nets == nil {
		return nil, nil
	}
	var f map[string]map[string]bool
	if rawFilters != "" {
		if err := json.Unmarshal([]byte(rawFilters), &f); err != nil {
			var list map[string][]string
			if json.Unmarshal([]byte(rawFilters), &list) != nil {
				return nil, nil // the engines already refused it
			}
			f = map[string]map[string]bool{}
			for k, vs := range list {
				f[k] = map[string]bool{}
				for _, v := range vs {
					f[k][v] = true
				}
			}
		}
	}
	match := func(key string, ok func(v string) bool) bool {
		vs, has := f[key]
		if !has || len(vs) == 0 {
			return true
		}
		for v := range vs {
			if ok(v) {
				return true
			}
		}
		return false
	}
	var out []json.RawMessage
	for _, n := range s.Nets.Alloc.List() {
		obj := s.fleetNetworkObject(n, map[string]json.RawMessage{})
		if !match("name", func(v string) bool { return strings.Contains(n.Name, v) }) ||
			!match("id", func(v string) bool { return strings.HasPrefix(n.ID, v) }) ||
			!match("driver", func(v string) bool { return v == obj["Driver"] }) ||
			!match("scope", func(v string) bool { return v == "global" }) ||
			!match("type", func(v string) bool { return v == "custom" }) ||
			!match("label", func(v string) bool {
				k, val, eq := strings.Cut(v, "=")
				have, ok := n.Labels[k]
				return ok && (!eq || have == val)
			}) {
			continue
		}
		raw, err := json.Marshal(obj)
		if err != nil {
			return nil, err
		}
		out = append(out, raw)
	}
	return out, nil
}

// isFleetCopy tells whether a network an engine listed is its copy of a
// fleet network (listed once, as the fleet network).
func (s *Server) isFleetCopy(h objectHead) bool {
	return s.Nets != nil && h.Labels[sdn.LabelNetworkID] != ""
}

// fleetContainers merges the members of n from every member host's copy.
func (s *Server) fleetContainers(ctx context.Context, n sdn.Network) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	for _, name := range n.Members() {
		h, ok := s.Fleet.Host(name)
		if !ok || !h.Healthy() {
			continue
		}
		info, ok, err := engineNetwork(ctx, h, n)
		if err != nil {
			return nil, err
		}
		if ok {
			for id, c := range info.Containers {
				out[id] = c
			}
		}
	}
	return out, nil
}

func (s *Server) inspectNetworkRouted(w http.ResponseWriter, r *http.Request) error {
	n, ok := s.fleetNetwork(objectRef(r))
	if !ok {
		return s.inspectNetwork(w, r)
	}
	cs, err := s.fleetContainers(r.Context(), n)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.fleetNetworkObject(n, cs))
}

// removeNetworkRouted removes a fleet network from every host, refused
// while any host's copy has endpoints.
func (s *Server) removeNetworkRouted(w http.ResponseWriter, r *http.Request) error {
	n, ok := s.fleetNetwork(objectRef(r))
	if !ok {
		return s.removeNetwork(w, r)
	}
	s.Nets.mu.Lock()
	defer s.Nets.mu.Unlock()
	var copies []*hosts.Host
	for _, h := range s.Fleet.Hosts() {
		if !h.Healthy() {
			if _, member := n.Hosts[h.Name]; member {
				return errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf(
					"network %s has members on host %s, which is unavailable: %v", n.Name, h.Name, h.Unavailable()))
			}
			continue
		}
		info, ok, err := engineNetwork(r.Context(), h, n)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if len(info.Containers) > 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			return json.NewEncoder(w).Encode(errorBody{Message: fmt.Sprintf(
				"error while removing network: network %s id %s has active endpoints (on host %s)", n.Name, n.ID, h.Name)})
		}
		copies = append(copies, h)
	}
	for _, h := range copies {
		if _, err := engineJSON(r.Context(), h, http.MethodDelete, "/networks/"+url.PathEscape(n.Name), nil, nil); err != nil {
			return err
		}
	}
	if _, err := s.Nets.Alloc.Remove(n.ID); err != nil {
		return err
	}
	s.Log.Info("fleet network removed", "network", n.Name)
	s.Nets.kick()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- prune -------------------------------------------------------------------

// parseNetworkFilters reads a filters parameter in either of its forms
// ({"k":{"v":true}} or {"k":["v"]}); nil when it is neither.
func parseNetworkFilters(raw string) map[string][]string {
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

// keepFleetCopies adds label!=io.clocker.network.id to an engine prune, so
// that the engines keep their copies of fleet networks (those are Clocker's
// to remove). A prune that has a label! filter of its own is sent as it is
// (label! values must all match), and an idle copy it removes is made
// again when a container next joins.
func (s *Server) keepFleetCopies(filters string) string {
	f := parseNetworkFilters(filters)
	if s.Nets == nil || f == nil || len(f["label!"]) > 0 {
		return filters
	}
	f["label!"] = []string{sdn.LabelNetworkID}
	b, err := json.Marshal(f)
	if err != nil {
		return filters
	}
	return string(b)
}

// pruneFleetNetworks removes the fleet networks no host is a member of
// (label and label! filters apply; with until, none is pruned) and
// returns their names.
func (s *Server) pruneFleetNetworks(filters string) []string {
	f := parseNetworkFilters(filters)
	if s.Nets == nil || f == nil || len(f["until"]) > 0 {
		return nil
	}
	matchAll := func(conds []string, labels map[string]string) bool {
		for _, c := range conds {
			k, v, eq := strings.Cut(c, "=")
			have, ok := labels[k]
			if !ok || eq && have != v {
				return false
			}
		}
		return true
	}
	s.Nets.mu.Lock()
	defer s.Nets.mu.Unlock()
	var out []string
	for _, n := range s.Nets.Alloc.List() {
		if len(n.Hosts) > 0 || !matchAll(f["label"], n.Labels) || len(f["label!"]) > 0 && matchAll(f["label!"], n.Labels) {
			continue
		}
		if _, err := s.Nets.Alloc.Remove(n.ID); err != nil {
			s.Log.Warn("fleet network prune", "network", n.Name, "err", err)
			continue
		}
		out = append(out, n.Name)
	}
	if len(out) > 0 {
		s.Nets.kick()
	}
	return out
}

// --- connect, disconnect -----------------------------------------------------

func (s *Server) connectNetworkRouted(w http.ResponseWriter, r *http.Request) error {
	return s.joinNetworkRouted(w, r, "connect")
}

func (s *Server) disconnectNetworkRouted(w http.ResponseWriter, r *http.Request) error {
	return s.joinNetworkRouted(w, r, "disconnect")
}

// joinNetworkRouted connects a container of any host to a fleet network
// (making its host a member first) or disconnects it.
func (s *Server) joinNetworkRouted(w http.ResponseWriter, r *http.Request, action string) error {
	n, ok := s.fleetNetwork(objectRef(r))
	if !ok {
		return s.joinNetwork(w, r, action)
	}
	var req networkConnectRequest
	body, err := s.readObjectRequest(r, &req)
	if err != nil {
		return err
	}
	if req.Container == "" {
		return errdefs.New(errdefs.ErrInvalid, `invalid name or ID supplied: ""`)
	}
	ch, c, err := s.Fleet.Resolve(r.Context(), req.Container)
	if err != nil {
		return err
	}
	if action == "connect" {
		var ep struct {
			EndpointConfig *struct {
				IPAMConfig *struct{ IPv4Address string }
			}
		}
		var ip netip.Addr
		if json.Unmarshal(body, &ep) == nil && ep.EndpointConfig != nil && ep.EndpointConfig.IPAMConfig != nil &&
			ep.EndpointConfig.IPAMConfig.IPv4Address != "" {
			if ip, err = netip.ParseAddr(ep.EndpointConfig.IPAMConfig.IPv4Address); err != nil {
				return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid IPv4 address: %s", ep.EndpointConfig.IPAMConfig.IPv4Address))
			}
		}
		if _, err := s.join(r.Context(), n, ch, ip); err != nil {
			return err
		}
	}
	id, _ := json.Marshal(c.ID())
	out, err := setFields(body, map[string]json.RawMessage{"Container": id})
	if err != nil {
		return errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
	}
	setBody(r, out)
	defer s.Nets.kick()
	return s.forward(w, r, ch, forwardOptions{path: "/networks/" + url.PathEscape(n.Name) + "/" + action, modify: refreshAfter(ch, c.ID())})
}
