//go:build e2e

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// cliEvent is what `docker events --format '{{json .}}'` prints.
type cliEvent struct {
	Type     string
	Action   string
	TimeNano int64 `json:"timeNano"`
	Actor    struct {
		ID         string
		Attributes map[string]string
	}
}

func (e cliEvent) name() string { return e.Actor.Attributes["name"] }
func (e cliEvent) node() string { return e.Actor.Attributes["node.name"] }

func parseCLIEvents(t *testing.T, out string) []cliEvent {
	t.Helper()
	var evs []cliEvent
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var ev cliEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("event %q: %v", line, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// stamp is a time as the CLI and the API take it: seconds.nanoseconds.
func stamp(t time.Time) string { return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()) }

// runOnHosts runs `busybox true` containers named prefix0..n-1 through
// Clocker, removes them, and returns the window they lived in and the host
// of each.
func runOnHosts(t *testing.T, prefix string, n int) (since, until time.Time, hostOfName map[string]string) {
	t.Helper()
	hostOfName = map[string]string{}
	var names []string
	for i := 0; i < n; i++ {
		names = append(names, fmt.Sprintf("%s%d", prefix, i))
	}
	cleanup(t, names...)
	since = time.Now().Add(-time.Second)
	for _, name := range names {
		mustDocker(t, "run", "--name", name, "busybox", "true")
		hostOfName[name] = hostOf(t, name)
	}
	for _, name := range names {
		mustDocker(t, "rm", name)
	}
	time.Sleep(200 * time.Millisecond)
	until = time.Now()
	return since, until, hostOfName
}

func TestE2EEventsSinceUntilOrderedAcrossHosts(t *testing.T) {
	since, until, hostOfName := runOnHosts(t, "evord", 4)
	hostsUsed := map[string]bool{}
	for _, h := range hostOfName {
		hostsUsed[h] = true
	}
	if len(hostsUsed) < 2 {
		t.Fatalf("containers all on one host: %v", hostOfName)
	}
	start := time.Now()
	out := mustDocker(t, "events", "--since", stamp(since), "--until", stamp(until), "--format", "{{json .}}")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("docker events with --until took %s to end", d)
	}
	evs := parseCLIEvents(t, out)
	var last int64
	seen := map[string][]string{} // container name → its actions, in order
	for _, ev := range evs {
		if ev.TimeNano < last {
			t.Errorf("event %s %s at %d after one at %d: not ordered", ev.Action, ev.name(), ev.TimeNano, last)
		}
		last = ev.TimeNano
		if ev.node() == "" || ev.Actor.Attributes["node.id"] != ev.node() || ev.Actor.Attributes["node.addr"] == "" || ev.Actor.Attributes["node.ip"] == "" {
			t.Errorf("event without its host: %+v", ev)
		}
		h, ours := hostOfName[ev.name()]
		if ev.Type != "container" || !ours {
			continue
		}
		if ev.node() != h {
			t.Errorf("%s %s carries node.name %q, the container ran on %q", ev.Action, ev.name(), ev.node(), h)
		}
		switch ev.Action {
		case "create", "start", "die", "destroy":
			seen[ev.name()] = append(seen[ev.name()], ev.Action)
		}
	}
	for name := range hostOfName {
		if want := []string{"create", "start", "die", "destroy"}; !slices.Equal(seen[name], want) {
			t.Errorf("%s: actions %v, want %v", name, seen[name], want)
		}
	}
}

func TestE2EEventsFilters(t *testing.T) {
	since, until, hostOfName := runOnHosts(t, "evflt", 3)
	window := []string{"--since", stamp(since), "--until", stamp(until), "--format", "{{json .}}"}
	var someHost string
	for _, h := range hostOfName {
		someHost = h
	}
	tests := []struct {
		name   string
		filter []string
		check  func(ev cliEvent) bool
		want   int // events of our containers at least
	}{
		{name: "event=start", filter: []string{"--filter", "event=start"},
			check: func(ev cliEvent) bool { return ev.Action == "start" }, want: 3},
		{name: "container=NAME", filter: []string{"--filter", "container=evflt1"},
			check: func(ev cliEvent) bool { return ev.name() == "evflt1" }, want: 4},
		{name: "node=HOST is Clocker's own", filter: []string{"--filter", "node=" + someHost},
			check: func(ev cliEvent) bool { return ev.node() == someHost }, want: 4},
		{name: "node and event together", filter: []string{"--filter", "node=" + someHost, "--filter", "event=die"},
			check: func(ev cliEvent) bool { return ev.node() == someHost && ev.Action == "die" }, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := parseCLIEvents(t, mustDocker(t, append(append([]string{"events"}, tt.filter...), window...)...))
			ours := 0
			for _, ev := range evs {
				if !tt.check(ev) {
					t.Errorf("event outside the filter: %s %s %s on %s", ev.Type, ev.Action, ev.name(), ev.node())
				}
				if _, ok := hostOfName[ev.name()]; ok {
					ours++
				}
			}
			if ours < tt.want {
				t.Errorf("%d events of our containers, want at least %d:\n%+v", ours, tt.want, evs)
			}
		})
	}

	// The same node filter through the raw API, in both JSON forms.
	for _, f := range []string{`{"node":{"` + someHost + `":true}}`, `{"node":["` + someHost + `"]}`} {
		status, body := apiCall(t, "GET", "/v1.41/events?since="+stamp(since)+"&until="+stamp(until)+"&filters="+url.QueryEscape(f), "", nil)
		if status != 200 {
			t.Fatalf("filters %s: %d %s", f, status, body)
		}
		evs := parseCLIEvents(t, body)
		if len(evs) == 0 {
			t.Errorf("filters %s: no events", f)
		}
		for _, ev := range evs {
			if ev.node() != someHost {
				t.Errorf("filters %s: event from %s", f, ev.node())
			}
		}
	}
}

