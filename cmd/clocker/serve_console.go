package main

import (
	"context"
	"log/slog"

	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/console"
	"github.com/clocker/clocker/proxy"
	"github.com/clocker/clocker/sdn"
)

// mountConsole serves the web console at /ui/ on the API's address, a
// reader of the front door (api), the fleet API's host views, the
// placement decisions, the fleet networks and the metrics; its trend
// sampler runs until ctx ends.
func mountConsole(ctx context.Context, srv *proxy.Server, api *client.Client, reg *prometheus.Registry, maxPerHost int, log *slog.Logger) {
	o := console.Options{
		Docker: api, Hosts: srv.FleetHosts, Placement: srv.PlacementOf,
		Gatherer: reg, MaxPerHost: maxPerHost, Log: log.With("part", "console"),
	}
	if srv.Nets != nil {
		o.Networks = func() []sdn.Network { return srv.Nets.Allocator().List() }
	}
	c := console.New(o)
	srv.Mount(console.Prefix, c.Handler())
	go c.Run(ctx)
}
