// The userland Forwarder: one TCP or UDP listener per published port,
// each forwarding to one target address.

package ingress

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Key names one forward: a protocol ("tcp" or "udp") and a port.
type Key struct {
	Proto string
	Port  uint16
}

func (k Key) String() string { return strconv.Itoa(int(k.Port)) + "/" + k.Proto }

// Stats are one forward's counters.
type Stats struct {
	// Target is where it forwards ("" when it has none).
	Target string
	// Connections counts accepted TCP connections, or UDP sessions (one
	// per client address).
	Connections uint64
	// Active is the number of open connections or sessions.
	Active int64
	// BytesIn counts bytes from clients to the target, BytesOut the other
	// way (in the kernel: IP packets, headers included).
	BytesIn, BytesOut uint64
	// Kernel: forwarded by iptables rules; Active is then -1 when
	// conntrack cannot be read.
	Kernel bool
}

// Options tune a Forwarder; zero values take the defaults.
type Options struct {
	// WaitTarget is how long an accepted TCP connection waits for a
	// target when its listener has none yet (default 5s).
	WaitTarget time.Duration
	// DialTimeout bounds connecting to the target (default 10s).
	DialTimeout time.Duration
	// UDPIdle closes a UDP session after this long without traffic
	// (default 60s).
	UDPIdle time.Duration
	// Log receives errors that no caller waits for (default discard).
	Log *slog.Logger
}

// Forwarder holds the listeners of one address.
type Forwarder struct {
	ip   net.IP
	opts Options

	mu        sync.Mutex
	listeners map[Key]*listener
}

// New returns a Forwarder whose listeners bind ip (nil or unspecified:
// every address).
func New(ip net.IP, opts Options) *Forwarder {
	if opts.WaitTarget <= 0 {
		opts.WaitTarget = 5 * time.Second
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 10 * time.Second
	}
	if opts.UDPIdle <= 0 {
		opts.UDPIdle = 60 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Forwarder{ip: ip, opts: opts, listeners: map[Key]*listener{}}
}

// ErrProto is returned for a protocol other than tcp and udp.
var ErrProto = errors.New("protocol must be tcp or udp")

// Open binds the listener of k, without a target. Opening an open key does
// nothing. The error is the kernel's (address in use, permission denied).
func (f *Forwarder) Open(k Key) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.listeners[k]; ok {
		return nil
	}
	addr := net.JoinHostPort(f.addrString(), strconv.Itoa(int(k.Port)))
	l := &listener{key: k, f: f, conns: map[net.Conn]struct{}{}, changed: make(chan struct{})}
	switch k.Proto {
	case "tcp":
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		l.tcp = ln
		go l.serveTCP()
	case "udp":
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return err
		}
		l.udp = pc.(*net.UDPConn)
		l.sessions = map[string]*udpSession{}
		go l.serveUDP()
	default:
		return fmt.Errorf("%s: %w", k, ErrProto)
	}
	f.listeners[k] = l
	return nil
}

func (f *Forwarder) addrString() string {
	if f.ip == nil || f.ip.IsUnspecified() {
		return ""
	}
	return f.ip.String()
}

// SetTarget points the open listener of k at target (host:port); ""
// removes the target. It reports whether k is open.
func (f *Forwarder) SetTarget(k Key, target string) bool {
	f.mu.Lock()
	l, ok := f.listeners[k]
	f.mu.Unlock()
	if !ok {
		return false
	}
	l.setTarget(target)
	return true
}

// Close closes the listener of k and every connection through it.
func (f *Forwarder) Close(k Key) {
	f.mu.Lock()
	l, ok := f.listeners[k]
	delete(f.listeners, k)
	f.mu.Unlock()
	if ok {
		l.close()
	}
}

// CloseAll closes every listener.
func (f *Forwarder) CloseAll() {
	for _, k := range f.Keys() {
		f.Close(k)
	}
}

// Keys lists the open listeners, ordered by protocol and port.
func (f *Forwarder) Keys() []Key {
	f.mu.Lock()
	out := make([]Key, 0, len(f.listeners))
	for k := range f.listeners {
		out = append(out, k)
	}
	f.mu.Unlock()
	sortKeys(out)
	return out
}

func sortKeys(out []Key) {
	sort.Slice(out, func(i, j int) bool {
		if out[i].Proto != out[j].Proto {
			return out[i].Proto < out[j].Proto
		}
		return out[i].Port < out[j].Port
	})
}

// Stats returns the counters of k's listener.
func (f *Forwarder) Stats(k Key) (Stats, bool) {
	f.mu.Lock()
	l, ok := f.listeners[k]
	f.mu.Unlock()
	if !ok {
		return Stats{}, false
	}
	return l.stats(), true
}

// listener is one open port.
type listener struct {
	key Key
	f   *Forwarder
	tcp net.Listener
	udp *net.UDPConn

	mu       sync.Mutex
	target   string
	changed  chan struct{} // closed and replaced when the target changes
	closed   bool
	conns    map[net.Conn]struct{}  // TCP: both ends of each relay
	sessions map[string]*udpSession // UDP: by client address

	connections       atomic.Uint64
	active            atomic.Int64
	bytesIn, bytesOut atomic.Uint64
}

func (l *listener) stats() Stats {
	l.mu.Lock()
	t := l.target
	l.mu.Unlock()
	return Stats{Target: t, Connections: l.connections.Load(), Active: l.active.Load(),
		BytesIn: l.bytesIn.Load(), BytesOut: l.bytesOut.Load()}
}

func (l *listener) setTarget(t string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.target == t {
		return
	}
	l.target = t
	close(l.changed)
	l.changed = make(chan struct{})
	// UDP sessions hold a socket connected to the old target.
	for a, s := range l.sessions {
		s.conn.Close()
		delete(l.sessions, a)
	}
}

