//go:build e2e

package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Placement end to end: the three engines carry the labels zone=z<i>,
// region=r1, storage=ssd (engine 1) or disk (fleet.sh). Tests that need
// another strategy start their own clocker in front of the same engines.

// placementServer starts `clocker serve` with extra flags in front of the
// fleet and returns its DOCKER_HOST.
func placementServer(t *testing.T, args ...string) string {
	t.Helper()
	s := startOwnServer(t, t.TempDir(), append(fleetEngineArgs(), args...)...)
	s.waitHealthy()
	return s.url
}

// dockerOn runs the docker CLI against another clocker.
func dockerOn(t *testing.T, host string, args ...string) result {
	t.Helper()
	return dockerEnv(t, []string{"DOCKER_HOST=" + host}, args...)
}

func mustDockerOn(t *testing.T, host string, args ...string) string {
	t.Helper()
	r := dockerOn(t, host, args...)
	if r.Code != 0 {
		t.Fatalf("docker %s: exit %d\n%s%s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return strings.TrimSpace(r.Stdout)
}

func engineName(i int) string { return fleet.Engines[i].Name }

// engineCounts counts each engine's containers (all states), asked directly.
func engineCounts(t *testing.T) []int {
	out := make([]int, len(fleet.Engines))
	for i := range fleet.Engines {
		for _, labels := range strings.Split(engineDocker(t, i, "ps", "-a", "--format", "c {{.Labels}}"), "\n") {
			if labels != "" && !strings.Contains(labels, "io.clocker.agent=") {
				out[i]++ // the user's: Clocker's agent takes no slot
			}
		}
	}
	return out
}

// rmAll removes containers by ID or name through the main clocker.
func rmAll(t *testing.T, refs *[]string, mu *sync.Mutex) {
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if len(*refs) > 0 {
			docker(t, nil, append([]string{"rm", "-f"}, *refs...)...)
		}
	})
}

func TestPlacementConstraints(t *testing.T) {
	cleanup(t, "pc-node", "pc-ssd", "pc-neg", "pc-db", "pc-aff", "pc-anti")
	// Constraint on a node; the env entry never reaches the engine.
	mustDocker(t, "create", "--name", "pc-node", "-e", "KEEP=1", "-e", "constraint:node=="+engineName(1), "busybox", "true")
	if h := hostOf(t, "pc-node"); h != engineName(1) {
		t.Fatalf("constraint:node==%s placed on %s", engineName(1), h)
	}
	env := mustDocker(t, "inspect", "-f", "{{json .Config.Env}}", "pc-node")
	if strings.Contains(env, "constraint:") || !strings.Contains(env, "KEEP=1") {
		t.Fatalf("engine sees Env %s", env)
	}
	// On an engine label, and its negation.
	mustDocker(t, "create", "--name", "pc-ssd", "-e", "constraint:storage==ssd", "busybox", "true")
	if h := hostOf(t, "pc-ssd"); h != engineName(0) {
		t.Fatalf("constraint:storage==ssd placed on %s, want %s", h, engineName(0))
	}
	mustDocker(t, "create", "--name", "pc-neg", "-e", "constraint:storage!=ssd", "-e", "constraint:zone!=z2", "busybox", "true")
	if h := hostOf(t, "pc-neg"); h != engineName(2) {
		t.Fatalf("storage!=ssd, zone!=z2 placed on %s, want %s", h, engineName(2))
	}
	// A label no host has: 409, naming every host and why.
	before := engineContainerCount(t)
	r := docker(t, nil, "create", "-e", "constraint:storage==nvme", "busybox", "true")
	if r.Code == 0 {
		t.Fatal("constraint storage==nvme was met")
	}
	for i := range fleet.Engines {
		if want := engineName(i) + ": constraint storage==nvme not met"; !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.Stderr)
		}
	}
	if strings.Contains(r.Stderr, "Unable to find image") {
		t.Errorf("the CLI pulled on a placement refusal:\n%s", r.Stderr)
	}
	status, body := apiCall(t, "POST", "/v1.41/containers/create", "application/json",
		strings.NewReader(`{"Image":"busybox","Env":["constraint:storage==nvme"]}`))
	if status != http.StatusConflict || !strings.Contains(body, "no host fits") {
		t.Fatalf("raw create: %d %s", status, body)
	}
	// A malformed expression is the client's error.
	status, body = apiCall(t, "POST", "/v1.41/containers/create", "application/json",
		strings.NewReader(`{"Image":"busybox","Env":["constraint:storage=ssd"]}`))
	if status != http.StatusBadRequest || !strings.Contains(body, `expression \"storage=ssd\"`) {
		t.Fatalf("malformed constraint: %d %s", status, body)
	}
	if after := engineContainerCount(t); after != before {
		t.Fatalf("refused creates made %d containers", after-before)
	}

	// Affinity and anti-affinity to a container.
	mustDocker(t, "create", "--name", "pc-db", "-e", "constraint:node=="+engineName(2), "busybox", "true")
	mustDocker(t, "create", "--name", "pc-aff", "-e", "affinity:container==pc-db", "busybox", "true")
	if h := hostOf(t, "pc-aff"); h != engineName(2) {
		t.Fatalf("affinity:container==pc-db placed on %s, want %s", h, engineName(2))
	}
	mustDocker(t, "create", "--name", "pc-anti", "-e", "affinity:container!=pc-db", "busybox", "true")
	if h := hostOf(t, "pc-anti"); h == engineName(2) {
		t.Fatalf("affinity:container!=pc-db placed beside pc-db on %s", h)
	}
}

