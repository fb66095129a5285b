package proxy_test

// The ingress table itself (claims, forwards, the reconcile loop) is
// tested in sdn/ingress; these tests are of the handlers that ask it:
// create, start, inspect and ps.

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/sdn/ingress"
)

// ingressAddr is where the tests' ingress listens: another loopback
// address than the fake hosts' 127.0.0.1, so that a forward to a "host"
// port does not reach the listener itself.
const ingressAddr = "127.0.0.2"

// newIngressEnv is newEnv with the ingress on, every host treated as
// remote, its loop running for the test.
func newIngressEnv(t *testing.T, opts ...fakeOpts) *env {
	t.Helper()
	return newEnvWith(t, func(e *env) {
		tab, err := ingress.NewTable(e.fleet, ingress.Config{Address: net.ParseIP(ingressAddr), PortMin: 41000, PortMax: 41999,
			Local: func(*hosts.Host) bool { return false }}, nil, e.log)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go tab.Run(ctx)
		t.Cleanup(func() { cancel(); tab.Wait(5 * time.Second) })
		e.srv.Ingress = tab
	}, opts...)
}

// freeTCPPort is a port free on 127.0.0.1 and on the ingress address.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if l2, err := net.Listen("tcp", net.JoinHostPort(ingressAddr, strconv.Itoa(p))); err == nil {
			l2.Close()
			return p
		}
	}
	t.Fatal("no free port")
	return 0
}

// hostConfigOf reads the HostConfig a fake engine was given.
func hostConfigOf(t *testing.T, e *env, id string) struct {
	PublishAllPorts bool
	PortBindings    map[string][]struct{ HostIp, HostPort string }
} {
	t.Helper()
	c, ok := e.fakes[e.owner(id)].Container(id)
	if !ok {
		t.Fatalf("no container %s", id)
	}
	var hc struct {
		PublishAllPorts bool
		PortBindings    map[string][]struct{ HostIp, HostPort string }
	}
	if err := json.Unmarshal(c.HostConfig, &hc); err != nil {
		t.Fatal(err)
	}
	return hc
}

func TestIngressCreateSendsExplicitPorts(t *testing.T) {
	e := newIngressEnv(t, twoBusyboxHosts()...)
	id := e.create("", map[string]any{"Image": "busybox", "ExposedPorts": map[string]any{"8081/tcp": map[string]any{}},
		"HostConfig": map[string]any{"PublishAllPorts": true,
			"PortBindings": map[string]any{"80/tcp": []any{map[string]any{"HostPort": ""}}}}})
	hc := hostConfigOf(t, e, id)
	for _, port := range []string{"80/tcp", "8081/tcp"} {
		bs := hc.PortBindings[port]
		if len(bs) != 1 {
			t.Fatalf("bindings passed to the engine: %+v", hc.PortBindings)
		}
		if n, err := strconv.Atoi(bs[0].HostPort); err != nil || n < 41000 || n > 41999 {
			t.Fatalf("%s: host port %q not from the ingress range", port, bs[0].HostPort)
		}
	}
	if !hc.PublishAllPorts {
		t.Fatal("PublishAllPorts lost on the way")
	}
}

func TestIngressCreateConflictAndShownAddress(t *testing.T) {
	e := newIngressEnv(t, twoBusyboxHosts()...)
	port := freeTCPPort(t)
	p := strconv.Itoa(port)
	spec := map[string]any{"Image": "busybox", "HostConfig": map[string]any{
		"PortBindings": map[string]any{"80/tcp": []any{map[string]any{"HostPort": p}}}}}
	id := e.create("web", spec)
	e.waitCached(id)

	// A second container asking the held port: Docker's conflict, naming
	// the holder; nothing is created.
	before := e.createCalls()
	r := e.do("POST", "/v1.41/containers/create?name=web2", spec)
	if r.status != 409 || !strings.Contains(r.message(), "Bind for 0.0.0.0:"+p+" failed: port is already allocated") ||
		!strings.Contains(r.message(), `"web"`) {
		t.Fatalf("second create on a held port: %s", r)
	}
	if e.createCalls() != before {
		t.Fatal("the conflicting create reached an engine")
	}

	if r := e.do("POST", "/v1.41/containers/web/start", nil); r.status != 204 {
		t.Fatalf("start: %s", r)
	}
	// inspect and ps show the ingress address, once per port.
	r = e.do("GET", "/v1.41/containers/web/json", nil)
	var in struct {
		Name            string
		NetworkSettings struct {
			Ports map[string][]struct{ HostIp, HostPort string }
		}
	}
	if err := json.Unmarshal(r.body, &in); err != nil || in.Name != "/web" {
		t.Fatalf("inspect: %v %s", err, r)
	}
	if got := in.NetworkSettings.Ports["80/tcp"]; len(got) != 1 || got[0].HostIp != ingressAddr || got[0].HostPort != p {
		t.Fatalf("inspect ports: %+v", in.NetworkSettings.Ports)
	}
	r = e.do("GET", "/v1.41/containers/json", nil)
	var list []struct {
		Id    string
		Ports []struct {
			IP                      string
			PrivatePort, PublicPort int
			Type                    string
		}
	}
	if err := json.Unmarshal(r.body, &list); err != nil || len(list) != 1 {
		t.Fatalf("list: %v %s", err, r)
	}
	if ps := list[0].Ports; len(ps) != 1 || ps[0].IP != ingressAddr || ps[0].PublicPort != port || ps[0].PrivatePort != 80 {
		t.Fatalf("list ports: %+v", ps)
	}
	if !strings.Contains(string(r.body), `"PrivatePort":80,"PublicPort":`+p+`,"Type":"tcp"`) {
		t.Fatalf("list entry reshaped: %s", r.body)
	}

	// Stopped and removed: the port is free for another.
	for _, req := range [][2]string{{"POST", "/v1.41/containers/web/stop"}, {"DELETE", "/v1.41/containers/web"}} {
		if r := e.do(req[0], req[1], nil); r.status != 204 {
			t.Fatalf("%s %s: %s", req[0], req[1], r)
		}
	}
	e.create("web2", spec)
}

