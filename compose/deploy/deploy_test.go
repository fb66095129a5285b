package deploy

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/clocker/clocker/internal/errdefs"
)

func TestConstraintEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want []string
		err  string
	}{
		{name: "hostname", in: []string{"node.hostname==h1"}, want: []string{"constraint:node==h1"}},
		{name: "hostname not, spaces", in: []string{" node.hostname != h2 "}, want: []string{"constraint:node!=h2"}},
		{name: "node label", in: []string{"node.labels.disk==ssd"}, want: []string{"constraint:disk==ssd"}},
		{name: "engine label", in: []string{"engine.labels.zone!=b"}, want: []string{"constraint:zone!=b"}},
		{name: "several", in: []string{"node.labels.a==1", "node.hostname!=h3"}, want: []string{"constraint:a==1", "constraint:node!=h3"}},
		{name: "role", in: []string{"node.role==manager"}, err: "not node.role"},
		{name: "empty label key", in: []string{"node.labels.==x"}, err: "not node.labels."},
		{name: "no operator", in: []string{"node.hostname"}, err: "want KEY==VALUE"},
		{name: "no value", in: []string{"node.hostname=="}, err: "want KEY==VALUE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := constraintEnv("web", tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errdefs.ErrInvalid) {
					t.Fatalf("err %v, want ErrInvalid with %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestSpreadEnv(t *testing.T) {
	fleet := []Host{{Name: "h1", Labels: map[string]string{"zone": "b"}}, {Name: "h2", Labels: map[string]string{"zone": "a"}}, {Name: "h3", Labels: map[string]string{"zone": "b"}}, {Name: "h4"}}
	prefs := []types.PlacementPreferences{{Spread: "node.labels.zone"}}
	var got []string
	for r := 0; r < 4; r++ {
		env, err := spreadEnv("web", prefs, fleet, r)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, env...)
	}
	if want := []string{"constraint:zone==~a", "constraint:zone==~b", "constraint:zone==~a", "constraint:zone==~b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("replicas' soft constraints %q, want %q", got, want)
	}
	if env, err := spreadEnv("web", []types.PlacementPreferences{{Spread: "node.labels.rack"}}, fleet, 0); err != nil || len(env) != 0 {
		t.Errorf("a label no host carries: %q, %v; want nothing", env, err)
	}
	if _, err := spreadEnv("web", []types.PlacementPreferences{{Spread: "node.hostname"}}, fleet, 0); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("spread over node.hostname: %v, want ErrInvalid", err)
	}
}

func TestHostsOf(t *testing.T) {
	status := [][2]string{
		{"Strategy", "spread"}, {"Nodes", "3"},
		{" h1", "10.0.0.1:2375"}, {"  └ Status", "Healthy"}, {"  └ Labels", "zone=a, disk=ssd"},
		{" h2", "10.0.0.2:2375"}, {"  └ Status", "Unhealthy"}, {"  └ Labels", "zone=b"},
		{" h3", "10.0.0.3:2375"}, {"  └ Status", "Healthy"}, {"  └ Labels", ""},
	}
	want := []Host{{Name: "h1", Labels: map[string]string{"zone": "a", "disk": "ssd"}}, {Name: "h3", Labels: map[string]string{}}}
	if got := HostsOf(status); !reflect.DeepEqual(got, want) {
		t.Errorf("HostsOf = %+v, want %+v", got, want)
	}
}

func TestConditionMet(t *testing.T) {
	health := func(s container.HealthStatus) *container.Health { return &container.Health{Status: s} }
	running := container.State{Status: container.StateRunning, Running: true}
	for _, tc := range []struct {
		name  string
		cond  string
		state container.State
		met   bool
		err   string
	}{
		{"healthy", ServiceHealthy, container.State{Status: container.StateRunning, Running: true, Health: health(container.Healthy)}, true, ""},
		{"starting", ServiceHealthy, container.State{Status: container.StateRunning, Running: true, Health: health(container.Starting)}, false, ""},
		{"unhealthy", ServiceHealthy, container.State{Status: container.StateRunning, Running: true, Health: health(container.Unhealthy)}, false, "is unhealthy"},
		{"no healthcheck", ServiceHealthy, running, false, "has no healthcheck"},
		{"exited before healthy", ServiceHealthy, container.State{Status: container.StateExited, ExitCode: 2, Health: health(container.Starting)}, false, "exited (code 2)"},
		{"completed", ServiceCompleted, container.State{Status: container.StateExited}, true, ""},
		{"still running", ServiceCompleted, running, false, ""},
		{"failed", ServiceCompleted, container.State{Status: container.StateExited, ExitCode: 3}, false, "exited with code 3"},
		{"started", ServiceStarted, running, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.state
			met, err := conditionMet(Dependency{Service: "db", Condition: tc.cond}, container.InspectResponse{Name: "/p-db-1", State: &st})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "p-db-1") {
					t.Fatalf("err %v, want %q naming the container", err, tc.err)
				}
				return
			}
			if err != nil || met != tc.met {
				t.Fatalf("met %t, %v; want %t", met, err, tc.met)
			}
		})
	}
}

