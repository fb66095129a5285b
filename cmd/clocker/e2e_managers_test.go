//go:build e2e

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clocker/clocker/internal/leader"
	"github.com/clocker/clocker/internal/store/etcdtest"
)

// managersOf asks s for the fleet's managers.
func managersOf(s *ownServer) ([]leader.Manager, error) {
	resp, err := http.Get(s.httpURL("/v1/fleet/managers"))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var ms []leader.Manager
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	return ms, json.NewDecoder(resp.Body).Decode(&ms)
}

// leaderAmong is the server that s says leads, if any.
func leaderAmong(s *ownServer, all []*ownServer) *ownServer {
	ms, err := managersOf(s)
	if err != nil {
		return nil
	}
	for _, m := range ms {
		if !m.Leader {
			continue
		}
		for _, o := range all {
			if o.url == m.Address {
				return o
			}
		}
	}
	return nil
}

// psThrough is docker ps -a's IDs and names of this test's containers,
// through one manager.
func psThrough(t *testing.T, s *ownServer, prefix string) string {
	t.Helper()
	out, err := exec.Command("docker", "-H", s.url, "ps", "-a", "--filter", "name="+prefix, "--format", "{{.ID}} {{.Names}}").CombinedOutput()
	if err != nil {
		t.Fatalf("docker ps through %s: %v\n%s", s.url, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// Three managers on one etcd over the fleet: concurrent creates of the
// same names through all three make each name once; kill -9 of the leader
// and another leads within 5 s; docker ps is the same through both
// survivors; with etcd stopped reads go on and changes answer 503, then
// everything resumes.
func TestE2EManagersOnEtcd(t *testing.T) {
	etcd := etcdtest.Start(t)
	prefix := fmt.Sprintf("/%s-e2e/", fleet.Prefix)
	args := append([]string{"--ingress=false", "--store", "etcd://" + etcd.Endpoint, "--store-prefix", prefix, "--store-timeout", "2s"}, fleetEngineArgs()...)
	var mgrs []*ownServer
	for range 3 {
		mgrs = append(mgrs, startOwnServer(t, t.TempDir(), args...))
	}
	for _, m := range mgrs {
		m.waitHealthy()
	}
	var first *ownServer
	waitUntil(t, 15*time.Second, "one leader, seen by all three", func() bool {
		l := leaderAmong(mgrs[0], mgrs)
		first = l
		return l != nil && leaderAmong(mgrs[1], mgrs) == l && leaderAmong(mgrs[2], mgrs) == l
	})
	if ms, _ := managersOf(mgrs[0]); len(ms) != 3 {
		t.Fatalf("managers: %+v", ms)
	}
	var rows map[string]string
	for _, m := range mgrs {
		resp, err := http.Get(m.httpURL("/info"))
		if err != nil {
			t.Fatal(err)
		}
		var info struct{ SystemStatus [][2]string }
		_ = json.NewDecoder(resp.Body).Decode(&info)
		resp.Body.Close()
		rows = map[string]string{}
		for _, r := range info.SystemStatus {
			rows[r[0]] = r[1]
		}
		want := "replica"
		if m == first {
			want = "primary"
		}
		if rows["Role"] != want || rows["Primary"] != first.url {
			t.Fatalf("docker info through %s: Role %q Primary %q; want %s, %s", m.url, rows["Role"], rows["Primary"], want, first.url)
		}
	}

	// 30 creates at once: ten names, each through all three managers.
	names := "etmgr"
	t.Cleanup(func() {
		for i := range fleet.Engines {
			if ids := strings.Fields(engineDocker(t, i, "ps", "-aq", "--filter", "name="+names)); len(ids) > 0 {
				engineDocker(t, i, append([]string{"rm", "-f"}, ids...)...)
			}
		}
	})
	type outcome struct {
		name   string
		status int
		body   string
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		outcomes []outcome
	)
	start := make(chan struct{})
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			name := fmt.Sprintf("%s-%d", names, i%10)
			m := mgrs[i%3]
			body := `{"Image":"busybox","Cmd":["sleep","600"]}`
			resp, err := http.Post(m.httpURL("/v1.41/containers/create?name="+name), "application/json", bytes.NewReader([]byte(body)))
			o := outcome{name: name}
			if err != nil {
				o.body = err.Error()
			} else {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				o.status, o.body = resp.StatusCode, string(b)
			}
			mu.Lock()
			outcomes = append(outcomes, o)
			mu.Unlock()
		}()
	}
	createStart := time.Now()
	close(start)
	wg.Wait()
	t.Logf("30 concurrent creates through three managers in %s", time.Since(createStart).Round(time.Millisecond))
	made := map[string]int{}
	for _, o := range outcomes {
		switch o.status {
		case http.StatusCreated:
			made[o.name]++
		case http.StatusConflict:
		default:
			t.Errorf("create %s: %d %s", o.name, o.status, o.body)
		}
	}
	for i := range 10 {
		if n := made[fmt.Sprintf("%s-%d", names, i)]; n != 1 {
			t.Errorf("%s-%d made %d times", names, i, n)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	// Every engine, asked directly, holds each name once.
	seen := map[string]int{}
	for i := range fleet.Engines {
		for _, n := range strings.Fields(engineDocker(t, i, "ps", "-a", "--filter", "name="+names, "--format", "{{.Names}}")) {
			seen[n]++
		}
	}
	if len(seen) != 10 {
		t.Fatalf("engines hold %v", seen)
	}
	for n, c := range seen {
		if c != 1 {
			t.Fatalf("%s on the engines %d times", n, c)
		}
	}

	// kill -9 of the leader: another leads within 5 s.
	var survivors []*ownServer
	for _, m := range mgrs {
		if m != first {
			survivors = append(survivors, m)
		}
	}
	killed := time.Now()
	first.kill()
	var second *ownServer
	waitUntil(t, 5*time.Second, "a new leader", func() bool {
		second = leaderAmong(survivors[0], survivors)
		return second != nil && leaderAmong(survivors[1], survivors) == second
	})
	t.Logf("new leader %s %s after the kill", second.url, time.Since(killed).Round(time.Millisecond))
	a, b := psThrough(t, survivors[0], names), psThrough(t, survivors[1], names)
	if a != b || strings.Count(a, "\n") != 9 {
		t.Fatalf("docker ps differs or is not whole:\n%s\n---\n%s", a, b)
	}
	// A create through the replica goes on.
	if out, err := exec.Command("docker", "-H", survivors[0].url, "create", "--name", names+"-after", "busybox", "true").CombinedOutput(); err != nil {
		t.Fatalf("create after the failover: %v\n%s", err, out)
	}

	// etcd stopped: reads work, changes 503 naming the store; back: resume.
	etcd.Stop()
	waitUntil(t, 15*time.Second, "changes refused with 503", func() bool {
		resp, err := http.Post(survivors[1].httpURL("/v1.41/containers/create?name="+names+"-down"), "application/json", bytes.NewReader([]byte(`{"Image":"busybox"}`)))
		if err != nil {
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(body), etcd.Endpoint)
	})
	if got := psThrough(t, survivors[0], names); strings.Count(got, "\n") != 10 {
		t.Fatalf("docker ps with etcd down:\n%s", got)
	}
	etcd.Restart(t)
	waitUntil(t, 30*time.Second, "creates again", func() bool {
		out, err := exec.Command("docker", "-H", survivors[1].url, "create", "--name", names+"-back", "busybox", "true").CombinedOutput()
		if err != nil {
			t.Logf("create after etcd came back: %s", out)
		}
		return err == nil
	})
	waitUntil(t, 15*time.Second, "one leader again", func() bool { return leaderAmong(survivors[0], survivors) != nil })
}

// benchSeq numbers BenchmarkManagersCreate's containers.
var benchSeq int

// BenchmarkManagersCreate is the create latency (p50, p99) of one manager
// on bbolt against three on one etcd (round robin): each create claims
// its name in etcd there.
func BenchmarkManagersCreate(b *testing.B) {
	const names = "etbench"
	b.Cleanup(func() {
		for i := range fleet.Engines {
			if ids := strings.Fields(engineDocker(b, i, "ps", "-aq", "--filter", "name="+names)); len(ids) > 0 {
				engineDocker(b, i, append([]string{"rm", "-f"}, ids...)...)
			}
		}
	})
	for _, setup := range []struct {
		name string
		n    int
		etcd bool
	}{{"bbolt-one", 1, false}, {"etcd-three", 3, true}} {
		b.Run(setup.name, func(b *testing.B) {
			args := append([]string{"--ingress=false"}, fleetEngineArgs()...)
			if setup.etcd {
				e := etcdtest.Start(b)
				args = append(args, "--store", "etcd://"+e.Endpoint, "--store-prefix", fmt.Sprintf("/%s-bench/", fleet.Prefix))
			}
			var mgrs []*ownServer
			for range setup.n {
				m := startOwnServer(b, b.TempDir(), args...)
				m.waitHealthy()
				mgrs = append(mgrs, m)
			}
			var lat latencies
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m := mgrs[i%len(mgrs)]
				benchSeq++ // b.Run calls this function more than once: names stay new
				name := fmt.Sprintf("%s-%s-%d", names, setup.name, benchSeq)
				start := time.Now()
				resp, err := http.Post(m.httpURL("/v1.41/containers/create?name="+name), "application/json",
					strings.NewReader(`{"Image":"busybox","Cmd":["true"]}`))
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				lat = append(lat, time.Since(start))
				if resp.StatusCode != http.StatusCreated {
					b.Fatalf("create %s: %d %s", name, resp.StatusCode, body)
				}
			}
			b.StopTimer()
			lat.report(b)
		})
	}
}
