// Package identity says who is asking: the verified client certificate's
// common name (as dockerd does for authorization plugins), the peer of a
// unix socket connection, or, on the Brooklyn API (/v1/), an HTTP Basic user
// of a bcrypt htpasswd file. The identity travels in the request's context
// (FromContext), for the authorization, audit and, later, tenant layers.
package identity

import (
	"context"
	"net/http"
	"strings"

	"github.com/clocker/clocker/frontdoor/reply"
)

// Method is how an identity was established; TLS is dockerd's
// UserAuthNMethod value, which authorization plugins match on.
type Method string

const (
	// TLS: the common name of a client certificate the CA signed.
	TLS Method = "TLS"
	// Basic: an HTTP Basic user of the --users file.
	Basic Method = "Basic"
	// Unix: the local user at the other end of a unix socket.
	Unix Method = "unix"
)

// Identity is who a request comes from.
type Identity struct {
	// Name is the certificate's CN, the Basic user name, or the local
	// user name of a unix socket peer.
	Name   string
	Method Method
	// Admin identities (--admin) use the fleet API.
	Admin bool
}

type ctxKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the identity of the request whose context ctx is;
// false when the request is anonymous.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}

// Config is who may ask.
type Config struct {
	// Required refuses (401) a request without an identity: on with
	// --tlsverify or --users.
	Required bool
	// Users checks Basic credentials on /v1/ (nil: no --users; Basic
	// headers are then ignored, as Brooklyn clients send dummy ones).
	Users *Users
	// Admins are the names (--admin) that may use AdminPaths.
	Admins map[string]bool
	// AdminPaths are path prefixes only admins use when Required.
	AdminPaths []string
}

// Unauthorized is the 401 wording on Docker routes (a registry's, the one
// Docker clients print as it is).
const Unauthorized = "unauthorized: authentication required"

// Middleware authenticates every request, puts its identity in the
// context, and refuses those the Config does not let through.
func (c *Config) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := c.fromConnection(r)
		brooklyn := reply.IsBrooklyn(r.URL.Path)
		if user, pass, basic := r.BasicAuth(); basic && brooklyn && c.Users != nil {
			if !c.Users.Check(user, pass) {
				reply.Error(w, r, http.StatusUnauthorized, "Invalid credentials for user "+quote(user))
				return
			}
			id, ok = Identity{Name: user, Method: Basic, Admin: c.Admins[user]}, true
		}
		if !ok {
			if c.Required {
				msg := Unauthorized
				if brooklyn {
					msg = "Authentication required: a client certificate or HTTP Basic credentials"
				}
				reply.Error(w, r, http.StatusUnauthorized, msg)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if c.Required && !id.Admin && c.adminOnly(r.URL.Path) {
			reply.Error(w, r, http.StatusForbidden, quote(id.Name)+" is not an admin: only --admin identities use "+r.URL.Path)
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), id)))
	})
}

// fromConnection is the identity the connection carries: a verified
// client certificate or a unix socket peer.
func (c *Config) fromConnection(r *http.Request) (Identity, bool) {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		cn := r.TLS.VerifiedChains[0][0].Subject.CommonName
		return Identity{Name: cn, Method: TLS, Admin: c.Admins[cn]}, true
	}
	if p, ok := r.Context().Value(peerKey{}).(peer); ok {
		// root at the socket is root on the machine already.
		return Identity{Name: p.name, Method: Unix, Admin: p.uid == 0 || c.Admins[p.name]}, true
	}
	return Identity{}, false
}

func (c *Config) adminOnly(path string) bool {
	for _, p := range c.AdminPaths {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

func quote(s string) string { return `"` + s + `"` }
