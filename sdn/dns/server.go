// Package dns answers fleet names on a host: the per-host agent listens on
// the host's DNS address (its default bridge's gateway) and on each fleet
// network's gateway, and containers get those as their DNS servers.
// Docker's embedded resolver (127.0.0.11) answers what it knows and
// forwards the rest here.
//
//	query ──▶ Scope: the querier's address picks its Table (the names of
//	          the fleet networks it is on; none for a stranger)
//	      ──▶ name in the Table?
//	            ├ yes: A → its IPv4 addresses (rotated per answer);
//	            │      AAAA and other types → empty NOERROR answer
//	            │      (not REFUSED: resolvers slow down on that)
//	            ├ PTR of a fleet address → its names
//	            └ no:  forwarded to the upstreams in order (SERVFAIL when
//	                   none answers), or NXDOMAIN when there are none
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
)

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

	mu      sync.Mutex
	servers []*dns.Server
	addr    netip.AddrPort
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
	if cfg.Counters == nil {
		cfg.Counters = &Counters{}
	}
	return &Server{
		scope: scope,
		cfg:   cfg,
		udp:   &dns.Client{Net: "udp", Timeout: cfg.ForwardTimeout, UDPSize: dns.DefaultMsgSize},
		tcp:   &dns.Client{Net: "tcp", Timeout: cfg.ForwardTimeout},
	}
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
				v4 := addrs[:0]
				for _, a := range addrs {
					if a.Is4() {
						v4 = append(v4, a)
					}
				}
				start := 0
				if len(v4) > 1 {
					start = int(s.turn.Add(1) % uint32(len(v4)))
				}
				for i := range v4 {
					a := v4[(start+i)%len(v4)].As4()
					m.Answer = append(m.Answer, &dns.A{Hdr: s.hdr(q.Name, dns.TypeA), A: net.IP(a[:])})
				}
			}
			// AAAA and every other type of a fleet name: NOERROR, no answer.
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

// reverse answers a PTR name (in-addr.arpa) from table t.
func reverse(t *Table, name string) []string {
	const suffix = ".in-addr.arpa"
	n := Normalize(name)
	if !strings.HasSuffix(n, suffix) {
		return nil
	}
	parts := strings.Split(strings.TrimSuffix(n, suffix), ".")
	if len(parts) != 4 {
		return nil
	}
	a, err := netip.ParseAddr(parts[3] + "." + parts[2] + "." + parts[1] + "." + parts[0])
	if err != nil {
		return nil
	}
	return t.Names(a)
}

// forward asks the upstreams in order, over the protocol the query came
// in on (falling back to TCP when a UDP answer is truncated).
func (s *Server) forward(w dns.ResponseWriter, r *dns.Msg) *dns.Msg {
	c := s.udp
	if _, ok := w.LocalAddr().(*net.TCPAddr); ok {
		c = s.tcp
	}
	for _, up := range s.cfg.Upstreams {
		resp, _, err := c.Exchange(r, up)
		if err == nil && resp.Truncated && c == s.udp {
			resp, _, err = s.tcp.Exchange(r, up)
		}
		if err == nil {
			resp.Id = r.Id
			return resp
		}
	}
	m := new(dns.Msg)
	return m.SetRcode(r, dns.RcodeServerFailure)
}
