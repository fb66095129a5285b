package fleetnet

// The controller's calls to the engines: every one through the host's
// moby client (h.Client(), which sends through h.RoundTrip, so transport
// failures reach the host's health) or, for bodies that are streams,
// through h.Call.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/sdn"
)

// engineError gives an engine call's error Clocker's kind, naming the
// host and what was asked: the engine's not found, invalid, conflict and
// forbidden as such, its own failures as they are (a 500), anything else
// (the engine unreachable, a bad answer) as unavailable.
func engineError(h *hosts.Host, what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("host %s: %s: %w", h.Name, what, err)
	}
	msg := fmt.Sprintf("host %s: %s: %s", h.Name, what, strings.TrimPrefix(err.Error(), "Error response from daemon: "))
	switch {
	case cerrdefs.IsNotFound(err):
		return errdefs.New(errdefs.ErrNotFound, msg)
	case cerrdefs.IsInvalidArgument(err):
		return errdefs.New(errdefs.ErrInvalid, msg)
	case cerrdefs.IsConflict(err), cerrdefs.IsAlreadyExists(err):
		return errdefs.New(errdefs.ErrConflict, msg)
	case cerrdefs.IsPermissionDenied(err):
		return errdefs.New(errdefs.ErrForbidden, msg)
	case cerrdefs.IsInternal(err):
		return errors.New(msg)
	}
	return errdefs.New(errdefs.ErrUnavailable, msg)
}

// copyInfo is what Clocker reads of a host's copy of a fleet network.
type copyInfo struct {
	id string // the engine's ID of the copy
	// containers are the copy's endpoints by container ID, as the engine
	// wrote them (merged into the fleet network's inspect).
	containers map[string]json.RawMessage
}

// inspectCopy reads host h's copy of network n; ok is false when h has
// none. A network of n's name that is not n's copy is a conflict.
func inspectCopy(ctx context.Context, h *hosts.Host, n sdn.Network) (copyInfo, bool, error) {
	res, err := h.Client().NetworkInspect(ctx, n.Name, client.NetworkInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return copyInfo{}, false, nil
	}
	if err != nil {
		return copyInfo{}, false, engineError(h, "inspect network "+n.Name, err)
	}
	if res.Network.Name != n.Name {
		// The engine found no network of the name and took it for the
		// prefix of another's ID (a name such as "cfc" is hex).
		return copyInfo{}, false, nil
	}
	if res.Network.Labels[sdn.LabelNetworkID] != n.ID {
		return copyInfo{}, false, errdefs.New(errdefs.ErrConflict, fmt.Sprintf(
			"host %s has a network named %s that is not fleet network %s", h.Name, n.Name, n.ID[:12]))
	}
	var raw struct{ Containers map[string]json.RawMessage }
	if err := json.Unmarshal(res.Raw, &raw); err != nil {
		return copyInfo{}, false, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: bad network: %v", h.Name, err))
	}
	return copyInfo{id: res.Network.ID, containers: raw.Containers}, true, nil
}

// createCopy makes host h's copy of network n: a bridge network of n's
// name with h's slice (h must be a member).
func createCopy(ctx context.Context, h *hosts.Host, n sdn.Network) error {
	en, err := n.Engine(h.Name)
	if err != nil {
		return err
	}
	cfgs := []network.IPAMConfig{{Subnet: en.Subnet, IPRange: en.IPRange, Gateway: en.Gateway, AuxAddress: en.Aux}}
	if en.Subnet6.IsValid() {
		cfgs = append(cfgs, network.IPAMConfig{Subnet: en.Subnet6, IPRange: en.IPRange6, Gateway: en.Gateway6, AuxAddress: en.Aux6})
	}
	opts := client.NetworkCreateOptions{
		Driver:     en.Driver,
		Internal:   en.Internal,
		Attachable: en.Attachable,
		IPAM:       &network.IPAM{Driver: "default", Config: cfgs},
		Options:    en.Options,
		Labels:     en.Labels,
	}
	if en.EnableIPv6 {
		opts.EnableIPv6 = &en.EnableIPv6
	}
	_, err = h.Client().NetworkCreate(ctx, en.Name, opts)
	return engineError(h, "create network "+en.Name, err)
}

// removeCopy removes host h's copy of network n (info, as inspectCopy
// read it).
func removeCopy(ctx context.Context, h *hosts.Host, n sdn.Network, info copyInfo) error {
	_, err := h.Client().NetworkRemove(ctx, info.id, client.NetworkRemoveOptions{})
	return engineError(h, "remove network "+n.Name, err)
}

// bridgeGateway is the IPv4 gateway of h's default bridge network (docker0):
// an address of the host that its containers reach on whatever networks
// they are (directly on the default bridge, through their default route on
// the others; it is the host's, so no FORWARD rule applies). Invalid when
// the engine runs without the default bridge.
func bridgeGateway(ctx context.Context, h *hosts.Host) (netip.Addr, error) {
	res, err := h.Client().NetworkInspect(ctx, "bridge", client.NetworkInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return netip.Addr{}, nil
	}
	if err != nil {
		return netip.Addr{}, engineError(h, "inspect the default bridge", err)
	}
	for _, c := range res.Network.IPAM.Config {
		if c.Gateway.Is4() {
			return c.Gateway, nil
		}
	}
	return netip.Addr{}, nil
}

// engineNetworks lists h's networks.
func engineNetworks(ctx context.Context, h *hosts.Host) ([]network.Summary, error) {
	res, err := h.Client().NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return nil, engineError(h, "list networks", err)
	}
	return res.Items, nil
}

// IsCopy tells whether an engine's network with these labels is its copy
// of one of the fleet's networks (listed once, as the fleet network). A
// copy of a network the fleet does not know (an orphan: left by another
// manager's store, or by a copy whose removal failed) is not: it shows as
// the host's own network, which a user can see and remove, and its subnet
// is one that new fleet networks stay clear of.
func (c *Controller) IsCopy(labels map[string]string) bool {
	id := labels[sdn.LabelNetworkID]
	return id != "" && c.alloc.Has(id)
}
