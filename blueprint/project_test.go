package blueprint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"

	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/internal/store"
)

// composeUp makes what `docker compose -p project up -d --scale
// service=n` makes on the fake: n running containers project-service-N
// with compose's labels (and extra) on the project's default network.
func (f *fakeEngine) composeUp(project, service string, n int, extra map[string]string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	net := project + "_default"
	f.networks[net] = true
	f.setObjLabels("net/"+net, map[string]string{labels.ComposeProject: project})
	var ids []string
	for i := 1; i <= n; i++ {
		l := map[string]string{labels.ComposeProject: project, labels.ComposeService: service,
			labels.ComposeContainerNumber: fmt.Sprint(i), "com.docker.compose.config-hash": "h-" + service}
		for k, v := range extra {
			l[k] = v
		}
		f.next++
		id := fmt.Sprintf("c%02d", f.next)
		f.ctrs[id] = &fakeCtr{running: true, ip: fmt.Sprintf("10.0.0.%d", f.next), opts: client.ContainerCreateOptions{
			Name:       fmt.Sprintf("%s-%s-%d", project, service, i),
			Config:     &container.Config{Image: "busybox", Labels: l, Hostname: id},
			HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(net), PortBindings: network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: fmt.Sprint(30000 + f.next)}}}},
		}}
		ids = append(ids, id)
	}
	return ids
}

func (f *fakeEngine) setObjLabels(key string, l map[string]string) {
	if f.objLabels == nil {
		f.objLabels = map[string]map[string]string{}
	}
	f.objLabels[key] = l
}

// matches: every label filter holds for l.
func matches(l map[string]string, fl client.Filters) bool {
	for want := range fl["label"] {
		k, v, hasV := strings.Cut(want, "=")
		if lv, ok := l[k]; !ok || (hasV && lv != v) {
			return false
		}
	}
	return true
}

func (f *fakeEngine) NetworkList(ctx context.Context, o client.NetworkListOptions) (client.NetworkListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out client.NetworkListResult
	for name := range f.networks {
		if l := f.objLabels["net/"+name]; matches(l, o.Filters) {
			out.Items = append(out.Items, network.Summary{Network: network.Network{Name: name, Labels: l}})
		}
	}
	return out, nil
}

func (f *fakeEngine) VolumeList(ctx context.Context, o client.VolumeListOptions) (client.VolumeListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out client.VolumeListResult
	for name := range f.volumes {
		if l := f.objLabels["vol/"+name]; matches(l, o.Filters) {
			out.Items = append(out.Items, volume.Volume{Name: name, Labels: l})
		}
	}
	return out, nil
}

