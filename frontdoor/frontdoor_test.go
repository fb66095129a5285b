package frontdoor

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/clocker/clocker/frontdoor/audit"
	"github.com/clocker/clocker/frontdoor/authz"
	"github.com/clocker/clocker/frontdoor/identity"
	"github.com/clocker/clocker/frontdoor/limits"
	"github.com/clocker/clocker/internal/tenant"
)

// The chain in order: no identity stops before the audit; a rule's
// refusal is audited with who asked; nothing reaches the handler unless
// every layer lets it.
func TestWrapOrder(t *testing.T) {
	var auditBuf bytes.Buffer
	cfg := &Config{
		Identity: identity.Config{Required: true},
		Body:     limits.Body{Max: 1 << 10, MaxDepth: 10},
		Streams:  &limits.Streams{Max: 1},
		Authz:    &authz.Authorizer{Rules: authz.Rules{DenyPrivileged: true}, Log: slog.New(slog.DiscardHandler)},
		Audit:    audit.New(&auditBuf),
	}
	reached := 0
	h := cfg.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached++ }))
	// No identity: 401, not audited, not reached.
	r := httptest.NewRequest("POST", "/containers/create", strings.NewReader(`{"HostConfig":{"Privileged":true}}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 401 || reached != 0 || auditBuf.Len() != 0 {
		t.Fatalf("anonymous: %d reached %d audit %q", w.Code, reached, auditBuf.String())
	}
	// With an identity: refused by the rule, audited as 403.
	open := &Config{Identity: identity.Config{}, Body: cfg.Body, Streams: cfg.Streams, Authz: cfg.Authz, Audit: cfg.Audit}
	h = open.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached++ }))
	r = httptest.NewRequest("POST", "/containers/create?name=web", strings.NewReader(`{"HostConfig":{"Privileged":true}}`))
	r.Header.Set("Content-Type", "application/json")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 403 || reached != 0 || !strings.Contains(auditBuf.String(), `"status":403`) || !strings.Contains(auditBuf.String(), `"object":"web"`) {
		t.Fatalf("privileged: %d reached %d audit %q", w.Code, reached, auditBuf.String())
	}
	// Too deep: 400 before the rules read it.
	r = httptest.NewRequest("POST", "/containers/create", strings.NewReader(strings.Repeat("[", 20)+strings.Repeat("]", 20)))
	r.Header.Set("Content-Type", "application/json")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 400 || reached != 0 {
		t.Fatalf("deep: %d reached %d", w.Code, reached)
	}
	// A plain create goes through.
	r = httptest.NewRequest("POST", "/containers/create", strings.NewReader(`{"Image":"busybox"}`))
	r.Header.Set("Content-Type", "application/json")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 || reached != 1 {
		t.Fatalf("plain create: %d reached %d", w.Code, reached)
	}
	// The in-process client is held to the rules too.
	inproc := cfg.WrapInProcess(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached++ }))
	r = httptest.NewRequest("POST", "/v1.41/containers/create", strings.NewReader(`{"HostConfig":{"Privileged":true}}`))
	w = httptest.NewRecorder()
	inproc.ServeHTTP(w, r)
	if w.Code != 403 || reached != 1 {
		t.Fatalf("in-process privileged: %d reached %d", w.Code, reached)
	}
}

// With --tenants, a non-admin identity acts as its tenant; an admin and
// an anonymous request (possible only without --tenants' identities)
// carry none.
func TestTenantScope(t *testing.T) {
	var got []string
	h := tenantScope(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := tenant.FromContext(r.Context())
		if !ok {
			got = append(got, "-")
			return
		}
		got = append(got, s.Name+":"+s.Key)
	}))
	for _, id := range []*identity.Identity{{Name: "alice"}, {Name: "Ops", Admin: true}, {Name: "Bob"}, nil} {
		r := httptest.NewRequest(http.MethodGet, "/containers/json", nil)
		if id != nil {
			r = r.WithContext(identity.NewContext(r.Context(), *id))
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	if strings.Join(got, " ") != "alice:alice - Bob:X426f62 -" {
		t.Fatalf("scopes %q", got)
	}
}

// Only the in-process chain takes the tenant from tenant.Header (the
// client of an application's owner); a network client that sends it
// claims nothing: the header is gone and its own identity decides.
func TestTenantHeaderTrustedInProcessOnly(t *testing.T) {
	cfg := &Config{
		Identity: identity.Config{Admins: map[string]bool{"ops": true}},
		Tenants:  true,
		Body:     limits.Body{Max: 1 << 10, MaxDepth: 10},
		Authz:    &authz.Authorizer{Log: slog.New(slog.DiscardHandler)},
	}
	var got []string
	seen := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := tenant.FromContext(r.Context())
		who := "-"
		if ok {
			who = s.Name
		}
		got = append(got, who+"|"+r.Header.Get(tenant.Header))
	})
	outside, inproc := cfg.Wrap(seen), cfg.WrapInProcess(seen)
	off := (&Config{Body: cfg.Body, Authz: cfg.Authz}).WrapInProcess(seen)
	tests := []struct {
		name   string
		h      http.Handler
		id     *identity.Identity
		header string
	}{
		{"anonymous network client claims alice", outside, nil, "alice"},
		{"bob claims alice", outside, &identity.Identity{Name: "bob"}, "alice"},
		{"admin claims alice", outside, &identity.Identity{Name: "ops", Admin: true}, "alice"},
		{"in-process for alice", inproc, nil, "alice"},
		{"in-process without a tenant", inproc, nil, ""},
		{"in-process, tenants off", off, nil, "alice"},
	}
	for _, tc := range tests {
		r := httptest.NewRequest(http.MethodGet, "/containers/json", nil)
		if tc.id != nil {
			r = r.WithContext(identity.NewContext(r.Context(), *tc.id))
		}
		if tc.header != "" {
			r.Header.Set(tenant.Header, tc.header)
		}
		tc.h.ServeHTTP(httptest.NewRecorder(), r)
	}
	want := []string{"-|", "bob|", "-|", "alice|", "-|", "-|alice"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %q, want %q", got, want)
	}
}
