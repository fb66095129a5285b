package dns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// start runs a server over table (or any Scope) on a random port of
// 127.0.0.1.
func start(t testing.TB, table Scope, cfg Config) *Server {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	s := NewServer(table, cfg)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return s
}

func query(t testing.TB, s *Server, netw, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: netw, Timeout: 10 * time.Second} // a failure bound only
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := c.Exchange(m, s.Addr().String())
	if err != nil {
		t.Fatalf("%s %s over %s: %v", dns.TypeToString[qtype], name, netw, err)
	}
	return r
}

func aAddrs(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		switch a := rr.(type) {
		case *dns.A:
			out = append(out, a.A.String())
		case *dns.AAAA:
			out = append(out, a.AAAA.String())
		}
	}
	sort.Strings(out)
	return out
}

func TestAnswers(t *testing.T) {
	table := NewTable()
	table.Set("web", addr("10.200.0.2"))
	table.Set("Api.", addr("10.200.0.35"), addr("10.200.0.66"))
	table.Set("db-alias", addr("10.200.0.3"))
	table.Set("dual", addr("10.200.0.4"), addr("fd00:1::4"), addr("fd00:1::5"))
	s := start(t, table, Config{})

	tests := []struct {
		name    string
		qname   string
		qtype   uint16
		net     string
		rcode   int
		answers []string // A and AAAA answers, sorted
		ptr     []string
	}{
		{name: "A of a container", qname: "web", qtype: dns.TypeA, net: "udp", rcode: dns.RcodeSuccess, answers: []string{"10.200.0.2"}},
		{name: "A over TCP", qname: "web", qtype: dns.TypeA, net: "tcp", rcode: dns.RcodeSuccess, answers: []string{"10.200.0.2"}},
		{name: "case and trailing dot", qname: "API.", qtype: dns.TypeA, net: "udp", rcode: dns.RcodeSuccess, answers: []string{"10.200.0.35", "10.200.0.66"}},
		{name: "alias", qname: "db-alias", qtype: dns.TypeA, net: "udp", rcode: dns.RcodeSuccess, answers: []string{"10.200.0.3"}},
		{name: "AAAA of a fleet name is empty NOERROR", qname: "web", qtype: dns.TypeAAAA, net: "udp", rcode: dns.RcodeSuccess},
		{name: "A of a dual-stack name: IPv4 only", qname: "dual", qtype: dns.TypeA, net: "udp", rcode: dns.RcodeSuccess, answers: []string{"10.200.0.4"}},
		{name: "AAAA of a dual-stack name", qname: "dual", qtype: dns.TypeAAAA, net: "udp", rcode: dns.RcodeSuccess, answers: []string{"fd00:1::4", "fd00:1::5"}},
		{name: "ANY of a dual-stack name", qname: "dual", qtype: dns.TypeANY, net: "tcp", rcode: dns.RcodeSuccess, answers: []string{"10.200.0.4", "fd00:1::4", "fd00:1::5"}},
		{name: "PTR of a fleet IPv6 address", qname: "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa", qtype: dns.TypePTR, net: "udp",
			rcode: dns.RcodeSuccess, ptr: []string{"dual."}},
		{name: "PTR of a short ip6.arpa name", qname: "5.0.0.0.ip6.arpa", qtype: dns.TypePTR, net: "udp", rcode: dns.RcodeNameError},
		{name: "MX of a fleet name is empty NOERROR", qname: "web", qtype: dns.TypeMX, net: "udp", rcode: dns.RcodeSuccess},
		{name: "unknown name, no upstream", qname: "nosuch", qtype: dns.TypeA, net: "udp", rcode: dns.RcodeNameError},
		{name: "unknown AAAA, no upstream", qname: "nosuch", qtype: dns.TypeAAAA, net: "udp", rcode: dns.RcodeNameError},
		{name: "PTR of a fleet address", qname: "66.0.200.10.in-addr.arpa", qtype: dns.TypePTR, net: "udp", rcode: dns.RcodeSuccess, ptr: []string{"api."}},
		{name: "PTR unknown", qname: "9.9.9.9.in-addr.arpa", qtype: dns.TypePTR, net: "udp", rcode: dns.RcodeNameError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := query(t, s, tc.net, tc.qname, tc.qtype)
			if r.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			if got := aAddrs(r); !slices.Equal(got, tc.answers) {
				t.Fatalf("A answers %v, want %v", got, tc.answers)
			}
			var ptr []string
			for _, rr := range r.Answer {
				if p, ok := rr.(*dns.PTR); ok {
					ptr = append(ptr, p.Ptr)
				}
			}
			if !slices.Equal(ptr, tc.ptr) {
				t.Fatalf("PTR answers %v, want %v", ptr, tc.ptr)
			}
			if tc.rcode == dns.RcodeSuccess {
				if !r.Authoritative {
					t.Error("fleet answer not authoritative")
				}
				for _, rr := range r.Answer {
					if rr.Header().Ttl != DefaultTTL {
						t.Errorf("TTL %d", rr.Header().Ttl)
					}
				}
			}
		})
	}
}

