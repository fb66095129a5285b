package ingress

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/admission"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/fakeengine"
)

// tableAddr is where the tests' tables listen: another loopback address
// than the fake hosts' 127.0.0.1, so that a forward to a "host" port does
// not reach the listener itself.
const tableAddr = "127.0.0.2"

// Random ports of the tests' tables.
const testPortMin, testPortMax = 43000, 43999

// testFleet is a fleet of fake engines, each with busybox.
type testFleet struct {
	t     *testing.T
	fleet *hosts.Fleet
	fakes map[string]*fakeengine.Server
}

func newTestFleet(t *testing.T, names ...string) *testFleet {
	t.Helper()
	f := &testFleet{t: t, fakes: map[string]*fakeengine.Server{}}
	log := slog.New(slog.DiscardHandler)
	f.fleet = hosts.NewFleet(nil, log, hosts.NewMetrics(nil))
	for _, n := range names {
		s, err := fakeengine.Listen(fakeengine.New(fakeengine.Options{Name: n, Images: []string{"busybox"}}), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		f.fakes[n] = s
	}
	t.Cleanup(f.fleet.Close) // runs before the fakes shut down
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range names {
		if _, err := f.fleet.Add(ctx, hosts.Record{Name: n, URL: f.fakes[n].URL}, false); err != nil {
			t.Fatalf("add %s: %v", n, err)
		}
	}
	if err := f.fleet.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *testFleet) host(name string) *hosts.Host {
	h, ok := f.fleet.Host(name)
	if !ok {
		f.t.Fatalf("no host %s", name)
	}
	return h
}

// table is a Table of the fleet at addr, every host remote; with run, its
// loop runs for the test.
func (f *testFleet) table(addr string, reg prometheus.Registerer, run bool) *Table {
	f.t.Helper()
	tab, err := NewTable(f.fleet, Config{Address: net.ParseIP(addr), PortMin: testPortMin, PortMax: testPortMax,
		Local: func(*hosts.Host) bool { return false }}, reg, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	if !run {
		f.t.Cleanup(tab.Close)
		return tab
	}
	ctx, cancel := context.WithCancel(context.Background())
	go tab.Run(ctx)
	f.t.Cleanup(func() { cancel(); tab.Wait(5 * time.Second) })
	return tab
}

// container creates a container on host behind the table's back (as
// another manager or a restart would find it) and waits for the cache.
func (f *testFleet) container(host, name string, hostPort string, running bool) string {
	f.t.Helper()
	hc := `{"PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"` + hostPort + `"}]}}`
	id, err := f.fakes[host].Create(fakeengine.Spec{Name: name, Image: "busybox", HostConfig: json.RawMessage(hc), Running: running})
	if err != nil {
		f.t.Fatal(err)
	}
	f.waitCached(host, id, "")
	return id
}

// waitCached waits until host's cache shows the container (in state,
// unless "").
func (f *testFleet) waitCached(host, id, state string) {
	f.t.Helper()
	h := f.host(host)
	waitUntil(f.t, "the cache to show "+id, func() bool {
		c, ok := h.Container(id)
		return ok && (state == "" || string(c.Summary.State) == state)
	})
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// freePort is a TCP port free on 127.0.0.1 and on tableAddr.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if l2, err := net.Listen("tcp", net.JoinHostPort(tableAddr, strconv.Itoa(p))); err == nil {
			l2.Close()
			return p
		}
	}
	t.Fatal("no free port")
	return 0
}

// newCreate is a create of busybox named name placed on h, with the
// given HostConfig and ExposedPorts (JSON).
func newCreate(t *testing.T, h *hosts.Host, name, image, hostConfig, exposed string) *admission.Create {
	t.Helper()
	body := `{"Image":"` + image + `","HostConfig":` + hostConfig
	if exposed != "" {
		body += `,"ExposedPorts":` + exposed
	}
	c, err := admission.NewCreate(name, nil, []byte(body+"}"))
	if err != nil {
		t.Fatal(err)
	}
	c.Host = h
	return c
}