// Events streams what the test sends on f.events; with until, the
// history of the containers filtered on.
func (f *fakeEngine) Events(ctx context.Context, o client.EventsListOptions) client.EventsResult {
	if o.Until == "" {
		return client.EventsResult{Messages: f.events}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(chan events.Message, len(f.history))
	for _, msg := range f.history {
		if o.Filters["container"][msg.Actor.ID] {
			out <- msg
		}
	}
	close(out)
	return client.EventsResult{Messages: out}
}

// stopEvent is the engine's event of a stop of container id.
func stopEvent(id string) events.Message {
	return events.Message{Type: events.ContainerEventType, Action: events.ActionStop, Actor: events.Actor{ID: id, Attributes: map[string]string{labels.ComposeProject: "p"}}}
}

func (f *fakeEngine) opts(id string) client.ContainerCreateOptions {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ctrs[id].opts
}

// openStore is a real store in a temporary directory.
func openStore(t *testing.T) store.Store {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// poll runs one watch round.
func (e *env) poll() {
	e.t.Helper()
	if err := e.m.Poll(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) json(path string, out any) {
	e.t.Helper()
	code, body := e.do("GET", path, "", "")
	if code != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal([]byte(body), out); err != nil {
		e.t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}

// TestProjectFound: a compose project's containers, whichever client
// made them, make an application with an entity per service and a child
// per replica and their sensors; one-offs and blueprint containers are
// not replicas; the blueprint applications are untouched.
func TestProjectFound(t *testing.T) {
	eng := newFake()
	e := newEnv(t, nil, eng)
	bp := e.deploy(twoTier)
	e.waitApp(bp)
	web := eng.composeUp("shop", "web", 2, nil)
	eng.composeUp("shop", "db", 1, map[string]string{labels.ReplicasWanted: "2"})
	eng.composeUp("shop", "run", 1, map[string]string{labels.ComposeOneoff: "True"})
	eng.composeUp("shop", "mixed", 1, map[string]string{labels.BlueprintApplication: bp})
	e.poll()

	var apps []struct {
		ID, Status string
		Spec       struct{ Name, Type string }
	}
	e.json("/v1/applications", &apps)
	if len(apps) != 2 || apps[1].ID != "shop" || apps[1].Spec.Name != "shop" || apps[1].Spec.Type != TypeComposeProject || apps[1].Status != "RUNNING" {
		t.Fatalf("applications: %+v", apps)
	}
	var ents []struct{ Name, Type string }
	e.json("/v1/applications/shop/entities", &ents)
	if fmt.Sprint(ents) != fmt.Sprintf("[{db %s} {web %s}]", TypeComposeService, TypeComposeService) {
		t.Errorf("services: %v", ents)
	}
	var kids []struct{ Name string }
	e.json("/v1/applications/shop/entities/web/children", &kids)
	if fmt.Sprint(kids) != "[{shop-web-1} {shop-web-2}]" {
		t.Errorf("web's containers: %v", kids)
	}
	for sensor, want := range map[string]string{SensorUp: "true", SensorState: `"running"`, SensorReplicasWanted: "2", SensorReplicasRunning: "2", SensorGroupMembersCount: "2"} {
		if got := e.sensor("shop", "web", sensor); got != want {
			t.Errorf("web %s = %s, want %s", sensor, got, want)
		}
	}
	if got := e.sensor("shop", "db", SensorReplicasWanted); got != "2" {
		t.Errorf("db wanted %s: the label says 2", got)
	}
	if got := e.sensor("shop", "db", SensorReplicasRunning); got != "1" {
		t.Errorf("db running %s", got)
	}
	var s map[string]any
	e.json("/v1/applications/shop/entities/shop-web-2/sensors/current-state", &s)
	want := map[string]any{"docker.container.id": web[1], "host.name": "h1", "host.subnet.address": eng.ctrs[web[1]].ip, "mapped.port.80": float64(20001), SensorUp: true}
	for k, v := range want {
		if fmt.Sprint(s[k]) != fmt.Sprint(v) {
			t.Errorf("shop-web-2 %s = %v, want %v", k, s[k], v)
		}
	}
	for _, name := range []string{"run", "mixed"} {
		if code, _ := e.do("GET", "/v1/applications/shop/entities/"+name, "", ""); code != http.StatusNotFound {
			t.Errorf("service %s (one-off or blueprint's) is an entity: %d", name, code)
		}
	}
	var tree []struct {
		Name     string
		Children []struct{ Name string }
	}
	e.json("/v1/applications/fetch", &tree)
	if len(tree) != 2 || tree[1].Name != "shop" || len(tree[1].Children) != 2 {
		t.Errorf("fetch: %+v", tree)
	}
	if got := e.sensor(bp, "db", SensorState); got != `"running"` {
		t.Errorf("the blueprint's db %s", got)
	}
}

// waitApp waits for the application's start.
func (e *env) waitApp(app string) {
	e.t.Helper()
	a, err := e.m.App(app)
	if err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.m.Status(a) != "RUNNING" {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s did not start", app)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestProjectFollows: replicas compose adds and removes become and stop
// being entities (wanted follows compose's scale), a container that dies
// puts its entity on fire, one started again outside Clocker is running,
// and a project with no container left is forgotten with its record.
func TestProjectFollows(t *testing.T) {
	st := openStore(t)
	eng := newFake()
	e := newEnv(t, st, eng)
	ids := eng.composeUp("p", "app", 1, nil)
	e.poll()
	eng.mu.Lock()
	eng.ctrs["c09"] = &fakeCtr{running: true, ip: "10.0.0.9", opts: eng.ctrs[ids[0]].opts}
	o := eng.ctrs["c09"].opts
	o.Name = "p-app-2"
	o.Config = &container.Config{Image: "busybox", Labels: map[string]string{labels.ComposeProject: "p", labels.ComposeService: "app", labels.ComposeContainerNumber: "2"}}
	eng.ctrs["c09"].opts = o
	eng.mu.Unlock()
	e.poll()
	if got := e.sensor("p", "app", SensorReplicasWanted); got != "2" {
		t.Errorf("wanted after compose scaled to 2: %s", got)
	}
	eng.kill("c09")
	e.poll()
	if got := e.sensor("p", "p-app-2", SensorState); got != `"on-fire"` {
		t.Errorf("killed replica: %s", got)
	}
	if got := e.sensor("p", "app", SensorReplicasRunning); got != "1" {
		t.Errorf("running after a kill: %s", got)
	}
	if got := e.sensor("p", "app", SensorReplicasWanted); got != "2" {
		t.Errorf("a kill changed wanted: %s", got)
	}
	if _, err := eng.ContainerStart(context.Background(), "c09", client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	e.poll()
	if got := e.sensor("p", "p-app-2", SensorState); got != `"running"` {
		t.Errorf("started again: %s", got)
	}
	if _, err := eng.ContainerRemove(context.Background(), "c09", client.ContainerRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	e.poll()
	if got := e.sensor("p", "app", SensorGroupMembersCount); got != "1" {
		t.Errorf("members after compose removed one: %s", got)
	}
	if code, _ := e.do("GET", "/v1/applications/p/entities/p-app-2", "", ""); code != http.StatusNotFound {
		t.Errorf("removed replica still an entity: %d", code)
	}
	if _, err := eng.ContainerRemove(context.Background(), ids[0], client.ContainerRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	e.poll()
	if code, body := e.do("GET", "/v1/applications/p", "", ""); code != http.StatusNotFound {
		t.Errorf("a project without containers is listed: %d %s", code, body)
	}
	n := 0
	_ = st.ForEach(store.BucketApplications, func(string, []byte) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d records left", n)
	}
}

// TestProjectResize: resize clones a replica with compose's labels and
// the next numbers, then removes the highest; bad sizes change nothing.
func TestProjectResize(t *testing.T) {
	eng := newFake()
	e := newEnv(t, nil, eng)
	eng.composeUp("p", "web", 2, nil)
	e.poll()
	code, body := e.do("POST", "/v1/applications/p/entities/web/effectors/resize", "application/x-www-form-urlencoded", "desiredSize=4")
	if code != http.StatusOK || strings.TrimSpace(body) != "4" {
		t.Fatalf("resize 4: %d %s", code, body)
	}
	var kids []struct{ Name string }
	e.json("/v1/applications/p/entities/web/children", &kids)
	if fmt.Sprint(kids) != "[{p-web-1} {p-web-2} {p-web-3} {p-web-4}]" {
		t.Errorf("after resize 4: %v", kids)
	}
	id := strings.Trim(e.sensor("p", "p-web-4", "docker.container.id"), `"`)
	o := eng.opts(id)
	wantLabels := map[string]string{labels.ComposeProject: "p", labels.ComposeService: "web", labels.ComposeContainerNumber: "4", "com.docker.compose.config-hash": "h-web"}
	if !reflect.DeepEqual(o.Config.Labels, wantLabels) || o.Name != "p-web-4" || o.HostConfig.NetworkMode != "p_default" || o.Config.Hostname != "" {
		t.Errorf("clone: name %s labels %v network %s hostname %q", o.Name, o.Config.Labels, o.HostConfig.NetworkMode, o.Config.Hostname)
	}
	if b := o.HostConfig.PortBindings[network.MustParsePort("80/tcp")]; len(b) != 1 || b[0].HostPort != "" {
		t.Errorf("clone's port 80 bindings %v: want one on a port of its own", b)
	}
	for k, want := range map[string]string{SensorReplicasWanted: "4", SensorReplicasRunning: "4", "service.isUp": "true"} {
		if got := e.sensor("p", "web", k); got != want {
			t.Errorf("web %s = %s, want %s", k, got, want)
		}
	}
	e.poll() // the watch sees the clones as the entities they are
	if got := e.sensor("p", "web", SensorGroupMembersCount); got != "4" {
		t.Errorf("members after a poll: %s", got)
	}
	code, body = e.do("POST", "/v1/applications/p/entities/web/effectors/resize", "application/json", `{"desiredSize": 1}`)
	if code != http.StatusOK || strings.TrimSpace(body) != "1" {
		t.Fatalf("resize 1: %d %s", code, body)
	}
	e.json("/v1/applications/p/entities/web/children", &kids)
	if fmt.Sprint(kids) != "[{p-web-1}]" {
		t.Errorf("after resize 1: %v", kids)
	}
	if c, _, _ := eng.snapshot(); c != 1 {
		t.Errorf("%d containers after resize 1", c)
	}
	for _, bad := range []string{"desiredSize=0", "desiredSize=-1", "desiredSize=x"} {
		code, body := e.do("POST", "/v1/applications/p/entities/web/effectors/resize", "application/x-www-form-urlencoded", bad)
		if code != http.StatusBadRequest || !strings.Contains(body, "desiredSize") {
			t.Errorf("%s: %d %s", bad, code, body)
		}
	}
	if c, _, _ := eng.snapshot(); c != 1 {
		t.Errorf("%d containers after refused resizes", c)
	}
}

// TestProjectPolicies: a restarter from a service label brings back a
// replica that died; one attached through the API persists and resumes
// after a restart with the entities' ids.
func TestProjectPolicies(t *testing.T) {
	st := openStore(t)
	eng := newFake()
	clk := &fakeClock{now: time.Unix(1e9, 0)}
	e := newEnvClock(t, st, eng, clk)
	ids := eng.composeUp("p", "web", 2, map[string]string{labels.PolicyPrefix + "restarter": "true"})
	eng.composeUp("p", "db", 1, nil)
	e.poll()
	eng.kill(ids[1])
	e.poll()
	clk.Advance(failedDelay)
	e.settle("p")
	if got := e.sensor("p", "p-web-2", SensorState); got != `"running"` {
		t.Errorf("label restarter: p-web-2 %s", got)
	}
	if got := e.sensor("p", "p-web-2", "docker.container.id"); got != `"`+ids[1]+`"` {
		t.Errorf("restarted as %s", got)
	}
	code, body := e.do("POST", "/v1/applications/p/entities/db/policies?type=org.apache.brooklyn.policy.ha.ServiceRestarter", "application/json", `{"failOnRecurringFailuresInThisDuration": "1m"}`)
	if code != http.StatusOK {
		t.Fatalf("attach: %d %s", code, body)
	}
	var before map[string]any
	e.json("/v1/applications/p/entities/db", &before)
	e.srv.Close()
	e.m.Close()

	e2 := newEnvClock(t, st, eng, clk)
	if err := e2.m.Resume(); err != nil {
		t.Fatal(err)
	}
	var after map[string]any
	e2.json("/v1/applications/p/entities/db", &after)
	if after["id"] != before["id"] {
		t.Errorf("db's id %v, was %v", after["id"], before["id"])
	}
	var pols []struct{ Name, State string }
	e2.json("/v1/applications/p/entities/db/policies", &pols)
	if fmt.Sprint(pols) != "[{ServiceRestarter RUNNING}]" {
		t.Errorf("db policies after resume: %v", pols)
	}
	e2.json("/v1/applications/p/entities/web/policies", &pols)
	if fmt.Sprint(pols) != "[{ServiceRestarter RUNNING}]" {
		t.Errorf("web policies after resume: %v", pols)
	}
	db := strings.Trim(e2.sensor("p", "p-db-1", "docker.container.id"), `"`)
	eng.kill(db)
	e2.poll()
	clk.Advance(failedDelay)
	e2.settle("p")
	if got := e2.sensor("p", "p-db-1", SensorState); got != `"running"` {
		t.Errorf("resumed restarter: p-db-1 %s", got)
	}
}

// TestProjectDelete: DELETE does what compose down does: containers and
// the project's networks go, volumes only when asked; a bad flag is
// refused with nothing removed.
func TestProjectDelete(t *testing.T) {
	for _, volumes := range []bool{false, true} {
		t.Run(fmt.Sprint("volumes=", volumes), func(t *testing.T) {
			eng := newFake()
			e := newEnv(t, nil, eng)
			eng.composeUp("p", "web", 2, nil)
			eng.composeUp("other", "web", 1, nil)
			eng.mu.Lock()
			eng.volumes["p_data"] = true
			eng.setObjLabels("vol/p_data", map[string]string{labels.ComposeProject: "p"})
			eng.networks["p_back"] = true
			eng.setObjLabels("net/p_back", map[string]string{labels.ComposeProject: "p"})
			eng.networks["external"] = true
			eng.mu.Unlock()
			e.poll()
			code, body := e.do("DELETE", "/v1/applications/p?volumes=maybe", "", "")
			if code != http.StatusBadRequest || !strings.Contains(body, "volumes") {
				t.Fatalf("volumes=maybe: %d %s", code, body)
			}
			if c, n, v := eng.snapshot(); c != 3 || n != 4 || v != 1 {
				t.Fatalf("a refused delete removed things: %d containers %d networks %d volumes", c, n, v)
			}
			code, body = e.do("DELETE", fmt.Sprintf("/v1/applications/p?volumes=%v", volumes), "", "")
			if code != http.StatusAccepted {
				t.Fatalf("delete: %d %s", code, body)
			}
			var task struct{ ID string }
			_ = json.Unmarshal([]byte(body), &task)
			<-e.m.Task(task.ID).Done()
			if _, err := e.m.Task(task.ID).Result(); err != nil {
				t.Fatal(err)
			}
			c, n, v := eng.snapshot()
			wantV := 1
			if volumes {
				wantV = 0
			}
			if c != 1 || n != 2 || v != wantV {
				t.Errorf("after delete: %d containers (want 1) %d networks (want other's and external) %d volumes (want %d)", c, n, v, wantV)
			}
			if _, err := e.m.App("p"); !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("deleted project still listed: %v", err)
			}
			e.poll()
			if _, err := e.m.App("other"); err != nil {
				t.Errorf("the other project: %v", err)
			}
		})
	}
}

// TestLabelPolicies: policy labels to adjunct types and configs.
func TestLabelPolicies(t *testing.T) {
	p := labels.PolicyPrefix
	for _, tc := range []struct {
		name     string
		labels   map[string]string
		kinds    string
		cfgs     string
		problems string
	}{
		{"none", map[string]string{"x": "y"}, "[]", "map[]", "[]"},
		{"restarter", map[string]string{p + "restarter": "true"}, "[restarter]", "map[restarter:map[]]", "[]"},
		{"off", map[string]string{p + "restarter": "false", p + "restarter.setOnFireOnFailure": "false"}, "[]", "map[restarter:map[setOnFireOnFailure:false]]", "[]"},
		{"replacer alone watches failures", map[string]string{p + "replacer": "true"}, "[replacer]", "map[replacer:map[failureSensorToMonitor:ha.entityFailed]]", "[]"},
		{"replacer after restarter", map[string]string{p + "replacer": "true", p + "restarter": "true"}, "[replacer restarter]", "map[replacer:map[] restarter:map[]]", "[]"},
		{"autoscaler by keys", map[string]string{p + "autoscaler.metric": "cpu", p + "autoscaler.metricUpperBound": "80", p + "autoscaler.maxPoolSize": "5"},
			"[autoscaler]", "map[autoscaler:map[maxPoolSize:5 metric:docker.cpu.percent metricUpperBound:80]]", "[]"},
		{"memory", map[string]string{p + "autoscaler.metric": "memory"}, "[autoscaler]", "map[autoscaler:map[metric:docker.memory.percent]]", "[]"},
		{"bad", map[string]string{p + "healer": "true", p + "restarter": "yes"}, "[]", "map[restarter:map[]]",
			`[io.clocker.policy.healer: unknown policy "healer" (known: autoscaler, replacer, restarter) io.clocker.policy.restarter: "yes" is not true or false]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kinds, cfgs, problems := labelPolicies(tc.labels)
			if got := fmt.Sprint(kinds); got != tc.kinds && !(got == "[]" && tc.kinds == "[]") {
				t.Errorf("kinds %s, want %s", got, tc.kinds)
			}
			if got := fmt.Sprint(cfgs); got != tc.cfgs {
				t.Errorf("configs %s, want %s", got, tc.cfgs)
			}
			if got := fmt.Sprint(problems); got != tc.problems {
				t.Errorf("problems %s, want %s", got, tc.problems)
			}
		})
	}
}

// TestLabelPolicyProblems: a service whose autoscaler label lacks its
// metric gets no autoscaler and says why.
func TestLabelPolicyProblems(t *testing.T) {
	eng := newFake()
	e := newEnv(t, nil, eng)
	eng.composeUp("p", "web", 1, map[string]string{labels.PolicyPrefix + "autoscaler.maxPoolSize": "3"})
	e.poll()
	if got := e.sensor("p", "web", SensorPolicyProblems); !strings.Contains(got, "metric is required") {
		t.Errorf("problems: %s", got)
	}
	var pols []any
	e.json("/v1/applications/p/entities/web/policies", &pols)
	if len(pols) != 0 {
		t.Errorf("policies: %v", pols)
	}
}

// TestReplicaName: compose v2's and v1's patterns.
func TestReplicaName(t *testing.T) {
	l := map[string]string{labels.ComposeProject: "p", labels.ComposeService: "s", labels.ComposeContainerNumber: "2"}
	for old, want := range map[string]string{"p-s-2": "p-s-7", "p_s_2": "p_s_7", "custom": "p-s-7"} {
		if got := replicaName(old, l, 7); got != want {
			t.Errorf("%s: %s, want %s", old, got, want)
		}
	}
}

// TestProjectStoppedOnPurpose: a replica compose stops (a stop event) is
// stopped, not failed, even when the watch saw it dead first, whether the
// live stream or only the engine's history has the event: the restarter
// leaves it; one killed (no stop event) is brought back.
func TestProjectStoppedOnPurpose(t *testing.T) {
	eng := newFake()
	clk := &fakeClock{now: time.Unix(1e9, 0)}
	e := newEnvClock(t, nil, eng, clk)
	ids := eng.composeUp("p", "web", 3, map[string]string{labels.PolicyPrefix + "restarter": "true"})
	e.poll()
	eng.kill(ids[2])
	eng.mu.Lock()
	eng.history = append(eng.history, stopEvent(ids[2]))
	eng.mu.Unlock()
	e.poll()
	if got := e.sensor("p", "p-web-3", SensorState); got != `"stopped"` {
		t.Errorf("stopped with its event in the history only: %s", got)
	}
	eng.kill(ids[0])
	e.poll()
	if got := e.sensor("p", "p-web-1", SensorState); got != `"on-fire"` {
		t.Fatalf("dead before its stop event: %s", got)
	}
	eng.events <- stopEvent(ids[0])
	deadline := time.Now().Add(30 * time.Second)
	for e.sensor("p", "p-web-1", SensorState) != `"stopped"` {
		if time.Now().After(deadline) {
			t.Fatal("the stop event did not stop the entity")
		}
		time.Sleep(5 * time.Millisecond)
	}
	clk.Advance(failedDelay)
	e.settle("p")
	e.poll()
	eng.mu.Lock()
	restarted := eng.ctrs[ids[0]].running
	eng.mu.Unlock()
	if got := e.sensor("p", "p-web-1", SensorState); got != `"stopped"` || restarted {
		t.Errorf("a replica stopped on purpose was restarted: %s", got)
	}
	if code, _ := e.do("GET", "/v1/applications/p/entities/p-web-1/sensors/ha.entityFailed", "", ""); code != http.StatusNoContent {
		t.Errorf("ha.entityFailed for a stop: %d", code)
	}
	eng.kill(ids[1])
	e.poll()
	clk.Advance(failedDelay)
	e.settle("p")
	if got := e.sensor("p", "p-web-2", SensorState); got != `"running"` {
		t.Errorf("a killed replica: %s", got)
	}
}

// TestProjectEffectors: stop and start on the project reach every
// container; the project and its services follow.
func TestProjectEffectors(t *testing.T) {
	eng := newFake()
	e := newEnv(t, nil, eng)
	eng.composeUp("p", "web", 2, nil)
	eng.composeUp("p", "db", 1, nil)
	e.poll()
	running := func() int {
		eng.mu.Lock()
		defer eng.mu.Unlock()
		n := 0
		for _, c := range eng.ctrs {
			if c.running {
				n++
			}
		}
		return n
	}
	if code, body := e.do("POST", "/v1/applications/p/entities/p/effectors/stop", "", ""); code != http.StatusNoContent {
		t.Fatalf("stop: %d %s", code, body)
	}
	e.poll()
	if n := running(); n != 0 {
		t.Errorf("%d running after stop", n)
	}
	var app struct{ Status string }
	e.json("/v1/applications/p", &app)
	if app.Status != "STOPPED" || e.sensor("p", "web", SensorState) != `"stopped"` {
		t.Errorf("after stop: project %s, web %s", app.Status, e.sensor("p", "web", SensorState))
	}
	if code, body := e.do("POST", "/v1/applications/p/entities/web/effectors/start", "", ""); code != http.StatusNoContent {
		t.Fatalf("start web: %d %s", code, body)
	}
	e.poll()
	if n := running(); n != 2 {
		t.Errorf("%d running after starting web", n)
	}
	if got := e.sensor("p", "web", SensorReplicasRunning); got != "2" {
		t.Errorf("web running %s", got)
	}
	if code, body := e.do("POST", "/v1/applications/p/entities/p/effectors/restart", "", ""); code != http.StatusNoContent {
		t.Fatalf("restart: %d %s", code, body)
	}
	e.poll()
	e.json("/v1/applications/p", &app)
	if n := running(); n != 3 || app.Status != "RUNNING" {
		t.Errorf("after restart: %d running, %s", n, app.Status)
	}
}

// TestProjectLabelReplacerAndAutoscaler: a replacer asked for by label
// replaces a replica that dies by a new number; an autoscaler on CPU
// grows the service when its replicas are busy.
func TestProjectLabelReplacerAndAutoscaler(t *testing.T) {
	eng := newFake()
	clk := &fakeClock{now: time.Unix(1e9, 0)}
	e := newEnvClock(t, nil, eng, clk)
	p := labels.PolicyPrefix
	ids := eng.composeUp("p", "web", 2, map[string]string{p + "replacer": "true"})
	eng.composeUp("p", "api", 1, map[string]string{p + "autoscaler.metric": "cpu", p + "autoscaler.metricUpperBound": "50", p + "autoscaler.maxPoolSize": "3"})
	e.poll()
	eng.kill(ids[0])
	e.poll()
	clk.Advance(failedDelay)
	e.settle("p")
	var kids []struct{ Name string }
	e.json("/v1/applications/p/entities/web/children", &kids)
	if fmt.Sprint(kids) != "[{p-web-2} {p-web-3}]" {
		t.Errorf("after the replacer: %v", kids)
	}
	eng.mu.Lock()
	_, old := eng.ctrs[ids[0]]
	eng.mu.Unlock()
	if old {
		t.Errorf("the failed replica %s is still there", ids[0])
	}
	eng.setCPU(90)
	e.poll()
	e.settle("p")
	if got := e.sensor("p", "api", SensorGroupMembersCount); got != "2" {
		t.Errorf("api members at 90%% CPU: %s", got)
	}
	if got := e.sensor("p", "api", SensorReplicasWanted); got != "2" {
		t.Errorf("api wanted after the autoscaler: %s", got)
	}
}
