package fleetnet

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/sdn"
)

// AgentStates computes what every host's agent must apply: the host's part
// of each network it is a member of, each such network's names, the host's
// DNS address, and which of the host's containers are on which networks.
func (c *Controller) AgentStates() map[string]sdn.AgentState {
	all := c.fleet.Hosts()
	underlay := map[string]netip.Addr{}
	for _, h := range all {
		if a, ok := underlayAddr(h); ok {
			underlay[h.Name] = a
		}
	}
	nets := c.alloc.List()
	records := fleetRecords(all, nets)
	out := map[string]sdn.AgentState{}
	for _, h := range all {
		st := sdn.AgentState{Host: h.Name, Networks: []sdn.HostNetwork{}, Records: map[string]map[string][]netip.Addr{}}
		for _, n := range nets {
			if _, ok := n.Hosts[h.Name]; !ok {
				continue
			}
			hn, err := n.HostNetwork(h.Name, underlay)
			if err != nil {
				c.log.Debug("network left out of agent state", "host", h.Name, "network", n.Name, "err", err)
				continue
			}
			st.Networks = append(st.Networks, hn)
			st.Records[n.ID] = records[n.ID]
		}
		st.DNS = c.agentDNSAddr(h.Name)
		cs := h.Containers()
		st.Clients = fleetClients(cs, nets, st.Networks)
		st.Links = fleetLinks(cs, nets, records)
		out[h.Name] = st
	}
	return out
}