func TestTableUpdatesAreSeen(t *testing.T) {
	table := NewTable()
	s := start(t, table, Config{})
	if r := query(t, s, "udp", "web", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Fatalf("before Set: %s", dns.RcodeToString[r.Rcode])
	}
	table.Set("web", addr("10.200.0.2"))
	if got := aAddrs(query(t, s, "udp", "web", dns.TypeA)); !slices.Equal(got, []string{"10.200.0.2"}) {
		t.Fatalf("after Set: %v", got)
	}
	table.Set("web", addr("10.200.0.40")) // moved
	if got := aAddrs(query(t, s, "udp", "web", dns.TypeA)); !slices.Equal(got, []string{"10.200.0.40"}) {
		t.Fatalf("after re-Set: %v", got)
	}
	if n := table.Names(addr("10.200.0.2")); len(n) != 0 {
		t.Fatalf("old address still maps back to %v", n)
	}
	table.Remove("WEB")
	if r := query(t, s, "udp", "web", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Fatalf("after Remove: %s", dns.RcodeToString[r.Rcode])
	}
	table.Replace(map[string][]netip.Addr{"a": {addr("10.200.0.5")}, "b": {addr("10.200.0.5")}})
	if table.Len() != 2 || !slices.Equal(table.Names(addr("10.200.0.5")), []string{"a", "b"}) {
		t.Fatalf("after Replace: %d names, %v", table.Len(), table.Names(addr("10.200.0.5")))
	}
	table.Set("a") // no address: removed
	if _, ok := table.Lookup("a"); ok {
		t.Fatal("Set with no address kept the name")
	}
}

func TestRotatesMultipleAddresses(t *testing.T) {
	table := NewTable()
	table.Set("svc", addr("10.200.0.2"), addr("10.200.0.34"), addr("10.200.0.66"))
	s := start(t, table, Config{})
	first := map[string]bool{}
	for range 6 {
		r := query(t, s, "udp", "svc", dns.TypeA)
		if len(r.Answer) != 3 {
			t.Fatalf("%d answers", len(r.Answer))
		}
		first[r.Answer[0].(*dns.A).A.String()] = true
	}
	if len(first) != 3 {
		t.Fatalf("first answers %v: not rotated", first)
	}
}

func TestForwardsUnknownNames(t *testing.T) {
	upTable := NewTable()
	upTable.Set("example.org", addr("192.0.2.7"))
	up := start(t, upTable, Config{})

	table := NewTable()
	table.Set("web", addr("10.200.0.2"))
	// A dead upstream first: the next one answers.
	dead := deadUDP(t)
	// The live upstream must answer within ForwardTimeout, the probe at
	// Start included, or it is marked down: long enough for a loaded
	// machine (the dead one costs it once at most).
	s := start(t, table, Config{Upstreams: []string{dead, up.Addr().String()}, ForwardTimeout: 2 * time.Second})

	for _, netw := range []string{"udp", "tcp"} {
		r := query(t, s, netw, "example.org", dns.TypeA)
		if r.Rcode != dns.RcodeSuccess || !slices.Equal(aAddrs(r), []string{"192.0.2.7"}) {
			t.Fatalf("forwarded over %s: %s %v", netw, dns.RcodeToString[r.Rcode], aAddrs(r))
		}
	}
	if r := query(t, s, "udp", "unknown.example", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Fatalf("upstream's NXDOMAIN: %s", dns.RcodeToString[r.Rcode])
	}
	// Fleet names are still answered here, not forwarded.
	if r := query(t, s, "udp", "web", dns.TypeAAAA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || !r.RecursionAvailable {
		t.Fatalf("AAAA of a fleet name with upstreams: %v", r)
	}

	// Only dead upstreams: SERVFAIL, and the dead one is skipped from
	// then on.
	s2 := start(t, table, Config{Upstreams: []string{dead}, ForwardTimeout: 300 * time.Millisecond})
	if r := query(t, s2, "udp", "example.org", dns.TypeA); r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("dead upstream: %s", dns.RcodeToString[r.Rcode])
	}
	if down := s2.UpstreamsDown(); !slices.Equal(down, []string{dead}) {
		t.Fatalf("upstreams down: %v", down)
	}
}

