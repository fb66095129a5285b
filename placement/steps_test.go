package placement

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/clocker/clocker/admission"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/fakeengine"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/scheduler"
)

// chain is the placement steps in the order the create pipeline runs them.
func (tf *testFleet) chain() *admission.Chain {
	tf.t.Helper()
	ch, err := admission.NewChain(nil, NewNameStep(tf.fleet), NewRequestStep(tf.fleet), tf.placer)
	if err != nil {
		tf.t.Fatal(err)
	}
	return ch
}

// nameFree tells whether a name can be reserved now.
func (tf *testFleet) nameFree(name string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	release, err := tf.fleet.ReserveName(ctx, name)
	if err != nil {
		return false
	}
	release()
	return true
}

func TestCreateSteps(t *testing.T) {
	tf := threeHosts(t)
	tf.add("h1", fakeengine.Spec{Name: "db"})
	tests := []struct {
		name       string
		cname      string
		body       string
		refuse     bool // the engine refuses the create
		wantHost   string
		wantEnv    []string
		wantCode   int
		wantMsg    string
		wantNoHost bool // a *NoHostFitsError
	}{
		{name: "placed, labelled, env stripped", cname: "web",
			body:     `{"Image":"busybox","Env":["constraint:zone==z2","A=1"],"HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"8080"}]}}}`,
			wantHost: "h2", wantEnv: []string{"A=1"}},
		{name: "a generated name", body: `{"Image":"busybox","Env":["constraint:node==h3"]}`, wantHost: "h3"},
		{name: "pinned by --link", cname: "app", body: `{"Image":"busybox","HostConfig":{"Links":["db:db"]}}`, wantHost: "h1"},
		{name: "the engine refuses", cname: "refused", body: `{"Image":"busybox"}`, refuse: true},
		{name: "a malformed constraint", cname: "bad", body: `{"Image":"busybox","Env":["constraint:zone=z2"]}`, wantCode: 400,
			wantMsg: `invalid constraint: expression "zone=z2"…`},
		{name: "negative memory", cname: "neg", body: `{"Image":"busybox","HostConfig":{"Memory":-1}}`, wantCode: 400,
			wantMsg: "memory, CPUs and CPU shares cannot be negative"},
		{name: "an invalid name", cname: "a b", body: `{"Image":"busybox"}`, wantCode: 400,
			wantMsg: "Invalid container name (a b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"},
		{name: "a name in use", cname: "db", body: `{"Image":"busybox"}`, wantCode: 409},
		{name: "an image no host has: pull", cname: "rd", body: `{"Image":"redis"}`, wantCode: 404, wantMsg: "No such image: redis"},
		{name: "no host fits", cname: "nf", body: `{"Image":"busybox","Env":["constraint:zone==z9"]}`, wantNoHost: true},
		{name: "a pin and a constraint on two hosts", cname: "two", body: `{"Image":"busybox","Env":["constraint:node==h2"],"HostConfig":{"VolumesFrom":["db"]}}`, wantNoHost: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := admission.NewCreate(tt.cname, nil, []byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			forwarded := false
			err = tf.chain().Run(context.Background(), c, func(ctx context.Context, c *admission.Create, body []byte) (bool, error) {
				forwarded = true
				if n := tf.placer.ledger.Pending(c.Host.Name); n != 1 {
					t.Errorf("%d reservations on %s while forwarding, want 1", n, c.Host.Name)
				}
				if c.Name == "" || tf.nameFree(c.Name) {
					t.Errorf("name %q not held while forwarding", c.Name)
				}
				if tt.refuse {
					return false, nil
				}
				var spec container.CreateRequest
				if err := json.Unmarshal(body, &spec); err != nil {
					t.Fatal(err)
				}
				if spec.Labels[labels.Host] != c.Host.Name {
					t.Errorf("labels %v, want %s=%s", spec.Labels, labels.Host, c.Host.Name)
				}
				if tt.wantEnv != nil && !slices.Equal(spec.Env, tt.wantEnv) {
					t.Errorf("env %q, want %q", spec.Env, tt.wantEnv)
				}
				id := tf.add(c.Host.Name, fakeengine.Spec{Name: c.Name, Image: spec.Image, Labels: spec.Labels, Env: spec.Env})
				c.ID = id
				return true, nil
			})
			switch {
			case tt.refuse:
				if !admission.NotCreated(err) {
					t.Fatalf("run: %v", err)
				}
			case tt.wantNoHost:
				var nf *scheduler.NoHostFitsError
				if !errors.As(err, &nf) || forwarded {
					t.Fatalf("run: %v (forwarded %v), want no host fits", err, forwarded)
				}
			case tt.wantCode != 0:
				if errdefs.Status(err) != tt.wantCode || forwarded {
					t.Fatalf("run: %v (status %d, forwarded %v), want %d", err, errdefs.Status(err), forwarded, tt.wantCode)
				}
				checkMessage(t, err.Error(), tt.wantMsg)
			default:
				if err != nil {
					t.Fatal(err)
				}
				if c.Host == nil || c.Host.Name != tt.wantHost {
					t.Fatalf("placed on %v, want %s", c.Host, tt.wantHost)
				}
				if _, cc, err := tf.fleet.Resolve(context.Background(), c.Name); err != nil || cc.Summary.ID != c.ID {
					t.Errorf("the fleet does not show %s: %v", c.Name, err)
				}
				rec, ok := tf.placer.DecisionOf(c.ID)
				if !ok || rec.Host != tt.wantHost || rec.Name != c.Name || len(rec.Decision.Hosts) == 0 || rec.Decision.Hosts[0].Host != tt.wantHost {
					t.Errorf("decision kept for %s: %+v (%v), want one ranking %s first", c.ID, rec, ok, tt.wantHost)
				}
			}
			if failed := tt.refuse || tt.wantCode != 0 || tt.wantNoHost; failed && c.ID != "" {
				if _, ok := tf.placer.DecisionOf(c.ID); ok {
					t.Errorf("a decision kept for a create that failed")
				}
			}
			if n := tf.pending(); n != 0 {
				t.Errorf("%d reservations left", n)
			}
			if failed := tt.refuse || tt.wantCode != 0 || tt.wantNoHost; failed && c.Name != "" && c.Name != "db" && tt.wantCode != 400 && !tf.nameFree(c.Name) {
				t.Errorf("name %s still held", c.Name)
			}
		})
	}
}

