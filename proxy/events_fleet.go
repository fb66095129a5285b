package proxy

import (
	"context"

	"github.com/clocker/clocker/engineapi"
	"github.com/clocker/clocker/hosts"
)

// Clocker's own events in GET /events: a host added, removed, connected
// or disconnected, as classic swarm's engine_connect/engine_disconnect,
// with Type "engine" and the host as actor and node. They answer the
// type, event and node filters; any other filter (container, image,
// label, …) is about engine objects and excludes them, as an engine's
// filters exclude events of other types.

// fleetEventSource streams the fleet events the query selects: the recent
// ones from since (or all kept ones before until), then, without until,
// those that follow until ctx ends. nil when the filters exclude them.
func (s *Server) fleetEventSource(ctx context.Context, eq engineapi.EventsQuery) <-chan engineapi.Event {
	if !eq.FleetEventsWanted() {
		return nil
	}
	live := eq.UntilTime.IsZero()
	recent, sub, cancel := s.Fleet.SubscribeEvents()
	out := make(chan engineapi.Event, 64)
	send := func(ev hosts.FleetEvent) bool {
		he, err := engineapi.FleetEventJSON(ev, fleetEventNode(ev))
		if err != nil {
			s.Log.Warn("events: fleet event", "err", err)
			return true
		}
		select {
		case out <- he:
			return true
		case <-ctx.Done():
			return false
		}
	}
	go func() {
		defer close(out)
		defer cancel()
		// Like an engine: history only when since or until asks for it.
		if !eq.SinceTime.IsZero() || !live {
			for _, ev := range recent {
				if eq.SelectsFleetEvent(ev) && !send(ev) {
					return
				}
			}
		}
		if !live {
			return
		}
		for {
			select {
			case ev, ok := <-sub:
				if !ok {
					return
				}
				if eq.SelectsFleetEvent(ev) && !send(ev) {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// fleetEventNode is the host of a fleet event as it is added to the event.
func fleetEventNode(ev hosts.FleetEvent) engineapi.EventNode {
	n := engineapi.EventNode{Name: ev.Host, ID: ev.Host, Addr: ev.URL, IP: "127.0.0.1"}
	if ep, err := hosts.ParseEndpoint(ev.URL); err == nil {
		n.Addr, n.IP = ep.Addr(), ep.IP()
	}
	return n
}