// waitTarget returns the target, waiting up to the Forwarder's WaitTarget
// for one to be set.
func (l *listener) waitTarget() string {
	deadline := time.NewTimer(l.f.opts.WaitTarget)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		t, ch, closed := l.target, l.changed, l.closed
		l.mu.Unlock()
		if t != "" || closed {
			return t
		}
		select {
		case <-ch:
		case <-deadline.C:
			return ""
		}
	}
}

func (l *listener) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	close(l.changed)
	l.changed = make(chan struct{})
	conns := l.conns
	l.conns = map[net.Conn]struct{}{}
	sessions := l.sessions
	l.sessions = map[string]*udpSession{}
	l.mu.Unlock()
	if l.tcp != nil {
		l.tcp.Close()
	}
	if l.udp != nil {
		l.udp.Close()
	}
	for c := range conns {
		c.Close()
	}
	for _, s := range sessions {
		s.conn.Close()
	}
}

// track remembers c so that close can end it; false when already closed.
func (l *listener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.conns[c] = struct{}{}
	return true
}

func (l *listener) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// serveTCP accepts until the listener is closed.
func (l *listener) serveTCP() {
	var backoff time.Duration
	for {
		c, err := l.tcp.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: wait, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.f.opts.Log.Warn("ingress accept", "port", l.key.String(), "err", err)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		go l.relayTCP(c)
	}
}

// relayTCP connects the client to the target and copies both ways; each
// direction's end is passed on (half-close) on its own.
func (l *listener) relayTCP(client net.Conn) {
	l.connections.Add(1)
	l.active.Add(1)
	defer l.active.Add(-1)
	if !l.track(client) {
		client.Close()
		return
	}
	defer l.untrack(client)
	defer client.Close()
	target := l.waitTarget()
	if target == "" {
		return
	}
	up, err := net.DialTimeout("tcp", target, l.f.opts.DialTimeout)
	if err != nil {
		l.f.opts.Log.Debug("ingress dial", "port", l.key.String(), "target", target, "err", err)
		return
	}
	if !l.track(up) {
		up.Close()
		return
	}
	defer l.untrack(up)
	defer up.Close()
	done := make(chan struct{})
	go func() {
		copyCounted(up, client, &l.bytesIn)
		closeWrite(up)
		close(done)
	}()
	copyCounted(client, up, &l.bytesOut)
	closeWrite(client)
	<-done
}

// copyChunk is how much is copied between counter updates: large enough
// for splice to move it in one go, small enough for live counters.
const copyChunk = 4 << 20

// copyCounted copies src to dst until EOF or an error, adding to n as it
// goes. io.CopyN over TCP connections splices: the bytes never enter user
// space.
func copyCounted(dst, src net.Conn, n *atomic.Uint64) {
	for {
		k, err := io.CopyN(dst, src, copyChunk)
		n.Add(uint64(k))
		if err != nil {
			return
		}
	}
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}

// udpSession is one client's socket towards the target.
type udpSession struct {
	conn *net.UDPConn
	last atomic.Int64 // unix nanoseconds of the last datagram either way
}

// serveUDP reads datagrams until the listener is closed and sends each
// through its client's session.
func (l *listener) serveUDP() {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := l.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			l.f.opts.Log.Debug("ingress udp read", "port", l.key.String(), "err", err)
			continue
		}
		s := l.session(from.String())
		if s == nil {
			continue // no target: dropped, as by a closed port
		}
		s.last.Store(time.Now().UnixNano())
		if _, err := s.conn.Write(buf[:n]); err == nil {
			l.bytesIn.Add(uint64(n))
		}
	}
}

// session finds or makes the session of a client address; nil when there
// is no target or the target cannot be reached.
func (l *listener) session(client string) *udpSession {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s, ok := l.sessions[client]; ok {
		return s
	}
	if l.target == "" || l.closed {
		return nil
	}
	raddr, err := net.ResolveUDPAddr("udp", l.target)
	if err != nil {
		return nil
	}
	caddr, err := net.ResolveUDPAddr("udp", client)
	if err != nil {
		return nil
	}
	c, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		l.f.opts.Log.Debug("ingress udp dial", "port", l.key.String(), "target", l.target, "err", err)
		return nil
	}
	s := &udpSession{conn: c}
	s.last.Store(time.Now().UnixNano())
	l.sessions[client] = s
	l.connections.Add(1)
	l.active.Add(1)
	go l.udpReplies(client, caddr, s)
	return s
}

// udpReplies sends the target's answers back to the client until the
// session is idle for UDPIdle or closed.
func (l *listener) udpReplies(key string, client *net.UDPAddr, s *udpSession) {
	defer func() {
		l.active.Add(-1)
		s.conn.Close()
		l.mu.Lock()
		if l.sessions[key] == s {
			delete(l.sessions, key)
		}
		l.mu.Unlock()
	}()
	idle := l.f.opts.UDPIdle
	buf := make([]byte, 64<<10)
	for {
		_ = s.conn.SetReadDeadline(time.Unix(0, s.last.Load()).Add(idle))
		n, err := s.conn.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && time.Since(time.Unix(0, s.last.Load())) < idle {
				continue // traffic from the client moved the deadline on
			}
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, net.ErrClosed) {
				return
			}
			// ICMP port unreachable and the like: keep the session.
			if time.Since(time.Unix(0, s.last.Load())) >= idle {
				return
			}
			continue
		}
		s.last.Store(time.Now().UnixNano())
		if _, err := l.udp.WriteToUDP(buf[:n], client); err == nil {
			l.bytesOut.Add(uint64(n))
		}
	}
}

func (k Key) portString() string { return strconv.Itoa(int(k.Port)) }
