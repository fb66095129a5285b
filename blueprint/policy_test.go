package blueprint

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clocker/clocker/internal/store"
)

// fakeClock runs AfterFunc callbacks when Advance passes their time.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	if d <= 0 {
		c.mu.Unlock()
		f()
		c.mu.Lock()
		return func() bool { return false }
	}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// Advance moves time on, running due timers in time order.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	for {
		sort.Slice(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
		if len(c.timers) == 0 || c.timers[0].at.After(end) {
			break
		}
		t := c.timers[0]
		c.timers = c.timers[1:]
		c.now = t.at
		if t.stopped {
			continue
		}
		t.stopped = true
		c.mu.Unlock()
		t.f()
		c.mu.Lock()
	}
	c.now = end
	c.mu.Unlock()
}

// settle waits for every task of the application to end.
func (e *env) settle(app string) {
	e.t.Helper()
	a, err := e.m.App(app)
	if err != nil {
		e.t.Fatal(err)
	}
	// A task starts the tasks it needs before it ends, so once every task
	// seen has ended, the controllers' background rewrites too, and no new
	// task has appeared, the app is settled. (No sleeping: under CI's load
	// a fixed pause was too short.)
	seen := -1
	for {
		var tasks []*Task
		for _, x := range a.all() {
			tasks = append(tasks, e.m.Tasks(x)...)
		}
		if len(tasks) == seen {
			return
		}
		seen = len(tasks)
		for _, tk := range tasks {
			<-tk.Done()
		}
		e.m.web.syncs.wait()
	}
}

// gone waits until a deleted application is forgotten (its delete task
// done): settle cannot, as the application it would look up goes.
func (e *env) gone(app string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := e.m.App(app); err != nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("application %s still there 10s after its delete", app)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *fakeEngine) kill(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ctrs[id].running = false
}

func (f *fakeEngine) setCPU(cpu float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.ctrs {
		c.cpu = cpu
	}
}

const healed = `name: Healed
services:
- type: docker:busybox
  id: db
  brooklyn.enrichers:
  - type: org.apache.brooklyn.policy.ha.ServiceFailureDetector
    brooklyn.config:
      entityFailed.stabilizationDelay: 5s
  brooklyn.policies:
  - type: org.apache.brooklyn.policy.ha.ServiceRestarter
    brooklyn.config:
      failOnRecurringFailuresInThisDuration: 1m
`

// TestRestarter: a container that dies goes on fire at the next poll;
// after the detector's stabilisation delay (not before) ha.entityFailed
// fires and the restarter brings it back; a second death within the
// window is not restarted: on fire, ha.entityFailed.restart.
func TestRestarter(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1e9, 0)}
	eng := newFake()
	e := newEnvClock(t, nil, eng, clk)
	app := e.deploy(healed)
	id := strings.Trim(e.sensor(app, "db", "docker.container.id"), `"`)
	eng.kill(id)
	if err := e.m.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.sensor(app, "db", "service.state"); got != `"on-fire"` {
		t.Fatalf("after the kill: %s", got)
	}
	clk.Advance(4 * time.Second)
	e.settle(app)
	if code, _ := e.do("GET", "/v1/applications/"+app+"/entities/db/sensors/ha.entityFailed", "", ""); code != http.StatusNoContent {
		t.Fatalf("ha.entityFailed before the stabilisation delay: %d", code)
	}
	clk.Advance(time.Second)
	e.settle(app)
	if got := e.sensor(app, "db", "service.state"); got != `"running"` {
		t.Fatalf("not restarted: %s", got)
	}
	if eng.creates != 1 {
		t.Errorf("restart made a container: %d creates", eng.creates)
	}
	clk.Advance(30 * time.Second)
	eng.kill(id)
	_ = e.m.Poll(context.Background())
	clk.Advance(5 * time.Second)
	e.settle(app)
	if got := e.sensor(app, "db", "service.state"); got != `"on-fire"` {
		t.Fatalf("a recurring failure was restarted: %s", got)
	}
	if got := e.sensor(app, "db", "ha.entityFailed.restart"); !strings.Contains(got, "within 1m0s") {
		t.Errorf("ha.entityFailed.restart %s", got)
	}
}

