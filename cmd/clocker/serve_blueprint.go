package main

import (
	"log/slog"

	"github.com/clocker/clocker/blueprint"
	"github.com/clocker/clocker/compose/deploy"
	"github.com/clocker/clocker/internal/store"
	"github.com/clocker/clocker/proxy"
)

// mountBlueprints makes the blueprint manager over the front door's
// in-process client and mounts Brooklyn's API; compose files posted there
// are deployed server-side (compose/deploy). Resume is the caller's, once
// the front door is served.
func mountBlueprints(srv *proxy.Server, inproc *proxy.InProcess, st store.Store, log *slog.Logger) *blueprint.Manager {
	api := inproc.Client()
	composer := deploy.New(deploy.Options{
		Engine: api,
		Placer: deploy.FleetPlacer{HTTP: inproc.HTTP(), URL: "http://" + proxy.InProcessHost},
		Log:    log.With("part", "compose"),
	})
	m := blueprint.New(blueprint.Options{Engine: api, Store: st, Log: log.With("part", "blueprint"), Version: proxy.Version, Compose: composer})
	h := m.Handler()
	for _, p := range blueprint.Prefixes {
		srv.Mount(p, h)
	}
	return m
}
