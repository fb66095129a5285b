package hosts

import (
	"slices"
	"sync"
	"time"
)

// FleetEvent is a change of the fleet itself (a host added, removed,
// connected or disconnected), merged by the proxy into GET /events beside
// the engines' own events.
type FleetEvent struct {
	// Action is add, remove, connect (the host answers and its cache is in
	// sync), disconnect, or from package provision: provision (a machine
	// made), destroy (a machine unmade).
	Action string
	Host   string
	URL    string
	Time   time.Time
}

// fleetEventsKept is how many recent fleet events are kept for `since`.
const fleetEventsKept = 512

// fleetEvents fans fleet events out to subscribers and keeps the recent
// ones.
type fleetEvents struct {
	mu     sync.Mutex
	subs   map[chan FleetEvent]struct{}
	recent []FleetEvent
}

// SubscribeEvents returns the recent fleet events, oldest first, and a
// channel of those that follow, until cancel. A subscriber that does not
// keep up loses events rather than holding the fleet up.
func (f *Fleet) SubscribeEvents() (recent []FleetEvent, ch <-chan FleetEvent, cancel func()) {
	e := &f.events
	c := make(chan FleetEvent, 64)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.subs == nil {
		e.subs = map[chan FleetEvent]struct{}{}
	}
	e.subs[c] = struct{}{}
	return slices.Clone(e.recent), c, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if _, ok := e.subs[c]; ok {
			delete(e.subs, c)
			close(c)
		}
	}
}

// emit records a fleet event and passes it to the subscribers.
func (f *Fleet) emit(action string, h *Host) {
	f.emitEvent(FleetEvent{Action: action, Host: h.Name, URL: h.URL, Time: time.Now()})
}

func (f *Fleet) emitEvent(ev FleetEvent) {
	e := &f.events
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.recent) == fleetEventsKept {
		e.recent = slices.Delete(e.recent, 0, 1)
	}
	e.recent = append(e.recent, ev)
	for c := range e.subs {
		select {
		case c <- ev:
		default:
		}
	}
}

// Announce records a fleet event that another package observed (a host
// provisioned or destroyed by package provision), beside the fleet's own.
func (f *Fleet) Announce(action, host, url string) {
	f.emitEvent(FleetEvent{Action: action, Host: host, URL: url, Time: time.Now()})
}
