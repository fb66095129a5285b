package hosts

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// probe is the health checker's own keep-alive connection to an engine.
// The checking goroutine writes a prepared request and reads the answer
// itself, where the pooled net/http client hands every request to its
// write and read loops (goroutine hand-offs, each a possible thread
// wake-up) and allocates a request, a context and its timer: at a
// thousand hosts that was most of the health checks' CPU.
type probe struct {
	ep   Endpoint
	ctx  context.Context // the host's: its end interrupts a check
	conn net.Conn
	br   *bufio.Reader
	stop func() bool // unregisters the interrupt of conn
	reqs map[string][]byte
	body bytes.Buffer // the last kept answer (reused)
}

// probeMaxBody bounds an answer the probe reads (an engine's /info is a few
// kilobytes).
const probeMaxBody = 4 << 20

func newProbe(ctx context.Context, ep Endpoint) *probe {
	return &probe{ep: ep, ctx: ctx, reqs: map[string][]byte{}}
}

// get sends GET path and returns the status and, with keep, the body, valid
// until the next call. The whole exchange, a dial included, ends by
// deadline.
func (p *probe) get(path string, deadline time.Time, keep bool) (int, []byte, error) {
	req, ok := p.reqs[path]
	if !ok {
		req = fmt.Appendf(nil, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: clocker\r\n\r\n", path, p.ep.Base.Host)
		p.reqs[path] = req
	}
	for {
		reused := p.conn != nil
		if !reused {
			if err := p.dial(deadline); err != nil {
				return 0, nil, fmt.Errorf("GET %s: %w", path, err)
			}
		}
		status, body, err := p.exchange(req, deadline, keep)
		if err == nil {
			return status, body, nil
		}
		p.close()
		// An engine may close a kept-alive connection at any time; like
		// net/http, retry once on a new one when nothing came back, unless
		// the engine was slow.
		var stale *staleError
		if !reused || !errors.As(err, &stale) || errors.Is(err, os.ErrDeadlineExceeded) || p.ctx.Err() != nil {
			return 0, nil, fmt.Errorf("GET %s: %w", path, err)
		}
	}
}

// staleError is a failure before any answer: the connection may have been
// closed by the engine while idle.
type staleError struct{ err error }

func (e *staleError) Error() string { return e.err.Error() }
func (e *staleError) Unwrap() error { return e.err }

func (p *probe) dial(deadline time.Time) error {
	ctx, cancel := context.WithDeadline(p.ctx, deadline)
	defer cancel()
	c, err := p.ep.Dial(ctx)
	if err != nil {
		return err
	}
	p.conn = c
	if p.br == nil {
		p.br = bufio.NewReaderSize(c, 4096)
	} else {
		p.br.Reset(c)
	}
	// The host leaving the fleet interrupts a check in progress.
	p.stop = context.AfterFunc(p.ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	return nil
}

func (p *probe) exchange(req []byte, deadline time.Time, keep bool) (int, []byte, error) {
	if err := p.conn.SetDeadline(deadline); err != nil {
		return 0, nil, err
	}
	if err := p.ctx.Err(); err != nil {
		return 0, nil, err // the deadline may have overwritten the interrupt
	}
	if _, err := p.conn.Write(req); err != nil {
		return 0, nil, &staleError{err}
	}
	resp, err := http.ReadResponse(p.br, nil)
	if err != nil {
		return 0, nil, &staleError{err}
	}
	defer resp.Body.Close()
	var n int64
	if keep {
		p.body.Reset()
		n, err = p.body.ReadFrom(io.LimitReader(resp.Body, probeMaxBody+1))
	} else {
		n, err = io.Copy(io.Discard, io.LimitReader(resp.Body, probeMaxBody+1))
	}
	switch {
	case err != nil:
		return 0, nil, err
	case n > probeMaxBody:
		return 0, nil, fmt.Errorf("answer larger than %d bytes", probeMaxBody)
	}
	if resp.Close {
		p.close() // the engine closes it after this answer
	}
	if !keep {
		return resp.StatusCode, nil, nil
	}
	return resp.StatusCode, p.body.Bytes(), nil
}

func (p *probe) close() {
	if p.conn == nil {
		return
	}
	p.stop()
	_ = p.conn.Close()
	p.conn = nil
}

// heardConn is a connection of the host's pool: anything the engine sends
// on it (an answer to a forwarded call, an event) proves it alive, so the
// health checker need not ask (see nextCheck).
type heardConn struct {
	net.Conn
	heard *atomic.Int64
}

func (c *heardConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.heard.Store(int64(monotonic()))
	}
	return n, err
}

// epoch makes monotonic instants storable in an atomic.Int64.
var epoch = time.Now()

func monotonic() time.Duration { return time.Since(epoch) }

// nextCheck is when a host that answers is next checked: one interval
// after the last proof that it answers (a check that succeeded, or
// anything it sent on its connections), so an engine that stops
// answering is checked within one interval of its last answer, as with a
// plain ticker, while a busy host needs no pings. /info is read every
// factsEvery intervals whatever the traffic, with the check that falls
// nearest. wait <= 0: check now.
//
// Due times are rounded down to a slot shared by every host: checks due
// in the same slot run together, one wake-up of the scheduler for many,
// where checks spread evenly woke an idle thread each (futex, epoll) and
// that cost about as much as the request.
func nextCheck(now, proof, factsAt, interval time.Duration) (wait time.Duration, facts bool) {
	factsDue := factsAt + factsEvery*interval
	due := min(proof+interval, factsDue)
	if s := checkSlot(interval); s > 0 && due > 0 {
		due -= due % s
	}
	return due - now, factsDue-now < interval/2
}

// checkSlot is the rounding of nextCheck: an eighth of the interval, at
// most 250 ms (a check early by that is harmless; a burst of an eighth of
// the fleet is small).
func checkSlot(interval time.Duration) time.Duration {
	return min(interval/8, 250*time.Millisecond)
}