func TestE2EEventsLive(t *testing.T) {
	cleanup(t, "evlive")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "events", "--filter", "container=evlive", "--format", "{{json .}}")
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+clockerURL)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	time.Sleep(time.Second) // let the CLI subscribe
	mustDocker(t, "run", "--name", "evlive", "busybox", "true")
	host := hostOf(t, "evlive")
	var got []string
	deadline := time.After(30 * time.Second)
	for !slices.Contains(got, "die") {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("docker events ended; got %v", got)
			}
			var ev cliEvent
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			if ev.node() != host {
				t.Errorf("%s carries node.name %q, want %q", ev.Action, ev.node(), host)
			}
			got = append(got, ev.Action)
		case <-deadline:
			t.Fatalf("live events: got %v, want create, start, die", got)
		}
	}
	if !slices.Contains(got, "create") || !slices.Contains(got, "start") {
		t.Errorf("live events %v, want create and start before die", got)
	}
	// The live stream stays open after the container is gone.
	select {
	case _, ok := <-lines:
		if !ok {
			t.Errorf("docker events ended by itself")
		}
	case <-time.After(500 * time.Millisecond):
	}
}

// TestE2EEventsLiveHeadersAtOnce: the answer's headers come before any
// event, so clients know the subscription is taken.
func TestE2EEventsLiveHeadersAtOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", httpURL("/v1.41/events"), nil)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("headers after %s", d)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" ||
		len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("status %d, content type %q, transfer encoding %v", resp.StatusCode, resp.Header.Get("Content-Type"), resp.TransferEncoding)
	}
}

func TestE2EEventsBadInput(t *testing.T) {
	tests := []struct {
		name, query, want string
	}{
		{name: "since not a time", query: "since=yesterday", want: `strconv.ParseInt: parsing "yesterday": invalid syntax`},
		{name: "until not a time", query: "until=1.x", want: `strconv.ParseInt: parsing "x": invalid syntax`},
		{name: "since after until", query: "since=200&until=100", want: "`since` time (200) cannot be after `until` time (100)"},
		{name: "filters not JSON", query: "filters=" + url.QueryEscape("{node"), want: "invalid character 'n' looking for beginning of object key string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := apiCall(t, "GET", "/events?"+tt.query, "", nil)
			var m struct{ Message string }
			_ = json.Unmarshal([]byte(body), &m)
			if status != 400 || m.Message != tt.want {
				t.Errorf("%d %s, want 400 %q", status, body, tt.want)
			}
		})
	}
	if r := docker(t, nil, "events", "--since", "10", "--until", "5"); r.Code == 0 || !strings.Contains(r.Stderr, "cannot be after") {
		t.Errorf("docker events --since 10 --until 5: %+v", r)
	}
}