// sentBindings are the PortBindings the engine would be sent.
func sentBindings(t *testing.T, c *admission.Create) map[string][]struct{ HostIp, HostPort string } {
	t.Helper()
	body, err := c.Body()
	if err != nil {
		t.Fatal(err)
	}
	var in struct {
		HostConfig struct {
			PortBindings map[string][]struct{ HostIp, HostPort string }
		}
	}
	if err := json.Unmarshal(body, &in); err != nil {
		t.Fatal(err)
	}
	return in.HostConfig.PortBindings
}

// claimed lists the table's claims of creates in flight.
func (t *Table) claimed() []Key {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Key
	for k := range t.claims {
		out = append(out, k)
	}
	return out
}

func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func TestNewTableRefusesBadConfig(t *testing.T) {
	f := newTestFleet(t, "h1")
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no address", Config{PortMin: 1, PortMax: 2}, "no address"},
		{"no range", Config{Address: net.ParseIP("127.0.0.3")}, "bad port range"},
		{"reversed range", Config{Address: net.ParseIP("127.0.0.3"), PortMin: 3, PortMax: 2}, "bad port range"},
		{"unknown mode", Config{Address: net.ParseIP("127.0.0.3"), PortMin: 1, PortMax: 2, Mode: "fast"}, "want auto, kernel or userland"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab, err := NewTable(f.fleet, tc.cfg, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one with %q", err, tc.want)
			}
			if tab != nil || tab.Mode() != "" {
				t.Fatal("a refused table was returned")
			}
		})
	}
}

