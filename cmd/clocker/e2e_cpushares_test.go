//go:build e2e

package main

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// CPU shares (-c) are a relative weight, as on an engine: a create with
// -c 512 on hosts of two CPUs is placed (Swarm classic refused it as 512
// CPUs) and the engine gets the weight. --cpus and --cpu-quota over
// --cpu-period reserve CPUs: hosts filled by quotas take no more --cpus.
func TestPlacementCPUSharesAreAWeight(t *testing.T) {
	ncpu, err := strconv.Atoi(engineDocker(t, 0, "info", "-f", "{{.NCPU}}"))
	if err != nil || ncpu < 1 {
		t.Fatalf("NCPU: %v", err)
	}
	host := placementServer(t) // spread, overcommit 1.0: its own ledger
	var (
		mu      sync.Mutex
		created []string
	)
	rmAll(t, &created, &mu)
	create := func(args ...string) result {
		r := dockerOn(t, host, append(append([]string{"create"}, args...), "busybox", "true")...)
		if r.Code == 0 {
			mu.Lock()
			created = append(created, strings.TrimSpace(r.Stdout))
			mu.Unlock()
		}
		return r
	}

	r := create("-c", "512")
	if r.Code != 0 {
		t.Fatalf("create -c 512 on hosts of %d CPUs: %s", ncpu, r.Stderr)
	}
	if got := mustDockerOn(t, host, "inspect", "-f", "{{.HostConfig.CpuShares}}", strings.TrimSpace(r.Stdout)); got != "512" {
		t.Fatalf("the engine got CpuShares %s, want 512", got)
	}
	// More CPUs than a host has: refused by --cpus and by a quota alike.
	too := fmt.Sprint(ncpu + 1)
	for _, args := range [][]string{{"--cpus", too}, {"--cpu-quota", fmt.Sprint((ncpu + 1) * 50000), "--cpu-period", "50000"}} {
		r := create(args...)
		if r.Code == 0 || !strings.Contains(r.Stderr, "no host fits") || !strings.Contains(r.Stderr, too+" CPUs requested") {
			t.Fatalf("create %v on hosts of %d CPUs: exit %d %s", args, ncpu, r.Code, r.Stderr)
		}
	}
	// Quotas of a whole host each fill the fleet (spread: one per host).
	for range fleet.Engines {
		if r := create("--cpu-quota", fmt.Sprint(ncpu*100000)); r.Code != 0 {
			t.Fatalf("create --cpu-quota %d: %s", ncpu*100000, r.Stderr)
		}
	}
	r = create("--cpus", "0.5")
	if r.Code == 0 || !strings.Contains(r.Stderr, "0.5 CPUs requested, 0 free") {
		t.Fatalf("--cpus 0.5 on a fleet filled by quotas: exit %d %s", r.Code, r.Stderr)
	}
	// A weight still fits a full fleet.
	if r := create("--cpu-shares", "2048"); r.Code != 0 {
		t.Fatalf("--cpu-shares 2048 on a full fleet: %s", r.Stderr)
	}
}
