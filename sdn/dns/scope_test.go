package dns

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// queryFrom asks s from source address src (a loopback address: Linux
// routes all of 127/8 to lo).
func queryFrom(t *testing.T, s *Server, src, name string, qtype uint16) *dns.Msg {
	t.Helper()
	return queryFromOver(t, s, "udp", src, name, qtype)
}

func queryFromOver(t *testing.T, s *Server, netw, src, name string, qtype uint16) *dns.Msg {
	t.Helper()
	var local net.Addr = &net.UDPAddr{IP: net.ParseIP(src)}
	if netw == "tcp" {
		local = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c := &dns.Client{Net: netw, Timeout: 3 * time.Second, Dialer: &net.Dialer{LocalAddr: local}}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := c.Exchange(m, s.Addr().String())
	if err != nil {
		t.Fatalf("%s from %s: %v", name, src, err)
	}
	return r
}

func TestViewsScopeAnswersByQuerier(t *testing.T) {
	one, two, both := NewTable(), NewTable(), NewTable()
	one.Set("web", addr("10.200.0.2"))
	two.Set("db", addr("10.200.1.2"))
	both.Set("web", addr("10.200.0.2"))
	both.Set("db", addr("10.200.1.2"))
	var v Views
	if v.TableFor(addr("127.0.0.1")) != nil {
		t.Fatal("an empty Views has a table")
	}
	v.Set(map[netip.Addr]*Table{addr("127.0.9.9"): both}, []Subnet{
		{Prefix: netip.MustParsePrefix("127.0.1.0/24"), Table: one},
		{Prefix: netip.MustParsePrefix("127.0.2.0/24"), Table: two},
	})
	s := start(t, &v, Config{}) // no upstreams: what is not answered is NXDOMAIN
	tests := []struct {
		src, name string
		want      []string
		rcode     int
	}{
		{"127.0.1.5", "web", []string{"10.200.0.2"}, dns.RcodeSuccess},    // in one's subnet
		{"127.0.1.5", "db", nil, dns.RcodeNameError},                      // two's name: not for one's members
		{"127.0.2.5", "db", []string{"10.200.1.2"}, dns.RcodeSuccess},     // in two's subnet
		{"127.0.2.5", "web", nil, dns.RcodeNameError},                     //
		{"127.0.9.9", "web", []string{"10.200.0.2"}, dns.RcodeSuccess},    // a client on both
		{"127.0.9.9", "db", []string{"10.200.1.2"}, dns.RcodeSuccess},     //
		{"127.0.3.1", "web", nil, dns.RcodeNameError},                     // a stranger
		{"127.0.3.1", "2.0.200.10.in-addr.arpa", nil, dns.RcodeNameError}, // no PTR for it either
	}
	for _, tt := range tests {
		qtype := dns.TypeA
		if len(tt.name) > 12 {
			qtype = dns.TypePTR
		}
		r := queryFrom(t, s, tt.src, tt.name, qtype)
		if r.Rcode != tt.rcode || !slices.Equal(aAddrs(r), tt.want) {
			t.Errorf("%s from %s: rcode %s answers %v, want %s %v", tt.name, tt.src,
				dns.RcodeToString[r.Rcode], aAddrs(r), dns.RcodeToString[tt.rcode], tt.want)
		}
	}
	// Over TCP the querier is told apart the same way.
	if r := queryFromOver(t, s, "tcp", "127.0.2.5", "db", dns.TypeA); !slices.Equal(aAddrs(r), []string{"10.200.1.2"}) {
		t.Errorf("db over TCP from two's subnet: %v", r)
	}
	if r := queryFromOver(t, s, "tcp", "127.0.1.5", "db", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("db over TCP from one's subnet: %v", r)
	}
	if st := s.Stats(); st.Answered != 5 || st.Forwarded != 5 {
		t.Errorf("stats %+v, want 5 answered, 5 forwarded", st)
	}

	// A new set applies to the next query.
	v.Set(nil, []Subnet{{Prefix: netip.MustParsePrefix("127.0.3.0/24"), Table: two}})
	if r := queryFrom(t, s, "127.0.3.1", "db", dns.TypeA); !slices.Equal(aAddrs(r), []string{"10.200.1.2"}) {
		t.Errorf("after Set: %v", r)
	}
	if r := queryFrom(t, s, "127.0.9.9", "web", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("a client dropped by Set still gets answers: %v", r)
	}
}

// BenchmarkAnswerScoped is BenchmarkAnswer through the agent's Views: the
// querier (127.0.0.1) is one of 1,000 clients, its view one of three
// networks' merged tables.
func BenchmarkAnswerScoped(b *testing.B) {
	table := NewTable()
	for i := range 1000 {
		table.Set(fmt.Sprint("container-", i), netip.AddrFrom4([4]byte{10, 200, byte(i / 250), byte(i%250 + 1)}))
	}
	clients := map[netip.Addr]*Table{}
	for i := range 1000 {
		clients[netip.AddrFrom4([4]byte{172, 17, byte(i / 250), byte(i%250 + 1)})] = NewTable()
	}
	clients[addr("127.0.0.1")] = table
	var v Views
	v.Set(clients, []Subnet{
		{Prefix: netip.MustParsePrefix("10.200.0.0/24"), Table: NewTable()},
		{Prefix: netip.MustParsePrefix("10.200.1.0/24"), Table: NewTable()},
		{Prefix: netip.MustParsePrefix("10.200.2.0/24"), Table: NewTable()},
	})
	benchQueries(b, start(b, &v, Config{}).Addr().String())
}
