package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/clocker/clocker/internal/fakeengine"
)

// TestServeStartsWithEverythingOn runs the whole wiring of `clocker serve`
// (ingress, fleet networks, rescheduling, placement) against fake engines
// and creates through it at once, as clients do right after a start: under
// -race (make test-unit) this is the proof that nothing is changed after
// the server runs. Then a host goes down and its reschedulable containers
// come back on the other through the in-process client, with their ports
// and networks.
func TestServeStartsWithEverythingOn(t *testing.T) {
	engines, err := fakeengine.StartMany(2, "", func(i int) fakeengine.Options {
		return fakeengine.Options{Name: fmt.Sprintf("s%d", i+1), Images: []string{"busybox"}}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fakeengine.CloseAll(engines) })
	port := freeLocalPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{"--listen", "tcp://" + addr, "--data", filepath.Join(t.TempDir(), "data"),
		"--log-level", "error", "--ingress-mode", "userland", "--ingress-ports", "31000-31099",
		"--reschedule-after", "100ms", "--network-pool", "10.251.0.0/16"}
	for _, e := range engines {
		args = append(args, "--engine", e.Name()+"="+e.URL)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveUntil(ctx, args) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})

	base := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/_ping")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve never answered: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	post := func(path string, body any) (int, []byte) {
		b, _ := json.Marshal(body)
		resp, err := http.Post(base+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out bytes.Buffer
		_, _ = out.ReadFrom(resp.Body)
		return resp.StatusCode, out.Bytes()
	}
	if st, b := post("/v1.41/networks/create", map[string]any{"Name": "app"}); st != http.StatusCreated {
		t.Fatalf("network create: %d %s", st, b)
	}
	results := make(chan string, 6)
	for i := range 6 {
		go func() {
			hc := map[string]any{"NetworkMode": "app"}
			env := []string{"reschedule:on-node-failure"}
			if i%2 == 1 {
				// Published through the ingress (not rescheduled here: a
				// stale copy's ports are its own until its host answers).
				hc["PortBindings"] = map[string]any{"80/tcp": []map[string]string{{"HostPort": ""}}}
				env = nil
			}
			st, b := post(fmt.Sprintf("/v1.41/containers/create?name=c%d", i), map[string]any{
				"Image": "busybox", "Env": env, "HostConfig": hc,
			})
			if st != http.StatusCreated {
				results <- fmt.Sprintf("c%d: %d %s", i, st, b)
				return
			}
			results <- ""
		}()
	}
	for range 6 {
		if r := <-results; r != "" {
			t.Error(r)
		}
	}

	toMove := 0
	for _, id := range engines[0].IDs() {
		if l, _ := engines[0].Labels(id); l["io.clocker.reschedule"] != "" {
			toMove++
		}
	}
	if toMove == 0 {
		t.Skipf("no reschedulable container placed on %s: the move below would prove nothing", engines[0].Name())
	}
	t.Logf("%d containers on %s, %d on %s", engines[0].Len(), engines[0].Name(), engines[1].Len(), engines[1].Name())
	engines[0].Close()
	deadline = time.Now().Add(30 * time.Second)
	for {
		// Filtered on io.clocker.host, the list shows that label.
		resp, err := http.Get(base + "/v1.41/containers/json?all=1&filters=" + url.QueryEscape(`{"label":["io.clocker.host"]}`))
		if err != nil {
			t.Fatal(err)
		}
		var list []struct {
			Names  []string
			Labels map[string]string
		}
		_ = json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		moved, want := 0, 0
		for _, c := range list {
			if c.Labels["io.clocker.reschedule"] == "" {
				continue
			}
			want++
			if c.Labels["io.clocker.host"] == engines[1].Name() {
				moved++
			}
		}
		if moved == 3 && want == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s went down, %d of %d reschedulable containers on %s", engines[0].Name(), moved, want, engines[1].Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeLocalPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
