package console

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// fleetEventType is the Type of Clocker's own events in the merged
// stream: a host added, removed, connected or disconnected.
const fleetEventType events.Type = "engine"

// hostsEvery is how often the event stream compares the host cards with
// those it sent last (a host's health or reservations change without an
// engine event); only a change is sent.
const hostsEvery = time.Second

// sse writes server-sent events.
type sse struct {
	w http.ResponseWriter
	f http.Flusher
}

func newSSE(w http.ResponseWriter) (*sse, error) {
	f, ok := w.(http.Flusher)
	if !ok {
		return nil, errorf(http.StatusInternalServerError, "streaming is not supported here")
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	f.Flush()
	return &sse{w: w, f: f}, nil
}

// send writes one event whose data is data (one line: JSON has no
// newline).
func (s *sse) send(event string, data []byte) error {
	if _, err := fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", event, data); err != nil {
		return err
	}
	s.f.Flush()
	return nil
}

// refreshCards makes the host cards' JSON and, when it changed, hands
// it to every open event stream (a stream that has not taken the last
// yet gets this one instead).
func (c *Console) refreshCards() ([]byte, error) {
	c.cards.mu.Lock()
	defer c.cards.mu.Unlock()
	b, err := json.Marshal(c.hostCards())
	if err != nil {
		return nil, err
	}
	c.cards.made = time.Now()
	if bytes.Equal(b, c.cards.json) {
		return c.cards.json, nil
	}
	c.cards.json = b
	for ch := range c.cards.subs {
		select {
		case <-ch:
		default:
		}
		ch <- b
	}
	return b, nil
}

// subscribeCards returns the host cards now and a channel of each
// change, until cancel. One loop, running while any stream is open,
// makes the cards every hostsEvery for all of them: at a thousand hosts
// the cards are the streams' main cost, and it must not grow with the
// pages open.
func (c *Console) subscribeCards() (now []byte, changes <-chan []byte, cancel func(), err error) {
	ch := make(chan []byte, 1)
	c.cards.mu.Lock()
	if c.cards.subs == nil {
		c.cards.subs = map[chan []byte]struct{}{}
	}
	c.cards.subs[ch] = struct{}{}
	if c.cards.stop == nil {
		stop := make(chan struct{})
		c.cards.stop = stop
		go c.cardsLoop(stop)
	}
	now = c.cards.json
	if time.Since(c.cards.made) >= hostsEvery {
		now = nil
	}
	c.cards.mu.Unlock()
	cancel = func() {
		c.cards.mu.Lock()
		defer c.cards.mu.Unlock()
		delete(c.cards.subs, ch)
		if len(c.cards.subs) == 0 && c.cards.stop != nil {
			close(c.cards.stop)
			c.cards.stop = nil
		}
	}
	if now == nil {
		if now, err = c.refreshCards(); err != nil {
			cancel()
			return nil, nil, nil, err
		}
	}
	return now, ch, cancel, nil
}

func (c *Console) cardsLoop(stop <-chan struct{}) {
	t := time.NewTicker(hostsEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if _, err := c.refreshCards(); err != nil {
				c.o.Log.Warn("console: host cards", "err", err)
			}
		}
	}
}

// ContainerEvent is a container's change as the board applies it.
type ContainerEvent struct {
	Action string
	ID     string
	Name   string
	Image  string
	Host   string
	Time   int64 // Unix nanoseconds, the engine's
}

// boardActions are the container actions the board shows; others (exec,
// attach, top …) change nothing on it.
var boardActions = map[events.Action]bool{
	events.ActionCreate: true, events.ActionStart: true, events.ActionDie: true, events.ActionStop: true,
	events.ActionKill: true, events.ActionPause: true, events.ActionUnPause: true, events.ActionDestroy: true,
	events.ActionRename: true, events.ActionRestart: true,
}

