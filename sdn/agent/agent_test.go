package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
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
	"github.com/clocker/clocker/sdn/dns"
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

func eventually(t *testing.T, what string, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !fn() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// useFakeProvider registers the fake provider (once: the registry is
// process-wide) and resets it to one left-over network; it returns a
// temporary directory and a resolv.conf in it with no upstream (what the
// agent does not answer is NXDOMAIN, at once).
func useFakeProvider(t *testing.T) (dir, resolv string) {
	t.Helper()
	fakeOnce.Do(func() {
		if err := sdn.RegisterProvider("fake-agent-test", func(sdn.ProviderConfig) (sdn.Provider, error) { return fake, nil }); err != nil {
			t.Fatal(err)
		}
	})
	fake.reset()
	dir = t.TempDir()
	resolv = filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.11\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, resolv
}

func TestAgentFollowsState(t *testing.T) {
	dir, resolv := useFakeProvider(t)
	path := filepath.Join(dir, "desired.json")
	port := freeUDPPort(t)
	statsPath := filepath.Join(dir, "stats.json")
	appliedPath := filepath.Join(dir, "applied")
	a, err := New(Config{StatePath: path, Provider: "fake-agent-test", ResolvConf: resolv, DNSPort: port,
		Interval: 10 * time.Millisecond, StatsPath: statsPath, StatsInterval: time.Millisecond, AppliedPath: appliedPath})
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

	// Loopback stands in for the host: the host's DNS address and each
	// network's gateway, and queriers from every network's subnet.
	a1, a2 := netip.MustParseAddr("127.0.1.2"), netip.MustParseAddr("127.0.2.2")
	st := sdn.AgentState{
		Host: "h1",
		DNS:  netip.MustParseAddr("127.0.3.1"),
		Networks: []sdn.HostNetwork{
			{NetworkID: "n1", Name: "one", Gateway: netip.MustParseAddr("127.0.1.1"), Subnet: netip.MustParsePrefix("127.0.1.0/24")},
			{NetworkID: "n2", Name: "two", Gateway: netip.MustParseAddr("127.0.2.1"), Subnet: netip.MustParsePrefix("127.0.2.0/24")},
		},
		Records: map[string]map[string][]netip.Addr{
			"n1": {"web": {a1}, "both": {a1}},
			"n2": {"db": {a2}, "both": {a2}},
		},
		// A container on the default bridge connected to both networks.
		Clients: map[netip.Addr][]string{netip.MustParseAddr("127.0.4.2"): {"n1", "n2"}},
	}
	writeState(t, path, st)
	hostDNS := net.JoinHostPort("127.0.3.1", strconv.Itoa(port))
	gw1 := net.JoinHostPort("127.0.1.1", strconv.Itoa(port))
	// Once the agent says it applied the state, its names resolve (the
	// manager waits for that before it answers a start).
	data, _ := os.ReadFile(path)
	eventually(t, "the state acknowledged", func() bool {
		b, _ := os.ReadFile(appliedPath)
		return string(b) == sdn.AppliedSum(data)
	})
	if ids, _ := fake.snapshot(); !slices.Equal(ids, []string{"n1", "n2"}) {
		t.Errorf("acknowledged, but the networks applied are %v", ids)
	}
	if got := lookupFrom(t, "127.0.1.2", hostDNS, "web."); !slices.Equal(got, []string{a1.String()}) {
		t.Errorf("acknowledged, but web resolves to %v", got)
	}
	// The pass sets the names and starts the host's server before the
	// gateways' servers: wait for the last of them.
	eventually(t, "n2's gateway answers", func() bool {
		return exchangeFrom(t, "127.0.0.1", net.JoinHostPort("127.0.2.1", strconv.Itoa(port)), "db.") != nil
	})
	for _, tt := range []struct {
		from, server, name string
		want               []string
	}{
		{"127.0.1.2", hostDNS, "db.", nil}, // one's member: not two's names
		{"127.0.2.2", hostDNS, "db.", []string{"127.0.2.2"}},
		{"127.0.2.2", gw1, "db.", []string{"127.0.2.2"}}, // whichever address it asks
		{"127.0.2.2", hostDNS, "web.", nil},
		{"127.0.4.2", hostDNS, "web.", []string{"127.0.1.2"}}, // the client on both
		{"127.0.4.2", hostDNS, "db.", []string{"127.0.2.2"}},
		{"127.0.4.2", hostDNS, "both.", []string{"127.0.1.2"}}, // the first network wins
		{"127.0.5.2", hostDNS, "web.", nil},                    // a container on no fleet network
		{"127.0.0.1", hostDNS, "web.", []string{"127.0.1.2"}},  // the host itself sees all
		{"127.0.0.1", gw1, "db.", []string{"127.0.2.2"}},
	} {
		if got := lookupFrom(t, tt.from, tt.server, tt.name); !slices.Equal(got, tt.want) {
			t.Errorf("%s from %s at %s: %v, want %v", tt.name, tt.from, tt.server, got, tt.want)
		}
	}

	// Names and clients change with the state; a network gone is
	// removed, its gateway's server with it; the host's address stays.
	st.Networks = st.Networks[:1]
	st.Records = map[string]map[string][]netip.Addr{"n1": {"web2": {netip.MustParseAddr("10.200.0.4")}}}
	st.Clients = map[netip.Addr][]string{netip.MustParseAddr("127.0.5.2"): {"n1"}}
	writeState(t, path, st)
	eventually(t, "n2 removed", func() bool { ids, _ := fake.snapshot(); return slices.Equal(ids, []string{"n1"}) })
	eventually(t, "web2 resolves", func() bool { return slices.Equal(lookupFrom(t, "127.0.5.2", hostDNS, "web2."), []string{"10.200.0.4"}) })
	if got := lookupFrom(t, "127.0.1.2", hostDNS, "web."); got != nil {
		t.Errorf("a forgotten name still resolves: %v", got)
	}
	if got := lookupFrom(t, "127.0.4.2", hostDNS, "web2."); got != nil {
		t.Errorf("a client no longer on n1 resolves its names: %v", got)
	}
	// The pass stops the removed network's server after it set the names
	// web2 resolves by: wait for it to end, within the pass's bound.
	eventually(t, "the removed network's gateway to stop answering", func() bool {
		return exchangeFrom(t, "127.0.2.2", net.JoinHostPort("127.0.2.1", strconv.Itoa(port)), "db.") == nil
	})

	// With no network at all the host's address still answers (every
	// container of the host has it as DNS server).
	st.Networks, st.Records, st.Clients = nil, nil, nil
	writeState(t, path, st)
	eventually(t, "n1 removed", func() bool { ids, _ := fake.snapshot(); return len(ids) == 0 })
	// The names follow the networks (applied first) in the same pass.
	eventually(t, "the host's address without networks answers NXDOMAIN", func() bool {
		r := exchangeFrom(t, "127.0.5.2", hostDNS, "web2.")
		return r != nil && r.Rcode == mdns.RcodeNameError
	})

	// The counts of all servers, those stopped included, reach the file
	// the manager reads: the last query was forwarded (NXDOMAIN).
	want := a.Stats()
	if want.Answered < 7 || want.Forwarded < 5 {
		t.Errorf("stats %+v: fewer than the queries above", want)
	}
	eventually(t, "stats written", func() bool {
		var got dns.Stats
		data, err := os.ReadFile(statsPath)
		return err == nil && json.Unmarshal(data, &got) == nil && got == want
	})
}

// exchangeFrom asks addr for name's A records from source address src; nil
// when no answer comes.
func exchangeFrom(t *testing.T, src, addr, name string) *mdns.Msg {
	t.Helper()
	// Generous: an answer a loaded machine is slow to give is not none.
	c := &mdns.Client{Net: "udp", Timeout: 10 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(src)}}}
	m := new(mdns.Msg)
	m.SetQuestion(name, mdns.TypeA)
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		return nil
	}
	return r
}