const waitFile = `name: p
services:
  db:
    image: busybox
    healthcheck:
      test: ["CMD", "true"]
  app:
    image: busybox
    depends_on:
      db:
        condition: service_healthy
    deploy:
      replicas: 2
`

func testPlan(t *testing.T, d *Deployer, file string) *Plan {
	t.Helper()
	p, err := d.Plan(context.Background(), Source{File: []byte(file)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The server waits for db to be healthy before it creates app.
func TestRunWaitsHealthy(t *testing.T) {
	f := newFakeEngine()
	starting := container.State{Status: container.StateRunning, Running: true, Health: &container.Health{Status: container.Starting}}
	healthy := container.State{Status: container.StateRunning, Running: true, Health: &container.Health{Status: container.Healthy}}
	f.states["p-db-1"] = []container.State{starting, starting, healthy}
	d := New(Options{Engine: f, PollInterval: time.Millisecond})
	if _, err := d.Run(context.Background(), testPlan(t, d, waitFile)); err != nil {
		t.Fatal(err)
	}
	if len(f.states["p-db-1"]) != 1 {
		t.Errorf("db inspected until %d states were left; want all read (healthy last)", len(f.states["p-db-1"]))
	}
	startDB := slices.Index(f.calls, "start p-db-1")
	for _, c := range []string{"create p-app-1", "create p-app-2"} {
		if i := slices.Index(f.calls, c); i < startDB || startDB < 0 {
			t.Errorf("calls %q: want %s after db started and healthy", f.calls, c)
		}
	}
	if got := len(f.made()); got != 4 { // 3 containers, the default network
		t.Errorf("made %v", f.made())
	}
}

// A service on two networks is created on its primary one and connected
// to the other before it starts (engines before API 1.44 take one).
func TestRunConnectsExtraNetworks(t *testing.T) {
	const file = "name: p\nservices:\n  app:\n    image: busybox\n    networks: [back, front]\nnetworks:\n  back: {}\n  front: {}\n"
	f := newFakeEngine()
	d := New(Options{Engine: f})
	if _, err := d.Run(context.Background(), testPlan(t, d, file)); err != nil {
		t.Fatal(err)
	}
	c, s := slices.Index(f.calls, "connect p-app-1 p_front"), slices.Index(f.calls, "start p-app-1")
	if c < 0 || s < c {
		t.Errorf("calls %q: want p-app-1 connected to p_front before its start", f.calls)
	}
}

// An unhealthy dependency stops the run, naming it; what runs stays (as
// docker compose up leaves it) and app is never created.
func TestRunDependencyUnhealthy(t *testing.T) {
	f := newFakeEngine()
	f.states["p-db-1"] = []container.State{{Status: container.StateRunning, Running: true, Health: &container.Health{Status: container.Unhealthy}}}
	d := New(Options{Engine: f, PollInterval: time.Millisecond})
	_, err := d.Run(context.Background(), testPlan(t, d, waitFile))
	if err == nil || !strings.Contains(err.Error(), "dependency db (p-db-1) is unhealthy") || !strings.Contains(err.Error(), "service app") {
		t.Fatalf("err %v", err)
	}
	for _, c := range f.calls {
		if strings.Contains(c, "app") {
			t.Errorf("app touched: %q", f.calls)
		}
	}
	if !slices.Contains(f.made(), "container p-db-1") {
		t.Errorf("db removed: %v", f.made())
	}
}

// An unhealthy dependency with required: false is only warned about.
func TestRunOptionalDependency(t *testing.T) {
	f := newFakeEngine()
	f.states["p-db-1"] = []container.State{{Status: container.StateRunning, Running: true, Health: &container.Health{Status: container.Unhealthy}}}
	d := New(Options{Engine: f, PollInterval: time.Millisecond})
	file := strings.Replace(waitFile, "condition: service_healthy", "condition: service_healthy\n        required: false", 1)
	if _, err := d.Run(context.Background(), testPlan(t, d, file)); err != nil || !slices.Contains(f.calls, "start p-app-2") {
		t.Fatalf("err %v, calls %q: want app started", err, f.calls)
	}
}

// A dependency never healthy fails after WaitTimeout.
func TestRunDependencyTimeout(t *testing.T) {
	f := newFakeEngine()
	f.states["p-db-1"] = []container.State{{Status: container.StateRunning, Running: true, Health: &container.Health{Status: container.Starting}}}
	d := New(Options{Engine: f, PollInterval: time.Millisecond, WaitTimeout: 30 * time.Millisecond})
	_, err := d.Run(context.Background(), testPlan(t, d, waitFile))
	if err == nil || !strings.Contains(err.Error(), "db not service_healthy within 30ms") {
		t.Fatalf("err %v", err)
	}
}

// service_completed_successfully: app waits for init to exit 0; a
// non-zero exit fails the run.
func TestRunWaitsCompleted(t *testing.T) {
	const file = "name: p\nservices:\n  init:\n    image: busybox\n  app:\n    image: busybox\n    depends_on:\n      init:\n        condition: service_completed_successfully\n"
	for _, tc := range []struct {
		name string
		code int
		err  string
	}{{"exit 0", 0, ""}, {"exit 1", 1, "exited with code 1"}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeEngine()
			f.states["p-init-1"] = []container.State{{Status: container.StateRunning, Running: true}, {Status: container.StateExited, ExitCode: tc.code}}
			d := New(Options{Engine: f, PollInterval: time.Millisecond})
			_, err := d.Run(context.Background(), testPlan(t, d, file))
			created := slices.Contains(f.calls, "create p-app-1")
			if tc.err == "" && (err != nil || !created) {
				t.Fatalf("err %v, app created %t", err, created)
			}
			if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || created) {
				t.Fatalf("err %v, app created %t; want %q and no app", err, created, tc.err)
			}
		})
	}
}

