package proxy_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/proxy"
)

// ingressAddr is where the tests' ingress listens: another loopback
// address than the fake hosts' 127.0.0.1, so that a forward to a "host"
// port does not reach the listener itself.
const ingressAddr = "127.0.0.2"

// enableIngress turns the ingress on for a server of the env, every host
// treated as remote.
func enableIngress(t *testing.T, s *proxy.Server, reg prometheus.Registerer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	err := s.EnableIngress(ctx, proxy.IngressConfig{Address: net.ParseIP(ingressAddr), PortMin: 41000, PortMax: 41999,
		Registerer: reg, Local: func(*hosts.Host) bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
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

func TestIngressAllocatesRandomPorts(t *testing.T) {
	e := newEnv(t, twoBusyboxHosts()...)
	enableIngress(t, e.srv, nil)
	tests := []struct {
		name string
		spec map[string]any
		port string
	}{
		{"empty host port", map[string]any{"Image": "busybox", "HostConfig": map[string]any{
			"PortBindings": map[string]any{"80/tcp": []any{map[string]any{"HostPort": ""}}}}}, "80/tcp"},
		{"host port 0, udp", map[string]any{"Image": "busybox", "HostConfig": map[string]any{
			"PortBindings": map[string]any{"53/udp": []any{map[string]any{"HostIp": "", "HostPort": "0"}}}}}, "53/udp"},
		{"publish all", map[string]any{"Image": "busybox", "ExposedPorts": map[string]any{"8081/tcp": map[string]any{}},
			"HostConfig": map[string]any{"PublishAllPorts": true}}, "8081/tcp"},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := e.create("", tc.spec)
			hc := hostConfigOf(t, e, id)
			bs := hc.PortBindings[tc.port]
			if len(bs) != 1 {
				t.Fatalf("bindings passed to the engine: %+v", hc.PortBindings)
			}
			n, err := strconv.Atoi(bs[0].HostPort)
			if err != nil || n < 41000 || n > 41999 {
				t.Fatalf("host port %q not from the ingress range", bs[0].HostPort)
			}
			if seen[bs[0].HostPort] {
				t.Fatalf("port %s given twice", bs[0].HostPort)
			}
			seen[bs[0].HostPort] = true
		})
	}
}

func TestIngressForwardsAndShowsItsAddress(t *testing.T) {
	e := newEnv(t, twoBusyboxHosts()...)
	reg := prometheus.NewRegistry()
	enableIngress(t, e.srv, reg)
	port := freeTCPPort(t)
	// The container's published port on its "host": an echo.
	echo, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
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
	front := net.JoinHostPort(ingressAddr, p)
	waitFor(t, "the forward", func() bool {
		c, err := net.DialTimeout("tcp", front, time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("hello")); err != nil {
			return false
		}
		buf := make([]byte, 5)
		_, err = io.ReadFull(c, buf)
		return err == nil && string(buf) == "hello"
	})

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

	// Metrics: one open forward, its connections and bytes (counted when
	// the connection ends).
	var got map[string]float64
	gather := func() bool {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got = map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				labels := ""
				for _, l := range m.GetLabel() {
					labels += l.GetName() + "=" + l.GetValue() + ","
				}
				got[mf.GetName()+"{"+labels+"}"] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
		return got["clocker_ingress_forwards_open{proto=tcp,}"] == 1 && got["clocker_ingress_connections_total{port="+p+",proto=tcp,}"] >= 1 &&
			got["clocker_ingress_bytes_total{direction=in,port="+p+",proto=tcp,}"] >= 5 &&
			got["clocker_ingress_bytes_total{direction=out,port="+p+",proto=tcp,}"] >= 5
	}
	waitFor(t, "the ingress metrics", gather)

	// A restarted front door re-establishes the forward from the caches.
	// (Another address: the first server keeps its own listener.)
	s2 := proxy.NewServer(e.fleet, e.srv.Strategy, e.log, 1<<20, nil)
	if err := s2.EnableIngress(context.Background(), proxy.IngressConfig{}); err == nil {
		t.Fatal("ingress without an address")
	}
	if err := s2.EnableIngress(context.Background(), proxy.IngressConfig{Address: net.ParseIP("127.0.0.3"), PortMin: 1, PortMax: 2, Mode: "fast"}); err == nil ||
		!strings.Contains(err.Error(), "want auto, kernel or userland") {
		t.Fatalf("ingress in an unknown mode: %v", err)
	}
	if s2.IngressMode() != "" {
		t.Fatalf("a failed EnableIngress left mode %q", s2.IngressMode())
	}
	enableIngressAt(t, s2, "127.0.0.3")
	front3 := net.JoinHostPort("127.0.0.3", p)
	waitFor(t, "the forward after a restart", func() bool {
		c, err := net.DialTimeout("tcp", front3, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})

	// Stopped: the forward goes; removed: the port is free for another.
	if r := e.do("POST", "/v1.41/containers/web/stop", nil); r.status != 204 {
		t.Fatalf("stop: %s", r)
	}
	waitFor(t, "the forward to close", func() bool {
		c, err := net.DialTimeout("tcp", front3, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	if r := e.do("DELETE", "/v1.41/containers/web", nil); r.status != 204 {
		t.Fatalf("rm: %s", r)
	}
	e.create("web2", spec)
}

func enableIngressAt(t *testing.T, s *proxy.Server, addr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := s.EnableIngress(ctx, proxy.IngressConfig{Address: net.ParseIP(addr), PortMin: 42000, PortMax: 42999,
		Local: func(*hosts.Host) bool { return false }}); err != nil {
		t.Fatal(err)
	}
}

func TestIngressCannotBindFailsCleanly(t *testing.T) {
	e := newEnv(t, twoBusyboxHosts()...)
	enableIngress(t, e.srv, nil)
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
	e := newEnv(t, twoBusyboxHosts()...)
	enableIngress(t, e.srv, nil)
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

func TestIngressHostDownClosesItsForwards(t *testing.T) {
	e := newEnv(t, twoBusyboxHosts()...)
	enableIngress(t, e.srv, nil)
	p := freeTCPPort(t)
	id := e.create("", map[string]any{"Image": "busybox", "HostConfig": map[string]any{
		"PortBindings": map[string]any{"80/tcp": []any{map[string]any{"HostPort": strconv.Itoa(p)}}}}})
	if r := e.do("POST", "/v1.41/containers/"+id+"/start", nil); r.status != 204 {
		t.Fatalf("start: %s", r)
	}
	front := net.JoinHostPort(ingressAddr, strconv.Itoa(p))
	listening := func() bool {
		c, err := net.DialTimeout("tcp", front, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	waitFor(t, "the listener", listening)
	owner := e.owner(id)
	h, _ := e.fleet.Host(owner)
	e.fakes[owner].Close()
	waitFor(t, owner+" unhealthy", func() bool { return !h.Healthy() })
	waitFor(t, "the forward of the down host to go", func() bool { return !listening() })
}