// checkMessage compares an error message with a wanted one, a prefix when
// it ends in "…" ("" wants any).
func checkMessage(t *testing.T, got, want string) {
	t.Helper()
	if want == "" {
		return
	}
	if p, ok := cutSuffix(want, "…"); ok {
		if len(got) < len(p) || got[:len(p)] != p {
			t.Errorf("message %q, want it to start with %q", got, p)
		}
	} else if got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}

func cutSuffix(s, suffix string) (string, bool) {
	if len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix {
		return s[:len(s)-len(suffix)], true
	}
	return s, false
}

// Concurrent creates publishing one port never share a host: each
// decision sees the reservations of those before it.
func TestPlaceConcurrentNoDoubleBooking(t *testing.T) {
	tf := threeHosts(t)
	const clients = 24
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		placed   = map[string]int{}
		bindings []admission.Binding
		refused  int
	)
	start := make(chan struct{})
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := admission.NewCreate(fmt.Sprintf("web%d", i), nil,
				[]byte(`{"Image":"busybox","HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"8080"}]}}}`))
			if err != nil {
				t.Error(err)
				return
			}
			if err := NewRequestStep(tf.fleet).Validate(c); err != nil {
				t.Error(err)
				return
			}
			<-start
			b, err := tf.placer.Place(context.Background(), c)
			mu.Lock()
			defer mu.Unlock()
			var nf *scheduler.NoHostFitsError
			switch {
			case errors.As(err, &nf):
				refused++
			case err != nil:
				t.Error(err)
			default:
				placed[c.Host.Name]++
				bindings = append(bindings, b)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(placed) != 3 || placed["h1"] != 1 || placed["h2"] != 1 || placed["h3"] != 1 || refused != clients-3 {
		t.Fatalf("placed %v, refused %d", placed, refused)
	}
	for i, b := range bindings {
		if i%2 == 0 {
			b.Done()
		} else {
			b.Undo()
		}
		b.Done() // twice: nothing more
	}
	if n := tf.pending(); n != 0 {
		t.Errorf("%d reservations left", n)
	}
}

func TestExplainReservesNothing(t *testing.T) {
	tf := threeHosts(t)
	req := scheduler.Request{Image: "busybox", Ports: []scheduler.Port{{Proto: "tcp", Port: 80}}}
	for i := 0; i < 5; i++ {
		d, err := tf.placer.Explain(context.Background(), &req)
		if err != nil || len(d.Hosts) != 3 {
			t.Fatalf("explain: %v %+v", err, d)
		}
	}
	if n := tf.pending(); n != 0 {
		t.Errorf("%d reservations after dry runs", n)
	}
}

// A generated name taken by a concurrent create before this one bound it:
// the reservation is not taken for the other's container once that one is
// cached (it is counted until the name step held its own name), and then
// follows the name the create got.
func TestReservationNamedOnceBound(t *testing.T) {
	tf := threeHosts(t)
	c := &admission.Create{Name: "twin", Spec: &container.CreateRequest{Config: &container.Config{Image: "busybox"}}}
	c.Request = scheduler.Request{Image: "busybox", Name: "twin"}
	b, err := tf.placer.Place(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Done()
	pending := func(shown string) int {
		nodes := []scheduler.Node{{Name: c.Host.Name, Items: []scheduler.Container{{Name: shown}}}}
		tf.placer.ledger.Fold(nodes)
		return nodes[0].Pending
	}
	if n := pending("twin"); n != 1 {
		t.Errorf("placed, not bound: another container named twin hides the reservation (%d pending)", n)
	}
	c.Name, c.Request.Name = "other", "other" // the name step picked another
	if _, err := tf.placer.Bind(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if n := pending("twin"); n != 1 {
		t.Errorf("bound as other: the container twin hides the reservation (%d pending)", n)
	}
	if n := pending("other"); n != 0 {
		t.Errorf("bound as other and cached: counted twice (%d pending)", n)
	}
}
