package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/clocker/clocker/engineapi"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/fanout"
)

// GET /events: the fleet's event stream, merged from every healthy host.
//
// Each host's engine is asked for its own stream with the client's since,
// until and filters (less Clocker's own `node` filter, which picks the
// hosts); every event gets the host in its actor's attributes (node.name,
// node.id, node.addr, node.ip) and, as classic swarm did, a top-level "node"
// object. Without until the streams are interleaved as events arrive and the
// response lasts until the client leaves; a host whose stream breaks is
// followed again once it answers (from the last event it sent). With until
// the events are merged in timeNano order across hosts, and the response
// ends when every host's stream has ended. Hosts that join the fleet while a
// stream is open are not added to it.

const (
	// eventsHeaderTimeout bounds how long a host may take to answer the
	// subscription; one that does not is left out (or retried when live).
	eventsHeaderTimeout = 5 * time.Second
	// eventsUntilGrace is how long after `until` (on Clocker's clock; after
	// the request for an until in the past) a host stream that has not
	// ended is cut, so a stalled engine cannot hold the
	// response open forever.
	eventsUntilGrace = 5 * time.Second
)

// selectHosts keeps the hosts a node filter names (all when nodes is nil).
func selectHosts(hs []*hosts.Host, nodes map[string]bool) []*hosts.Host {
	if nodes == nil {
		return hs
	}
	var out []*hosts.Host
	for _, h := range hs {
		if nodes[h.Name] {
			out = append(out, h)
		}
	}
	return out
}

// eventNodeOf is the host as it is added to its events.
func eventNodeOf(h *hosts.Host) engineapi.EventNode {
	return engineapi.EventNode{Name: h.Name, ID: h.Name, Addr: h.Endpoint.Addr(), IP: h.Endpoint.IP()}
}

// eventsHandler answers GET /events.
func (s *Server) eventsHandler(w http.ResponseWriter, r *http.Request) error {
	eq, err := engineapi.ParseEventsQuery(r.URL.Query())
	if err != nil {
		return err
	}
	healthy, err := s.healthyHosts()
	if err != nil {
		return err
	}
	hs := selectHosts(healthy, eq.Nodes)
	live := eq.UntilTime.IsZero()
	started := time.Now()

	// The host streams live until the client leaves, or (with until) at
	// most until the grace after until.
	streamCtx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if !live {
		t := time.AfterFunc(max(time.Until(eq.UntilTime), 0)+eventsUntilGrace, cancel)
		defer t.Stop()
	}

	// Subscribe on every host before answering: an engine's refusal of the
	// query is the client's answer.
	opened := s.openEventStreams(streamCtx, r, hs, eq.EngineQuery(eq.Since))
	if err := openError(opened); err != nil {
		for _, o := range opened {
			if o.resp != nil {
				o.resp.Body.Close()
			}
		}
		return err
	}

	// Subscribed before the client hears back, so nothing it does next is
	// missed.
	fleetSrc := s.fleetEventSource(streamCtx, eq)

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()

	srcs := make([]<-chan engineapi.Event, 0, len(hs))
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i, h := range hs {
		o := opened[i]
		if o.err != nil {
			if !live {
				s.Log.Warn("events: host left out of the stream", "host", h.Name, "err", o.err)
				continue
			}
			s.Log.Warn("events: host not followed yet; will retry", "host", h.Name, "err", o.err)
		}
		ch := make(chan engineapi.Event, 64)
		srcs = append(srcs, ch)
		f := &eventFollower{s: s, r: r, h: h, eq: eq, live: live, started: started, node: eventNodeOf(h), out: ch}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.run(streamCtx, o.resp)
		}()
	}
	if fleetSrc != nil {
		srcs = append(srcs, fleetSrc)
	}
	emit := func(b []byte) error {
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	emit = tenantEvents(r, emit)
	switch {
	case live && len(srcs) == 0:
		<-r.Context().Done() // a stream with nothing in it, as an engine's
	case live:
		err = engineapi.MergeLive(r.Context(), srcs, emit)
	default:
		err = engineapi.MergeOrdered(r.Context(), srcs, emit)
	}
	if err != nil && r.Context().Err() == nil {
		s.Log.Debug("events: stream ended", "err", err)
	}
	return nil // the status is sent: nothing more to say
}

// openError is the error to answer instead of a stream: a host's refusal
// of the query (4xx), or the first failure when no host could be followed.
func openError(opened []openedStream) error {
	var first error
	ok := false
	for _, o := range opened {
		switch {
		case o.err == nil:
			ok = true
		case errdefs.Status(o.err) < 500:
			return o.err
		case first == nil:
			first = o.err
		}
	}
	if ok {
		return nil
	}
	return first
}

