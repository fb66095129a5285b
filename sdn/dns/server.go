// Package dns answers fleet names on a host: the per-host agent listens on
// the host's DNS address (its default bridge's gateway) and on each fleet
// network's gateway, and containers get those as their DNS servers.
// Docker's embedded resolver (127.0.0.11) answers what it knows and
// forwards the rest here.
//
//	query ──▶ Scope: the querier's address picks its Table (the names of
//	          the fleet networks it is on; none for a stranger)
//	      ──▶ name in the Table?
//	            ├ yes: A → its IPv4 addresses, AAAA → its IPv6 ones
//	            │      (dual-stack networks; each rotated per answer);
//	            │      a type it has none of → empty NOERROR answer
//	            │      (not REFUSED: resolvers slow down on that)
//	            ├ PTR of a fleet address (in-addr.arpa, ip6.arpa) → its names
//	            └ no:  forwarded to the live upstreams in order, or NXDOMAIN
//	                   when there are none; SERVFAIL at once when every
//	                   upstream is down
//
// Every query gets an answer, and quickly: an upstream that does not
// answer is marked down and skipped (probed in the background until it
// answers again; each upstream is probed once at Start), so a host whose
// resolvers are out of reach answers SERVFAIL in microseconds. Waiting
// ForwardTimeout on each query instead outlasts the patience of Docker's
// embedded resolver and its clients: busybox's nslookup then reports
// "connection timed out; no servers could be reached".
//
// Answers are authoritative and carry a short TTL, since fleet names move.
package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Defaults of Config.
const (
	DefaultTTL            = 5
	DefaultForwardTimeout = 2 * time.Second
	DefaultProbeInterval  = 2 * time.Second
)

// RcodeUnreachable answers a forwarded query when no upstream is up.
const RcodeUnreachable = dns.RcodeServerFailure

// Config configures a Server. Zero fields take the defaults.
type Config struct {
	// Addr is where to listen, host:port, on UDP and TCP. Port 0 picks a
	// free port (the same for both); Server.Addr tells which.
	Addr string
	// Upstreams are the servers (host:port) that names not in the table
	// are forwarded to, tried in order. None: such names get NXDOMAIN.
	Upstreams []string
	// TTL of answers from the table, in seconds. Default 5.
	TTL uint32
	// ForwardTimeout bounds each forwarded query. Default 2s.
	ForwardTimeout time.Duration
	// ProbeInterval is how often an upstream marked down is asked again
	// (in the background) whether it answers. Default 2s.
	ProbeInterval time.Duration
	// Counters count the queries served; several servers may share one.
	// Default: the server's own.
	Counters *Counters
}

// Scope picks the table that answers a query by the querier's address,
// so that a container resolves the names of its own networks only. A nil
// table means no fleet names for that querier: everything is forwarded.
type Scope interface {
	TableFor(src netip.Addr) *Table
}

// Server answers DNS queries from the tables of a Scope.
type Server struct {
	scope Scope
	cfg   Config
	udp   *dns.Client
	tcp   *dns.Client
	turn  atomic.Uint32 // rotates multi-address answers
	ups   []*upstream
	done  chan struct{} // closed by Shutdown: probes stop
	stop  sync.Once

	mu      sync.Mutex
	servers []*dns.Server
	addr    netip.AddrPort
}

// upstream is one forwarding target and whether it answers.
type upstream struct {
	addr string
	// down: it did not answer; queries skip it while a probe asks it
	// again every ProbeInterval.
	down atomic.Bool
}

// NewServer returns a server over scope (a *Table answers everyone the
// same); Start makes it listen. Its ServeDNS can also be mounted on a
// dns.Server of the caller's.
func NewServer(scope Scope, cfg Config) *Server {
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.ForwardTimeout == 0 {
		cfg.ForwardTimeout = DefaultForwardTimeout
	}
	if cfg.ProbeInterval == 0 {
		cfg.ProbeInterval = DefaultProbeInterval
	}
	if cfg.Counters == nil {
		cfg.Counters = &Counters{}
	}
	s := &Server{
		scope: scope,
		cfg:   cfg,
		udp:   &dns.Client{Net: "udp", Timeout: cfg.ForwardTimeout, UDPSize: dns.DefaultMsgSize},
		tcp:   &dns.Client{Net: "tcp", Timeout: cfg.ForwardTimeout},
		done:  make(chan struct{}),
	}
	for _, a := range cfg.Upstreams {
		s.ups = append(s.ups, &upstream{addr: a})
	}
	return s
}

