package ingress

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/fakeengine"
	"github.com/clocker/clocker/internal/store"
	"github.com/clocker/clocker/internal/store/etcdtest"
)

// sharedSteps are the create steps of two managers' tables over one
// fleet (host h1), each at its own address with its own connection to one
// etcd, claims kept a minute.
func sharedSteps(t *testing.T) (*testFleet, []CreateStep) {
	srv := etcdtest.Start(t)
	f := newTestFleet(t, "h1")
	var steps []CreateStep
	for i, addr := range []string{"127.0.0.2", "127.0.0.3"} {
		et, err := store.OpenEtcd(store.EtcdOptions{Endpoints: []string{srv.Endpoint}, Prefix: "/ingress/", Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { et.Close() })
		tab := f.table(addr, nil, false)
		tab.Share(et, fmt.Sprintf("m%d", i), time.Minute)
		steps = append(steps, NewCreateStep(tab))
	}
	return f, steps
}

// Two managers' tables (each at its own address, each with its own
// connection to one etcd) asked for one published port at once give it
// to exactly one create; random ports picked at once are all different;
// a failed create's port is free again at the other manager.
func TestSharedTablesNeverClaimOnePortTwice(t *testing.T) {
	f, steps := sharedSteps(t)
	h := f.host("h1")

	p := strconv.Itoa(freePort(t))
	fixed := `{"PortBindings":{"80/tcp":[{"HostPort":"` + p + `"}]}}`
	random := `{"PortBindings":{"80/tcp":[{"HostPort":""}]}}`
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		won    []string
		picked = map[string]string{}
		undos  []func()
	)
	for i := range 20 {
		wg.Add(2)
		step := steps[i%2]
		go func() { // the fixed port
			defer wg.Done()
			name := fmt.Sprintf("fixed%d", i)
			b, err := step.Bind(context.Background(), newCreate(t, h, name, "busybox", fixed, ""))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, name)
				undos = append(undos, b.Undo)
			case !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "port is already allocated"):
				t.Errorf("%s: %v", name, err)
			}
		}()
		go func() { // a random port
			defer wg.Done()
			name := fmt.Sprintf("random%d", i)
			c := newCreate(t, h, name, "busybox", random, "")
			b, err := step.Bind(context.Background(), c)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				return
			}
			port := sentBindings(t, c)["80/tcp"][0].HostPort
			mu.Lock()
			defer mu.Unlock()
			undos = append(undos, b.Undo)
			if prev, dup := picked[port]; dup {
				t.Errorf("random port %s given to %s and %s", port, prev, name)
			}
			picked[port] = name
		}()
	}
	wg.Wait()
	if len(won) != 1 {
		t.Fatalf("port %s given to %v through two managers, want one create", p, won)
	}
	// Every create fails (undo): the port is free at either manager.
	for _, u := range undos {
		u()
	}
	for i, step := range steps {
		b, err := step.Bind(context.Background(), newCreate(t, h, fmt.Sprintf("again%d", i), "busybox", fixed, ""))
		if err != nil {
			t.Fatalf("port %s after the creates failed, through manager %d: %v", p, i, err)
		}
		b.Undo()
	}
}

// A container made through one manager and removed within its port
// claim's life (a minute here): the port is free at once through the
// other manager, which finds the claim names a container that is gone.
// While the container is there, the port is not free anywhere.
func TestSharedClaimOfARemovedContainer(t *testing.T) {
	f, steps := sharedSteps(t)
	h := f.host("h1")
	p := strconv.Itoa(freePort(t))
	fixed := `{"PortBindings":{"80/tcp":[{"HostPort":"` + p + `"}]}}`
	c := newCreate(t, h, "web", "busybox", fixed, "")
	b, err := steps[0].Bind(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	id, err := f.fakes["h1"].Create(fakeengine.Spec{Name: "web", Image: "busybox", HostConfig: json.RawMessage(`{"PortBindings":{"80/tcp":[{"HostPort":"` + p + `"}]}}`)})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Refresh(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	b.Done()
	// Made, not yet known to the other manager's cache (one fleet here:
	// its table is told nothing): its claim holds the port there.
	if _, err := steps[1].Bind(context.Background(), newCreate(t, h, "other", "busybox", fixed, "")); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("the port of a container that exists, through the other manager: %v", err)
	}
	if err := f.fakes["h1"].Remove(id, true); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the cache to forget web", func() bool { _, ok := h.Container(id); return !ok })
	start := time.Now()
	b2, err := steps[1].Bind(context.Background(), newCreate(t, h, "again", "busybox", fixed, ""))
	if err != nil {
		t.Fatalf("port %s after its container was removed, through the other manager: %v", p, err)
	}
	b2.Undo()
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s: waited for the claim to run out", d)
	}
}
