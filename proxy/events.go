package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

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

// eventsQuery is the checked query of GET /events.
type eventsQuery struct {
	since, until string    // as the client gave them (passed on)
	untilTime    time.Time // zero when there is no until
	// engineFilters is the filters value for the engines: the client's
	// without `node` ("" for none).
	engineFilters string
	// nodes are the values of the `node` filter (nil: every host).
	nodes map[string]bool
	// sinceTime is since parsed (zero: none); filters the client's filters
	// without `node`, for Clocker's own events.
	sinceTime time.Time
	filters   map[string]map[string]bool
}

// parseEventsQuery checks since, until and filters as the engine does, with
// its wording, so that a bad query is refused before anything streams.
func parseEventsQuery(q url.Values) (eventsQuery, error) {
	eq := eventsQuery{since: q.Get("since"), until: q.Get("until")}
	since, err := eventTime(eq.since)
	if err != nil {
		return eventsQuery{}, err
	}
	until, err := eventTime(eq.until)
	if err != nil {
		return eventsQuery{}, err
	}
	if !until.IsZero() && until.Before(since) {
		return eventsQuery{}, errdefs.New(errdefs.ErrInvalid,
			fmt.Sprintf("`since` time (%s) cannot be after `until` time (%s)", eq.since, eq.until))
	}
	eq.untilTime = until
	eq.sinceTime = since
	raw := q.Get("filters")
	if raw == "" {
		return eq, nil
	}
	f, err := filtersFromJSON(raw)
	if err != nil {
		return eventsQuery{}, err
	}
	eq.filters = f
	if nodes, ok := f["node"]; ok {
		eq.nodes = map[string]bool{}
		for v, on := range nodes {
			if on {
				eq.nodes[v] = true
			}
		}
		delete(f, "node")
		if len(f) == 0 {
			return eq, nil
		}
		b, err := json.Marshal(f)
		if err != nil {
			return eventsQuery{}, err
		}
		eq.engineFilters = string(b)
		return eq, nil
	}
	eq.engineFilters = raw // untouched: the engines read it as the client wrote it
	return eq, nil
}

// eventTime parses a since/until value as the engine's eventTime
// (timetypes.ParseTimestamps with default -1): "SECONDS[.NANOSECONDS]",
// empty (or -1) for none.
func eventTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	s, n, hasNanos := strings.Cut(v, ".")
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, errdefs.New(errdefs.ErrInvalid, err.Error())
	}
	var nsec int64
	if hasNanos {
		nsec, err = strconv.ParseInt(n, 10, 64)
		if err != nil {
			return time.Time{}, errdefs.New(errdefs.ErrInvalid, err.Error())
		}
		nsec = int64(float64(nsec) * math.Pow(10, float64(9-len(n))))
	}
	if sec == -1 {
		return time.Time{}, nil
	}
	return time.Unix(sec, nsec), nil
}

// filtersFromJSON decodes a filters value as the engine's filters.FromJSON:
// the map form {"k":{"v":true}}, else the legacy list form {"k":["v"]};
// when neither parses, the error of the first, as the engine reports it.
func filtersFromJSON(raw string) (map[string]map[string]bool, error) {
	var f map[string]map[string]bool
	err := json.Unmarshal([]byte(raw), &f)
	if err == nil {
		if f == nil {
			f = map[string]map[string]bool{}
		}
		return f, nil
	}
	var legacy map[string][]string
	if json.Unmarshal([]byte(raw), &legacy) != nil {
		return nil, errdefs.New(errdefs.ErrInvalid, err.Error())
	}
	f = make(map[string]map[string]bool, len(legacy))
	for k, vs := range legacy {
		f[k] = map[string]bool{}
		for _, v := range vs {
			f[k][v] = true
		}
	}
	return f, nil
}

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

// engineQuery is the query each engine is asked with; since may be replaced
// (when following a host again).
func (eq eventsQuery) engineQuery(since string) url.Values {
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	if eq.until != "" {
		q.Set("until", eq.until)
	}
	if eq.engineFilters != "" {
		q.Set("filters", eq.engineFilters)
	}
	return q
}

// eventNode is the host an event came from, as it is added to the event.
type eventNode struct {
	Name string `json:"Name"`
	ID   string `json:"Id"`
	Addr string `json:"Addr"`
	IP   string `json:"Ip"`
}

func eventNodeOf(h *hosts.Host) eventNode {
	return eventNode{Name: h.Name, ID: h.Name, Addr: hostAddr(h), IP: hostIP(h)}
}

// hostEvent is one annotated event, newline-terminated, with its time.
type hostEvent struct {
	data []byte
	key  int64 // timeNano (time in ns for events that lack it)
}

