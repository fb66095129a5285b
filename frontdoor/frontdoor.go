// Package frontdoor makes the front door safe to expose: it wraps the
// whole API handler (Docker's routes and /v1/ alike) in one chain of
// middleware, and makes the http.Server that serves it with transport
// limits. Each layer is a package of its own:
//
//	identity   who asks (certificate CN, unix peer, Basic user on /v1/); 401, admin-only paths
//	audit      one line per changing request
//	limits     hijacked streams per identity, body size and JSON depth, archive paths
//	authz      built-in rules, then dockerd's authorization plugins; 403
//
// See README.md for the order and why.
package frontdoor

import (
	"net/http"
	"time"

	"github.com/clocker/clocker/frontdoor/audit"
	"github.com/clocker/clocker/frontdoor/authz"
	"github.com/clocker/clocker/frontdoor/identity"
	"github.com/clocker/clocker/frontdoor/limits"
	"github.com/clocker/clocker/internal/tenant"
)

// Config holds every layer's settings.
type Config struct {
	Identity identity.Config
	// Tenants (--tenants) makes every identity but the admins a tenant:
	// its scope goes into the request context (internal/tenant), where
	// the handlers' list, inspect and create paths read it.
	Tenants bool
	Body    limits.Body
	Streams *limits.Streams
	Authz   *authz.Authorizer
	// Audit is nil when there is no --audit-log.
	Audit *audit.Log
	// Transport limits of the http.Server.
	Timeouts Timeouts
}

// Timeouts bound what a client may hold without sending: the request's
// head (ReadHeader, which also bounds a TLS handshake) and an idle
// kept-alive connection. There is no write or whole-read timeout:
// `docker logs -f`, attach, exec and large uploads run as long as they
// need.
type Timeouts struct {
	ReadHeader     time.Duration
	Idle           time.Duration
	MaxHeaderBytes int
}

// Wrap returns h behind the chain, outermost first: identity (a request
// without one goes no further), audit (sees every later refusal), the
// stream bound (per identity), the body limits (read once, for the rules
// and plugins after), archive paths, and authorization.
func (c *Config) Wrap(h http.Handler) http.Handler {
	h = c.Authz.Middleware(h)
	if c.Tenants {
		h = tenantScope(h)
	}
	h = limits.Archive(h)
	h = c.Body.Middleware(h)
	if c.Streams != nil {
		h = c.Streams.Middleware(h)
	}
	if c.Audit != nil {
		h = c.Audit.Middleware(h)
	}
	return dropTenantHeader(c.Identity.Middleware(h))
}

// dropTenantHeader takes tenant.Header off every outside request: only
// Clocker's in-process client may name the tenant it acts for.
func dropTenantHeader(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del(tenant.Header)
		next.ServeHTTP(w, r)
	})
}

// tenantScope puts the tenant of a non-admin identity into the context.
// The identity layer before it refuses requests without one (--tenants
// needs --tlsverify or --users).
func tenantScope(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := identity.FromContext(r.Context()); ok && !id.Admin {
			r = r.WithContext(tenant.NewContext(r.Context(), tenant.New(id.Name)))
		}
		next.ServeHTTP(w, r)
	})
}

// WrapInProcess guards the in-process client's handler (blueprints,
// compose, rescheduling): it carries no identity, but the built-in rules
// hold for what it makes too, so a blueprint cannot bind what `docker run`
// may not. With --tenants, a request that names a tenant in tenant.Header
// (the client of an application's owner, proxy.InProcess.As) acts for
// that tenant, as if the tenant had sent it; without the header it acts
// as an admin.
func (c *Config) WrapInProcess(h http.Handler) http.Handler {
	a := &authz.Authorizer{Rules: c.Authz.Rules, Log: c.Authz.Log, MaxBody: c.Body.Max}
	h = a.Middleware(h)
	if c.Tenants {
		h = inProcessTenant(h)
	}
	return limits.Archive(h)
}

// inProcessTenant puts the tenant tenant.Header names into the context.
func inProcessTenant(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name := r.Header.Get(tenant.Header); name != "" {
			r.Header.Del(tenant.Header)
			r = r.WithContext(tenant.NewContext(r.Context(), tenant.New(name)))
		}
		next.ServeHTTP(w, r)
	})
}

// HTTPServer is the server of the outside listeners.
func (c *Config) HTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: c.Timeouts.ReadHeader,
		IdleTimeout:       c.Timeouts.Idle,
		MaxHeaderBytes:    c.Timeouts.MaxHeaderBytes,
		ConnContext:       identity.ConnContext,
	}
}
