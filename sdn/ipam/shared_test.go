package ipam

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/clocker/clocker/internal/store"
	"github.com/clocker/clocker/internal/store/etcdtest"
	"github.com/clocker/clocker/sdn"
)

// sharedAllocs are n allocators on one etcd, as n managers of a fleet,
// each following the others' changes.
func sharedAllocs(t *testing.T, n int, cfg Config) []*Allocator {
	t.Helper()
	srv := etcdtest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var out []*Allocator
	for range n {
		et, err := store.OpenEtcd(store.EtcdOptions{Endpoints: []string{srv.Endpoint}, Prefix: "/ipam/", Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { et.Close() })
		a, err := New(cfg, et)
		if err != nil {
			t.Fatal(err)
		}
		a.Share(et)
		go et.Watch(ctx, store.BucketNetworks, func() { _ = a.Reload() })
		out = append(out, a)
	}
	return out
}

// Managers creating networks at once, each through its own connection
// to etcd, never hand out one subnet or VNI twice, nor one name; hosts
// joining one network through different managers never get one slice.
func TestSharedAllocatorsNeverLeaseTwice(t *testing.T) {
	allocs := sharedAllocs(t, 3, Config{})
	const perManager = 8
	var wg sync.WaitGroup
	errs := make(chan error, 3*perManager+3)
	for i, a := range allocs {
		for j := range perManager {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := a.Create(Spec{Name: fmt.Sprintf("n%d-%d", i, j)}); err != nil {
					errs <- err
				}
			}()
		}
		// One name asked of every manager at once: exactly one gets it.
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := a.Create(Spec{Name: "same"})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	sameOK := 0
	for err := range errs {
		switch {
		case err == nil:
			sameOK++
		default:
			if want := "network with name same already exists"; err.Error() != want {
				t.Errorf("create: %v (want only %q)", err, want)
			}
		}
	}
	if sameOK != 1 {
		t.Errorf("network \"same\" created %d times through three managers, want once", sameOK)
	}

	// Every manager's view comes to hold all of them (the watch).
	want := 3*perManager + 1
	for i, a := range allocs {
		waitFor(t, fmt.Sprintf("manager %d sees %d networks", i, want), func() bool { return len(a.List()) == want })
	}
	subnets, vnis := map[string]string{}, map[uint32]string{}
	for _, n := range allocs[0].List() {
		if prev, dup := subnets[n.Subnet.String()]; dup {
			t.Errorf("subnet %s leased to %s and %s", n.Subnet, prev, n.Name)
		}
		subnets[n.Subnet.String()] = n.Name
		if prev, dup := vnis[n.VNI]; dup {
			t.Errorf("VNI %d leased to %s and %s", n.VNI, prev, n.Name)
		}
		vnis[n.VNI] = n.Name
	}

	// Eight hosts join one network, through the three managers at once.
	var jw sync.WaitGroup
	got := make([]sdn.HostSlice, 8)
	for h := range got {
		jw.Add(1)
		go func() {
			defer jw.Done()
			sl, err := allocs[h%3].Join("same", fmt.Sprintf("h%d", h))
			if err != nil {
				t.Errorf("join h%d: %v", h, err)
			}
			got[h] = sl
		}()
	}
	jw.Wait()
	seen := map[int]int{}
	for h, sl := range got {
		if prev, dup := seen[sl.Index]; dup {
			t.Errorf("slice %d (%s) given to h%d and h%d", sl.Index, sl.IPRange, prev, h)
		}
		seen[sl.Index] = h
	}
	n, err := allocs[1].Get("same")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every manager sees the eight members", func() bool {
		n, err = allocs[1].Get("same")
		return err == nil && len(n.Hosts) == 8
	})
	// A removal at one manager is every manager's.
	if _, err := allocs[2].Remove("same"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "manager 0 forgets the removed network", func() bool {
		_, err := allocs[0].Get("same")
		return err != nil
	})
	// And a join through a manager that still saw it is refused, not a
	// resurrection of the record.
	if _, err := allocs[0].Join(n.ID, "late"); err == nil {
		t.Error("join of a removed network succeeded")
	}
}

// waitFor polls cond until it holds; the bound only bounds a failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
