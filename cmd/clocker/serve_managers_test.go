package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clocker/clocker/internal/fakeengine"
	"github.com/clocker/clocker/internal/leader"
	"github.com/clocker/clocker/internal/store/etcdtest"
)

// startManager runs `clocker serve --store etcd://…` over engines until
// the test ends, and waits until it answers; it returns its base URL.
func startManager(t *testing.T, endpoint string, engines []*fakeengine.Server, extra ...string) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freeLocalPort(t))
	args := append([]string{"--listen", "tcp://" + addr, "--data", filepath.Join(t.TempDir(), "data"),
		"--log-level", "error", "--ingress=false", "--store", "etcd://" + endpoint, "--store-timeout", "1s"}, extra...)
	for _, e := range engines {
		args = append(args, "--engine", e.Name()+"="+e.URL)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveUntil(ctx, args) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})
	base := "http://" + addr
	waitUntil(t, 60*time.Second, "serve answers", func() bool {
		resp, err := http.Get(base + "/_ping")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return base
}

func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func decodeGet(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(v)
	return resp.StatusCode
}

func infoRows(t *testing.T, base string) map[string]string {
	var info struct{ SystemStatus [][2]string }
	decodeGet(t, base+"/v1.41/info", &info)
	rows := map[string]string{}
	for _, r := range info.SystemStatus {
		rows[r[0]] = r[1]
	}
	return rows
}

// Two managers on one etcd: one leads and both list the same managers;
// docker info says primary and replica; etcd stopped: reads go on, changes
// answer 503 naming the store.
func TestServeTwoManagersOnEtcd(t *testing.T) {
	srv := etcdtest.Start(t)
	engines, err := fakeengine.StartMany(1, "", func(i int) fakeengine.Options {
		return fakeengine.Options{Name: "m1", Images: []string{"busybox"}}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fakeengine.CloseAll(engines) })
	a := startManager(t, srv.Endpoint, engines)
	b := startManager(t, srv.Endpoint, engines)
	var ms []leader.Manager
	waitUntil(t, 15*time.Second, "two managers, one leading", func() bool {
		ms = nil
		decodeGet(t, b+"/v1/fleet/managers", &ms)
		leaders := 0
		for _, m := range ms {
			if m.Leader {
				leaders++
			}
		}
		return len(ms) == 2 && leaders == 1
	})
	var lead string
	for _, m := range ms {
		if m.Leader {
			lead = strings.TrimPrefix(m.Address, "tcp://")
		}
	}
	waitUntil(t, 5*time.Second, "info rows", func() bool {
		ra, rb := infoRows(t, a), infoRows(t, b)
		roles := ra["Role"] + "," + rb["Role"]
		return (roles == "primary,replica" || roles == "replica,primary") &&
			strings.Contains(ra["Primary"], lead) && strings.Contains(rb["Primary"], lead)
	})

	leaderRoutesOnReplica(t, a, b, lead)
	recreateThroughTheOther(t, a, b)

	srv.Stop()
	waitUntil(t, 15*time.Second, "a create refused with 503 naming the store", func() bool {
		resp, err := http.Post(a+"/v1.41/containers/create?name=xx", "application/json", bytes.NewReader([]byte(`{"Image":"busybox"}`)))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(body), srv.Endpoint)
	})
	var list []any
	if st := decodeGet(t, b+"/v1.41/containers/json?all=1", &list); st != http.StatusOK {
		t.Fatalf("docker ps with etcd down: %d", st)
	}
	srv.Restart(t)
	waitUntil(t, 20*time.Second, "creates again (last answer in the log)", func() bool {
		resp, err := http.Post(b+"/v1.41/containers/create?name=yy", "application/json", bytes.NewReader([]byte(`{"Image":"busybox"}`)))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last := fmt.Sprint(resp.StatusCode, " ", string(body))
		t.Log(last)
		return resp.StatusCode == http.StatusCreated
	})
}