// fleetClients maps every address (on any network: the default bridge,
// local networks, fleet networks) of a host's containers cs that are on
// fleet networks its agent serves (served) to those networks' IDs, so
// that the agent answers a query by the networks of the container it
// comes from, whichever of its networks the query leaves by. Only running
// containers have addresses.
func fleetClients(cs []hosts.Container, nets []sdn.Network, served []sdn.HostNetwork) map[netip.Addr][]string {
	byName := map[string]string{}
	for _, n := range nets {
		if slices.ContainsFunc(served, func(hn sdn.HostNetwork) bool { return hn.NetworkID == n.ID }) {
			byName[n.Name] = n.ID
		}
	}
	if len(byName) == 0 {
		return nil
	}
	out := map[netip.Addr][]string{}
	for i := range cs {
		sum := cs[i].Summary
		if sum.NetworkSettings == nil || hosts.IsAgent(&cs[i]) {
			continue
		}
		var ids []string
		for netName := range sum.NetworkSettings.Networks {
			if id, ok := byName[netName]; ok {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			continue
		}
		slices.Sort(ids)
		for _, ep := range sum.NetworkSettings.Networks {
			if ep == nil {
				continue
			}
			for _, a := range []netip.Addr{ep.IPAddress, ep.GlobalIPv6Address} {
				if !a.IsValid() {
					continue
				}
				a = a.Unmap()
				// Two containers never share an address on one host; if
				// the cache briefly says so (one gone, one new), both
				// sets count.
				out[a] = slices.Compact(slices.Sorted(slices.Values(append(out[a], ids...))))
			}
		}
	}
	return out
}

// fleetRecords lists each network's names from the caches of all hosts:
// the running members' container names, aliases and compose service
// names, each to its IPv4 address and, on a dual-stack network, its IPv6
// one.
func fleetRecords(all []*hosts.Host, nets []sdn.Network) map[string]map[string][]netip.Addr {
	lists := make([][]hosts.Container, len(all))
	for i, h := range all {
		lists[i] = h.Containers()
	}
	return records(lists, nets)
}

// records is fleetRecords over the hosts' containers (one list a host).
func records(lists [][]hosts.Container, nets []sdn.Network) map[string]map[string][]netip.Addr {
	byName := map[string]string{}
	out := map[string]map[string][]netip.Addr{}
	for _, n := range nets {
		byName[n.Name] = n.ID
		out[n.ID] = map[string][]netip.Addr{}
	}
	add := func(id, name string, a netip.Addr) {
		if name == "" {
			return
		}
		name = strings.ToLower(name)
		if !slices.Contains(out[id][name], a) {
			out[id][name] = append(out[id][name], a)
		}
	}
	for _, cs := range lists {
		for i := range cs {
			sum := cs[i].Summary
			if sum.NetworkSettings == nil || sum.State != "running" || hosts.IsAgent(&cs[i]) {
				continue
			}
			var aliases map[string][]string
			for netName, ep := range sum.NetworkSettings.Networks {
				id, ok := byName[netName]
				if !ok || ep == nil || !ep.IPAddress.IsValid() {
					continue
				}
				if aliases == nil {
					aliases = inspectAliases(cs[i].Inspect)
				}
				for _, a := range []netip.Addr{ep.IPAddress, ep.GlobalIPv6Address} {
					if !a.IsValid() {
						continue
					}
					a = a.Unmap()
					for _, n := range sum.Names {
						add(id, strings.TrimPrefix(n, "/"), a)
					}
					add(id, sum.Labels[labels.ComposeService], a)
					for _, al := range aliases[netName] {
						add(id, al, a)
					}
				}
			}
		}
	}
	for _, recs := range out {
		for _, addrs := range recs {
			slices.SortFunc(addrs, netip.Addr.Compare)
		}
	}
	return out
}

// fleetLinks maps every address of a host's containers cs that have
// links on fleet networks (`--link X:Y` with a user network: an alias
// Docker's embedded resolver answers only when X runs on the same host)
// to those aliases, each to X's addresses on that network (records).
// A link to a container that does not run yet has no address: it is
// answered once X runs, as on an engine.
func fleetLinks(cs []hosts.Container, nets []sdn.Network, records map[string]map[string][]netip.Addr) map[netip.Addr]map[string][]netip.Addr {
	byName := map[string]string{}
	for _, n := range nets {
		byName[n.Name] = n.ID
	}
	out := map[netip.Addr]map[string][]netip.Addr{}
	for i := range cs {
		sum := cs[i].Summary
		if sum.NetworkSettings == nil || sum.State != "running" || hosts.IsAgent(&cs[i]) {
			continue
		}
		aliases := map[string][]netip.Addr{}
		for netName, ep := range inspectEndpoints(cs[i].Inspect) {
			id, ok := byName[netName]
			if !ok {
				continue
			}
			for _, l := range ep.Links {
				target, alias := parseLink(l)
				if addrs := records[id][strings.ToLower(target)]; len(addrs) > 0 && aliases[alias] == nil {
					aliases[alias] = addrs
				}
			}
		}
		if len(aliases) == 0 {
			continue
		}
		for _, ep := range sum.NetworkSettings.Networks {
			if ep != nil && ep.IPAddress.IsValid() {
				out[ep.IPAddress.Unmap()] = aliases
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// parseLink splits a link as the engine writes it ("name:alias", the
// alias defaulting to the name; either may start with a slash) into the
// linked container's name and the alias, both lower case.
func parseLink(l string) (target, alias string) {
	target, alias, ok := strings.Cut(l, ":")
	if !ok {
		alias = target
	}
	target = strings.ToLower(strings.TrimPrefix(target, "/"))
	if i := strings.LastIndex(alias, "/"); i >= 0 {
		alias = alias[i+1:] // "/parent/alias"
	}
	return target, strings.ToLower(alias)
}

// endpoint is what the records read of a container's endpoint on a
// network from its inspect answer.
type endpoint struct {
	Aliases  []string
	DNSNames []string // newer engines
	Links    []string
}

// inspectEndpoints reads a container's endpoints per network from its
// inspect answer.
func inspectEndpoints(raw json.RawMessage) map[string]endpoint {
	var in struct {
		NetworkSettings struct {
			Networks map[string]endpoint
		}
	}
	if json.Unmarshal(raw, &in) != nil {
		return nil
	}
	return in.NetworkSettings.Networks
}

// inspectAliases reads a container's aliases per network from its inspect
// answer (Aliases, and DNSNames on newer engines).
func inspectAliases(raw json.RawMessage) map[string][]string {
	out := map[string][]string{}
	for n, ep := range inspectEndpoints(raw) {
		out[n] = append(slices.Clone(ep.Aliases), ep.DNSNames...)
	}
	return out
}