// lookupFrom is the A answers exchangeFrom gets.
func lookupFrom(t *testing.T, src, addr, name string) []string {
	t.Helper()
	r := exchangeFrom(t, src, addr, name)
	if r == nil {
		return nil
	}
	var out []string
	for _, rr := range r.Answer {
		out = append(out, rr.(*mdns.A).A.String())
	}
	return out
}

func TestViews(t *testing.T) {
	a1, a2 := netip.MustParseAddr("10.200.0.2"), netip.MustParseAddr("10.200.1.2")
	st := sdn.AgentState{
		Networks: []sdn.HostNetwork{ // b sorts after a, but the state lists it first
			{NetworkID: "b", Subnet: netip.MustParsePrefix("10.200.1.0/24"), Gateway: netip.MustParseAddr("10.200.1.1")},
			{NetworkID: "a", Subnet: netip.MustParsePrefix("10.200.0.0/24"), Gateway: netip.MustParseAddr("10.200.0.1"),
				Subnet6: netip.MustParsePrefix("fd00:a::/64"), Gateway6: netip.MustParseAddr("fd00:a::1")}, // dual-stack
		},
		Records: map[string]map[string][]netip.Addr{
			"a": {"x": {a1}},
			"b": {"x": {a2}, "y": {a2}},
			"c": {"z": {a2}}, // not on this host
		},
		Clients: map[netip.Addr][]string{
			netip.MustParseAddr("172.17.0.2"): {"a", "b"}, // on the default bridge too
			netip.MustParseAddr("10.200.1.3"): {"a", "b"}, // asks from its address in b
			netip.MustParseAddr("10.200.0.3"): {"a", "b"}, // asks from its address in a
			netip.MustParseAddr("10.200.1.4"): {"b"},
			netip.MustParseAddr("fd00:a::3"):  {"a", "b"}, // asks from its IPv6 address in a
			netip.MustParseAddr("172.17.0.3"): {"c"},      // a network the host does not serve
			netip.MustParseAddr("10.200.1.5"): {"b"},
		},
		Links: map[netip.Addr]map[string][]netip.Addr{
			netip.MustParseAddr("10.200.1.5"): {"bar": {a1}, "X": {a1}}, // --link to a container elsewhere
			netip.MustParseAddr("172.17.0.3"): {"bar": {a1}},            // on no network served here
		},
	}
	clients, subnets := Views(st, []netip.Addr{netip.MustParseAddr("10.213.0.1")})
	look := func(t *dns.Table, name string) []netip.Addr {
		if t == nil {
			return nil
		}
		a, _ := t.Lookup(name)
		return a
	}
	for _, tt := range []struct {
		src, name string
		want      []netip.Addr
	}{
		{"172.17.0.2", "x", []netip.Addr{a2}}, // in the order of the host's networks: b first
		{"172.17.0.2", "y", []netip.Addr{a2}},
		{"10.200.1.3", "x", []netip.Addr{a2}}, // the network it asks from first
		{"10.200.0.3", "x", []netip.Addr{a1}},
		{"10.200.0.3", "y", []netip.Addr{a2}},
		{"10.200.1.4", "x", []netip.Addr{a2}},
		{"fd00:a::3", "x", []netip.Addr{a1}}, // a first: it asks from there
		{"fd00:a::9", "x", []netip.Addr{a1}}, // unknown, in a's IPv6 subnet: a's names
		{"fd00:b::9", "x", nil},
		{"10.200.0.9", "y", nil}, // unknown, in a's subnet: a's names
		{"10.200.0.9", "x", []netip.Addr{a1}},
		{"172.17.0.3", "z", nil},
		{"172.17.0.9", "x", nil},
		{"127.0.0.1", "x", []netip.Addr{a2}}, // the host itself: all the host's networks
		{"127.0.0.1", "y", []netip.Addr{a2}},
		{"127.0.0.1", "z", nil},
		{"10.200.1.1", "x", []netip.Addr{a2}},   // from a gateway: the host too
		{"10.213.0.1", "y", []netip.Addr{a2}},   // from another of its addresses
		{"10.200.1.5", "bar", []netip.Addr{a1}}, // its link alias
		{"10.200.1.5", "x", []netip.Addr{a1}},   // a link alias wins over a network's name
		{"10.200.1.5", "y", []netip.Addr{a2}},   // its network's names still
		{"10.200.1.4", "bar", nil},              // another container's link
	} {
		src := netip.MustParseAddr(tt.src)
		var v dns.Views
		v.Set(clients, subnets)
		if got := look(v.TableFor(src), tt.name); !slices.Equal(got, tt.want) {
			t.Errorf("%s from %s: %v, want %v", tt.name, tt.src, got, tt.want)
		}
	}
	if _, ok := clients[netip.MustParseAddr("172.17.0.3")]; ok {
		t.Error("a client of no served network has a view")
	}
}