const scaled = `name: Scaled
services:
- type: org.apache.brooklyn.entity.group.DynamicCluster
  id: web
  initialSize: 1
  memberSpec:
    $brooklyn:entitySpec:
      type: docker:busybox
      name: member
  brooklyn.enrichers:
  - type: org.apache.brooklyn.enricher.stock.Aggregator
    brooklyn.config:
      enricher.sourceSensor: docker.cpu.percent
      enricher.targetSensor: cpu.average
      transformation: average
  brooklyn.policies:
  - type: org.apache.brooklyn.policy.autoscaling.AutoScalerPolicy
    brooklyn.config:
      metric: cpu.average
      metricLowerBound: 10
      metricUpperBound: 50
      maxPoolSize: 3
      resizeUpStabilizationDelay: 10s
      resizeDownStabilizationDelay: 20s
`

func (e *env) count(app, ent string) string {
	return e.sensor(app, ent, "group.members.count")
}

// TestAutoScaler: CPU from the members' stats, averaged by the
// Aggregator, grows the cluster in proportion after the up delay, never
// above maxPoolSize, and shrinks it to minPoolSize after the down delay.
func TestAutoScaler(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1e9, 0)}
	eng := newFake()
	e := newEnvClock(t, nil, eng, clk)
	app := e.deploy(scaled)
	if got := e.count(app, "web"); got != "1" {
		t.Fatalf("initial members %s", got)
	}
	eng.setCPU(90)
	_ = e.m.Poll(context.Background())
	if got := e.sensor(app, "web", "cpu.average"); got != "90" {
		t.Fatalf("cpu.average %s", got)
	}
	clk.Advance(9 * time.Second)
	e.settle(app)
	if got := e.count(app, "web"); got != "1" {
		t.Fatalf("grew before the stabilisation delay: %s", got)
	}
	clk.Advance(time.Second)
	e.settle(app)
	if got := e.count(app, "web"); got != "2" { // ceil(1 × 90/50)
		t.Fatalf("after the delay: %s members, want 2", got)
	}
	eng.setCPU(200)
	_ = e.m.Poll(context.Background())
	clk.Advance(10 * time.Second)
	e.settle(app)
	if got := e.count(app, "web"); got != "3" { // 8 wanted, maxPoolSize 3
		t.Fatalf("bounded: %s members, want 3", got)
	}
	eng.setCPU(1)
	_ = e.m.Poll(context.Background())
	clk.Advance(20 * time.Second)
	e.settle(app)
	if got := e.count(app, "web"); got != "1" {
		t.Fatalf("shrunk to %s, want minPoolSize 1", got)
	}
	if got := e.sensor(app, "web", "service.isUp"); got != "true" {
		t.Errorf("cluster isUp %s", got)
	}
	ctrs, _, _ := eng.snapshot()
	if ctrs != 1 {
		t.Errorf("%d containers after shrinking to 1", ctrs)
	}
}

