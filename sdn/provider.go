package sdn

import (
	"context"
	"errors"
	"fmt"

	"github.com/clocker/clocker/internal/registry"
)

// Provider is an SDN data plane on one host: it makes a host's part of a
// fleet network exist (joined to the engine's bridge, forwarding to the
// other members) and takes it down again. Every method is idempotent and
// reads what is in place from the system, so an agent that restarts
// re-learns its state instead of duplicating it.
type Provider interface {
	// Name is the provider's registry name.
	Name() string
	// Apply makes hn true on this host: creates what is missing, fixes
	// what differs, drops forwarding to hosts no longer in hn.Peers.
	Apply(ctx context.Context, hn HostNetwork) error
	// Remove takes down this host's part of the network with that ID;
	// removing what is not there is not an error.
	Remove(ctx context.Context, networkID string) error
	// Applied lists the IDs of the networks this provider has in place on
	// this host.
	Applied(ctx context.Context) ([]string, error)
	// Close releases the provider's resources (not what it applied).
	Close() error
}

// ProviderConfig configures a provider on one host. Zero fields take the
// defaults.
type ProviderConfig struct {
	// Underlay is the interface that carries overlay traffic between
	// hosts. Empty means the interface holding HostNetwork.Local.
	Underlay string
	// Port is the overlay's UDP port. Default VXLANPort (4789).
	Port int
	// MTU of the devices the provider creates. Default MTU (1450).
	MTU int
	// Netns is the path of the network namespace to act in (e.g.
	// /var/run/netns/h1). Empty means the process's own, which is the
	// host's for an agent started with --network host.
	Netns string
}

func (c ProviderConfig) withDefaults() ProviderConfig {
	if c.Port == 0 {
		c.Port = VXLANPort
	}
	if c.MTU == 0 {
		c.MTU = MTU
	}
	return c
}

// NewProviderFunc builds a provider from its configuration.
type NewProviderFunc func(ProviderConfig) (Provider, error)

// providers are the registered SDN providers; vxlan is built in.
var providers = func() *registry.Registry[NewProviderFunc] {
	r := registry.New[NewProviderFunc]("SDN provider")
	_ = r.Register("vxlan", func(c ProviderConfig) (Provider, error) { return NewVXLAN(c) })
	return r
}()

// RegisterProvider adds a provider under name (e.g. from an init function
// of a package that implements Weave, Calico or Docker's overlay). A name
// already taken is a conflict.
func RegisterProvider(name string, fn NewProviderFunc) error { return providers.Register(name, fn) }

// Providers lists the registered provider names in order.
func Providers() []string { return providers.Names() }

// NewProvider builds the provider registered under name ("" means
// DefaultProvider). An unknown name is an invalid-argument error that lists
// the known ones.
func NewProvider(name string, cfg ProviderConfig) (Provider, error) {
	if name == "" {
		name = DefaultProvider
	}
	fn, err := providers.Get(name)
	if err != nil {
		return nil, err
	}
	return fn(cfg.withDefaults())
}

// Reconcile makes the provider's state on this host exactly desired:
// every desired network is applied, and every network the provider has in
// place but not in desired is removed. It goes on past failures and
// returns them joined, so one broken network does not hold up the others.
func Reconcile(ctx context.Context, p Provider, desired []HostNetwork) error {
	var errs []error
	want := make(map[string]bool, len(desired))
	for _, hn := range desired {
		want[hn.NetworkID] = true
		if err := p.Apply(ctx, hn); err != nil {
			errs = append(errs, fmt.Errorf("apply network %s: %w", hn.Name, err))
		}
	}
	have, err := p.Applied(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("list applied networks: %w", err))
	}
	for _, id := range have {
		if want[id] {
			continue
		}
		if err := p.Remove(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("remove network %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}
