// Package tenant is what --tenants means for an object's name and owner:
// the scope a request runs in (put in its context by the front door: a
// tenant, or none for admins and the in-process client), the owner label,
// and how a tenant's names are stored on the engines and shown back.
//
// A tenant's object NAME is the engine object KEY_NAME, where KEY is the
// tenant's key: its identity when that is lower case letters, digits,
// '.' and '-' (starting with a letter or digit), else "X" and the
// identity's bytes in hex. A key never holds '_', so the first '_' of an
// engine name ends the key: two tenants' names never meet on an engine,
// and `alice/web` (alice_web) and `bob/web` (bob_web) both exist.
// Ownership is the owner label (containers, and the networks and volumes
// Clocker creates for a tenant) or the key prefix (a volume an engine made
// for a create's mount).
package tenant

import (
	"context"
	"encoding/hex"
	"strings"

	"github.com/clocker/clocker/internal/labels"
)

// Scope is the tenant a request acts for.
type Scope struct {
	// Name is the identity (certificate CN, user).
	Name string
	// Key prefixes the tenant's names on the engines (see the package
	// comment).
	Key string
}

// New is the scope of the tenant with identity name.
func New(name string) Scope { return Scope{Name: name, Key: KeyOf(name)} }

// Header names the tenant a request of Clocker's own in-process client
// acts for (a blueprint's or compose project's owner). Only the
// in-process listener's chain reads it (frontdoor.WrapInProcess); the
// outside chain drops it, so no network client can claim a tenant with it.
const Header = "X-Clocker-Tenant"

type ctxKey struct{}

// NewContext returns ctx acting for the tenant s.
func NewContext(ctx context.Context, s Scope) context.Context {
	return context.WithValue(ctx, ctxKey{}, s)
}

// FromContext is the tenant a request acts for; false for none (tenants
// off, an admin, the in-process client): it sees and names everything as
// stored.
func FromContext(ctx context.Context) (Scope, bool) {
	s, ok := ctx.Value(ctxKey{}).(Scope)
	return s, ok
}

// KeyOf is the key of the tenant with identity name.
func KeyOf(name string) string {
	if plainKey(name) {
		return name
	}
	return "X" + hex.EncodeToString([]byte(name))
}

func plainKey(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// Sep ends a tenant's key in an engine name.
const Sep = "_"

// Prefix is what the tenant's engine names start with.
func (s Scope) Prefix() string { return s.Key + Sep }

// EngineName is the engine's name of the tenant's object name; "" stays
// "" (the engine or Clocker picks one, the owner label tells whose).
// A leading "/" (container references) is kept.
func (s Scope) EngineName(name string) string {
	if name == "" {
		return ""
	}
	if rest, ok := strings.CutPrefix(name, "/"); ok {
		return "/" + s.Prefix() + rest
	}
	return s.Prefix() + name
}

// ShownName is the name the tenant sees for an engine name: its key
// prefix taken off (a leading "/" kept). Names without the prefix (picked
// by Clocker or the engine for an unnamed create) are shown as they are.
func (s Scope) ShownName(engine string) string {
	if rest, ok := strings.CutPrefix(engine, "/"); ok {
		return "/" + strings.TrimPrefix(rest, s.Prefix())
	}
	return strings.TrimPrefix(engine, s.Prefix())
}

// ShownPath maps each "/"-separated part of a container's list name
// ("/alice_web", or a legacy link's "/alice_web/alice_db").
func (s Scope) ShownPath(engine string) string {
	if !strings.Contains(engine, s.Prefix()) {
		return engine
	}
	parts := strings.Split(engine, "/")
	for i, p := range parts {
		parts[i] = strings.TrimPrefix(p, s.Prefix())
	}
	return strings.Join(parts, "/")
}

// HasPrefix tells whether an engine name is in the tenant's names.
func (s Scope) HasPrefix(engine string) bool {
	return strings.HasPrefix(strings.TrimPrefix(engine, "/"), s.Prefix())
}

// Owns tells whether an object with these labels and engine name is the
// tenant's.
func (s Scope) Owns(l map[string]string, engineName string) bool {
	if o, ok := l[labels.Owner]; ok {
		return o == s.Name
	}
	return s.HasPrefix(engineName)
}

// OwnsLabels tells whether labels name the tenant as owner (containers
// always carry the label).
func (s Scope) OwnsLabels(l map[string]string) bool { return l[labels.Owner] == s.Name }
