package identity

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func writeUsers(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "users")
	var s string
	for _, l := range lines {
		s += l + "\n"
	}
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func hash(t *testing.T, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// echo answers with the identity in the context.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	id, ok := FromContext(r.Context())
	if !ok {
		io.WriteString(w, "anonymous")
		return
	}
	io.WriteString(w, string(id.Method)+":"+id.Name)
	if id.Admin {
		io.WriteString(w, ":admin")
	}
})

func withCert(r *http.Request, cn string) *http.Request {
	c := &x509.Certificate{Subject: pkix.Name{CommonName: cn}}
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}, VerifiedChains: [][]*x509.Certificate{{c}}}
	return r
}

func TestMiddleware(t *testing.T) {
	users, err := LoadUsers(writeUsers(t, "# users", "alice:"+hash(t, "s3cret"), "root:"+hash(t, "toor")))
	if err != nil {
		t.Fatal(err)
	}
	on := &Config{Required: true, Users: users, Admins: map[string]bool{"ops": true, "root": true}, AdminPaths: []string{"/v1/fleet"}}
	off := &Config{}
	tests := []struct {
		name       string
		cfg        *Config
		req        func() *http.Request
		code       int
		body       string
		brooklynID bool // the 401 carries X_brooklyn_unauthorized_message
	}{
		{"certificate CN", on, func() *http.Request { return withCert(httptest.NewRequest("GET", "/containers/json", nil), "ci") }, 200, "TLS:ci", false},
		{"admin certificate", on, func() *http.Request { return withCert(httptest.NewRequest("GET", "/v1/fleet/hosts", nil), "ops") }, 200, "TLS:ops:admin", false},
		{"non-admin on the fleet API", on, func() *http.Request { return withCert(httptest.NewRequest("GET", "/v1/fleet/hosts", nil), "ci") }, 403, "", false},
		{"non-admin on /v1/fleetx is not the fleet API", on, func() *http.Request { return withCert(httptest.NewRequest("GET", "/v1/fleetx", nil), "ci") }, 200, "TLS:ci", false},
		{"no identity on Docker routes", on, func() *http.Request { return httptest.NewRequest("GET", "/v1.41/containers/json", nil) }, 401, "", false},
		{"no identity on /v1/", on, func() *http.Request { return httptest.NewRequest("GET", "/v1/applications", nil) }, 401, "", true},
		{"Basic user on /v1/", on, func() *http.Request {
			r := httptest.NewRequest("GET", "/v1/applications", nil)
			r.SetBasicAuth("alice", "s3cret")
			return r
		}, 200, "Basic:alice", false},
		{"wrong password", on, func() *http.Request {
			r := httptest.NewRequest("GET", "/v1/applications", nil)
			r.SetBasicAuth("alice", "nope")
			return r
		}, 401, "", true},
		{"unknown user", on, func() *http.Request {
			r := httptest.NewRequest("GET", "/v1/applications", nil)
			r.SetBasicAuth("eve", "s3cret")
			return r
		}, 401, "", true},
		{"Basic is not a Docker route identity", on, func() *http.Request {
			r := httptest.NewRequest("GET", "/containers/json", nil)
			r.SetBasicAuth("alice", "s3cret")
			return r
		}, 401, "", false},
		{"admin Basic user", on, func() *http.Request {
			r := httptest.NewRequest("POST", "/v1/fleet/hosts", nil)
			r.SetBasicAuth("root", "toor")
			return r
		}, 200, "Basic:root:admin", false},
		{"identities off: anonymous", off, func() *http.Request { return httptest.NewRequest("GET", "/containers/json", nil) }, 200, "anonymous", false},
		{"identities off: dummy Basic ignored", off, func() *http.Request {
			r := httptest.NewRequest("GET", "/v1/applications", nil)
			r.SetBasicAuth("x", "y")
			return r
		}, 200, "anonymous", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			tt.cfg.Middleware(echo).ServeHTTP(w, tt.req())
			if w.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.code, w.Body)
			}
			if tt.code == 200 {
				if w.Body.String() != tt.body {
					t.Errorf("identity %q, want %q", w.Body, tt.body)
				}
				return
			}
			var e struct {
				Message string `json:"message"`
				Error   int    `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Message == "" {
				t.Errorf("refusal body %q: %v", w.Body, err)
			}
			if got := w.Header().Get("X_brooklyn_unauthorized_message"); (got != "") != tt.brooklynID {
				t.Errorf("X_brooklyn_unauthorized_message %q", got)
			}
			if tt.brooklynID && e.Error != 401 {
				t.Errorf("ApiError error %d, want 401", e.Error)
			}
			if tt.code == 401 && !tt.brooklynID && e.Message != Unauthorized {
				t.Errorf("Docker 401 message %q", e.Message)
			}
		})
	}
}

func TestLoadUsersRefusesOtherHashes(t *testing.T) {
	for _, line := range []string{"bob:$apr1$x$y", "bob:{SHA}abc", "nocolon", ":" + "$2y$05$abcdefghijklmnopqrstuuNXsVX6zMbnnqE4rQXwTYXjGeO1Yn2"} {
		if _, err := LoadUsers(writeUsers(t, line)); err == nil {
			t.Errorf("%q loaded", line)
		}
	}
	if _, err := LoadUsers(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("a missing file loaded")
	}
}

// A changed file is read again by Reload: the old password stops working.
func TestUsersReload(t *testing.T) {
	p := writeUsers(t, "alice:"+hash(t, "one"))
	u, err := LoadUsers(p)
	if err != nil {
		t.Fatal(err)
	}
	if !u.Check("alice", "one") || !u.Check("alice", "one") {
		t.Fatal("password refused")
	}
	os.WriteFile(p, []byte("alice:"+hash(t, "two")+"\n"), 0o600)
	if err := u.Reload(); err != nil {
		t.Fatal(err)
	}
	if u.Check("alice", "one") {
		t.Error("the old password (remembered) still works after reload")
	}
	if !u.Check("alice", "two") {
		t.Error("the new password is refused")
	}
}