// TestClusterEffectorsAndPolicies: resize/resizeByDelta over REST as br
// sends them; the policy list, stop/start/destroy (204), add ?type=,
// config; all kept across a restart.
func TestClusterEffectorsAndPolicies(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng := newFake()
	e := newEnv(t, st, eng)
	app := e.deploy(scaled)
	base := "/v1/applications/" + app + "/entities/web"
	code, body := e.do("POST", base+"/effectors/resize", "application/x-www-form-urlencoded", "desiredSize=3")
	if code != 200 || strings.TrimSpace(body) != "3" {
		t.Fatalf("resize: %d %s", code, body)
	}
	code, body = e.do("POST", base+"/effectors/resizeByDelta", "application/json", `{"delta": -1}`)
	if code != 200 || strings.TrimSpace(body) != "2" {
		t.Fatalf("resizeByDelta: %d %s", code, body)
	}
	if code, body = e.do("POST", base+"/effectors/resize", "application/json", `{"desiredSize": "x"}`); code != 400 || !strings.Contains(body, "not an integer") {
		t.Errorf("bad parameter: %d %s", code, body)
	}
	var members []string
	_ = json.Unmarshal([]byte(e.sensor(app, "web", "group.members")), &members)
	if len(members) != 2 {
		t.Fatalf("group.members %v", members)
	}
	code, body = e.do("GET", base+"/policies", "", "")
	var pols []struct{ ID, Name, State string }
	if err := json.Unmarshal([]byte(body), &pols); code != 200 || err != nil || len(pols) != 1 || pols[0].Name != "AutoScalerPolicy" || pols[0].State != "RUNNING" {
		t.Fatalf("policies: %d %s", code, body)
	}
	if code, body = e.do("POST", base+"/policies/"+pols[0].ID+"/stop", "", ""); code != 204 {
		t.Fatalf("stop: %d %s", code, body)
	}
	if code, body = e.do("POST", base+"/policies?type=org.apache.brooklyn.policy.ha.ServiceReplacer", "application/json", `{"failOnNumRecurringFailures": 2}`); code != 200 {
		t.Fatalf("add: %d %s", code, body)
	}
	if code, body = e.do("POST", base+"/policies?type=NoSuchPolicy", "application/json", `{}`); code != 400 || !strings.Contains(body, "NoSuchPolicy") {
		t.Errorf("unknown type: %d %s", code, body)
	}
	if code, body = e.do("GET", base+"/policies/ServiceReplacer/config/failOnNumRecurringFailures", "", ""); code != 200 || strings.TrimSpace(body) != "2" {
		t.Errorf("config key: %d %q", code, body)
	}
	code, body = e.do("GET", base+"/policies/AutoScalerPolicy/config", "", "")
	var keys []struct {
		Name     string
		Priority int
	}
	if err := json.Unmarshal([]byte(body), &keys); code != 200 || err != nil || len(keys) < 13 {
		t.Errorf("config list: %d %s", code, body)
	}
	code, body = e.do("GET", base+"/enrichers", "", "")
	if code != 200 || !strings.Contains(body, `"name":"Aggregator"`) {
		t.Errorf("enrichers: %d %s", code, body)
	}
	creates := eng.creates
	e.m.Close()
	e2 := newEnv(t, st, eng)
	if err := e2.m.Resume(); err != nil {
		t.Fatal(err)
	}
	e2.settle(app)
	if got := e2.count(app, "web"); got != "2" {
		t.Errorf("members after resume: %s", got)
	}
	if eng.creates != creates {
		t.Errorf("resume made %d containers", eng.creates-creates)
	}
	_, body = e2.do("GET", base+"/policies", "", "")
	if !strings.Contains(body, `"name":"AutoScalerPolicy"`) || !strings.Contains(body, `"state":"STOPPED"`) || !strings.Contains(body, `"name":"ServiceReplacer"`) {
		t.Errorf("policies after resume: %s", body)
	}
	if code, _ := e2.do("POST", base+"/policies/ServiceReplacer/destroy", "", ""); code != 204 {
		t.Errorf("destroy: %d", code)
	}
	if _, body = e2.do("GET", base+"/policies", "", ""); strings.Contains(body, "ServiceReplacer") {
		t.Errorf("destroyed policy still listed: %s", body)
	}
	if code, body = e2.do("DELETE", "/v1/applications/"+app, "", ""); code != 202 {
		t.Fatalf("delete: %d %s", code, body)
	}
	e2.gone(app)
	if ctrs, _, _ := eng.snapshot(); ctrs != 0 {
		t.Errorf("%d containers after delete", ctrs)
	}
}

// TestQuietManagerDoesNotAct: a manager that lost the fleet's leadership
// (SetActing(false)) leaves a failed entity to the leader: its restarter
// neither restarts it nor keeps a timer that would; leading again, it
// heals what is still failed.
func TestQuietManagerDoesNotAct(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1e9, 0)}
	eng := newFake()
	e := newEnvClock(t, nil, eng, clk)
	app := e.deploy(healed)
	id := strings.Trim(e.sensor(app, "db", "docker.container.id"), `"`)

	// A failure seen while leading, then leadership lost before the
	// restarter's delay: the pending restart is dropped.
	eng.kill(id)
	if err := e.m.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.m.SetActing(false)
	clk.Advance(time.Minute)
	e.settle(app)
	if got := e.sensor(app, "db", "service.state"); got != `"on-fire"` {
		t.Fatalf("a quiet manager restarted db: %s", got)
	}
	if code, _ := e.do("GET", "/v1/applications/"+app+"/entities/db/sensors/ha.entityFailed", "", ""); code != http.StatusNoContent {
		t.Errorf("a quiet manager's restarter acted: ha.entityFailed %d", code)
	}

	// Leading again, it heals what is still on fire.
	e.m.SetActing(true)
	clk.Advance(5 * time.Second)
	e.settle(app)
	if got := e.sensor(app, "db", "service.state"); got != `"running"` {
		t.Fatalf("leading again, db not restarted: %s", got)
	}
}