func TestE2ESystemDF(t *testing.T) {
	names := []string{"evdf0", "evdf1", "evdf2"}
	cleanup(t, names...)
	for _, n := range names {
		mustDocker(t, "create", "--name", n, "busybox", "true")
	}
	out := mustDocker(t, "system", "df")
	for _, want := range []string{"Images", "Containers", "Local Volumes", "Build Cache"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker system df lacks %q:\n%s", want, out)
		}
	}
	if out := mustDocker(t, "system", "df", "-v"); !strings.Contains(out, "evdf1") {
		t.Errorf("docker system df -v does not list evdf1:\n%s", out)
	}

	type du struct {
		LayersSize int64
		Images     []struct {
			ID         string `json:"Id"`
			Containers int
			RepoTags   []string
		}
		Containers []struct{ Names []string }
		Volumes    []json.RawMessage
	}
	status, body := apiCall(t, "GET", "/v1.41/system/df", "", nil)
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	var fleetDU du
	if err := json.Unmarshal([]byte(body), &fleetDU); err != nil {
		t.Fatal(err)
	}
	var layers int64
	containers, busyboxUsers := 0, 0
	for _, e := range fleet.Engines {
		resp, err := http.Get("http://" + strings.TrimPrefix(e.TCP, "tcp://") + "/v1.41/system/df")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var d du
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		layers += d.LayersSize
		containers += len(d.Containers)
		for _, img := range d.Images {
			if slices.Contains(img.RepoTags, "busybox:latest") {
				busyboxUsers += img.Containers
			}
		}
	}
	if fleetDU.LayersSize != layers {
		t.Errorf("LayersSize %d, the engines' sum is %d", fleetDU.LayersSize, layers)
	}
	if len(fleetDU.Containers) != containers {
		t.Errorf("%d containers, the engines have %d", len(fleetDU.Containers), containers)
	}
	busybox := 0
	for _, img := range fleetDU.Images {
		if slices.Contains(img.RepoTags, "busybox:latest") {
			busybox++
			if img.Containers != busyboxUsers {
				t.Errorf("busybox used by %d containers, the engines say %d", img.Containers, busyboxUsers)
			}
		}
	}
	if busybox != 1 {
		t.Errorf("busybox listed %d times, want once (same ID on every host)", busybox)
	}
	found := 0
	for _, c := range fleetDU.Containers {
		for _, n := range c.Names {
			if slices.Contains(names, strings.TrimPrefix(n, "/")) {
				found++
			}
		}
	}
	if found != len(names) {
		t.Errorf("%d of our %d containers in system df", found, len(names))
	}
}

// TestE2EEventsLiveSurvivesHostDeath: an engine that dies mid-stream does
// not end the client's live stream; the other hosts' events keep coming,
// and the host's own come again once it is back.
func TestE2EEventsLiveSurvivesHostDeath(t *testing.T) {
	victim := fleet.Engines[2].Name
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		// Leave a whole fleet for the tests after this one.
		sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
		defer scancel()
		_ = fleet.StartEngine(sctx, victim)
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !fleetHealthy(); {
			time.Sleep(200 * time.Millisecond)
		}
	})
	req, _ := http.NewRequestWithContext(ctx, "GET", httpURL("/v1.41/events?filters="+url.QueryEscape(`{"type":{"container":true}}`)), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := make(chan cliEvent, 256)
	go func() {
		defer close(events)
		dec := json.NewDecoder(resp.Body)
		for {
			var ev cliEvent
			if dec.Decode(&ev) != nil {
				return
			}
			events <- ev
		}
	}()
	// waitFor reads the stream until name dies on host.
	waitFor := func(name, host string) {
		t.Helper()
		deadline := time.After(45 * time.Second)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("the stream ended while waiting for %s", name)
				}
				if ev.name() == name && ev.Action == "die" {
					if ev.node() != host {
						t.Errorf("%s died on %q, want %q", name, ev.node(), host)
					}
					return
				}
			case <-deadline:
				t.Fatalf("no die event of %s from %s", name, host)
			}
		}
	}
	time.Sleep(500 * time.Millisecond) // let the subscriptions settle
	if err := fleet.KillEngine(ctx, victim); err != nil {
		t.Fatal(err)
	}
	engineDocker(t, 0, "run", "--rm", "--name", "evdeath0", "busybox", "true")
	waitFor("evdeath0", fleet.Engines[0].Name)

	if err := fleet.StartEngine(ctx, victim); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); !fleetHealthy(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy again in Clocker", victim)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The stream follows the host again within its backoff (≤ 5 s); keep
	// running containers there until one is seen.
	seen := false
	for i := 0; i < 4 && !seen; i++ {
		name := fmt.Sprintf("evdeath2x%d", i)
		engineDocker(t, 2, "run", "--rm", "--name", name, "busybox", "true")
		deadline := time.After(5 * time.Second)
	wait:
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatal("the stream ended")
				}
				if strings.HasPrefix(ev.name(), "evdeath2x") && ev.Action == "die" {
					if ev.node() != victim {
						t.Errorf("%s died on %q, want %q", ev.name(), ev.node(), victim)
					}
					seen = true
					break wait
				}
			case <-deadline:
				break wait
			}
		}
	}
	if !seen {
		t.Fatalf("no event from %s after it came back", victim)
	}
	// And the others still stream.
	engineDocker(t, 1, "run", "--rm", "--name", "evdeath1", "busybox", "true")
	waitFor("evdeath1", fleet.Engines[1].Name)
}