// streamEvents answers GET /ui/api/events: server-sent events "hosts"
// (every host card, at once and whenever one changes) and "container"
// (a ContainerEvent), from the front door's merged event stream.
func (c *Console) streamEvents(w http.ResponseWriter, r *http.Request) error {
	s, err := newSSE(w)
	if err != nil {
		return err
	}
	ctx := r.Context()
	// The stream asks the engines for what happened since the page
	// opened (and, after a break, since the last event seen): the
	// subscription reaches them a moment after the first cards go out, and
	// a create in that moment must still show.
	since := time.Now()
	var last []byte
	sendHosts := func(b []byte) error {
		if bytes.Equal(b, last) {
			return nil
		}
		last = b
		return s.send("hosts", b)
	}
	cards, changes, cancel, err := c.subscribeCards()
	if err != nil {
		return nil
	}
	defer cancel()
	if err := sendHosts(cards); err != nil {
		return nil
	}
	for {
		res := c.o.Docker.Events(ctx, client.EventsListOptions{Since: fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond())})
	follow:
		for {
			select {
			case <-ctx.Done():
				return nil
			case b := <-changes:
				if sendHosts(b) != nil {
					return nil
				}
			case err := <-res.Err:
				c.o.Log.Debug("console: event stream ended; following again", "err", err)
				break follow
			case m := <-res.Messages:
				if m.TimeNano > 0 {
					since = time.Unix(0, m.TimeNano+1)
				}
				switch {
				case m.Type == fleetEventType:
					// A host added, removed, (dis)connected: the cards
					// now, to every stream.
					_, err = c.refreshCards()
				case m.Type == events.ContainerEventType && boardActions[m.Action]:
					err = s.sendContainer(m)
				}
				if err != nil {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second): // the front door is going away or busy
		}
	}
}

func (s *sse) sendContainer(m events.Message) error {
	a := m.Actor.Attributes
	ev := ContainerEvent{Action: string(m.Action), ID: m.Actor.ID, Name: a["name"], Image: a["image"], Host: a["node.name"], Time: m.TimeNano}
	if _, n, ok := strings.Cut(ev.Name, "/"); ok {
		ev.Name = n
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return s.send("container", b)
}

// logTail is how many lines a log stream starts with.
const logTail = "200"

// streamLogs answers GET /ui/api/containers/{id}/logs: server-sent events
// "line" ({"Stream": "stdout"|"stderr", "Text": …}), the last lines then
// those that follow, until the container stops or the page goes.
func (c *Console) streamLogs(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id := r.PathValue("id")
	ci, err := c.o.Docker.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	rc, err := c.o.Docker.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: true, Tail: logTail})
	if err != nil {
		return err
	}
	defer rc.Close()
	s, err := newSSE(w)
	if err != nil {
		return err
	}
	lines := make(chan logLine, 64)
	go func() {
		defer close(lines)
		if ci.Container.Config != nil && ci.Container.Config.Tty {
			scanLines(ctx, rc, "stdout", lines)
			return
		}
		outR, outW := io.Pipe()
		errR, errW := io.Pipe()
		// Closed readers fail StdCopy's writes once the page goes.
		defer outR.Close()
		defer errR.Close()
		go func() {
			_, err := stdcopy.StdCopy(outW, errW, rc)
			outW.CloseWithError(err)
			errW.CloseWithError(err)
		}()
		done := make(chan struct{})
		go func() { scanLines(ctx, errR, "stderr", lines); close(done) }()
		scanLines(ctx, outR, "stdout", lines)
		<-done
	}()
	for l := range lines {
		b, _ := json.Marshal(l)
		if s.send("line", b) != nil {
			return nil
		}
	}
	_ = s.send("end", []byte("{}"))
	return nil
}

type logLine struct {
	Stream string
	Text   string
}

func scanLines(ctx context.Context, r io.Reader, stream string, out chan<- logLine) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		select {
		case out <- logLine{Stream: stream, Text: sc.Text()}:
		case <-ctx.Done():
			return
		}
	}
}
