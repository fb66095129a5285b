package blueprint

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/network"

	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/internal/store"
)

// ctrOf is the fake container of an entity (by YAML id or name).
func (e *env) ctrOf(app, ent string) (string, *fakeCtr) {
	e.t.Helper()
	id := strings.Trim(e.sensor(app, ent, "docker.container.id"), `"`)
	e.eng.mu.Lock()
	defer e.eng.mu.Unlock()
	c := e.eng.ctrs[id]
	if c == nil {
		e.t.Fatalf("%s: no container %s", ent, id)
	}
	return id, c
}

const process = `name: Proc
services:
- type: org.apache.brooklyn.entity.software.base.VanillaSoftwareProcess
  id: app
  install.command: mkdir -p /www
  launch.command: httpd -p 8080 -h /www
  checkRunning.command: wget -q -O /dev/null http://127.0.0.1:8080/
  stop.command: killall httpd
  shell.env:
    GREETING: $brooklyn:formatString("hello %s", "there")
- type: EmptySoftwareProcess
  id: idle
`

// TestSoftwareProcess: the commands become the container's script in the
// base image, shell.env its environment; service.isUp follows
// checkRunning.command, at start and when polled.
func TestSoftwareProcess(t *testing.T) {
	e := newEnv(t, nil, newFake())
	failing := false
	e.eng.exec.execCode = func(ctr string, cmd []string) int {
		if failing && strings.Contains(strings.Join(cmd, " "), "wget") {
			return 1
		}
		return 0
	}
	app := e.deploy(process)
	if got := e.sensor(app, "app", "service.isUp"); got != "true" {
		t.Fatalf("app isUp %s", got)
	}
	id, c := e.ctrOf(app, "app")
	if c.opts.Config.Image != "busybox:latest" {
		t.Errorf("image %s", c.opts.Config.Image)
	}
	script := strings.Join(c.opts.Config.Entrypoint, " ")
	for _, want := range []string{"mkdir -p /www", "httpd -p 8080 -h /www", "killall httpd", "trap 'clocker_stop; exit 0' TERM"} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
	if strings.Index(script, "mkdir") > strings.Index(script, "httpd -p") {
		t.Error("install runs after launch")
	}
	if !slices.Contains(c.opts.Config.Env, "GREETING=hello there") {
		t.Errorf("env %v", c.opts.Config.Env)
	}
	ran := e.eng.execsIn(id)
	if len(ran) == 0 || !strings.Contains(strings.Join(ran[len(ran)-1], " "), "wget -q") {
		t.Errorf("checkRunning not run: %v", ran)
	}
	if got := e.sensor(app, "idle", "service.isUp"); got != "true" {
		t.Errorf("EmptySoftwareProcess isUp %s", got)
	}
	failing = true
	if err := e.m.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.sensor(app, "app", "service.state"); got != `"on-fire"` {
		t.Errorf("after a failing check: %s", got)
	}
	failing = false
	_ = e.m.Poll(context.Background())
	if got := e.sensor(app, "app", "service.isUp"); got != "true" {
		t.Errorf("after the check passes again: %s", got)
	}
}

// TestSoftwareProcessFailsWhenContainerEnds: a process whose container
// ended (a command failed) fails its start instead of waiting.
func TestSoftwareProcessFailsWhenContainerEnds(t *testing.T) {
	eng := newFake()
	e := newEnv(t, nil, eng)
	eng.exec.execCode = func(ctr string, cmd []string) int {
		eng.kill(ctr) // the launch failed: the script ended
		return 1
	}
	code, body := e.do("POST", "/v1/applications", "application/json", process)
	if code != http.StatusCreated {
		t.Fatalf("deploy %d %s", code, body)
	}
	a := e.m.Apps()[0]
	e.settle(a.ID)
	if got := e.m.Status(a); got != "ERROR" {
		t.Errorf("status %s", got)
	}
	if got := e.sensor(a.ID, "app", "service.problems"); !strings.Contains(got, "exited") {
		t.Errorf("problems %s", got)
	}
}

const networked = `name: Nets
services:
- type: brooklyn.networking.VirtualNetwork
  id: data
  networkId: bp-data
  cidr: 10.240.7.0/24
- type: docker:busybox
  id: db
  network.list: [ bp-data ]
- type: docker:busybox
  id: other
`

