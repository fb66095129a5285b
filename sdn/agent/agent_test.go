package agent

import (
	"context"
	"encoding/json"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/clocker/clocker/sdn"
)

// fakeProvider keeps "applied" networks in memory.
type fakeProvider struct {
	mu      sync.Mutex
	applied map[string]sdn.HostNetwork
	calls   int
}

func (f *fakeProvider) Name() string { return "fake-agent-test" }
func (f *fakeProvider) Apply(_ context.Context, hn sdn.HostNetwork) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.applied[hn.NetworkID] = hn
	return nil
}
func (f *fakeProvider) Remove(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	delete(f.applied, id)
	return nil
}
func (f *fakeProvider) Applied(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.applied)), nil
}
func (f *fakeProvider) Close() error { return nil }
func (f *fakeProvider) snapshot() ([]string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.applied)), f.calls
}

func (f *fakeProvider) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = map[string]sdn.HostNetwork{"left-over": {NetworkID: "left-over"}}
	f.calls = 0
}

var _ sdn.Provider = (*fakeProvider)(nil)

var (
	fakeOnce sync.Once
	fake     = &fakeProvider{}
)

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func writeState(t *testing.T, path string, st sdn.AgentState) {
	t.Helper()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".tmp", b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

func lookup(t *testing.T, addr, name string) []string {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(name, mdns.TypeA)
	r, err := mdns.Exchange(m, addr)
	if err != nil {
		return nil
	}
	var out []string
	for _, rr := range r.Answer {
		out = append(out, rr.(*mdns.A).A.String())
	}
	return out
}

func eventually(t *testing.T, what string, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !fn() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAgentFollowsState(t *testing.T) {
	fakeOnce.Do(func() {
		if err := sdn.RegisterProvider("fake-agent-test", func(sdn.ProviderConfig) (sdn.Provider, error) { return fake, nil }); err != nil {
			t.Fatal(err)
		}
	})
	fake.reset() // the registry is process-wide; each run starts from one left-over network
	dir := t.TempDir()
	path := filepath.Join(dir, "desired.json")
	resolv := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.11\nnameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freeUDPPort(t)
	a, err := New(Config{StatePath: path, Provider: "fake-agent-test", ResolvConf: resolv, DNSPort: port, Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	// No state yet: the agent changes nothing (a restart before the
	// manager wrote must not tear down what is in place).
	time.Sleep(100 * time.Millisecond)
	if ids, calls := fake.snapshot(); calls != 0 || !slices.Equal(ids, []string{"left-over"}) {
		t.Fatalf("without state: applied %v after %d calls", ids, calls)
	}

	gw := netip.MustParseAddr("127.0.0.1")
	st := sdn.AgentState{
		Host: "h1",
		Networks: []sdn.HostNetwork{
			{NetworkID: "n1", Name: "one", Gateway: gw},
			{NetworkID: "n2", Name: "two", Gateway: gw},
		},
		Records: map[string]map[string][]netip.Addr{
			"n1": {"web": {netip.MustParseAddr("10.200.0.2")}, "both": {netip.MustParseAddr("10.200.0.3")}},
			"n2": {"db": {netip.MustParseAddr("10.200.1.34")}, "both": {netip.MustParseAddr("10.200.1.35")}},
		},
	}
	// Two networks cannot share one gateway address on a real host; here
	// the second server fails to bind and is retried, which is fine: the
	// first answers the names of both.
	writeState(t, path, st)
	addr := net.JoinHostPort(gw.String(), strconv.Itoa(port))
	eventually(t, "networks applied", func() bool { ids, _ := fake.snapshot(); return slices.Equal(ids, []string{"n1", "n2"}) })
	eventually(t, "web resolves", func() bool { return slices.Equal(lookup(t, addr, "web."), []string{"10.200.0.2"}) })
	if got := lookup(t, addr, "db."); !slices.Equal(got, []string{"10.200.1.34"}) {
		t.Errorf("a name of the host's other network: %v", got)
	}
	if got := lookup(t, addr, "both."); !slices.Equal(got, []string{"10.200.0.3"}) {
		t.Errorf("the server's own network first: %v", got)
	}

	// Names change with the state; a network gone is removed.
	st.Networks = st.Networks[:1]
	st.Records = map[string]map[string][]netip.Addr{"n1": {"web2": {netip.MustParseAddr("10.200.0.4")}}}
	writeState(t, path, st)
	eventually(t, "n2 removed", func() bool { ids, _ := fake.snapshot(); return slices.Equal(ids, []string{"n1"}) })
	eventually(t, "web2 resolves", func() bool { return slices.Equal(lookup(t, addr, "web2."), []string{"10.200.0.4"}) })
	if got := lookup(t, addr, "web."); got != nil {
		t.Errorf("a forgotten name still resolves: %v", got)
	}
}

func TestNames(t *testing.T) {
	a1, a2 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.1.1")
	st := sdn.AgentState{
		Networks: []sdn.HostNetwork{{NetworkID: "a"}, {NetworkID: "b"}},
		Records: map[string]map[string][]netip.Addr{
			"a": {"x": {a1}},
			"b": {"x": {a2}, "y": {a2}},
			"c": {"z": {a2}}, // not on this host
		},
	}
	got := Names(st, "a")
	want := map[string][]netip.Addr{"x": {a1}, "y": {a2}}
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("Names: %v, want %v", got, want)
	}
}

func TestUpstreams(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "resolv.conf")
	_ = os.WriteFile(p, []byte("# c\nnameserver 10.0.0.53\nnameserver 127.0.0.11\nnameserver 10.200.0.1\nnameserver 10.0.0.53\nsearch x\n"), 0o644)
	a := &Agent{cfg: Config{ResolvConf: p}.withDefaults()}
	got := a.upstreams(sdn.AgentState{Networks: []sdn.HostNetwork{{Gateway: netip.MustParseAddr("10.200.0.1")}}})
	if !slices.Equal(got, []string{"10.0.0.53:53"}) {
		t.Errorf("upstreams %v", got)
	}
}
