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

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/store"
	"github.com/clocker/clocker/sdn/fleetnet"
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

// controller makes the fleet networks' controller over the networks kept
// in st; its metrics go to reg. It starts nothing (see startAgents and leaderLoops).
func (f *fleetNetFlags) controller(ctx context.Context, st store.Store, et *store.Etcd, fleet *hosts.Fleet, log *slog.Logger, reg prometheus.Registerer) (*fleetnet.Controller, error) {
	cfg, err := f.config()
	if err != nil {
		return nil, err
	}
	alloc, err := ipam.New(cfg, st)
	if err != nil {
		return nil, fmt.Errorf("fleet networks: %w", err)
	}
	if et != nil {
		// Several managers: subnets, VNIs and host slices are leased in
		// etcd transactions, and every manager's view follows the others'.
		alloc.Share(et)
		go et.Watch(ctx, store.BucketNetworks, func() {
			if err := alloc.Reload(); err != nil {
				log.Warn("fleet networks: re-reading the store", "err", err)
			}
		})
	}
	return fleetnet.New(fleet, alloc, log, reg)
}

// startAgents runs the agents of fleet networks on every host from this
// very binary (the controller's loop, Run, is the leader's to start).
// Without agents fleet networks do not cross hosts, but everything else
// is served: a failure is logged, not fatal.
func startAgents(ctx context.Context, nets *fleetnet.Controller, log *slog.Logger) {
	self, err := os.Executable()
	if err == nil {
		err = nets.StartAgents(ctx, self, 90*time.Second)
	}
	if err != nil {
		log.Warn("fleet network agents not started", "err", err)
	}
}
