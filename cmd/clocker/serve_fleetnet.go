package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/internal/store"
	"github.com/clocker/clocker/proxy"
	"github.com/clocker/clocker/sdn/ipam"
)

// fleetNetFlags are serve's flags for fleet networks.
type fleetNetFlags struct {
	pool string
}

func (f *fleetNetFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.pool, "network-pool", ipam.DefaultPool.String(), "CIDR that fleet networks get their subnets from, as /24s")
}

// config checks the flags and returns the allocator's plan.
func (f *fleetNetFlags) config() (ipam.Config, error) {
	p, err := netip.ParsePrefix(f.pool)
	if err != nil || p.Masked() != p || !p.Addr().Is4() || p.Bits() > ipam.DefaultSubnetBits {
		return ipam.Config{}, fmt.Errorf("--network-pool %s: want an IPv4 CIDR of /%d or larger, such as %s",
			f.pool, ipam.DefaultSubnetBits, ipam.DefaultPool)
	}
	return ipam.Config{Pool: p}, nil
}

// networks loads the fleet networks kept in st.
func (f *fleetNetFlags) networks(st *store.Store) (*proxy.FleetNets, error) {
	cfg, err := f.config()
	if err != nil {
		return nil, err
	}
	alloc, err := ipam.New(cfg, st)
	if err != nil {
		return nil, fmt.Errorf("fleet networks: %w", err)
	}
	return proxy.NewFleetNets(alloc), nil
}

// startAgents runs the agents of fleet networks on every host from this
// very binary. Without them fleet networks do not cross hosts, but
// everything else is served: a failure is logged, not fatal.
func startAgents(ctx context.Context, srv *proxy.Server, log *slog.Logger) {
	// The server's gatherer is serve's registry (NewServer was given it).
	if reg, ok := srv.Gatherer.(prometheus.Registerer); ok {
		if err := srv.RegisterFleetNetMetrics(reg); err != nil {
			log.Warn("fleet network metrics", "err", err)
		}
	}
	self, err := os.Executable()
	if err == nil {
		err = srv.StartAgents(ctx, self, 90*time.Second)
	}
	if err != nil {
		log.Warn("fleet network agents not started", "err", err)
	}
}