func TestNames(t *testing.T) {
	a1, a2 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.1.1")
	st := sdn.AgentState{
		Records: map[string]map[string][]netip.Addr{
			"a": {"x": {a1}},
			"b": {"x": {a2}, "y": {a2}},
		},
	}
	if got, want := Names(st, "a", "b"), map[string][]netip.Addr{"x": {a1}, "y": {a2}}; !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("Names(a, b): %v, want %v", got, want)
	}
	if got, want := Names(st, "b", "a"), map[string][]netip.Addr{"x": {a2}, "y": {a2}}; !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("Names(b, a): %v, want %v", got, want)
	}
}

func TestUpstreams(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "resolv.conf")
	_ = os.WriteFile(p, []byte("# c\nnameserver 10.0.0.53\nnameserver 127.0.0.11\nnameserver 10.200.0.1\n"+
		"nameserver 10.0.0.53\nnameserver 172.17.0.1\nnameserver 127.0.0.53\nsearch x\n"), 0o644)
	a := &Agent{cfg: Config{ResolvConf: p}.withDefaults()}
	got := a.upstreams(sdn.AgentState{DNS: netip.MustParseAddr("172.17.0.1"), Networks: []sdn.HostNetwork{{Gateway: netip.MustParseAddr("10.200.0.1")}}})
	// Its own addresses and Docker's resolver are left out; a resolver on
	// the host's loopback stays (the agent shares the host's namespace).
	if !slices.Equal(got, []string{"10.0.0.53:53", "127.0.0.53:53"}) {
		t.Errorf("upstreams %v", got)
	}
}

