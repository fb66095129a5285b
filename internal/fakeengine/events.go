package fakeengine

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// subscriber is one open GET /events.
type subscriber struct {
	ch      chan []byte
	filters map[string][]string
	query   url.Values
	kick    chan struct{} // closed to cut the stream
	since   int64         // unix nanoseconds; 0: none
	until   int64
}

// histEntry is one event kept for since/until (Options.EventHistory).
type histEntry struct {
	m   eventMessage
	msg []byte
	c   *ctr
}

// eventActor and eventMessage are the engine's event JSON.
type eventActor struct {
	ID         string
	Attributes map[string]string
}

type eventMessage struct {
	Status   string `json:"status,omitempty"`
	ID       string `json:"id,omitempty"`
	From     string `json:"from,omitempty"`
	Type     string
	Action   string
	Actor    eventActor
	Scope    string `json:"scope"`
	Time     int64  `json:"time"`
	TimeNano int64  `json:"timeNano"`
}

// publishLocked sends a container event to the streams that want it.
func (e *Engine) publishLocked(action string, c *ctr) {
	e.publishAttrsLocked(action, c, nil)
}

// publishAttrsLocked sends a container event with extra attributes.
func (e *Engine) publishAttrsLocked(action string, c *ctr, extra map[string]string) {
	if e.idleLocked() {
		return
	}
	attrs := make(map[string]string, len(c.labels)+len(extra)+3)
	for k, v := range extra {
		attrs[k] = v
	}
	for k, v := range c.labels {
		attrs[k] = v
	}
	attrs["name"] = c.name
	attrs["image"] = c.image
	if action == "die" {
		attrs["exitCode"] = strconv.Itoa(c.exitCode)
	}
	e.sendLocked(eventMessage{Status: action, ID: c.id, From: c.image, Type: "container", Action: action,
		Actor: eventActor{ID: c.id, Attributes: attrs}}, c)
}

// idleLocked: nobody would see an event (no stream, no history), or the
// engine is quiet.
func (e *Engine) idleLocked() bool {
	return e.quiet || len(e.subs) == 0 && e.opts.EventHistory == 0
}

// Event is an event a test makes an engine publish (see Publish).
type Event struct {
	Type       string // container, image, volume, network …
	Action     string
	ID         string // the actor's ID
	Attributes map[string]string
	Time       time.Time // zero: now
}

// Publish sends ev to the event streams (and the history) as if
// something had happened, at ev.Time: events of containers that never
// were, at times of the test's choosing.
func (e *Engine) Publish(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := eventMessage{Type: ev.Type, Action: ev.Action, Actor: eventActor{ID: ev.ID, Attributes: ev.Attributes}}
	if ev.Type == "container" {
		m.Status, m.ID, m.From = ev.Action, ev.ID, ev.Attributes["image"]
	}
	if !ev.Time.IsZero() {
		m.Time, m.TimeNano = ev.Time.Unix(), ev.Time.UnixNano()
	}
	e.sendLocked(m, nil)
}

// EventStreamQueries are the queries of the event streams open now.
func (e *Engine) EventStreamQueries() []url.Values {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]url.Values, 0, len(e.subs))
	for s := range e.subs {
		out = append(out, s.query)
	}
	return out
}

// publishImageLocked sends an image event.
func (e *Engine) publishImageLocked(action, ref string, im *image) {
	if e.idleLocked() {
		return
	}
	e.sendLocked(eventMessage{Status: action, ID: ref, Type: "image", Action: action,
		Actor: eventActor{ID: im.id, Attributes: map[string]string{"name": ref}}}, nil)
}

// publishObjectLocked sends a volume or network event.
func (e *Engine) publishObjectLocked(typ, action, id string, attrs map[string]string) {
	if e.idleLocked() {
		return
	}
	e.sendLocked(eventMessage{Type: typ, Action: action, Actor: eventActor{ID: id, Attributes: attrs}}, nil)
}

func (e *Engine) sendLocked(m eventMessage, c *ctr) {
	m.Scope = "local"
	if m.TimeNano == 0 {
		now := time.Now()
		m.Time, m.TimeNano = now.Unix(), now.UnixNano()
	}
	var msg []byte
	if n := e.opts.EventHistory; n > 0 {
		msg, _ = json.Marshal(m)
		msg = append(msg, '\n')
		if len(e.history) >= n {
			e.history = append(e.history[:0], e.history[len(e.history)-n+1:]...)
		}
		e.history = append(e.history, histEntry{m: m, msg: msg, c: c})
	}
	for s := range e.subs {
		if !s.wants(&m, c) || s.since > 0 && m.TimeNano < s.since || s.until > 0 && m.TimeNano > s.until {
			continue
		}
		if msg == nil {
			msg, _ = json.Marshal(m)
			msg = append(msg, '\n')
		}
		select {
		case s.ch <- msg:
		default: // a stalled reader loses events, as with a real engine
		}
	}
}

