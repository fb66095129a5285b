package proxy

import (
	"context"
	"encoding/json"

	"github.com/clocker/clocker/hosts"
)

// Clocker's own events in GET /events: a host added, removed, connected
// or disconnected, as classic swarm's engine_connect/engine_disconnect,
// with Type "engine" and the host as actor and node. They answer the
// type, event and node filters; any other filter (container, image,
// label, …) is about engine objects and excludes them, as an engine's
// filters exclude events of other types.

// fleetEventsWanted reports whether the query can select fleet events.
func (eq eventsQuery) fleetEventsWanted() bool {
	for key, vals := range eq.filters {
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

// fleetEventMatches applies the event and node filters to one fleet event.
func (eq eventsQuery) fleetEventMatches(ev hosts.FleetEvent) bool {
	if vals, ok := eq.filters["event"]; ok && !vals[ev.Action] {
		return false
	}
	return eq.nodes == nil || eq.nodes[ev.Host]
}

// fleetEventSource streams the fleet events the query selects: the recent
// ones from since (or all kept ones before until), then, without until,
// those that follow until ctx ends. nil when the filters exclude them.
func (s *Server) fleetEventSource(ctx context.Context, eq eventsQuery) <-chan hostEvent {
	if !eq.fleetEventsWanted() {
		return nil
	}
	live := eq.untilTime.IsZero()
	recent, sub, cancel := s.Fleet.SubscribeEvents()
	out := make(chan hostEvent, 64)
	inWindow := func(ev hosts.FleetEvent) bool {
		return !ev.Time.Before(eq.sinceTime) && (live || !ev.Time.After(eq.untilTime)) && eq.fleetEventMatches(ev)
	}
	send := func(ev hosts.FleetEvent) bool {
		he, err := fleetEventJSON(ev)
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
		if !eq.sinceTime.IsZero() || !live {
			for _, ev := range recent {
				if inWindow(ev) && !send(ev) {
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
				if inWindow(ev) && !send(ev) {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// fleetEventJSON writes a fleet event as an engine writes its events (with
// the pre-1.22 status/id/from fields too), annotated like theirs.
func fleetEventJSON(ev hosts.FleetEvent) (hostEvent, error) {
	n := eventNode{Name: ev.Host, ID: ev.Host, Addr: ev.URL, IP: "127.0.0.1"}
	if ep, err := hosts.ParseEndpoint(ev.URL); err == nil {
		n.Addr, n.IP = endpointAddr(ep), endpointIP(ep)
	}
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
		return hostEvent{}, err
	}
	return hostEvent{data: append(b, '\n'), key: ns}, nil
}