// leaderRoutesOnReplica: the replica sends the application layer and the
// console to the leader (lead: its host:port) with a 307, keeps the fleet
// API and Docker's own; a blueprint deployed through the replica (the
// client following, as br does) is the leader's, listed through both.
func leaderRoutesOnReplica(t *testing.T, a, b, lead string) {
	t.Helper()
	replica := a
	if strings.HasSuffix(a, lead) {
		replica = b
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for path, want := range map[string]string{
		"/v1/applications?x=1":         "http://" + lead + "/v1/applications?x=1",
		"/v1/catalog/applications":     "http://" + lead + "/v1/catalog/applications",
		"/ui/":                         "http://" + lead + "/ui/",
		"/v1/fleet/managers":           "",
		"/v1.41/containers/json?all=1": "",
	} {
		resp, err := noFollow.Get(replica + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Location"); want == "" && resp.StatusCode != http.StatusOK ||
			want != "" && (resp.StatusCode != http.StatusTemporaryRedirect || got != want) {
			t.Errorf("GET %s through the replica: %d Location %q, want %q", path, resp.StatusCode, got, want)
		}
	}
	resp, err := http.Post(replica+"/v1/applications", "application/x-yaml", strings.NewReader("name: through-replica\nservices:\n- type: docker:busybox\n  id: one\n"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("deploy through the replica: %d %s", resp.StatusCode, body)
	}
	for _, m := range []string{a, b} {
		var apps []struct{ Spec struct{ Name string } }
		if code := decodeGet(t, m+"/v1/applications", &apps); code != http.StatusOK || len(apps) != 1 || apps[0].Spec.Name != "through-replica" {
			t.Errorf("applications through %s: %d %+v", m, code, apps)
		}
	}
}

func TestLeaderRoutes(t *testing.T) {
	for path, want := range map[string]bool{
		"/v1/applications": true, "/v1/catalog": true, "/v1/activities/x": true, "/ui": true, "/ui/api/hosts": true,
		"/v1/fleet/hosts": false, "/v1/fleet": false, "/v1.41/containers/json": false, "/_ping": false, "/uix": false,
	} {
		if got := leaderRoutes(path); got != want {
			t.Errorf("leaderRoutes(%s) = %v", path, got)
		}
	}
	r, _ := http.NewRequest("GET", "http://replica/v1/applications/a%2Fb?x=1", nil)
	for _, tt := range []struct {
		m       leader.Manager
		ok      bool
		want    string
		wantErr string
	}{
		{leader.Manager{ID: "m1", Address: "tcp://10.0.0.1:2375"}, true, "http://10.0.0.1:2375/v1/applications/a%2Fb?x=1", ""},
		{leader.Manager{ID: "m1", Address: "https://m1.example:2376"}, true, "http://m1.example:2376/v1/applications/a%2Fb?x=1", ""},
		{leader.Manager{ID: "m1", Address: "unix:///run/clocker.sock"}, true, "", "--advertise"},
		{leader.Manager{ID: "m1"}, true, "", "--advertise"},
		{leader.Manager{}, false, "", "no manager leads"},
	} {
		got, err := leaderURL(tt.m, tt.ok, r)
		if got != tt.want || (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("leaderURL(%+v, %v) = %q, %v; want %q, %q", tt.m, tt.ok, got, err, tt.want, tt.wantErr)
		}
	}
}

// recreateThroughTheOther: a container removed right after its create
// gives its name and published port back at once, through either
// manager: the next create does not wait for the claims (15 s) to run
// out, as the claims name a container its engine no longer has.
func recreateThroughTheOther(t *testing.T, a, b string) {
	t.Helper()
	quick := &http.Client{Timeout: 5 * time.Second} // well under the claims' 15 s
	body := `{"Image":"busybox","HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"18080"}]}}}`
	for _, pair := range [][2]string{{a, a}, {a, b}, {b, a}} {
		for i, m := range pair {
			// The manager's cache has seen the removal (its engine's
			// events): what is measured is the shared claims alone.
			waitUntil(t, 5*time.Second, "the removal seen through "+m, func() bool {
				var list []any
				return decodeGet(t, m+"/v1.41/containers/json?all=1&filters="+url.QueryEscape(`{"name":["again"]}`), &list) == http.StatusOK && len(list) == 0
			})
			resp, err := quick.Post(m+"/v1.41/containers/create?name=again", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatalf("create %d through %s: %v", i, m, err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("create %d through %s: %d %s", i, m, resp.StatusCode, msg)
			}
			req, _ := http.NewRequest(http.MethodDelete, m+"/v1.41/containers/again?force=1", nil)
			if resp, err = quick.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
				t.Fatalf("rm through %s: %v %v", m, err, resp)
			}
			resp.Body.Close()
		}
	}
}