// Start listens on cfg.Addr (UDP and TCP) and serves in the background
// until Shutdown. It returns once both listeners are up.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.servers != nil {
		return errors.New("dns: server already started")
	}
	pc, l, err := listen(s.cfg.Addr)
	if err != nil {
		return err
	}
	s.addr = netip.MustParseAddrPort(pc.LocalAddr().String())
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: s},
		{Listener: l, Handler: s},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		failed := make(chan error, 1)
		go func() { failed <- srv.ActivateAndServe() }()
		select {
		case <-started:
			s.servers = append(s.servers, srv)
		case err := <-failed:
			pc.Close()
			l.Close()
			for _, up := range s.servers {
				_ = up.Shutdown()
			}
			s.servers = nil
			return fmt.Errorf("dns: serve on %s: %w", s.addr, err)
		}
	}
	// Learn now which upstreams answer, not on a client's first query.
	for _, u := range s.ups {
		go func() {
			if !s.alive(u) {
				s.markDown(u)
			}
		}()
	}
	return nil
}

// listen opens UDP and TCP on the same address; with port 0 it retries
// until the port UDP got is free on TCP too.
func listen(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dns: listen address %q: %w", addr, err)
	}
	for try := 0; ; try++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dns: %w", err)
		}
		_, got, _ := net.SplitHostPort(pc.LocalAddr().String())
		l, err := net.Listen("tcp", net.JoinHostPort(host, got))
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		if port != "0" || try == 10 {
			return nil, nil, fmt.Errorf("dns: %w", err)
		}
	}
}