// TestVirtualNetwork: the network is made with its subnet before the
// container joining it, which also keeps its application's network;
// DELETE removes both networks.
func TestVirtualNetwork(t *testing.T) {
	e := newEnv(t, nil, newFake())
	app := e.deploy(networked)
	if got := e.sensor(app, "data", "network.cidr"); got != `"10.240.7.0/24"` {
		t.Errorf("cidr sensor %s", got)
	}
	id, c := e.ctrOf(app, "db")
	if string(c.opts.HostConfig.NetworkMode) != "brooklyn-"+app {
		t.Errorf("db's network %s", c.opts.HostConfig.NetworkMode)
	}
	e.eng.exec.mu.Lock()
	joined := e.eng.exec.joined[id]
	opts := e.eng.exec.nets["bp-data"]
	e.eng.exec.mu.Unlock()
	if !slices.Equal(joined, []string{"bp-data"}) {
		t.Errorf("db joined %v", joined)
	}
	if opts.IPAM == nil || opts.IPAM.Config[0].Subnet.String() != "10.240.7.0/24" || opts.Labels[labels.BlueprintApplication] != app {
		t.Errorf("network made with %+v", opts)
	}
	oid, _ := e.ctrOf(app, "other")
	if len(e.eng.exec.joined[oid]) != 0 {
		t.Error("other joined a network it does not list")
	}
	code, body := e.do("DELETE", "/v1/applications/"+app, "", "")
	if code != http.StatusAccepted {
		t.Fatalf("delete %d %s", code, body)
	}
	for _, a := range e.m.Apps() {
		e.settle(a.ID)
	}
	if _, nets, _ := e.eng.snapshot(); nets != 0 {
		t.Errorf("%d networks left", nets)
	}
}

// TestPlacementAndRefusals: strategies and affinity rules reach the
// create as Clocker's labels; a missing network, an unknown strategy and
// an unset external value are 400s that make nothing.
func TestPlacementAndRefusals(t *testing.T) {
	e := newEnv(t, nil, newFake())
	app := e.deploy(`services:
- type: docker:busybox
  id: c
  docker.container.strategies:
  - $brooklyn:object:
      type: clocker.docker.location.strategy.basic.MaxContainersPlacementStrategy
      maxContainers: 3
  - $brooklyn:object:
      type: DepthFirstPlacementStrategy
  affinity.rules: "NOT TYPE, NAME web"
`)
	_, c := e.ctrOf(app, "c")
	if got := c.opts.Config.Labels[labels.Strategy]; got != "max-containers=3,depth-first" {
		t.Errorf("strategy label %q", got)
	}
	if got := c.opts.Config.Labels[labels.Affinity]; got != "NOT TYPE\nNAME *web*" {
		t.Errorf("affinity label %q", got)
	}
	before := e.eng.creates
	for plan, want := range map[string]string{
		"services:\n- type: docker:busybox\n  network.list: [ nowhere ]\n":                                        "network nowhere does not exist",
		"services:\n- type: docker:busybox\n  docker.container.strategies: [ SmartPlacementStrategy ]\n":          "unknown placement strategy SmartPlacementStrategy",
		"services:\n- type: docker:busybox\n  env:\n    P: $brooklyn:external(\"env\", \"CLOCKER_BP_UNSET_X\")\n": "CLOCKER_BP_UNSET_X is not set",
		"services:\n- type: docker:busybox\n  env:\n    P: $brooklyn:external(\"env\", \"HOME\")\n":               "only variables named CLOCKER_BP_",
		"services:\n- type: docker:busybox\n  env:\n    P: $brooklyn:external(\"vault\", \"k\")\n":                "is not configured (known: env)",
	} {
		code, body := e.do("POST", "/v1/applications", "application/json", plan)
		if code != http.StatusBadRequest || !strings.Contains(body, want) {
			t.Errorf("%q: %d %s, want 400 with %q", plan, code, body, want)
		}
	}
	if e.eng.creates != before || len(e.m.Apps()) != 1 {
		t.Errorf("a refused blueprint made something: %d creates, %d apps", e.eng.creates-before, len(e.m.Apps()))
	}
}

// TestExternalEnv: $brooklyn:external("env", K) reads clocker serve's
// CLOCKER_BP_ variables.
func TestExternalEnv(t *testing.T) {
	t.Setenv("CLOCKER_BP_TEST_PASSWORD", "s3cret")
	e := newEnv(t, nil, newFake())
	app := e.deploy("services:\n- type: docker:busybox\n  id: db\n  env:\n    PW: $brooklyn:external(\"env\", \"CLOCKER_BP_TEST_PASSWORD\")\n")
	_, c := e.ctrOf(app, "db")
	if !slices.Contains(c.opts.Config.Env, "PW=s3cret") {
		t.Errorf("env %v", c.opts.Config.Env)
	}
}