func TestPlacementMaxContainersConcurrent(t *testing.T) {
	counts := engineCounts(t)
	limit := 0
	for _, c := range counts {
		limit = max(limit, c)
	}
	limit += 2
	room := 0
	for _, c := range counts {
		room += limit - c
	}
	host := placementServer(t, "--strategy", fmt.Sprintf("max-containers=%d,spread", limit))
	var (
		mu      sync.Mutex
		created []string
		refused []string
		wg      sync.WaitGroup
	)
	rmAll(t, &created, &mu)
	for range room + 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := dockerOn(t, host, "create", "busybox", "true")
			mu.Lock()
			defer mu.Unlock()
			if r.Code == 0 {
				created = append(created, strings.TrimSpace(r.Stdout))
			} else {
				refused = append(refused, r.Stderr)
			}
		}()
	}
	wg.Wait()
	if len(created) != room {
		t.Fatalf("%d creates succeeded, want %d (room under max-containers=%d)", len(created), room, limit)
	}
	for i, c := range engineCounts(t) {
		if c != limit {
			t.Errorf("%s holds %d containers, want max-containers=%d", engineName(i), c, limit)
		}
	}
	for _, e := range refused {
		if !strings.Contains(e, fmt.Sprintf("max-containers=%d", limit)) || strings.Contains(e, "Unable to find image") {
			t.Errorf("refusal: %s", e)
		}
	}
}

func TestPlacementMemoryNoOvercommit(t *testing.T) {
	memTotal, err := strconv.ParseInt(engineDocker(t, 0, "info", "-f", "{{.MemTotal}}"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	quarter := memTotal / 4
	host := placementServer(t) // spread, overcommit 1.0
	var (
		mu      sync.Mutex
		created []string
		wg      sync.WaitGroup
	)
	rmAll(t, &created, &mu)
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := dockerOn(t, host, "create", "-m", fmt.Sprintf("%db", quarter), "busybox", "true")
			mu.Lock()
			defer mu.Unlock()
			if r.Code != 0 {
				t.Errorf("create -m %d: %s", quarter, r.Stderr)
				return
			}
			created = append(created, strings.TrimSpace(r.Stdout))
		}()
	}
	wg.Wait()
	per := map[string]int{}
	for _, id := range created {
		per[hostOf(t, id)]++
	}
	for i := range fleet.Engines {
		if per[engineName(i)] != 4 {
			t.Fatalf("quarter-memory containers per host = %v, want 4 each", per)
		}
	}
	// The hosts are full: one more is a 409 naming the memory.
	r := dockerOn(t, host, "create", "-m", fmt.Sprintf("%db", quarter), "busybox", "true")
	if r.Code == 0 {
		mu.Lock()
		created = append(created, strings.TrimSpace(r.Stdout))
		mu.Unlock()
		t.Fatal("a 13th quarter of a host's memory was placed")
	}
	if !strings.Contains(r.Stderr, "requested") || !strings.Contains(r.Stderr, "free") || !strings.Contains(r.Stderr, engineName(0)+": memory ") {
		t.Fatalf("refusal: %s", r.Stderr)
	}
	// More than a host has is refused by the main front door too.
	r = docker(t, nil, "create", "-m", fmt.Sprintf("%db", memTotal*2), "busybox", "true")
	if r.Code == 0 || !strings.Contains(r.Stderr, "no host fits") {
		t.Fatalf("twice a host's memory: exit %d %s", r.Code, r.Stderr)
	}
}

