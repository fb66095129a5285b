package audit

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/clocker/clocker/frontdoor/identity"
)

func TestRoute(t *testing.T) {
	for _, tt := range []struct{ method, path, route, object string }{
		{"POST", "/v1.41/containers/web/start", "POST /containers/{id}/start", "web"},
		{"POST", "/containers/create", "POST /containers/create", ""},
		{"DELETE", "/v1.45/containers/abc123", "DELETE /containers/{id}", "abc123"},
		{"POST", "/images/library/busybox/tag", "POST /images/{id}/tag", "library/busybox"},
		{"DELETE", "/images/registry:5000/a/b:1", "DELETE /images/{id}", "registry:5000/a/b:1"},
		{"POST", "/images/create", "POST /images/create", ""},
		{"POST", "/exec/e1/start", "POST /exec/{id}/start", "e1"},
		{"POST", "/v1/applications/app1/entities/e2/effectors/restart", "POST /v1/applications/{id}/entities/{id}/effectors/{id}", "app1"},
		{"DELETE", "/v1/fleet/hosts/h2", "DELETE /v1/fleet/hosts/{id}", "h2"},
		{"POST", "/networks/prune", "POST /networks/prune", ""},
	} {
		route, object := Route(tt.method, tt.path)
		if route != tt.route || object != tt.object {
			t.Errorf("Route(%s %s) = %q %q, want %q %q", tt.method, tt.path, route, object, tt.route, tt.object)
		}
	}
}

func TestMiddleware(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf)
	l.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/containers/create" {
			w.WriteHeader(http.StatusForbidden)
		}
	}))
	for _, r := range []*http.Request{
		httptest.NewRequest("GET", "/containers/json", nil), // not a change: no line
		httptest.NewRequest("POST", "/containers/create?name=web", nil),
		httptest.NewRequest("DELETE", "/v1.41/volumes/data", nil),
	} {
		r = r.WithContext(identity.NewContext(r.Context(), identity.Identity{Name: "alice", Method: identity.TLS}))
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	dec := json.NewDecoder(&buf)
	var lines []Line
	for dec.More() {
		var l Line
		if err := dec.Decode(&l); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2: %+v", len(lines), lines)
	}
	if l := lines[0]; l.Identity != "alice" || l.Method != "TLS" || l.Route != "POST /containers/create" || l.Object != "web" || l.Status != 403 || !l.Time.Equal(l.Time.UTC()) {
		t.Errorf("create line %+v", l)
	}
	if l := lines[1]; l.Route != "DELETE /volumes/{id}" || l.Object != "data" || l.Status != 200 {
		t.Errorf("delete line %+v", l)
	}
}
