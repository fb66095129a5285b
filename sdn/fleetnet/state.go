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
		st.Clients = fleetClients(h.Containers(), nets, st.Networks)
		out[h.Name] = st
	}
	return out
}

// isAgent tells the agent containers from the others.
func isAgent(ctr *hosts.Container) bool { return ctr.Summary.Labels[sdn.LabelAgent] != "" }

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
		if sum.NetworkSettings == nil || isAgent(&cs[i]) {
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
			if ep == nil || !ep.IPAddress.IsValid() {
				continue
			}
			a := ep.IPAddress.Unmap()
			// Two containers never share an address on one host; if the
			// cache briefly says so (one gone, one new), both sets count.
			out[a] = slices.Compact(slices.Sorted(slices.Values(append(out[a], ids...))))
		}
	}
	return out
}

// fleetRecords lists each network's names from the caches of all hosts:
// the running members' container names, aliases and compose service names.
func fleetRecords(all []*hosts.Host, nets []sdn.Network) map[string]map[string][]netip.Addr {
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
	for _, h := range all {
		cs := h.Containers()
		for i := range cs {
			sum := cs[i].Summary
			if sum.NetworkSettings == nil || sum.State != "running" || isAgent(&cs[i]) {
				continue
			}
			var aliases map[string][]string
			for netName, ep := range sum.NetworkSettings.Networks {
				id, ok := byName[netName]
				if !ok || ep == nil || !ep.IPAddress.IsValid() {
					continue
				}
				a := ep.IPAddress.Unmap()
				for _, n := range sum.Names {
					add(id, strings.TrimPrefix(n, "/"), a)
				}
				add(id, sum.Labels[labels.ComposeService], a)
				if aliases == nil {
					aliases = inspectAliases(cs[i].Inspect)
				}
				for _, al := range aliases[netName] {
					add(id, al, a)
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

// inspectAliases reads a container's aliases per network from its inspect
// answer (Aliases, and DNSNames on newer engines).
func inspectAliases(raw json.RawMessage) map[string][]string {
	var in struct {
		NetworkSettings struct {
			Networks map[string]struct {
				Aliases  []string
				DNSNames []string
			}
		}
	}
	out := map[string][]string{}
	if json.Unmarshal(raw, &in) != nil {
		return out
	}
	for n, ep := range in.NetworkSettings.Networks {
		out[n] = append(slices.Clone(ep.Aliases), ep.DNSNames...)
	}
	return out
}