// TestAgentAppliesPushedStates: a state pushed on the agent's stdin is
// applied without waiting for the file's turn, kept as the state file
// (a restart reads it), and acknowledged by its sum; states queued
// behind each other are all acknowledged.
func TestAgentAppliesPushedStates(t *testing.T) {
	dir, resolv := useFakeProvider(t)
	path := filepath.Join(dir, "desired.json")
	port := freeUDPPort(t)
	stdin, push := io.Pipe()
	acks, stdout := io.Pipe()
	// The file is never read again once the agent runs: only a push can
	// bring a state in this test.
	a, err := New(Config{StatePath: path, Provider: "fake-agent-test", ResolvConf: resolv, DNSPort: port,
		Interval: time.Hour, StatsPath: filepath.Join(dir, "stats.json"), AppliedPath: filepath.Join(dir, "applied"),
		Pushes: stdin, Acks: stdout})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		_ = acks.Close()
		_ = push.Close()
		<-done
	})
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(acks)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	nextAck := func() string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the agent's stdout ended")
			}
			return l
		case <-time.After(30 * time.Second):
			t.Fatal("no acknowledgement")
		}
		return ""
	}
	stateLine := func(st sdn.AgentState) []byte {
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	web := netip.MustParseAddr("127.0.1.2")
	st := sdn.AgentState{
		Host:     "h1",
		DNS:      netip.MustParseAddr("127.0.3.1"),
		Networks: []sdn.HostNetwork{{NetworkID: "n1", Name: "one", Gateway: netip.MustParseAddr("127.0.1.1"), Subnet: netip.MustParsePrefix("127.0.1.0/24")}},
		Records:  map[string]map[string][]netip.Addr{"n1": {"web": {web}}},
	}
	first := stateLine(st)
	if _, err := push.Write(append(first, '\n')); err != nil {
		t.Fatal(err)
	}
	if got, want := nextAck(), sdn.AgentAckPrefix+sdn.AppliedSum(first); got != want {
		t.Fatalf("acknowledged %q, want %q", got, want)
	}
	// Acknowledged means applied: the network is there, the name answers.
	if ids, _ := fake.snapshot(); !slices.Equal(ids, []string{"n1"}) {
		t.Errorf("acknowledged, but the networks applied are %v", ids)
	}
	hostDNS := net.JoinHostPort("127.0.3.1", strconv.Itoa(port))
	if got := lookupFrom(t, "127.0.1.2", hostDNS, "web."); !slices.Equal(got, []string{web.String()}) {
		t.Errorf("acknowledged, but web resolves to %v", got)
	}
	if kept, _ := os.ReadFile(path); string(kept) != string(first) {
		t.Errorf("state file %q, want the pushed state", kept)
	}

	// Two states at once: both acknowledged, in order, the second applied.
	st.Records = map[string]map[string][]netip.Addr{"n1": {"web2": {web}}}
	second := stateLine(st)
	st.Records = map[string]map[string][]netip.Addr{"n1": {"web3": {web}}}
	third := stateLine(st)
	if _, err := push.Write(append(append(append(second, '\n'), third...), '\n')); err != nil {
		t.Fatal(err)
	}
	for _, want := range [][]byte{second, third} {
		if got := nextAck(); got != sdn.AgentAckPrefix+sdn.AppliedSum(want) {
			t.Fatalf("acknowledged %q, want the sum of %s", got, want)
		}
	}
	if got := lookupFrom(t, "127.0.1.2", hostDNS, "web3."); !slices.Equal(got, []string{web.String()}) {
		t.Errorf("the last state acknowledged, but web3 resolves to %v", got)
	}
	// The same state again is acknowledged too (a manager that restarted
	// pushes what the agent already has).
	if _, err := push.Write(append(third, '\n')); err != nil {
		t.Fatal(err)
	}
	if got := nextAck(); got != sdn.AgentAckPrefix+sdn.AppliedSum(third) {
		t.Fatalf("acknowledged %q, want the sum of the repeated state", got)
	}
}
