package sdn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/clocker/clocker/sdn/vxlan"
)

// aliasPrefix marks the VXLAN devices Clocker owns: their ifalias is
// aliasPrefix + network ID, so an agent re-learns them (and only them)
// from the kernel after a restart.
const aliasPrefix = "clocker:"

// VXLAN is the built-in provider: one VXLAN device per network, enslaved
// to the engine's bridge, with an all-zeros FDB entry per peer host.
type VXLAN struct {
	cfg ProviderConfig

	mu    sync.Mutex // one netlink conversation at a time
	plane *vxlan.Plane
}

// NewVXLAN opens the VXLAN provider in cfg.Netns (the process's own
// namespace when empty).
func NewVXLAN(cfg ProviderConfig) (*VXLAN, error) {
	cfg = cfg.withDefaults()
	p, err := vxlan.Open(cfg.Netns)
	if err != nil {
		return nil, err
	}
	return &VXLAN{cfg: cfg, plane: p}, nil
}

// Name is "vxlan".
func (v *VXLAN) Name() string { return "vxlan" }

// Apply ensures the network's device (created, or replaced when its VNI,
// port, local address or underlay differ) and reconciles its FDB entries
// to hn.Peers.
func (v *VXLAN) Apply(ctx context.Context, hn HostNetwork) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if hn.NetworkID == "" || hn.Device == "" || hn.Bridge == "" {
		return fmt.Errorf("vxlan: incomplete host network %+v", hn)
	}
	mtu := hn.MTU
	if mtu == 0 {
		mtu = v.cfg.MTU
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, err := v.plane.Ensure(vxlan.Device{
		Name:     hn.Device,
		VNI:      hn.VNI,
		Local:    hn.Local,
		Underlay: v.cfg.Underlay,
		Port:     v.cfg.Port,
		MTU:      mtu,
		Bridge:   hn.Bridge,
		Alias:    aliasPrefix + hn.NetworkID,
	}); err != nil {
		return err
	}
	_, _, err := v.plane.SetPeers(hn.Device, hn.Peers)
	return err
}

// Remove deletes the network's device (with its FDB entries).
func (v *VXLAN) Remove(ctx context.Context, networkID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.plane.Delete(DeviceName(networkID))
}

// Applied lists the networks whose devices are in place, read from the
// devices' aliases.
func (v *VXLAN) Applied(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	states, err := v.plane.List()
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, s := range states {
		if id, ok := strings.CutPrefix(s.Alias, aliasPrefix); ok && s.Name == DeviceName(id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// State reads the devices of Clocker's networks back from the kernel, by
// network ID (for diagnostics and tests).
func (v *VXLAN) State() (map[string]vxlan.State, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	states, err := v.plane.List()
	if err != nil {
		return nil, err
	}
	out := map[string]vxlan.State{}
	for _, s := range states {
		if id, ok := strings.CutPrefix(s.Alias, aliasPrefix); ok {
			out[id] = s
		}
	}
	return out, nil
}

// Close releases the netlink socket; the devices stay.
func (v *VXLAN) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.plane == nil {
		return errors.New("vxlan: closed twice")
	}
	err := v.plane.Close()
	v.plane = nil
	return err
}

var _ Provider = (*VXLAN)(nil)