func TestIngressCannotBindFailsCleanly(t *testing.T) {
	e := newIngressEnv(t, twoBusyboxHosts()...)
	port := freeTCPPort(t)
	taken, err := net.Listen("tcp", net.JoinHostPort(ingressAddr, strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	r := e.do("POST", "/v1.41/containers/create?name=web", map[string]any{"Image": "busybox", "HostConfig": map[string]any{
		"PortBindings": map[string]any{"80/tcp": []any{map[string]any{"HostPort": strconv.Itoa(port)}}}}})
	if r.status != 409 || !strings.Contains(r.message(), "cannot listen on "+ingressAddr+":"+strconv.Itoa(port)) ||
		!strings.Contains(r.message(), "address already in use") {
		t.Fatalf("create on a port the manager cannot bind: %s", r)
	}
	if e.createCalls() != 0 {
		t.Fatal("the create reached an engine")
	}
	// The name is free again.
	e.create("web", map[string]any{"Image": "busybox"})
}

func TestIngressBadPortIsRefused(t *testing.T) {
	e := newIngressEnv(t, twoBusyboxHosts()...)
	r := e.do("POST", "/v1.41/containers/create?name=web", map[string]any{"Image": "busybox", "HostConfig": map[string]any{
		"PortBindings": map[string]any{"80/tcp": []any{map[string]any{"HostPort": "80-70"}}}}})
	if r.status != 400 || !strings.Contains(r.message(), `invalid port specification: "80-70"`) {
		t.Fatalf("create with a bad host port: %s", r)
	}
	if e.createCalls() != 0 {
		t.Fatal("the create reached an engine")
	}
	e.create("web", map[string]any{"Image": "busybox"})
}

func TestIngressOffPortsArePerHost(t *testing.T) {
	e := newEnv(t, twoBusyboxHosts()...)
	spec := map[string]any{"Image": "busybox", "HostConfig": map[string]any{
		"PortBindings": map[string]any{"80/tcp": []any{map[string]any{"HostPort": "18080"}}}}}
	a, b := e.create("pa", spec), e.create("pb", spec)
	if e.owner(a) == e.owner(b) {
		t.Fatal("without ingress two containers publishing 18080 share a host")
	}
	// Inspect is the engine's own.
	if r := e.do("POST", "/v1.41/containers/pa/start", nil); r.status != 204 {
		t.Fatal(r)
	}
	r := e.do("GET", "/v1.41/containers/pa/json", nil)
	if !strings.Contains(string(r.body), `"HostIp":"0.0.0.0"`) {
		t.Fatalf("inspect without ingress: %s", r.body)
	}
}

func twoBusyboxHosts() []fakeOpts {
	return []fakeOpts{{name: "h1", images: []string{"busybox"}}, {name: "h2", images: []string{"busybox"}}}
}

func TestIngressStartOnATakenPort(t *testing.T) {
	e := newIngressEnv(t, twoBusyboxHosts()...)
	p := strconv.Itoa(freeTCPPort(t))
	spec := map[string]any{"Image": "busybox", "HostConfig": map[string]any{
		"PortBindings": map[string]any{"80/tcp": []any{map[string]any{"HostPort": p}}}}}
	e.create("first", spec)
	for _, path := range []string{"/v1.41/containers/first/start", "/v1.41/containers/first/stop"} {
		if r := e.do("POST", path, nil); r.status != 204 {
			t.Fatalf("%s: %s", path, r)
		}
	}
	// Stopped, it holds nothing: another takes the port (as compose does
	// when it recreates a service).
	e.create("second", spec)
	if r := e.do("POST", "/v1.41/containers/second/start", nil); r.status != 204 {
		t.Fatalf("start second: %s", r)
	}
	waitFor(t, "second to hold the port", func() bool {
		r := e.do("POST", "/v1.41/containers/first/start", nil)
		return r.status == 409 && strings.Contains(r.message(), "port is already allocated (by container \"second\"")
	})
}
