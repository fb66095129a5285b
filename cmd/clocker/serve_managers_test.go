package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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