// openedStream is the answer of one host to the subscription.
type openedStream struct {
	resp *http.Response
	err  error
}

// openEventStreams subscribes on every host at once and waits for their
// headers (each at most eventsHeaderTimeout).
func (s *Server) openEventStreams(ctx context.Context, r *http.Request, hs []*hosts.Host, q url.Values) []openedStream {
	opened := fanout.Each(hs, func(h *hosts.Host) (*http.Response, error) { return s.openEventStream(ctx, r, h, q) })
	out := make([]openedStream, len(hs))
	for i, o := range opened {
		out[i] = openedStream{resp: o.Value, err: o.Err}
	}
	return out
}

// openEventStream subscribes on one host; a non-2xx answer is its error.
func (s *Server) openEventStream(ctx context.Context, r *http.Request, h *hosts.Host, q url.Values) (*http.Response, error) {
	hctx, hcancel := context.WithCancel(ctx)
	timer := time.AfterFunc(eventsHeaderTimeout, hcancel)
	resp, err := s.hostRequest(hctx, r, h, http.MethodGet, "/events", q, nil)
	if !timer.Stop() {
		hcancel()
		if resp != nil {
			resp.Body.Close()
		}
		return nil, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s (%s): no answer to GET /events within %s", h.Name, h.Endpoint.URL, eventsHeaderTimeout))
	}
	if err != nil {
		hcancel()
		return nil, err
	}
	if resp.StatusCode >= 300 {
		defer hcancel()
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		return nil, errdefs.FromEngine(resp.StatusCode, body)
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: hcancel}
	return resp, nil
}

// cancelOnClose ends a request's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// eventFollower reads one host's stream into out, annotated; live, it
// follows the host again when its stream breaks.
type eventFollower struct {
	s       *Server
	r       *http.Request
	h       *hosts.Host
	eq      engineapi.EventsQuery
	live    bool
	started time.Time
	node    engineapi.EventNode
	out     chan<- engineapi.Event

	// lastKey is the newest time sent, atLast the events sent at that time:
	// a stream followed again from lastKey repeats them.
	lastKey int64
	atLast  map[string]bool
}

func (f *eventFollower) run(ctx context.Context, resp *http.Response) {
	defer close(f.out)
	backoff := 200 * time.Millisecond
	resumedAt := int64(-1) // the initial stream repeats nothing
	for {
		if resp != nil {
			err := f.read(ctx, resp.Body, resumedAt)
			resp.Body.Close()
			resp = nil
			if ctx.Err() != nil {
				return
			}
			if !f.live {
				if err != nil {
					f.s.Log.Warn("events: host stream broke", "host", f.h.Name, "err", err)
				}
				return
			}
			f.s.Log.Warn("events: host stream broke; following it again when it answers", "host", f.h.Name, "err", err)
			backoff = 200 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
		if !f.h.Healthy() {
			continue
		}
		var err error
		resumedAt = f.lastKey
		resp, err = f.s.openEventStream(ctx, f.r, f.h, f.eq.EngineQuery(f.resumeSince()))
		if err != nil {
			f.s.Log.Debug("events: following host again failed", "host", f.h.Name, "err", err)
			resp = nil
		}
	}
}

// resumeSince is where a broken stream is taken up again: the last event
// sent (repeats are dropped), else where the client's stream began.
func (f *eventFollower) resumeSince() string {
	if f.lastKey > 0 {
		return fmt.Sprintf("%d.%09d", f.lastKey/int64(time.Second), f.lastKey%int64(time.Second))
	}
	if f.eq.Since != "" {
		return f.eq.Since
	}
	return fmt.Sprintf("%d.%09d", f.started.Unix(), f.started.Nanosecond())
}

// read sends the stream's events until it ends; nil at a clean end. A
// stream followed again from resumedAt (≥ 0) may repeat what was sent: the
// events before resumedAt, and those at it already sent, are dropped.
func (f *eventFollower) read(ctx context.Context, body io.Reader, resumedAt int64) error {
	dec := json.NewDecoder(body)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		ev, err := engineapi.AnnotateEvent(raw, f.node)
		if err != nil {
			return fmt.Errorf("bad event from host %s: %w", f.h.Name, err)
		}
		k := string(raw)
		if resumedAt >= 0 && (ev.Key < resumedAt || ev.Key == resumedAt && f.atLast[k]) {
			continue
		}
		switch {
		case ev.Key > f.lastKey:
			f.lastKey = ev.Key
			f.atLast = map[string]bool{k: true}
		case ev.Key == f.lastKey:
			if f.atLast == nil {
				f.atLast = map[string]bool{}
			}
			f.atLast[k] = true
		}
		select {
		case f.out <- ev:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