// waitDown waits until s has marked want down (the probe at Start).
func waitDown(t *testing.T, s *Server, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Equal(s.UpstreamsDown(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("upstreams down %v, want %v", s.UpstreamsDown(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDeadUpstreamFoundAtStartAndSkipped(t *testing.T) {
	dead, hits := countingDeadUDP(t)
	s := start(t, NewTable(), Config{Upstreams: []string{dead}, ForwardTimeout: 100 * time.Millisecond, ProbeInterval: time.Hour})
	waitDown(t, s, dead)
	before := hits()
	for range 5 {
		if r := query(t, s, "udp", "example.org", dns.TypeA); r.Rcode != dns.RcodeServerFailure {
			t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
		}
	}
	if n := hits() - before; n != 0 {
		t.Fatalf("%d queries sent to an upstream marked down", n)
	}
}

func TestUpstreamBackIsUsedAgain(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	upAddr := pc.LocalAddr().String()
	// Once back, the upstream must answer the forwarded query within
	// ForwardTimeout: long enough for a loaded machine.
	s := start(t, NewTable(), Config{Upstreams: []string{upAddr}, ForwardTimeout: time.Second, ProbeInterval: 10 * time.Millisecond})
	waitDown(t, s, upAddr)
	// The upstream comes back on the same address.
	upTable := NewTable()
	upTable.Set("example.org", addr("192.0.2.7"))
	pc.Close()
	up := NewServer(upTable, Config{Addr: upAddr})
	if err := up.Start(); err != nil {
		t.Skipf("address taken again meanwhile: %v", err)
	}
	t.Cleanup(func() { _ = up.Shutdown(context.Background()) })
	waitDown(t, s)
	if r := query(t, s, "udp", "example.org", dns.TypeA); r.Rcode != dns.RcodeSuccess || !slices.Equal(aAddrs(r), []string{"192.0.2.7"}) {
		t.Fatalf("after the upstream came back: %s %v", dns.RcodeToString[r.Rcode], aAddrs(r))
	}
}

// TestEveryQueryIsAnswered asks every kind of query from every kind of
// querier, with every kind of upstream set-up: each gets an answer, the
// one its path gives, and none waits on an upstream known to be dead.
func TestEveryQueryIsAnswered(t *testing.T) {
	netA := NewTable()
	netA.Set("web", addr("10.200.0.2"))
	netA.Set("v6only", addr("fd00::2"))
	views := &Views{}
	views.Set(map[netip.Addr]*Table{addr("127.0.0.1"): netA}, nil)
	stranger := &Views{} // the querier's address and network are unknown
	stranger.Set(map[netip.Addr]*Table{addr("10.9.9.9"): netA}, []Subnet{{Prefix: netip.MustParsePrefix("10.200.0.0/24"), Table: netA}})

	upTable := NewTable()
	upTable.Set("example.org", addr("192.0.2.7"))
	live := start(t, upTable, Config{})
	const dead = "dead" // each subtest's own
	upstreams := map[string][]string{"none": nil, "dead": {dead}, "live": {live.Addr().String()}, "dead-then-live": {dead, live.Addr().String()}}
	scopes := map[string]Scope{"known querier": views, "unknown querier": stranger, "no views yet": &Views{}}
	names := []string{"web", "v6only", "example.org", "nosuch", "2.0.200.10.in-addr.arpa", "9.9.9.10.in-addr.arpa", "."}
	types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeTXT, dns.TypeSRV, dns.TypePTR, dns.TypeANY, dns.TypeSOA, dns.TypeNS, dns.TypeCNAME}
	for un, ups := range upstreams {
		for sn, scope := range scopes {
			t.Run(un+"/"+sn, func(t *testing.T) {
				// In parallel, each with its own dead upstream: the probes
				// at Start that find them dead take ForwardTimeout
				// together, not one after the other. A live upstream
				// slower than ForwardTimeout is marked down for the rest
				// of the subtest, so it is long enough for a loaded machine.
				t.Parallel()
				dead, deadHits := countingDeadUDP(t)
				ups := slices.Clone(ups)
				if i := slices.Index(ups, "dead"); i >= 0 {
					ups[i] = dead
				}
				s := start(t, scope, Config{Upstreams: ups, ForwardTimeout: 2 * time.Second, ProbeInterval: time.Hour})
				if slices.Contains(ups, dead) {
					waitDown(t, s, dead)
				}
				hits := deadHits()
				for _, netw := range []string{"udp", "tcp"} {
					for _, name := range names {
						for _, qt := range types {
							r := query(t, s, netw, name, qt)
							known := scope.TableFor(addr("127.0.0.1")) != nil
							_, fleet := netA.Lookup(name)
							want := map[string]int{"none": dns.RcodeNameError, "dead": dns.RcodeServerFailure,
								"live": dns.RcodeNameError, "dead-then-live": dns.RcodeNameError}[un]
							switch {
							case known && fleet && qt != dns.TypePTR:
								want = dns.RcodeSuccess
							case known && qt == dns.TypePTR && name == "2.0.200.10.in-addr.arpa":
								want = dns.RcodeSuccess
							case un != "none" && un != "dead" && name == "example.org" && qt != dns.TypePTR:
								want = dns.RcodeSuccess
							}
							if r.Rcode != want {
								t.Errorf("%s %s over %s: %s, want %s", dns.TypeToString[qt], name, netw, dns.RcodeToString[r.Rcode], dns.RcodeToString[want])
							}
						}
					}
				}
				if n := deadHits() - hits; n != 0 {
					t.Errorf("%d queries sent to the upstream marked down", n)
				}
				// Another class, and a query of two questions.
				c := &dns.Client{Net: "udp", Timeout: 10 * time.Second}
				m := new(dns.Msg)
				m.SetQuestion("web.", dns.TypeA)
				m.Question[0].Qclass = dns.ClassCHAOS
				if _, _, err := c.Exchange(m, s.Addr().String()); err != nil {
					t.Errorf("CHAOS class: %v", err)
				}
				m.SetQuestion("web.", dns.TypeA)
				m.Question = append(m.Question, dns.Question{Name: "nosuch.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
				if _, _, err := c.Exchange(m, s.Addr().String()); err != nil {
					t.Errorf("two questions: %v", err)
				}
			})
		}
	}
}

// deadUDP is an address where nothing answers: a bound UDP socket that
// never reads.
func deadUDP(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

// countingDeadUDP is an address where nothing answers, and how many
// datagrams reached it.
func countingDeadUDP(t *testing.T) (string, func() int64) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			n.Add(1)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().String(), n.Load
}

func TestConcurrentUpdatesAndQueries(t *testing.T) {
	table := NewTable()
	s := start(t, table, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			name := fmt.Sprint("c", i%50)
			table.Set(name, netip.AddrFrom4([4]byte{10, 200, 0, byte(i % 250)}))
			if i%3 == 0 {
				table.Remove(name)
			}
		}
	})
	for range 4 {
		wg.Go(func() {
			c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
			for i := 0; ctx.Err() == nil; i++ {
				m := new(dns.Msg)
				m.SetQuestion(fmt.Sprintf("c%d.", i%50), dns.TypeA)
				r, _, err := c.Exchange(m, s.Addr().String())
				if err != nil {
					t.Error(err)
					return
				}
				if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
					t.Errorf("rcode %s", dns.RcodeToString[r.Rcode])
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestStartTwiceAndBadAddr(t *testing.T) {
	s := start(t, NewTable(), Config{})
	if err := s.Start(); err == nil {
		t.Fatal("second Start succeeded")
	}
	if err := NewServer(NewTable(), Config{Addr: "nonsense"}).Start(); err == nil {
		t.Fatal("Start on a bad address succeeded")
	}
}

// BenchmarkAnswer measures the latency of a fleet-name A answer over UDP
// on loopback, one query at a time, and reports p50 and p99.
func BenchmarkAnswer(b *testing.B) {
	table := NewTable()
	for i := range 1000 {
		table.Set(fmt.Sprint("container-", i), netip.AddrFrom4([4]byte{10, 200, byte(i / 250), byte(i%250 + 1)}))
	}
	benchQueries(b, start(b, table, Config{}).Addr().String())
}

// benchQueries asks addr for container-0 … container-999 in turn, one
// query at a time over one socket, and reports p50 and p99.
func benchQueries(b *testing.B, addr string) {
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	conn, err := c.Dial(addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := new(dns.Msg)
		m.SetQuestion(fmt.Sprintf("container-%d.", i%1000), dns.TypeA)
		t0 := time.Now()
		r, _, err := c.ExchangeWithConn(m, conn)
		lat = append(lat, time.Since(t0))
		if err != nil || len(r.Answer) != 1 {
			b.Fatalf("query %d: %v %v", i, r, err)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