// wants applies the stream's filters: type, event (action), container (ID,
// ID prefix or name), image, label (key or key=value).
func (s *subscriber) wants(m *eventMessage, c *ctr) bool {
	for key, vals := range s.filters {
		if len(vals) == 0 {
			continue
		}
		var ok bool
		switch key {
		case "type":
			ok = contains(vals, m.Type)
		case "event", "action":
			ok = contains(vals, m.Action) || contains(vals, strings.SplitN(m.Action, ":", 2)[0])
		case "container":
			ok = m.Type == "container" && anyOf(vals, func(v string) bool {
				return v == m.Actor.Attributes["name"] || strings.HasPrefix(m.Actor.ID, v)
			})
		case "image":
			ok = anyOf(vals, func(v string) bool {
				return m.Actor.Attributes["image"] == v || m.Actor.Attributes["name"] == v
			})
		case "label":
			ok = c != nil && labelsMatch(c.labels, vals) || c == nil && labelsMatch(m.Actor.Attributes, vals)
		default:
			ok = true // scope, daemon, network, volume …: not emitted here
		}
		if !ok {
			return false
		}
	}
	return true
}

func contains(vals []string, s string) bool {
	for _, v := range vals {
		if v == s {
			return true
		}
	}
	return false
}

func anyOf(vals []string, fn func(string) bool) bool {
	for _, v := range vals {
		if fn(v) {
			return true
		}
	}
	return false
}

// labelsMatch: every filter value (key or key=value) holds.
func labelsMatch(labels map[string]string, vals []string) bool {
	for _, v := range vals {
		k, want, hasValue := strings.Cut(v, "=")
		got, ok := labels[k]
		if !ok || hasValue && got != want {
			return false
		}
	}
	return true
}

// parseFilters reads the filters query in either of its JSON forms
// ({"k":["v"]} or the older {"k":{"v":true}}).
func parseFilters(raw string) (map[string][]string, error) {
	if raw == "" {
		return nil, nil
	}
	var asList map[string][]string
	if err := json.Unmarshal([]byte(raw), &asList); err == nil {
		return asList, nil
	}
	var asMap map[string]map[string]bool
	if err := json.Unmarshal([]byte(raw), &asMap); err != nil {
		return nil, errf(400, "invalid filter '%s'", raw)
	}
	out := make(map[string][]string, len(asMap))
	for k, vs := range asMap {
		for v, on := range vs {
			if on {
				out[k] = append(out[k], v)
			}
		}
	}
	return out, nil
}

// parseTime reads since/until: unix seconds with an optional fraction.
func parseTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, true
		}
		return time.Time{}, false
	}
	var nsec int64
	if frac != "" {
		frac = (frac + "000000000")[:9]
		nsec, _ = strconv.ParseInt(frac, 10, 64)
	}
	return time.Unix(n, nsec), true
}

// events streams the events kept since since (Options.EventHistory),
// then those that happen, until the client goes, until passes, or the
// engine shuts down.
func (e *Engine) events(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	filters, err := parseFilters(q.Get("filters"))
	if err != nil {
		return err
	}
	s := &subscriber{ch: make(chan []byte, e.opts.EventBuffer), filters: filters, query: q, kick: make(chan struct{})}
	since, hasSince := parseTime(q.Get("since"))
	until, hasUntil := parseTime(q.Get("until"))
	if hasSince && hasUntil && since.After(until) {
		return errf(400, "`since` time (%s) cannot be after `until` time (%s)", q.Get("since"), q.Get("until"))
	}
	if hasSince {
		s.since = max(since.UnixNano(), 1)
	}
	var untilC <-chan time.Time
	if hasUntil {
		s.until = until.UnixNano()
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		untilC = t.C
	}
	e.mu.Lock()
	var past [][]byte
	if hasSince || hasUntil { // as dockerd: either replays what is kept
		for _, h := range e.history {
			if h.m.TimeNano >= s.since && (s.until == 0 || h.m.TimeNano <= s.until) && s.wants(&h.m, h.c) {
				past = append(past, h.msg)
			}
		}
	}
	if !hasUntil || until.After(time.Now()) {
		e.subs[s] = struct{}{}
	} else {
		untilC = closedC // all in the past: the history, and the end
	}
	kick, down := s.kick, e.down
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.subs, s)
		e.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	for _, msg := range past {
		if _, err := w.Write(msg); err != nil {
			return nil
		}
	}
	_ = rc.Flush()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-down:
			return nil
		case <-untilC:
			return nil
		case <-kick:
			// The connection breaks, as when an engine goes away.
			if conn, _, err := rc.Hijack(); err == nil {
				conn.Close()
			}
			return nil
		case msg := <-s.ch:
			if _, err := w.Write(msg); err != nil {
				return nil
			}
			// Send what is queued with one flush.
			for n := len(s.ch); n > 0; n-- {
				if _, err := w.Write(<-s.ch); err != nil {
					return nil
				}
			}
			if rc.Flush() != nil {
				return nil
			}
		}
	}
}

var closedC = func() <-chan time.Time {
	c := make(chan time.Time)
	close(c)
	return c
}()
