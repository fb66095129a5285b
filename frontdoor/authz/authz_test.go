package authz

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/clocker/clocker/frontdoor/identity"
)

func TestRules(t *testing.T) {
	all := Rules{DenyPrivileged: true, AllowedBindPaths: []string{"/srv", "/data/"}, DenyHostNetwork: true, DenyCapAdd: true}
	tests := []struct {
		name, method, path, body string
		refused                  bool
	}{
		{"plain create", "POST", "/v1.41/containers/create", `{"Image":"busybox"}`, false},
		{"privileged", "POST", "/containers/create", `{"HostConfig":{"Privileged":true}}`, true},
		{"host network", "POST", "/v1.45/containers/create", `{"HostConfig":{"NetworkMode":"host"}}`, true},
		{"bridge network", "POST", "/containers/create", `{"HostConfig":{"NetworkMode":"bridge"}}`, false},
		{"cap add", "POST", "/containers/create", `{"HostConfig":{"CapAdd":["NET_ADMIN"]}}`, true},
		{"bind of /", "POST", "/containers/create", `{"HostConfig":{"Binds":["/:/host"]}}`, true},
		{"bind climbing out", "POST", "/containers/create", `{"HostConfig":{"Binds":["/srv/../etc:/x:ro"]}}`, true},
		{"bind of a prefix's sibling", "POST", "/containers/create", `{"HostConfig":{"Binds":["/srvx:/x"]}}`, true},
		{"bind below an allowed path", "POST", "/containers/create", `{"HostConfig":{"Binds":["/srv/app:/app","/data:/d"]}}`, false},
		{"named volume", "POST", "/containers/create", `{"HostConfig":{"Binds":["vol:/v"]}}`, false},
		{"bind mount outside", "POST", "/containers/create", `{"HostConfig":{"Mounts":[{"Type":"bind","Source":"/etc","Target":"/e"}]}}`, true},
		{"volume mount", "POST", "/containers/create", `{"HostConfig":{"Mounts":[{"Type":"volume","Source":"/etc","Target":"/e"}]}}`, false},
		{"old start with a HostConfig", "POST", "/v1.20/containers/web/start", `{"Privileged":true}`, true},
		{"privileged exec", "POST", "/containers/web/exec", `{"Cmd":["sh"],"Privileged":true}`, true},
		{"exec", "POST", "/containers/web/exec", `{"Cmd":["sh"]}`, false},
		{"local volume binding /", "POST", "/volumes/create", `{"Name":"v","DriverOpts":{"type":"none","o":"bind","device":"/"}}`, true},
		{"local volume", "POST", "/volumes/create", `{"Name":"v"}`, false},
		{"undecodable body is the handler's", "POST", "/containers/create", `{"HostConfig":`, false},
		{"not a create", "POST", "/containers/web/kill", `{"HostConfig":{"Privileged":true}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason := all.Check(tt.method, tt.path, []byte(tt.body))
			if (reason != "") != tt.refused {
				t.Errorf("reason %q, refused want %v", reason, tt.refused)
			}
		})
	}
	if (Rules{}).Check("POST", "/containers/create", []byte(`{"HostConfig":{"Privileged":true,"Binds":["/:/h"]}}`)) != "" {
		t.Error("no rules refused something")
	}
}

// fakePlugin speaks the plugin protocol and records what it was sent.
type fakePlugin struct {
	mu       sync.Mutex
	reqs     []Request
	ress     []Request
	denyPath string // AuthZReq refuses RequestUri containing it
	denyRes  string // AuthZRes refuses response bodies containing it
}

func (f *fakePlugin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Accept") != pluginMediaType {
		http.Error(w, "bad accept", 400)
		return
	}
	switch r.URL.Path {
	case "/Plugin.Activate":
		json.NewEncoder(w).Encode(map[string]any{"Implements": []string{"authz"}})
		return
	case "/AuthZPlugin.AuthZReq", "/AuthZPlugin.AuthZRes":
	default:
		http.NotFound(w, r)
		return
	}
	var req Request
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	res := Response{Allow: true}
	if r.URL.Path == "/AuthZPlugin.AuthZReq" {
		f.reqs = append(f.reqs, req)
		if f.denyPath != "" && strings.Contains(req.RequestURI, f.denyPath) {
			res = Response{Msg: "no " + f.denyPath + " for " + req.User}
		}
	} else {
		f.ress = append(f.ress, req)
		if f.denyRes != "" && strings.Contains(string(req.ResponseBody), f.denyRes) {
			res = Response{Msg: "answer withheld"}
		}
	}
	json.NewEncoder(w).Encode(res)
}

func newAuthorizer(t *testing.T, f *fakePlugin) *Authorizer {
	t.Helper()
	ts := httptest.NewServer(f)
	t.Cleanup(ts.Close)
	p, err := NewPlugin(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Activate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &Authorizer{Plugins: []*Plugin{p}, Log: slog.New(slog.DiscardHandler)}
}

func TestPlugin(t *testing.T) {
	f := &fakePlugin{denyPath: "/kill", denyRes: "secret"}
	a := newAuthorizer(t, f)
	made := 0
	h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		made++
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		io.WriteString(w, `{"Id":"abc","Note":"`+r.URL.Query().Get("note")+`"}`)
	}))
	call := func(method, url, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, url, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Basic c2VjcmV0")
		r = r.WithContext(identity.NewContext(r.Context(), identity.Identity{Name: "alice", Method: identity.TLS}))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w := call("POST", "/v1.41/containers/create?name=web", `{"Image":"busybox"}`)
	if w.Code != 201 || made != 1 {
		t.Fatalf("allowed create: %d, made %d: %s", w.Code, made, w.Body)
	}
	req := f.reqs[0]
	if req.User != "alice" || req.UserAuthNMethod != "TLS" || req.RequestMethod != "POST" || req.RequestURI != "/v1.41/containers/create?name=web" || string(req.RequestBody) != `{"Image":"busybox"}` {
		t.Errorf("AuthZReq: %+v", req)
	}
	if _, ok := req.RequestHeaders["Authorization"]; ok {
		t.Error("the Authorization header was sent to the plugin")
	}
	res := f.ress[0]
	if res.ResponseStatusCode != 201 || !strings.Contains(string(res.ResponseBody), `"Id":"abc"`) || res.ResponseHeaders["Content-Type"] != "application/json" {
		t.Errorf("AuthZRes: %+v", res)
	}
	// The request is denied: 403 with dockerd's wording, nothing made.
	w = call("POST", "/containers/web/kill", "")
	if w.Code != 403 || made != 1 || !strings.Contains(w.Body.String(), "authorization denied by plugin") || !strings.Contains(w.Body.String(), "no /kill for alice") {
		t.Errorf("denied request: %d made %d %s", w.Code, made, w.Body)
	}
	// The response is denied: 403 instead of the answer.
	w = call("POST", "/containers/create?note=secret", `{}`)
	if w.Code != 403 || strings.Contains(w.Body.String(), "abc") {
		t.Errorf("denied response: %d %s", w.Code, w.Body)
	}
	// The wire form: RequestUri, base64 RequestBody (dockerd's keys).
	raw, _ := json.Marshal(Request{RequestURI: "/x", RequestBody: []byte("{}")})
	if !strings.Contains(string(raw), `"RequestUri":"/x"`) || !strings.Contains(string(raw), `"RequestBody":"e30="`) {
		t.Errorf("wire form %s", raw)
	}
}

// A plugin that does not answer fails closed; one that is not authz is
// refused at start.
func TestPluginFailures(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	p, err := NewPlugin(down.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Activate(context.Background()); err == nil {
		t.Error("a dead plugin activated")
	}
	a := &Authorizer{Plugins: []*Plugin{p}, Log: slog.New(slog.DiscardHandler)}
	made := false
	w := httptest.NewRecorder()
	a.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { made = true })).ServeHTTP(w, httptest.NewRequest("GET", "/containers/json", nil))
	if w.Code != 500 || made {
		t.Errorf("dead plugin: %d made=%v", w.Code, made)
	}
	volume := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"Implements": []string{"VolumeDriver"}})
	}))
	defer volume.Close()
	p, _ = NewPlugin(volume.URL)
	if err := p.Activate(context.Background()); err == nil || !strings.Contains(err.Error(), "not authz") {
		t.Errorf("volume plugin: %v", err)
	}
	for _, bad := range []string{"ftp://x", "http://", "unix://", "::"} {
		if _, err := NewPlugin(bad); err == nil {
			t.Errorf("NewPlugin(%q) accepted", bad)
		}
	}
}

// A stream (flushed) goes straight through, and AuthZRes is not asked.
func TestPluginStream(t *testing.T) {
	f := &fakePlugin{denyRes: "line"}
	a := newAuthorizer(t, f)
	h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "line 1\n")
		w.(http.Flusher).Flush()
		io.WriteString(w, "line 2\n")
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/containers/web/logs?follow=1", nil))
	if w.Body.String() != "line 1\nline 2\n" || !w.Flushed || len(f.ress) != 0 {
		t.Errorf("stream: %q flushed=%v AuthZRes calls %d", w.Body, w.Flushed, len(f.ress))
	}
}