// annotateEvent adds the host to an engine's event: node.* attributes on
// the actor (when the event has one: API ≥ 1.22) and the "node" object.
// It returns the event's time in nanoseconds for ordering.
func annotateEvent(raw []byte, n eventNode) (hostEvent, error) {
	var ev map[string]json.RawMessage
	if err := json.Unmarshal(raw, &ev); err != nil {
		return hostEvent{}, err
	}
	if ev == nil {
		return hostEvent{}, errors.New("event is not an object")
	}
	var key int64
	if tn, ok := ev["timeNano"]; ok {
		_ = json.Unmarshal(tn, &key)
	}
	if key == 0 {
		var sec int64
		if t, ok := ev["time"]; ok && json.Unmarshal(t, &sec) == nil {
			key = sec * int64(time.Second)
		}
	}
	if actorRaw, ok := ev["Actor"]; ok {
		var actor map[string]json.RawMessage
		if err := json.Unmarshal(actorRaw, &actor); err == nil && actor != nil {
			attrs := map[string]string{}
			if a, ok := actor["Attributes"]; ok {
				_ = json.Unmarshal(a, &attrs)
				if attrs == nil {
					attrs = map[string]string{}
				}
			}
			attrs["node.name"] = n.Name
			attrs["node.id"] = n.ID
			attrs["node.addr"] = n.Addr
			attrs["node.ip"] = n.IP
			b, err := json.Marshal(attrs)
			if err != nil {
				return hostEvent{}, err
			}
			actor["Attributes"] = b
			if ev["Actor"], err = json.Marshal(actor); err != nil {
				return hostEvent{}, err
			}
		}
	}
	nb, err := json.Marshal(n)
	if err != nil {
		return hostEvent{}, err
	}
	ev["node"] = nb
	out, err := json.Marshal(ev)
	if err != nil {
		return hostEvent{}, err
	}
	return hostEvent{data: append(out, '\n'), key: key}, nil
}

// mergeOrdered writes the events of every source in key order across
// sources (ties: the lower source first) until every source is closed.
// Each source delivers its own events in order, as an engine does; an
// event is written as soon as every open source has one waiting or has
// ended, so nothing later can come before it.
func mergeOrdered(ctx context.Context, srcs []<-chan hostEvent, emit func([]byte) error) error {
	heads := make([]*hostEvent, len(srcs))
	open := make([]bool, len(srcs))
	for i := range open {
		open[i] = true
	}
	for {
		for i, ch := range srcs {
			if !open[i] || heads[i] != nil {
				continue
			}
			select {
			case ev, ok := <-ch:
				if !ok {
					open[i] = false
					continue
				}
				heads[i] = &ev
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		best := -1
		for i, h := range heads {
			if h != nil && (best < 0 || h.key < heads[best].key) {
				best = i
			}
		}
		if best < 0 {
			return nil // every source has ended
		}
		if err := emit(heads[best].data); err != nil {
			return err
		}
		heads[best] = nil
	}
}

// mergeLive writes the events of every source as they arrive, until every
// source is closed or ctx ends.
func mergeLive(ctx context.Context, srcs []<-chan hostEvent, emit func([]byte) error) error {
	all := make(chan hostEvent)
	var wg sync.WaitGroup
	for _, ch := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range ch {
				select {
				case all <- ev:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(all) }()
	for {
		select {
		case ev, ok := <-all:
			if !ok {
				return nil
			}
			if err := emit(ev.data); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// eventsHandler answers GET /events.
func (s *Server) eventsHandler(w http.ResponseWriter, r *http.Request) error {
	eq, err := parseEventsQuery(r.URL.Query())
	if err != nil {
		return err
	}
	healthy, err := s.healthyHosts()
	if err != nil {
		return err
	}
	hs := selectHosts(healthy, eq.nodes)
	live := eq.untilTime.IsZero()
	started := time.Now()

	// The host streams live until the client leaves, or (with until) at
	// most until the grace after until.
	streamCtx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if !live {
		t := time.AfterFunc(max(time.Until(eq.untilTime), 0)+eventsUntilGrace, cancel)
		defer t.Stop()
	}

	// Subscribe on every host before answering: an engine's refusal of the
	// query is the client's answer.
	opened := s.openEventStreams(streamCtx, r, hs, eq.engineQuery(eq.since))
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

	srcs := make([]<-chan hostEvent, 0, len(hs))
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
		ch := make(chan hostEvent, 64)
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
	switch {
	case live && len(srcs) == 0:
		<-r.Context().Done() // a stream with nothing in it, as an engine's
	case live:
		err = mergeLive(r.Context(), srcs, emit)
	default:
		err = mergeOrdered(r.Context(), srcs, emit)
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
		return nil, relayError(resp.StatusCode, body)
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
	eq      eventsQuery
	live    bool
	started time.Time
	node    eventNode
	out     chan<- hostEvent

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
		resp, err = f.s.openEventStream(ctx, f.r, f.h, f.eq.engineQuery(f.resumeSince()))
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
	if f.eq.since != "" {
		return f.eq.since
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
		ev, err := annotateEvent(raw, f.node)
		if err != nil {
			return fmt.Errorf("bad event from host %s: %w", f.h.Name, err)
		}
		k := string(raw)
		if resumedAt >= 0 && (ev.key < resumedAt || ev.key == resumedAt && f.atLast[k]) {
			continue
		}
		switch {
		case ev.key > f.lastKey:
			f.lastKey = ev.key
			f.atLast = map[string]bool{k: true}
		case ev.key == f.lastKey:
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