// A create that fails undoes everything the run made.
func TestRunUndo(t *testing.T) {
	f := newFakeEngine()
	f.failCreate = "p-app-2"
	f.states["p-db-1"] = []container.State{{Status: container.StateRunning, Running: true, Health: &container.Health{Status: container.Healthy}}}
	d := New(Options{Engine: f, PollInterval: time.Millisecond})
	if _, err := d.Run(context.Background(), testPlan(t, d, waitFile)); err == nil || !strings.Contains(err.Error(), "create p-app-2") {
		t.Fatalf("err %v", err)
	}
	if left := f.made(); len(left) != 0 {
		t.Errorf("left after a failed create: %v", left)
	}
}

type fakePlacer struct{ refuse map[string]string } // a constraint env entry → refusal

func (p fakePlacer) Explain(_ context.Context, c client.ContainerCreateOptions) (string, error, error) {
	if c.NetworkingConfig != nil || c.HostConfig.NetworkMode != "" {
		return "", nil, errors.New("dry run asked with the project's networks, which do not exist yet")
	}
	for _, e := range c.Config.Env {
		if r, ok := p.refuse[e]; ok {
			return "", errdefs.New(errdefs.ErrConflict, r), nil
		}
	}
	return "h1", nil, nil
}

// Check refuses what cannot be made before anything is: a replica no
// host fits (409 with every host's reason), an image on no host (400).
func TestCheck(t *testing.T) {
	const file = "name: p\nservices:\n  db:\n    image: busybox\n  web:\n    image: busybox\n    deploy:\n      replicas: 2\n      placement:\n        constraints: [node.labels.disk==nvme]\n"
	f := newFakeEngine()
	d := New(Options{Engine: f, Placer: fakePlacer{refuse: map[string]string{"constraint:disk==nvme": "h1: constraint disk==nvme not met; h2: constraint disk==nvme not met"}}})
	err := d.Check(context.Background(), testPlan(t, d, file))
	if !errors.Is(err, errdefs.ErrConflict) || errdefs.Status(err) != 409 {
		t.Fatalf("err %v, want a 409", err)
	}
	for _, w := range []string{"service web replica 1: h1: constraint disk==nvme not met; h2:", "service web replica 2:"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q lacks %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "service db") {
		t.Errorf("%q names db, which fits", err)
	}
	if len(f.calls) != 0 || len(f.made()) != 0 {
		t.Errorf("made %v (calls %q) for a refused file", f.made(), f.calls)
	}

	// A named volume goes where its first user is placed.
	plan := testPlan(t, d, "name: p\nservices:\n  db:\n    image: busybox\n    volumes: [data:/d]\nvolumes:\n  data: {}\n")
	if err := d.Check(context.Background(), plan); err != nil {
		t.Fatal(err)
	}
	if h := plan.Volumes[0].Create.Labels["io.clocker.host"]; h != "h1" {
		t.Errorf("volume placed on %q, want db's host h1", h)
	}

	// A name taken by a container of the fleet.
	f.containers["other"] = "p-db-1"
	if err := d.Check(context.Background(), plan); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "p-db-1 is already in use") {
		t.Errorf("name taken: %v", err)
	}
	delete(f.containers, "other")

	err = d.Check(context.Background(), testPlan(t, d, "name: p\nservices:\n  web:\n    image: nginx\n"))
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "image nginx is on no host") {
		t.Errorf("missing image: %v", err)
	}
}