const webApp = `name: Shop
services:
- type: org.apache.brooklyn.entity.webapp.ControlledDynamicWebAppCluster
  id: web
  initialSize: 2
  memberSpec:
    $brooklyn:entitySpec:
      type: docker:busybox
      openPorts: [ 8080 ]
`

// TestWebCluster: the controller publishes proxy.http.port and gets the
// members' addresses through exec; the web cluster shows main.uri,
// webapp.url and group.members; resize on it grows the cluster and the
// controller follows; a member down leaves the pool.
func TestWebCluster(t *testing.T) {
	e := newEnv(t, nil, newFake())
	app := e.deploy(webApp)
	e.settle(app)
	targets := func() string {
		e.settle(app)
		return e.sensor(app, "web controller", "proxy.serverpool.targets")
	}
	if got := targets(); strings.Count(got, ":8080") != 2 {
		t.Fatalf("targets %s", got)
	}
	uri := e.sensor(app, "web", "main.uri")
	if uri == "" || uri != e.sensor(app, "web", "webapp.url") || uri != e.sensor(app, "web controller", "main.uri") {
		t.Errorf("main.uri %s webapp.url %s", uri, e.sensor(app, "web", "webapp.url"))
	}
	_, ctl := e.ctrOf(app, "web controller")
	if _, ok := ctl.opts.HostConfig.PortBindings[network.MustParsePort("8000/tcp")]; !ok {
		t.Errorf("controller ports %v", ctl.opts.HostConfig.PortBindings)
	}
	code, body := e.do("POST", "/v1/applications/"+app+"/entities/web/effectors/resize", "application/x-www-form-urlencoded", "desiredSize=3")
	if code != http.StatusOK || strings.TrimSpace(body) != "3" {
		t.Fatalf("resize: %d %s", code, body)
	}
	if got := targets(); strings.Count(got, ":8080") != 3 {
		t.Errorf("after resize: %s", got)
	}
	if got := e.sensor(app, "web", "group.members.count"); got != "3" {
		t.Errorf("web group.members.count %s", got)
	}
	a, _ := e.m.App(app)
	cl := a.byNodeEntity(a.plan.Nodes[1].Web.Cluster)
	member := cl.Children()[0]
	m, _ := e.m.Sensor(member, "docker.container.id")
	e.eng.kill(str(m))
	_ = e.m.Poll(context.Background())
	if got := targets(); strings.Count(got, ":8080") != 2 {
		t.Errorf("with a member down: %s", got)
	}
}

// TestResumeNewKinds: after a restart a web cluster, a network and a
// software process come back with their containers adopted (none made
// twice) and the controller rewritten with the members.
func TestResumeNewKinds(t *testing.T) {
	st := tempStore(t)
	eng := newFake()
	e := newEnv(t, st, eng)
	app := e.deploy(webApp + `- type: VanillaSoftwareProcess
  id: proc
  launch.command: "true"
  network.list: [ bp-data ]
- type: brooklyn.networking.VirtualNetwork
  networkId: bp-data
`)
	e.settle(app)
	creates := eng.creates
	ctl, _ := e.ctrOf(app, "web controller")
	before := len(eng.execsIn(ctl))
	e.m.Close()
	e2 := newEnv(t, st, eng)
	if err := e2.m.Resume(); err != nil {
		t.Fatal(err)
	}
	e2.settle(app)
	if eng.creates != creates {
		t.Errorf("%d creates after resume, want %d", eng.creates, creates)
	}
	for _, ent := range []string{"web", "proc", "bp-data", "web controller"} {
		if got := e2.sensor(app, ent, "service.isUp"); got != "true" {
			t.Errorf("%s isUp after resume: %s", ent, got)
		}
	}
	if got := e2.sensor(app, "web controller", "proxy.serverpool.targets"); strings.Count(got, ":8080") != 2 {
		t.Errorf("targets after resume %s", got)
	}
	if after := len(eng.execsIn(ctl)); after <= before {
		t.Error("the controller was not rewritten after the restart")
	}
}

// tempStore is a store in a temporary directory, closed after the test.
func tempStore(t *testing.T) store.Store {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
