package main

import (
	"context"
	"log/slog"

	"github.com/clocker/clocker/blueprint"
	"github.com/clocker/clocker/compose/deploy"
	"github.com/clocker/clocker/internal/store"
	"github.com/clocker/clocker/internal/tenant"
	"github.com/clocker/clocker/proxy"
)

// mountBlueprints makes the blueprint manager over the front door's
// in-process client and mounts Brooklyn's API; compose files posted there
// are deployed server-side (compose/deploy). With --tenants an
// application acts for the tenant that submitted it (inproc.As). Resume is the caller's, once
// the front door is served.
func mountBlueprints(srv *proxy.Server, inproc *proxy.InProcess, st store.Store, log *slog.Logger) *blueprint.Manager {
	api := inproc.Client()
	composer := deploy.New(deploy.Options{
		Engine:   api,
		EngineAs: func(owner string) deploy.Engine { return inproc.As(owner) },
		Placer:   deploy.FleetPlacer{HTTP: inproc.HTTP(), URL: "http://" + proxy.InProcessHost},
		Log:      log.With("part", "compose"),
	})
	m := blueprint.New(blueprint.Options{Engine: api, Store: st, Log: log.With("part", "blueprint"), Version: proxy.Version, Compose: composer,
		// With --tenants an application is its submitter's, and is made
		// through that tenant's in-process client.
		Owner: func(ctx context.Context) string {
			s, _ := tenant.FromContext(ctx)
			return s.Name
		},
		EngineAs: func(owner string) blueprint.Engine { return inproc.As(owner) },
	})
	h := m.Handler()
	for _, p := range blueprint.Prefixes {
		srv.Mount(p, h)
	}
	return m
}