func TestBindAllocatesRandomPorts(t *testing.T) {
	f := newTestFleet(t, "h1")
	h := f.host("h1")
	// The image's own exposed ports, from the host (a name with a slash:
	// the path is not escaped twice).
	f.fakes["h1"].Intercept(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if strings.HasSuffix(r.URL.Path, "/images/registry.example/app:1/json") {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"Id":"sha256:1","Config":{"ExposedPorts":{"9000/tcp":{},"9001/udp":{}}}}`)
			return
		}
		next.ServeHTTP(w, r)
	})
	tab := f.table(tableAddr, nil, false)
	step := NewCreateStep(tab)
	tests := []struct {
		name, image, hostConfig, exposed string
		ports                            []string
	}{
		{"empty host port", "busybox", `{"PortBindings":{"80/tcp":[{"HostPort":""}]}}`, "", []string{"80/tcp"}},
		{"host port 0, udp", "busybox", `{"PortBindings":{"53/udp":[{"HostIp":"","HostPort":"0"}]}}`, "", []string{"53/udp"}},
		{"publish all", "busybox", `{"PublishAllPorts":true}`, `{"8081/tcp":{}}`, []string{"8081/tcp"}},
		{"publish all, the image's ports", "registry.example/app:1", `{"PublishAllPorts":true,"PortBindings":{"9000/tcp":[{"HostPort":""}]}}`, "",
			[]string{"9000/tcp", "9001/udp"}},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCreate(t, h, "", tc.image, tc.hostConfig, tc.exposed)
			if err := step.Validate(c); err != nil {
				t.Fatal(err)
			}
			b, err := step.Bind(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Undo()
			got := sentBindings(t, c)
			if len(got) != len(tc.ports) {
				t.Fatalf("bindings for the engine: %+v", got)
			}
			for _, port := range tc.ports {
				bs := got[port]
				if len(bs) != 1 {
					t.Fatalf("bindings for the engine: %+v", got)
				}
				n, err := strconv.Atoi(bs[0].HostPort)
				if err != nil || n < testPortMin || n > testPortMax {
					t.Fatalf("host port %q not from the ingress range", bs[0].HostPort)
				}
				key := bs[0].HostPort + "/" + strings.SplitN(port, "/", 2)[1]
				if seen[key] {
					t.Fatalf("port %s given twice", key)
				}
				seen[key] = true
			}
		})
	}
}

func TestValidateRefusesBadPortsClaimingNothing(t *testing.T) {
	f := newTestFleet(t, "h1")
	tab := f.table(tableAddr, nil, false)
	step := NewCreateStep(tab)
	tests := []struct {
		name, hostConfig string
		bad              string // "" when valid
	}{
		{"not a number", `{"PortBindings":{"80/tcp":[{"HostPort":"http"}]}}`, "http"},
		{"out of range", `{"PortBindings":{"80/tcp":[{"HostPort":"70000"}]}}`, "70000"},
		{"reversed range", `{"PortBindings":{"80/tcp":[{"HostPort":"80-70"}]}}`, "80-70"},
		{"open range", `{"PortBindings":{"80/tcp":[{"HostPort":"80-"}]}}`, "80-"},
		{"second of two", `{"PortBindings":{"80/tcp":[{"HostPort":"8080"}],"81/tcp":[{"HostIp":"::","HostPort":"x"}]}}`, "x"},
		{"one address: the engine's to check", `{"PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"x"}]}}`, ""},
		{"host network", `{"NetworkMode":"host","PortBindings":{"80/tcp":[{"HostPort":"x"}]}}`, ""},
		{"a range", `{"PortBindings":{"80/tcp":[{"HostPort":"8000-8010"}]}}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCreate(t, f.host("h1"), "web", "busybox", tc.hostConfig, "")
			before, _ := c.Body()
			err := step.Validate(c)
			if tc.bad == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), `invalid port specification: "`+tc.bad+`"`) {
				t.Fatalf("Validate: %v", err)
			}
			if after, _ := c.Body(); string(after) != string(before) {
				t.Fatalf("Validate changed the create: %s", after)
			}
			if len(tab.claimed()) != 0 || len(tab.fwd.Keys()) != 0 {
				t.Fatalf("Validate claimed %v, opened %v", tab.claimed(), tab.fwd.Keys())
			}
		})
	}
}

func TestBindThenUndoLeavesNothing(t *testing.T) {
	f := newTestFleet(t, "h1")
	tab := f.table(tableAddr, nil, false)
	p := strconv.Itoa(freePort(t))
	c := newCreate(t, f.host("h1"), "web", "busybox",
		`{"PortBindings":{"80/tcp":[{"HostPort":"`+p+`"}],"53/udp":[{"HostPort":""}]}}`, "")
	b, err := NewCreateStep(tab).Bind(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.claimed()) != 2 || len(tab.fwd.Keys()) != 2 || !listening(net.JoinHostPort(tableAddr, p)) {
		t.Fatalf("bound: claims %v, forwards %v", tab.claimed(), tab.fwd.Keys())
	}
	b.Undo()
	if len(tab.claimed()) != 0 || len(tab.fwd.Keys()) != 0 {
		t.Fatalf("after undo: claims %v, forwards %v", tab.claimed(), tab.fwd.Keys())
	}
	// The manager's port is free for anyone.
	l, err := net.Listen("tcp", net.JoinHostPort(tableAddr, p))
	if err != nil {
		t.Fatalf("port still bound after undo: %v", err)
	}
	l.Close()
	b.Done() // after Undo: nothing more
	if len(tab.claimed()) != 0 {
		t.Fatal("Done after Undo claimed again")
	}
}

func TestDoneKeepsTheClaimHeldByTheContainer(t *testing.T) {
	f := newTestFleet(t, "h1", "h2")
	tab := f.table(tableAddr, nil, false)
	step := NewCreateStep(tab)
	h := f.host("h1")
	p := freePort(t)
	hp := strconv.Itoa(p)
	c := newCreate(t, h, "web", "busybox", `{"PortBindings":{"80/tcp":[{"HostPort":"`+hp+`"}]}}`, "")
	b, err := step.Bind(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	// The forward of the pipeline: the engine creates the container and
	// the cache shows it.
	body, err := c.Body()
	if err != nil {
		t.Fatal(err)
	}
	var sent struct{ HostConfig json.RawMessage }
	if err := json.Unmarshal(body, &sent); err != nil {
		t.Fatal(err)
	}
	id, err := f.fakes["h1"].Create(fakeengine.Spec{Name: "web", Image: "busybox", HostConfig: sent.HostConfig})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Refresh(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	b.Done()

	k := Key{Proto: "tcp", Port: uint16(p)}
	tab.mu.Lock()
	holder, held := tab.held[k]
	tab.mu.Unlock()
	if !held || holder.id != id || len(tab.claimed()) != 0 {
		t.Fatalf("after done: held by %+v (%v), claims %v", holder, held, tab.claimed())
	}
	if !slices.Contains(tab.fwd.Keys(), k) {
		t.Fatalf("the container's listener closed: %v", tab.fwd.Keys())
	}
	// Another create, on any host, finds the port held.
	c2 := newCreate(t, f.host("h2"), "web2", "busybox", `{"PortBindings":{"80/tcp":[{"HostPort":"`+hp+`"}]}}`, "")
	if _, err := step.Bind(context.Background(), c2); !errors.Is(err, errdefs.ErrConflict) ||
		!strings.Contains(err.Error(), `Bind for 0.0.0.0:`+hp+` failed: port is already allocated (by container "web" on host h1)`) {
		t.Fatalf("second create on a held port: %v", err)
	}
}

func TestBindConflicts(t *testing.T) {
	f := newTestFleet(t, "h1")
	tab := f.table(tableAddr, nil, false)
	step := NewCreateStep(tab)
	h := f.host("h1")
	p := strconv.Itoa(freePort(t))
	spec := `{"PortBindings":{"80/tcp":[{"HostPort":"` + p + `"}]}}`
	b, err := step.Bind(context.Background(), newCreate(t, h, "first", "busybox", spec, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Undo()
	_, err = step.Bind(context.Background(), newCreate(t, h, "second", "busybox", spec, ""))
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), `port is already allocated (by container "first", being created)`) {
		t.Fatalf("a port claimed by a create in flight: %v", err)
	}

	// A port another process holds on the manager: Docker's words, and
	// nothing of the create is left.
	q := strconv.Itoa(freePort(t))
	taken, err := net.Listen("tcp", net.JoinHostPort(tableAddr, q))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, err = step.Bind(context.Background(), newCreate(t, h, "third", "busybox",
		`{"PortBindings":{"53/udp":[{"HostPort":""}],"80/tcp":[{"HostPort":"`+q+`"}]}}`, ""))
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "cannot listen on "+tableAddr+":"+q) ||
		!strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("a port the manager cannot bind: %v", err)
	}
	if got := tab.claimed(); len(got) != 1 {
		t.Fatalf("claims left by the failed create: %v", got)
	}
}

func TestForwardsFollowTheCaches(t *testing.T) {
	f := newTestFleet(t, "h1", "h2")
	reg := prometheus.NewRegistry()
	tab := f.table(tableAddr, reg, true)
	if tab.Mode() != ModeUserland {
		t.Fatalf("mode %q", tab.Mode())
	}
	port := freePort(t)
	p := strconv.Itoa(port)
	// The container's published port on its "host": an echo.
	echo, err := net.Listen("tcp", "127.0.0.1:"+p)
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
	id := f.container("h1", "web", p, true)
	front := net.JoinHostPort(tableAddr, p)
	waitUntil(t, "the forward", func() bool {
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

	// Metrics: one open forward, its connections and bytes (counted when
	// the connection ends).
	waitUntil(t, "the ingress metrics", func() bool {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
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
	})

	// A restarted manager's table forwards from the caches as soon as it
	// is made, before its loop runs. (Another address: the first table
	// keeps its own listener.)
	restarted := f.table("127.0.0.3", nil, false)
	if !listening(net.JoinHostPort("127.0.0.3", p)) {
		t.Fatal("no forward after a restart")
	}
	restarted.Close()
	if listening(net.JoinHostPort("127.0.0.3", p)) {
		t.Fatal("a closed table still forwards")
	}
	restarted.Wait(time.Second)

	// Stopped: the forward goes; removed: the port is free for another.
	if err := f.fakes["h1"].Stop(id); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the forward to close", func() bool { return !listening(front) })
	if err := f.fakes["h1"].Remove(id, false); err != nil {
		t.Fatal(err)
	}
	c := newCreate(t, f.host("h2"), "web2", "busybox", `{"PortBindings":{"80/tcp":[{"HostPort":"`+p+`"}]}}`, "")
	waitUntil(t, "the port to be free", func() bool {
		b, err := NewCreateStep(tab).Bind(context.Background(), c)
		if err == nil {
			b.Undo()
		}
		return err == nil
	})
}

func TestHostDownClosesItsForwards(t *testing.T) {
	f := newTestFleet(t, "h1", "h2")
	f.table(tableAddr, nil, true)
	p := strconv.Itoa(freePort(t))
	f.container("h1", "web", p, true)
	front := net.JoinHostPort(tableAddr, p)
	waitUntil(t, "the listener", func() bool { return listening(front) })
	h := f.host("h1")
	f.fakes["h1"].Close()
	waitUntil(t, "h1 unhealthy", func() bool { return !h.Healthy() })
	waitUntil(t, "the forward of the down host to go", func() bool { return !listening(front) })
}

func TestCheckStart(t *testing.T) {
	f := newTestFleet(t, "h1", "h2")
	tab := f.table(tableAddr, nil, true)
	p := strconv.Itoa(freePort(t))
	first := f.container("h1", "first", p, false)
	c, _ := f.host("h1").Container(first)
	if err := tab.CheckStart(&c); err != nil {
		t.Fatalf("start of the holder: %v", err)
	}
	// Stopped, it holds nothing: another takes the port (as compose does
	// when it recreates a service), and first may not start again.
	if err := f.fakes["h1"].Start(first); err != nil {
		t.Fatal(err)
	}
	if err := f.fakes["h1"].Stop(first); err != nil {
		t.Fatal(err)
	}
	f.waitCached("h1", first, "exited")
	f.container("h2", "second", p, true)
	c, _ = f.host("h1").Container(first)
	err := tab.CheckStart(&c)
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), `port is already allocated (by container "second" on host h2)`) {
		t.Fatalf("start on a port another holds: %v", err)
	}
	var off *Table
	if err := off.CheckStart(&c); err != nil {
		t.Fatalf("ingress off: %v", err)
	}
}

func TestShownAddress(t *testing.T) {
	f := newTestFleet(t, "h1")
	h := f.host("h1")
	tab := f.table(tableAddr, nil, false)
	var off *Table
	inspect := []byte(`{"Id":"x","NetworkSettings":{"Ports":{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"},{"HostIp":"::","HostPort":"8080"}],"81/tcp":[{"HostIp":"10.0.0.9","HostPort":"81"}]}},"Name":"/web"}`)
	list := []byte(`{"Id":"x","Ports":[{"IP":"0.0.0.0","PrivatePort":80,"PublicPort":8080,"Type":"tcp"},{"IP":"::","PrivatePort":80,"PublicPort":8080,"Type":"tcp"},{"PrivatePort":443,"Type":"tcp"}],"State":"running"}`)
	tests := []struct {
		name    string
		t       *Table
		shown   string
		inspect string
		list    string
	}{
		{"ingress", tab, tableAddr,
			`{"Id":"x","NetworkSettings":{"Ports":{"80/tcp":[{"HostIp":"127.0.0.2","HostPort":"8080"}],"81/tcp":[{"HostIp":"10.0.0.9","HostPort":"81"}]}},"Name":"/web"}`,
			`{"Id":"x","Ports":[{"IP":"127.0.0.2","PrivatePort":80,"PublicPort":8080,"Type":"tcp"},{"PrivatePort":443,"Type":"tcp"}],"State":"running"}`},
		// Off, a host at a loopback address publishes where the manager
		// is: the engine's answer is kept.
		{"off, local host", off, "", string(inspect), string(list)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.t.Shown(h); got != tc.shown {
				t.Fatalf("shown %q, want %q", got, tc.shown)
			}
			if got := tc.t.ShowInspect(h, inspect); string(got) != tc.inspect {
				t.Fatalf("inspect:\n%s\nwant\n%s", got, tc.inspect)
			}
			if got := tc.t.ShowList(h, list); string(got) != tc.list {
				t.Fatalf("list:\n%s\nwant\n%s", got, tc.list)
			}
		})
	}
}

// Compose recreates a service by creating the new container while the old
// one still runs and holds its published port, then stopping the old one
// and starting the new: as on an engine, the create passes, the start
// waits for the old one to let the port go, and no two running containers
// ever hold it. Other containers (another service, a `compose run`) are
// refused at create as before.
func TestComposeReplacementTakesThePortWhenTheOldStops(t *testing.T) {
	f := newTestFleet(t, "h1", "h2")
	tab := f.table(tableAddr, nil, true)
	step := NewCreateStep(tab)
	p := strconv.Itoa(freePort(t))
	hc := `{"PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"` + p + `"}]}}`
	web := map[string]string{"com.docker.compose.project": "shop", "com.docker.compose.service": "web"}
	old, err := f.fakes["h1"].Create(fakeengine.Spec{Name: "shop-web-1", Image: "busybox", Labels: web, HostConfig: json.RawMessage(hc), Running: true})
	if err != nil {
		t.Fatal(err)
	}
	f.waitCached("h1", old, "running")

	create := func(name string, l map[string]string) *admission.Create {
		c := newCreate(t, f.host("h2"), name, "busybox", hc, "")
		c.Spec.Labels = l
		return c
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
	}{
		{"another service", map[string]string{"com.docker.compose.project": "shop", "com.docker.compose.service": "api"}},
		{"another project", map[string]string{"com.docker.compose.project": "shop2", "com.docker.compose.service": "web"}},
		{"compose run", map[string]string{"com.docker.compose.project": "shop", "com.docker.compose.service": "web", "com.docker.compose.oneoff": "True"}},
		{"no compose", nil},
	} {
		if _, err := step.Bind(context.Background(), create("x", tc.labels)); !errors.Is(err, errdefs.ErrConflict) {
			t.Errorf("%s: create on the held port: %v, want a conflict", tc.name, err)
		}
	}

	c := create("abc_shop-web-1", web)
	b, err := step.Bind(context.Background(), c)
	if err != nil {
		t.Fatalf("the service's replacement: %v", err)
	}
	if got := sentBindings(t, c)["80/tcp"]; len(got) != 1 || got[0].HostPort != p {
		t.Errorf("the replacement's bindings: %v, want host port %s", got, p)
	}
	if got := tab.claimed(); len(got) != 0 {
		t.Errorf("the replacement claimed %v: the old container holds the port", got)
	}
	b.Undo() // gives back nothing: the old container keeps its port
	if !listening(net.JoinHostPort(tableAddr, p)) {
		t.Fatal("the old container's port closed by the replacement's undo")
	}

	replacement, err := f.fakes["h2"].Create(fakeengine.Spec{Name: "abc_shop-web-1", Image: "busybox", Labels: web, HostConfig: json.RawMessage(hc)})
	if err != nil {
		t.Fatal(err)
	}
	f.waitCached("h2", replacement, "created")
	rc, _ := f.host("h2").Container(replacement)
	if err := tab.CheckStart(&rc); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), `(by container "shop-web-1" on host h1)`) {
		t.Fatalf("start of the replacement while the old one runs: %v", err)
	}
	if err := f.fakes["h1"].Stop(old); err != nil {
		t.Fatal(err)
	}
	f.waitCached("h1", old, "exited")
	if err := tab.CheckStart(&rc); err != nil {
		t.Fatalf("start of the replacement once the old one stopped: %v", err)
	}
	if err := f.fakes["h2"].Start(replacement); err != nil {
		t.Fatal(err)
	}
	f.waitCached("h2", replacement, "running")
	oc, _ := f.host("h1").Container(old)
	if err := tab.CheckStart(&oc); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("start of the old container while its replacement runs: %v", err)
	}
}

// A manager that starts while a compose replacement waits (created) next
// to the running container it replaces gives the port to the running one.
func TestRestartedTableGivesAPortToTheRunningContainer(t *testing.T) {
	f := newTestFleet(t, "h1", "h2")
	p := strconv.Itoa(freePort(t))
	hc := json.RawMessage(`{"PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"` + p + `"}]}}`)
	web := map[string]string{"com.docker.compose.project": "shop", "com.docker.compose.service": "web"}
	replacement, err := f.fakes["h1"].Create(fakeengine.Spec{Name: "abc_shop-web-1", Image: "busybox", Labels: web, HostConfig: hc})
	if err != nil {
		t.Fatal(err)
	}
	old, err := f.fakes["h2"].Create(fakeengine.Spec{Name: "shop-web-1", Image: "busybox", Labels: web, HostConfig: hc, Running: true})
	if err != nil {
		t.Fatal(err)
	}
	f.waitCached("h1", replacement, "created")
	f.waitCached("h2", old, "running")
	tab := f.table(tableAddr, nil, false)
	rc, _ := f.host("h1").Container(replacement)
	if err := tab.CheckStart(&rc); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), `"shop-web-1"`) {
		t.Fatalf("the port went to the created replacement: %v", err)
	}
}
