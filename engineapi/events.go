package engineapi

// GET /events over the fleet: the query checked as the engine checks it,
// each engine's events annotated with the host they came from (as classic
// swarm did), Clocker's own fleet events written as an engine writes its
// events, and the hosts' streams merged into one.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
)

// EventsQuery is the checked query of GET /events.
type EventsQuery struct {
	// Since and Until are as the client gave them (passed on to the
	// engines); SinceTime and UntilTime parsed, zero when not given.
	Since, Until         string
	SinceTime, UntilTime time.Time
	// EngineFilters is the filters value for the engines: the client's
	// without `node` ("" for none).
	EngineFilters string
	// Nodes are the values of the `node` filter (nil: every host).
	Nodes map[string]bool
	// Filters are the client's filters without `node`, for Clocker's own
	// events.
	Filters map[string]map[string]bool
}

// ParseEventsQuery checks since, until and filters as the engine does, with
// its wording, so that a bad query is refused before anything streams.
func ParseEventsQuery(q url.Values) (EventsQuery, error) {
	eq := EventsQuery{Since: q.Get("since"), Until: q.Get("until")}
	since, err := eventTime(eq.Since)
	if err != nil {
		return EventsQuery{}, err
	}
	until, err := eventTime(eq.Until)
	if err != nil {
		return EventsQuery{}, err
	}
	if !until.IsZero() && until.Before(since) {
		return EventsQuery{}, errdefs.New(errdefs.ErrInvalid,
			fmt.Sprintf("`since` time (%s) cannot be after `until` time (%s)", eq.Since, eq.Until))
	}
	eq.UntilTime = until
	eq.SinceTime = since
	raw := q.Get("filters")
	if raw == "" {
		return eq, nil
	}
	f, err := filtersFromJSON(raw)
	if err != nil {
		return EventsQuery{}, err
	}
	eq.Filters = f
	if nodes, ok := f["node"]; ok {
		eq.Nodes = map[string]bool{}
		for v, on := range nodes {
			if on {
				eq.Nodes[v] = true
			}
		}
		delete(f, "node")
		if len(f) == 0 {
			return eq, nil
		}
		b, err := json.Marshal(f)
		if err != nil {
			return EventsQuery{}, err
		}
		eq.EngineFilters = string(b)
		return eq, nil
	}
	eq.EngineFilters = raw // untouched: the engines read it as the client wrote it
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

// EngineQuery is the query each engine is asked with; since replaces the
// client's (when following a host again).
func (eq EventsQuery) EngineQuery(since string) url.Values {
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	if eq.Until != "" {
		q.Set("until", eq.Until)
	}
	if eq.EngineFilters != "" {
		q.Set("filters", eq.EngineFilters)
	}
	return q
}

// FleetEventsWanted reports whether the query can select fleet events
// (Type "engine"): they answer the type, event and node filters; any other
// filter is about engine objects and excludes them, as an engine's filters
// exclude events of other types.
func (eq EventsQuery) FleetEventsWanted() bool {
	for key, vals := range eq.Filters {
		switch key {
		case "type":
			if !vals["engine"] {
				return false
			}
		case "event":
		default:
			return false
		}
	}
	return true
}

// SelectsFleetEvent tells whether a fleet event falls within since and
// until (no until: from since on, live) and passes the event and node
// filters; whether the query wants fleet events at all is
// FleetEventsWanted.
func (eq EventsQuery) SelectsFleetEvent(ev hosts.FleetEvent) bool {
	if ev.Time.Before(eq.SinceTime) || (!eq.UntilTime.IsZero() && ev.Time.After(eq.UntilTime)) {
		return false
	}
	if vals, ok := eq.Filters["event"]; ok && !vals[ev.Action] {
		return false
	}
	return eq.Nodes == nil || eq.Nodes[ev.Host]
}

// EventNode is the host an event came from, as it is added to the event.
type EventNode struct {
	Name string `json:"Name"`
	ID   string `json:"Id"`
	Addr string `json:"Addr"`
	IP   string `json:"Ip"`
}

// Event is one event of the fleet's stream: its JSON, newline-terminated,
// and its time for ordering.
type Event struct {
	Data []byte
	Key  int64 // timeNano (time in ns for events that lack it)
}

// AnnotateEvent adds the host to an engine's event: node.* attributes on
// the actor (when the event has one: API ≥ 1.22) and the "node" object.
func AnnotateEvent(raw []byte, n EventNode) (Event, error) {
	var ev map[string]json.RawMessage
	if err := json.Unmarshal(raw, &ev); err != nil {
		return Event{}, err
	}
	if ev == nil {
		return Event{}, errors.New("event is not an object")
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
				return Event{}, err
			}
			actor["Attributes"] = b
			if ev["Actor"], err = json.Marshal(actor); err != nil {
				return Event{}, err
			}
		}
	}
	nb, err := json.Marshal(n)
	if err != nil {
		return Event{}, err
	}
	ev["node"] = nb
	out, err := json.Marshal(ev)
	if err != nil {
		return Event{}, err
	}
	return Event{Data: append(out, '\n'), Key: key}, nil
}

// FleetEventJSON writes a fleet event (a host added, removed, connected or
// disconnected: classic swarm's engine_connect and engine_disconnect) as
// an engine writes its events, with the pre-1.22 status/id/from fields
// too, annotated with n like theirs.
func FleetEventJSON(ev hosts.FleetEvent, n EventNode) (Event, error) {
	ns := ev.Time.UnixNano()
	b, err := json.Marshal(map[string]any{
		"status": ev.Action, "id": ev.Host, "from": "clocker",
		"Type": "engine", "Action": ev.Action,
		"Actor": map[string]any{"ID": ev.Host, "Attributes": map[string]string{
			"name": ev.Host, "url": ev.URL,
			"node.name": n.Name, "node.id": n.ID, "node.addr": n.Addr, "node.ip": n.IP,
		}},
		"scope": "local", "time": ns / 1e9, "timeNano": ns,
		"node": n,
	})
	if err != nil {
		return Event{}, err
	}
	return Event{Data: append(b, '\n'), Key: ns}, nil
}

// MergeOrdered writes the events of every source in key order across
// sources (ties: the lower source first) until every source is closed.
// Each source delivers its own events in order, as an engine does; an
// event is written as soon as every open source has one waiting or has
// ended, so nothing later can come before it.
func MergeOrdered(ctx context.Context, srcs []<-chan Event, emit func([]byte) error) error {
	heads := make([]*Event, len(srcs))
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
			if h != nil && (best < 0 || h.Key < heads[best].Key) {
				best = i
			}
		}
		if best < 0 {
			return nil // every source has ended
		}
		if err := emit(heads[best].Data); err != nil {
			return err
		}
		heads[best] = nil
	}
}

// MergeLive writes the events of every source as they arrive, until every
// source is closed or ctx ends.
func MergeLive(ctx context.Context, srcs []<-chan Event, emit func([]byte) error) error {
	all := make(chan Event)
	var wg sync.WaitGroup
	for _, ch := range srcs {
		wg.Go(func() {
			for ev := range ch {
				select {
				case all <- ev:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() { wg.Wait(); close(all) }()
	for {
		select {
		case ev, ok := <-all:
			if !ok {
				return nil
			}
			if err := emit(ev.Data); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
