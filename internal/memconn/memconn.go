// Package memconn is an in-memory network: a listener whose Dial hands the
// other end of a new connection to Accept, with no socket and no port.
// Its connections behave as TCP's do where HTTP relies on it: each
// direction is buffered, deadlines interrupt blocked calls, and CloseWrite
// half-closes (the peer reads what was sent, then EOF, and can still
// answer), which net.Pipe lacks and hijacked streams need to pass the end
// of stdin on.
package memconn

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// bufferSize is how many unread bytes one direction holds before Write
// waits for the reader, as a socket's buffer.
const bufferSize = 256 << 10

// Errors of writes the other side can no longer take, named as the kernel
// names them for a socket.
var (
	errBrokenPipe = errors.New("broken pipe")
	errRefused    = errors.New("connection refused")
)

// Addr is the address of a listener and of its connections.
type Addr string

// Network is "memory".
func (a Addr) Network() string { return "memory" }

func (a Addr) String() string { return string(a) }

// Listener is an in-memory net.Listener.
type Listener struct {
	addr  Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

// Listen makes a listener named addr (its Addr, and its connections').
func Listen(addr string) *Listener {
	return &Listener{addr: Addr(addr), conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept waits for the next Dial.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "memory", Addr: l.addr, Err: net.ErrClosed}
	}
}

// Close stops Accept and refuses later Dials; connections already made
// stay open.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr is the listener's name.
func (l *Listener) Addr() net.Addr { return l.addr }

// Dial connects to the listener: it returns once Accept took the other
// end, the listener closed, or ctx ended.
func (l *Listener) Dial(ctx context.Context) (net.Conn, error) {
	refused := &net.OpError{Op: "dial", Net: "memory", Addr: l.addr, Err: errRefused}
	select {
	case <-l.done:
		return nil, refused
	default:
	}
	c, s := Pipe(l.addr)
	select {
	case l.conns <- s:
		return c, nil
	case <-l.done:
		return nil, refused
	case <-ctx.Done():
		return nil, &net.OpError{Op: "dial", Net: "memory", Addr: l.addr, Err: ctx.Err()}
	}
}

// DialContext is Dial with the signature of http.Transport.DialContext;
// network and address are ignored.
func (l *Listener) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	return l.Dial(ctx)
}

// Pipe makes a connected pair: what one writes the other reads.
func Pipe(addr Addr) (*Conn, *Conn) {
	ab, ba := newPipe(), newPipe()
	return &Conn{rx: ba, tx: ab, addr: addr}, &Conn{rx: ab, tx: ba, addr: addr}
}

// Conn is one end of an in-memory connection. It implements net.Conn
// and CloseWrite.
type Conn struct {
	rx, tx *pipe
	addr   Addr
}

// Read reads what the other end wrote; io.EOF once it closed or
// half-closed and everything sent was read.
func (c *Conn) Read(b []byte) (int, error) { return c.rx.read(b) }

// Write sends b whole, waiting for the reader while the buffer is full.
func (c *Conn) Write(b []byte) (int, error) { return c.tx.write(b) }

// CloseWrite half-closes the connection: the other end reads EOF after
// what was sent; this end can still read.
func (c *Conn) CloseWrite() error {
	p := c.tx
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.writerClosed {
		return net.ErrClosed
	}
	p.eof = true
	p.changed()
	return nil
}

// Close closes both directions: the other end reads what was sent, then
// EOF; its writes fail. Blocked calls on this end return net.ErrClosed.
func (c *Conn) Close() error {
	p := c.tx
	p.mu.Lock()
	already := p.writerClosed
	p.writerClosed, p.eof = true, true
	p.changed()
	p.mu.Unlock()

	p = c.rx
	p.mu.Lock()
	p.readerClosed = true
	p.buf = bytes.Buffer{} // unread input is dropped, as a socket's
	p.changed()
	p.mu.Unlock()
	if already {
		return net.ErrClosed
	}
	return nil
}

// LocalAddr is the listener's address.
func (c *Conn) LocalAddr() net.Addr { return c.addr }

// RemoteAddr is the listener's address.
func (c *Conn) RemoteAddr() net.Addr { return c.addr }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.rx.setDeadline(&c.rx.readDeadline, t)
	c.tx.setDeadline(&c.tx.writeDeadline, t)
	return nil
}

// SetReadDeadline makes Read fail with os.ErrDeadlineExceeded from t on
// (zero: never), including a Read already waiting.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.rx.setDeadline(&c.rx.readDeadline, t)
	return nil
}

// SetWriteDeadline makes Write fail with os.ErrDeadlineExceeded from t on
// (zero: never), including a Write already waiting.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.tx.setDeadline(&c.tx.writeDeadline, t)
	return nil
}

// pipe is one direction of a connection: the bytes one end wrote and the
// other has not read yet, and the state of both ends as this direction
// sees it.
type pipe struct {
	mu  sync.Mutex
	buf bytes.Buffer
	// wake is closed, and replaced, whenever the state changes while a
	// reader or writer waits.
	wake    chan struct{}
	waiters int

	eof           bool // the writer closed or half-closed
	writerClosed  bool // the writing end closed: its writes fail
	readerClosed  bool // the reading end closed: its reads and the writer's writes fail
	readDeadline  time.Time
	writeDeadline time.Time
}

func newPipe() *pipe { return &pipe{wake: make(chan struct{})} }

// changed wakes whoever waits on p; p.mu is held.
func (p *pipe) changed() {
	if p.waiters > 0 {
		close(p.wake)
		p.wake = make(chan struct{})
	}
}

// wait releases p.mu until the state changes or deadline passes; p.mu is
// held again when it returns.
func (p *pipe) wait(deadline time.Time) {
	wake := p.wake
	p.waiters++
	p.mu.Unlock()
	if deadline.IsZero() {
		<-wake
	} else {
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
	p.mu.Lock()
	p.waiters--
}

func (p *pipe) setDeadline(d *time.Time, t time.Time) {
	p.mu.Lock()
	*d = t
	p.changed()
	p.mu.Unlock()
}

func passed(deadline time.Time) bool {
	return !deadline.IsZero() && !time.Now().Before(deadline)
}

func (p *pipe) read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		switch {
		case p.readerClosed:
			return 0, net.ErrClosed
		case passed(p.readDeadline):
			return 0, os.ErrDeadlineExceeded
		case len(b) == 0:
			return 0, nil
		case p.buf.Len() > 0:
			n, _ := p.buf.Read(b)
			p.changed()
			return n, nil
		case p.eof:
			return 0, io.EOF
		}
		p.wait(p.readDeadline)
	}
}

func (p *pipe) write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for {
		switch {
		case p.writerClosed:
			return n, net.ErrClosed
		case p.eof, p.readerClosed:
			return n, &net.OpError{Op: "write", Net: "memory", Err: errBrokenPipe}
		case passed(p.writeDeadline):
			return n, os.ErrDeadlineExceeded
		case len(b) == 0:
			return n, nil
		}
		if room := bufferSize - p.buf.Len(); room > 0 {
			k := min(room, len(b))
			p.buf.Write(b[:k])
			b, n = b[k:], n+k
			p.changed()
			continue
		}
		p.wait(p.writeDeadline)
	}
}