func TestPlacementBinpackVsSpread(t *testing.T) {
	var (
		mu  sync.Mutex
		ids []string
	)
	rmAll(t, &ids, &mu)
	run := func(host string) string {
		id := mustDockerOn(t, host, "run", "-d", "busybox", "sleep", "600")
		mu.Lock()
		ids = append(ids, id)
		mu.Unlock()
		return hostOf(t, id)
	}
	binpack := placementServer(t, "--strategy", "binpack")
	first := run(binpack)
	for range 2 {
		if h := run(binpack); h != first {
			t.Fatalf("binpack put containers on %s and %s", first, h)
		}
	}
	// Spread levels running containers: the next two avoid the host
	// binpack filled and go one to each of the others.
	spread := placementServer(t, "--strategy", "spread")
	seen := map[string]int{}
	for range 2 {
		seen[run(spread)]++
	}
	if seen[first] != 0 || len(seen) != 2 {
		t.Fatalf("spread after binpack's 3 on %s placed %v", first, seen)
	}
}

func TestPlacementPortConflict(t *testing.T) {
	var (
		mu  sync.Mutex
		ids []string
	)
	rmAll(t, &ids, &mu)
	// Without ingress host ports are per host (with it they are
	// fleet-wide: see e2e_ingress_test.go).
	binpack := placementServer(t, "--strategy", "binpack", "--ingress=false") // would stack them
	hostsSeen := map[string]bool{}
	for range 2 {
		id := mustDockerOn(t, binpack, "run", "-d", "-p", "18080:80", "busybox", "sleep", "600")
		ids = append(ids, id)
		h := hostOf(t, id)
		if hostsSeen[h] {
			t.Fatalf("two containers publishing 18080 on %s", h)
		}
		hostsSeen[h] = true
	}
	// UDP 18080 is another port: it stacks.
	id := mustDockerOn(t, binpack, "run", "-d", "-p", "18080:80/udp", "busybox", "sleep", "600")
	ids = append(ids, id)
	if !hostsSeen[hostOf(t, id)] {
		t.Errorf("18080/udp avoided the hosts using 18080/tcp")
	}
}

func TestPlacementDryRun(t *testing.T) {
	before := engineContainerCount(t)
	status, body := apiCall(t, "POST", "/v1/fleet/placement", "application/json",
		strings.NewReader(`{"Image":"busybox","Env":["constraint:storage!=ssd"]}`))
	if status != 200 {
		t.Fatalf("dry run: %d %s", status, body)
	}
	var out struct {
		Host     string
		Hosts    []struct{ Host string }
		Rejected []struct{ Host, Filter, Reason string }
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Hosts) != 2 || out.Host == engineName(0) || len(out.Rejected) != 1 ||
		out.Rejected[0].Host != engineName(0) || out.Rejected[0].Filter != "constraint" {
		t.Fatalf("dry run answer: %s", body)
	}
	if after := engineContainerCount(t); after != before {
		t.Fatalf("the dry run created %d containers", after-before)
	}
	// Through a versioned Docker path the route does not exist.
	if status, _ := apiCall(t, "POST", "/v1.41/fleet/placement", "application/json", strings.NewReader(`{}`)); status != 404 {
		t.Fatalf("/v1.41/fleet/placement: %d", status)
	}
}

func TestPlacementConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "clocker.yaml")
	if err := os.WriteFile(cfg, []byte("strategy: label=storage=ssd,binpack\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	host := placementServer(t, "--config", cfg)
	id := mustDockerOn(t, host, "create", "busybox", "true")
	t.Cleanup(func() { docker(t, nil, "rm", "-f", id) })
	if h := hostOf(t, id); h != engineName(0) {
		t.Fatalf("label=storage=ssd from the config file placed on %s", h)
	}
	// An unknown strategy stops the start with the known ones.
	out, err := exec.Command(clockerBin, "serve", "--strategy", "fastest", "--data", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), `unknown placement strategy "fastest" (known: `) {
		t.Fatalf("serve --strategy fastest: %v\n%s", err, out)
	}
}
