package blueprint

import (
	"context"
	"fmt"
	"net/netip"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/clocker/clocker/blueprint/camp"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/labels"
)

// A VirtualNetwork is a fleet network (one Docker network through the
// front door, so it spans the hosts as any user network does) named by
// its networkId. Containers listing it in network.list join it beside
// their application's own network. One the application made is removed
// with it; one that existed before is joined and left alone.

// Sensors of a VirtualNetwork.
const (
	SensorNetworkID   = "network.id"
	SensorNetworkName = "network.name"
	SensorNetworkCIDR = "network.cidr"
)

// startNetwork makes (or finds) the entity's network and publishes it.
func (m *Manager) startNetwork(ctx context.Context, e *Entity) error {
	name, err := camp.NetworkName(e.Node)
	if err != nil {
		return err
	}
	opts := client.NetworkCreateOptions{
		Driver: "bridge",
		Labels: map[string]string{labels.BlueprintApplication: e.App.ID, labels.BlueprintEntity: e.ID},
	}
	cidr := ""
	if v, ok := lookup(e.Node.Config, camp.NetworkCIDRKeys); ok {
		p, err := netip.ParsePrefix(str(v))
		if err != nil {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s: cidr %q: %v", e.Node.Label(), str(v), err))
		}
		cidr = p.String()
		opts.IPAM = &network.IPAM{Config: []network.IPAMConfig{{Subnet: p}}}
	}
	in, err := m.engOf(e.App).NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if err != nil {
		if !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("network %s: %w", name, err)
		}
		if _, err := m.engOf(e.App).NetworkCreate(ctx, name, opts); err != nil && !cerrdefs.IsConflict(err) {
			return fmt.Errorf("network %s: %w", name, err)
		}
		if in, err = m.engOf(e.App).NetworkInspect(ctx, name, client.NetworkInspectOptions{}); err != nil {
			return fmt.Errorf("network %s: %w", name, err)
		}
	}
	id := in.Network.ID
	if id == "" {
		id = name
	}
	for _, c := range in.Network.IPAM.Config {
		if c.Subnet.IsValid() {
			cidr = c.Subnet.String()
		}
	}
	kv := map[string]any{SensorNetworkID: id, SensorNetworkName: name}
	if cidr != "" {
		kv[SensorNetworkCIDR] = cidr
	}
	m.setSensors(e, kv)
	return nil
}

// joinNetworks connects a new container to the networks its entity
// lists, each VirtualNetwork of the application once it is made.
func (m *Manager) joinNetworks(ctx context.Context, e *Entity, id string) error {
	for _, name := range e.Node.Networks {
		if net := m.networkEntity(e.App, name); net != nil {
			if _, err := m.waitSensor(ctx, e, net, SensorNetworkID); err != nil {
				return err
			}
		}
		aliases := []string{slug(e.Node.Name)}
		if e.Node.PlanID != "" {
			aliases = append(aliases, slug(e.Node.PlanID))
		}
		_, err := m.engOf(e.App).NetworkConnect(ctx, name, client.NetworkConnectOptions{
			Container:      id,
			EndpointConfig: &network.EndpointSettings{Aliases: aliases},
		})
		if err != nil && !cerrdefs.IsConflict(err) {
			return fmt.Errorf("join network %s: %w", name, err)
		}
	}
	return nil
}

// networkEntity is the application's VirtualNetwork making name, if any.
func (m *Manager) networkEntity(app *App, name string) *Entity {
	for _, n := range app.plan.Nodes {
		if n.Kind != camp.KindNetwork {
			continue
		}
		if nn, _ := camp.NetworkName(n); nn == name {
			return app.byNodeEntity(n)
		}
	}
	return nil
}

// checkNetworks refuses a plan joining a network that neither it makes
// nor the fleet has.
func (m *Manager) checkNetworks(ctx context.Context, owner string, plan *camp.Plan) error {
	made := map[string]bool{}
	for _, n := range plan.Nodes {
		if n.Kind == camp.KindNetwork {
			name, _ := camp.NetworkName(n)
			made[name] = true
		}
	}
	for _, n := range withMemberSpecs(plan) {
		for _, name := range n.Networks {
			if made[name] {
				continue
			}
			if _, err := m.engFor(owner).NetworkInspect(ctx, name, client.NetworkInspectOptions{}); err != nil {
				if cerrdefs.IsNotFound(err) {
					return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s: network.list: network %s does not exist (declare a brooklyn.networking.VirtualNetwork with networkId %s, or make it first)", n.Label(), name, name))
				}
				return fmt.Errorf("%s: network %s: %w", n.Label(), name, err)
			}
		}
	}
	return nil
}

// removeNetworks removes the VirtualNetworks the application made (its
// containers are gone by then).
func (m *Manager) removeNetworks(ctx context.Context, app *App) []error {
	var errs []error
	for _, n := range app.plan.Nodes {
		if err := m.removeNetworkOf(ctx, app, n); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// removeNetworkOf removes the network VirtualNetwork n made, if any (one
// that was there before is not its own).
func (m *Manager) removeNetworkOf(ctx context.Context, app *App, n *camp.Node) error {
	if n.Kind != camp.KindNetwork {
		return nil
	}
	name, _ := camp.NetworkName(n)
	in, err := m.engOf(app).NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if err != nil {
		if !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("network %s: %w", name, err)
		}
		return nil
	}
	if in.Network.Labels[labels.BlueprintEntity] != n.EntityID {
		return nil
	}
	if _, err := m.engOf(app).NetworkRemove(ctx, name, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("network %s: %w", name, err)
	}
	return nil
}