// Addr is the address the server listens on (after Start).
func (s *Server) Addr() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Shutdown stops the listeners and waits for queries in flight, up to
// ctx's deadline.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop.Do(func() { close(s.done) })
	s.mu.Lock()
	servers := s.servers
	s.servers = nil
	s.mu.Unlock()
	var errs []error
	for _, srv := range servers {
		if err := srv.ShutdownContext(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stats counts the queries served so far.
type Stats struct {
	// Answered from a table (fleet names, their PTRs).
	Answered uint64 `json:"answered"`
	// Forwarded upstream, or refused with NXDOMAIN for want of upstreams.
	Forwarded uint64 `json:"forwarded"`
}

// Counters count queries, for one server or several.
type Counters struct {
	answered, forwarded atomic.Uint64
}

// Stats are the counts so far.
func (c *Counters) Stats() Stats {
	return Stats{Answered: c.answered.Load(), Forwarded: c.forwarded.Load()}
}

// Stats are the server's counts (those of its Counters).
func (s *Server) Stats() Stats { return s.cfg.Counters.Stats() }

// ServeDNS answers one query (dns.Handler).
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := s.answer(w, r)
	if m == nil {
		return
	}
	if _, ok := w.LocalAddr().(*net.UDPAddr); ok {
		size := dns.MinMsgSize
		if o := r.IsEdns0(); o != nil {
			size = max(int(o.UDPSize()), dns.MinMsgSize)
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

func (s *Server) answer(w dns.ResponseWriter, r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	if r.Opcode != dns.OpcodeQuery || len(r.Question) != 1 {
		return m.SetRcode(r, dns.RcodeNotImplemented)
	}
	q := r.Question[0]
	t := s.scope.TableFor(remoteAddr(w))
	if t != nil && q.Qclass == dns.ClassINET {
		if q.Qtype == dns.TypePTR {
			if names := reverse(t, q.Name); len(names) > 0 {
				m.SetReply(r)
				m.Authoritative = true
				for _, n := range names {
					m.Answer = append(m.Answer, &dns.PTR{Hdr: s.hdr(q.Name, dns.TypePTR), Ptr: dns.Fqdn(n)})
				}
				s.cfg.Counters.answered.Add(1)
				return m
			}
		} else if addrs, ok := t.Lookup(q.Name); ok {
			m.SetReply(r)
			m.Authoritative = true
			m.RecursionAvailable = len(s.cfg.Upstreams) > 0
			if q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY {
				for _, a := range s.rotated(addrs, netip.Addr.Is4) {
					m.Answer = append(m.Answer, &dns.A{Hdr: s.hdr(q.Name, dns.TypeA), A: net.IP(a.AsSlice())})
				}
			}
			if q.Qtype == dns.TypeAAAA || q.Qtype == dns.TypeANY {
				for _, a := range s.rotated(addrs, netip.Addr.Is6) {
					m.Answer = append(m.Answer, &dns.AAAA{Hdr: s.hdr(q.Name, dns.TypeAAAA), AAAA: net.IP(a.AsSlice())})
				}
			}
			// Every other type of a fleet name (and a family it has no
			// address of): NOERROR, no answer.
			s.cfg.Counters.answered.Add(1)
			return m
		}
	}
	s.cfg.Counters.forwarded.Add(1)
	if len(s.cfg.Upstreams) == 0 {
		m.SetRcode(r, dns.RcodeNameError)
		m.RecursionAvailable = false
		return m
	}
	return s.forward(w, r)
}

// rotated are the addresses of one family (keep), in an order that
// turns with every answer, so that clients spread over them.
func (s *Server) rotated(addrs []netip.Addr, keep func(netip.Addr) bool) []netip.Addr {
	var fam []netip.Addr
	for _, a := range addrs {
		if keep(a) {
			fam = append(fam, a)
		}
	}
	if len(fam) < 2 {
		return fam
	}
	start := int(s.turn.Add(1) % uint32(len(fam)))
	return append(fam[start:], fam[:start]...)
}

func (s *Server) hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: s.cfg.TTL}
}

// remoteAddr is the querier's address (invalid when unknown).
func remoteAddr(w dns.ResponseWriter) netip.Addr {
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// reverse answers a PTR name (in-addr.arpa, ip6.arpa) from table t.
func reverse(t *Table, name string) []string {
	n := Normalize(name)
	if rest, ok := strings.CutSuffix(n, ".ip6.arpa"); ok {
		nibbles := strings.Split(rest, ".")
		if len(nibbles) != 32 {
			return nil
		}
		var b [16]byte
		for i, nb := range nibbles {
			// The least significant nibble comes first.
			v, ok := hexNibble(nb)
			if !ok {
				return nil
			}
			pos := 31 - i
			b[pos/2] |= v << (4 * (1 - pos%2))
		}
		return t.Names(netip.AddrFrom16(b))
	}
	rest, ok := strings.CutSuffix(n, ".in-addr.arpa")
	if !ok {
		return nil
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 4 {
		return nil
	}
	a, err := netip.ParseAddr(parts[3] + "." + parts[2] + "." + parts[1] + "." + parts[0])
	if err != nil {
		return nil
	}
	return t.Names(a)
}

func hexNibble(s string) (byte, bool) {
	if len(s) != 1 {
		return 0, false
	}
	switch c := s[0]; {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// forward asks the live upstreams in order, over the protocol the query
// came in on (falling back to TCP when a UDP answer is truncated). An
// upstream that does not answer is marked down; with none left the
// answer is RcodeUnreachable, at once.
func (s *Server) forward(w dns.ResponseWriter, r *dns.Msg) *dns.Msg {
	c := s.udp
	if _, ok := w.LocalAddr().(*net.TCPAddr); ok {
		c = s.tcp
	}
	for _, u := range s.ups {
		if u.down.Load() {
			continue
		}
		resp, _, err := c.Exchange(r, u.addr)
		if err == nil && resp.Truncated && c == s.udp {
			resp, _, err = s.tcp.Exchange(r, u.addr)
		}
		if err == nil {
			resp.Id = r.Id
			return resp
		}
		s.markDown(u)
	}
	m := new(dns.Msg)
	m.SetRcode(r, RcodeUnreachable)
	m.RecursionAvailable = false
	return m
}

// markDown takes u out of the forwarding order until a probe gets an
// answer from it.
func (s *Server) markDown(u *upstream) {
	if !u.down.CompareAndSwap(false, true) {
		return
	}
	go func() {
		t := time.NewTicker(s.cfg.ProbeInterval)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-t.C:
			}
			if s.alive(u) {
				u.down.Store(false)
				return
			}
		}
	}()
}

// alive asks u for the root's NS records: any answer, whatever its code,
// shows that it answers.
func (s *Server) alive(u *upstream) bool {
	m := new(dns.Msg)
	m.SetQuestion(".", dns.TypeNS)
	_, _, err := s.udp.Exchange(m, u.addr)
	return err == nil
}

// UpstreamsDown lists the upstreams currently skipped for not answering.
func (s *Server) UpstreamsDown() []string {
	var out []string
	for _, u := range s.ups {
		if u.down.Load() {
			out = append(out, u.addr)
		}
	}
	return out
}
