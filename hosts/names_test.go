package hosts_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/clocker/clocker/internal/errdefs"
)

// The name index follows every change of the caches: a name is taken
// while a container has it, free once it is gone, and taken again by the
// next container (on any host) that gets it.
func TestNamesFollowTheCaches(t *testing.T) {
	fleet, fakes := newFleet(t, fakeOpts{name: "h1"}, fakeOpts{name: "h2"})
	reserve := func() error {
		release, err := fleet.ReserveName(testCtx(t), "web")
		if err == nil {
			release()
		}
		return err
	}
	if err := reserve(); err != nil {
		t.Fatalf("free name: %v", err)
	}

	first := fakes["h1"].add("", "web", "running", "", false)
	waitFor(t, "cache to know web", func() bool { _, ok := cached(fleet, first); return ok })
	if err := reserve(); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("taken name: %v", err)
	}
	if h, c, err := fleet.Resolve(testCtx(t), "/web"); err != nil || h.Name != "h1" || c.ID() != first {
		t.Fatalf("Resolve(/web) = %v %v %v", h, c.ID(), err)
	}

	fakes["h1"].remove(first, false)
	waitFor(t, "cache to forget web", func() bool { _, ok := cached(fleet, first); return !ok })
	if err := reserve(); err != nil {
		t.Fatalf("freed name: %v", err)
	}

	second := fakes["h2"].add("", "web", "created", "", false)
	waitFor(t, "cache to know the new web", func() bool { _, ok := cached(fleet, second); return ok })
	err := reserve()
	if !errors.Is(err, errdefs.ErrConflict) || err.Error() != fmt.Sprintf(
		"Conflict. The container name \"/web\" is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", second) {
		t.Fatalf("name taken again: %v", err)
	}
	if h, c, err := fleet.Resolve(testCtx(t), "web"); err != nil || h.Name != "h2" || c.ID() != second {
		t.Fatalf("Resolve(web) = %v %v %v", h, c.ID(), err)
	}
	if h, ok := fleet.Host("h2"); !ok || h.Name != "h2" {
		t.Errorf("Host(h2) = %v %v", h, ok)
	}
	if _, ok := fleet.Host("h3"); ok {
		t.Errorf("Host(h3) found")
	}
}

// Resolve and ReserveName on a fleet whose caches change underneath: run
// with -race.
func TestNamesConcurrentWithChanges(t *testing.T) {
	fleet, fakes := newFleet(t, fakeOpts{name: "h1"}, fakeOpts{name: "h2"})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 50; i++ {
			id := fakes[fmt.Sprintf("h%d", i%2+1)].add("", fmt.Sprintf("c%d", i), "running", "", false)
			if i%3 == 0 {
				fakes[fmt.Sprintf("h%d", i%2+1)].remove(id, false)
			}
		}
	}()
	for {
		select {
		case <-done:
			return
		default:
		}
		for i := 0; i < 50; i++ {
			_, _, _ = fleet.Resolve(testCtx(t), fmt.Sprintf("c%d", i))
			if release, err := fleet.ReserveName(testCtx(t), fmt.Sprintf("n%d", i)); err == nil {
				release()
			}
		}
	}
}
