package hosts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/fanout"
	"github.com/clocker/clocker/internal/keylock"
)

// Record is how a host is stored: enough to reconnect after a restart.
type Record struct {
	// Name is the host's name in the fleet (node=NAME, io.clocker.host).
	Name string
	// URL is the engine's API address.
	URL string
	// Provisioner made the host ("static": given with --engine).
	Provisioner string
	// Added is when the host joined the fleet.
	Added time.Time
	// Draining: the host takes no new containers; it may then be removed
	// with its containers still on it. Read and changed under the host's
	// lock (Host.Draining, Fleet.SetDraining).
	Draining bool `json:",omitempty"`
	// Labels are Clocker's own labels of the host, beside the engine's
	// (placement matches both; Clocker's win on a clash).
	Labels map[string]string `json:",omitempty"`
	// TLS are the files to reach an engine started with --tlsverify.
	TLS EngineTLS `json:",omitzero"`
}

// Facts are what the engine says about itself, refreshed with health checks.
type Facts struct {
	Info       json.RawMessage // GET /info as the engine answers
	NCPU       int
	MemTotal   int64
	Labels     []string
	Version    string // engine version, e.g. 20.10.24
	MaxAPI     string // highest API version it supports
	MinAPI     string // lowest API version it accepts
	EngineName string
}

// Host is one engine of the fleet with its cache of containers.
type Host struct {
	Record
	Endpoint Endpoint
	// transport carries every request to the engine (pooled), through
	// RoundTrip; what comes back on its connections counts as heard (see
	// heardConn).
	transport *http.Transport
	client    *client.Client
	log       *slog.Logger
	metrics   *Metrics
	// stop ends the host's goroutines when it leaves the fleet; done is
	// closed once they have ended.
	stop context.CancelFunc
	done chan struct{}
	// persisted: the record is in the store (not the embedded default).
	persisted bool
	// suspect wakes the health watcher when a forwarded call failed.
	suspect chan struct{}
	// heard is when the engine last sent anything on a pooled connection
	// (monotonic()): proof enough that it answers (see nextCheck).
	heard atomic.Int64
	// onHealth hears the host go up or down (the fleet's events); called
	// under mu, it must not block.
	onHealth func(up bool)
	// hidden are containers superseded by a copy on another host (see
	// Hide): still cached, shown nowhere, until they are removed.
	hidden map[string]bool

	// syncMu orders every read-then-write of the cache (resync, Refresh,
	// and forgetting on destroy): an engine answer taken before a later
	// change must not be written after it, or a removed container would
	// come back. A resync holds it alone; the reads of single containers
	// hold it shared, and the container's own lock (idMu), so that
	// different containers are read at once (a compose up or down moves
	// ten of them together).
	syncMu sync.RWMutex
	idMu   keylock.Map
	// imgRefresh runs the image list re-reads one at a time (its own lock:
	// waiters block on it).
	imgRefresh imageRefresh
	// reads are the queued re-reads of single containers (reads.go).
	reads readQueue

	mu         sync.RWMutex
	containers map[string]*Container // by full ID
	facts      Facts
	healthy    bool
	synced     bool // cache filled since the last (re)connect
	gaugeSet   bool // the health gauge was set once
	lastErr    error
	failures   int
	images     imageIndex
	// generation counts changes of what placement sees (containers,
	// images, facts, health), so snapshots are rebuilt only when it moves.
	generation uint64
	published  bool // health last published
}

func newHost(rec Record, ep Endpoint, log *slog.Logger, m *Metrics) (*Host, error) {
	tr := ep.Transport()
	h := &Host{
		Record:     rec,
		Endpoint:   ep,
		transport:  tr,
		log:        log.With("host", rec.Name),
		metrics:    m,
		containers: map[string]*Container{},
		suspect:    make(chan struct{}, 1),
		imgRefresh: imageRefresh{wake: make(chan struct{}, 1), ended: make(chan struct{})},
	}
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			// Every path to the engine dials here: a refused or timed-out
			// connection reaches the health watcher whoever called.
			if ctx.Err() == nil {
				h.ReportFailure(err)
			}
			return nil, errDial{err}
		}
		return &heardConn{Conn: c, heard: &h.heard}, nil
	}
	// The moby client takes the pooled *http.Transport itself (it tunes
	// what it is given only when it is one; behind another RoundTripper
	// its event streams ended early under load): its failures to connect
	// are reported by the dialer above.
	cli, err := ep.newClient(tr)
	if err != nil {
		return nil, err
	}
	h.client = cli
	return h, nil
}

// RoundTrip sends one HTTP request to the engine. It is the one path of
// every call Clocker makes to an engine (forwarded, typed through Client,
// or built by hand), so that each failure at the transport reaches the
// health watcher (see ReportFailure). A request whose context ended
// failed through no fault of the engine's and is not reported.
func (h *Host) RoundTrip(req *http.Request) (*http.Response, error) {
	h.metrics.request(h.Name)
	resp, err := h.transport.RoundTrip(req)
	var dialed errDial
	if err != nil && req.Context().Err() == nil && !errors.As(err, &dialed) {
		h.ReportFailure(err) // a failure to connect is reported by the dialer
	}
	return resp, err
}

// errDial marks a failure to connect, which the dialer has reported.
type errDial struct{ error }

func (e errDial) Unwrap() error { return e.error }

// Dial opens a raw connection to the engine, for the calls that take it
// over (attach, exec start); a failure is reported as RoundTrip's are.
func (h *Host) Dial(ctx context.Context) (net.Conn, error) {
	h.metrics.request(h.Name)
	c, err := h.Endpoint.Dial(ctx)
	if err != nil && ctx.Err() == nil {
		h.ReportFailure(err)
	}
	return c, err
}

// Client is the moby client of the engine, for calls whose shapes it
// knows; it shares RoundTrip's pooled connections, and a failure to
// connect is reported as RoundTrip's are. It negotiates the engine's
// newest API version.
func (h *Host) Client() *client.Client { return h.client }

// CloseIdleConnections drops the pooled connections to the engine.
func (h *Host) CloseIdleConnections() { h.transport.CloseIdleConnections() }

// Call sends one request built from its parts to the engine (path without
// a version prefix: the engine's newest; query may be nil) and reads the
// whole answer. A failure at the transport is an ErrUnavailable naming the
// host; any status is returned as it is.
func (h *Host) Call(ctx context.Context, method, path string, query url.Values, body io.Reader, contentType string) (int, []byte, error) {
	u := *h.Endpoint.Base
	u.Path = path
	if query != nil {
		u.RawQuery = query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return 0, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := h.RoundTrip(req)
	if err != nil {
		return 0, nil, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s (%s): %v", h.Name, h.Endpoint.URL, err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: %v", h.Name, err))
	}
	return resp.StatusCode, data, nil
}

// Healthy reports whether the engine answers and its cache is in sync.
func (h *Host) Healthy() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.healthy && h.synced
}

// Draining reports whether the host takes no new containers.
func (h *Host) Draining() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.Record.Draining
}

// Labels returns Clocker's labels of the host (a copy).
func (h *Host) Labels() map[string]string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return maps.Clone(h.Record.Labels)
}

// record returns the host's record as stored.
func (h *Host) record() Record {
	h.mu.RLock()
	defer h.mu.RUnlock()
	r := h.Record
	r.Labels = maps.Clone(r.Labels)
	return r
}

// Facts returns what the engine last said about itself.
func (h *Host) Facts() Facts {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.facts
}

// LastError is the last failure talking to the engine, if any.
func (h *Host) LastError() error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.lastErr
}

// Containers returns a copy of the host's cached containers.
func (h *Host) Containers() []Container {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]Container, 0, len(h.containers))
	for _, c := range h.containers {
		if h.hidden[c.Summary.ID] {
			continue
		}
		out = append(out, *c)
	}
	return out
}

// CountContainers counts the listed containers keep accepts, without
// copying them (the autoscaler counts every host each second).
func (h *Host) CountContainers(keep func(*Container) bool) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for _, c := range h.containers {
		if !h.hidden[c.Summary.ID] && (keep == nil || keep(c)) {
			n++
		}
	}
	return n
}

// Container returns one cached container by full ID.
func (h *Host) Container(id string) (Container, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	c, ok := h.containers[id]
	if !ok || h.hidden[id] {
		return Container{}, false
	}
	return *c, true
}

// Generation moves whenever the host's containers, images, facts or health
// change.
func (h *Host) Generation() uint64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.generation
}

func (h *Host) changedLocked() { h.generation++ }

// Unavailable is the error for a call that needs this host while it is down.
func (h *Host) Unavailable() error {
	return errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s (%s) is unavailable: %v", h.Name, h.Endpoint.URL, h.LastError()))
}

// get performs a GET against the engine's API and decodes nothing.
func (h *Host) get(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	u := *h.Endpoint.Base
	u.Path = path
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	return h.RoundTrip(req)
}

// getJSON GETs path and returns the body when the status is 200.
func (h *Host) getJSON(ctx context.Context, path string, q url.Values) ([]byte, int, error) {
	resp, err := h.get(ctx, path, q)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, resp.StatusCode, err
	}
	return body, resp.StatusCode, nil
}

// GetJSON GETs an API path of the engine (unversioned: its newest) and
// returns the body and status.
func (h *Host) GetJSON(ctx context.Context, path string, q url.Values) ([]byte, int, error) {
	return h.getJSON(ctx, path, q)
}

// refreshFacts reads /info and /version.
func (h *Host) refreshFacts(ctx context.Context) error {
	return h.readFacts(ctx, true)
}

// readFacts reads /info and, with version (on (re)connect: an engine's
// version changes only with a restart, which breaks its event stream),
// /version. Health checks read /info alone: at a thousand hosts every
// request per tick counts.
func (h *Host) readFacts(ctx context.Context, version bool) error {
	raw, status, err := h.getJSON(ctx, "/info", nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET /info: status %d", status)
	}
	return h.setFacts(ctx, raw, version)
}

// setFacts decodes an /info answer (raw is kept) and, when version is set
// or not known yet, reads /version.
func (h *Host) setFacts(ctx context.Context, raw []byte, version bool) error {
	var info struct {
		Name     string
		NCPU     int
		MemTotal int64
		Labels   []string
	}
	if err := json.Unmarshal(raw, &info); err != nil {
		return fmt.Errorf("GET /info: %w", err)
	}
	h.mu.RLock()
	old := h.facts
	h.mu.RUnlock()
	v := struct {
		Version       string
		APIVersion    string `json:"ApiVersion"`
		MinAPIVersion string
	}{old.Version, old.MaxAPI, old.MinAPI}
	if version || old.MaxAPI == "" {
		vraw, status, err := h.getJSON(ctx, "/version", nil)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("GET /version: status %d", status)
		}
		if err := json.Unmarshal(vraw, &v); err != nil {
			return fmt.Errorf("GET /version: %w", err)
		}
		if v.MinAPIVersion == "" {
			v.MinAPIVersion = "1.12"
		}
	}
	h.mu.Lock()
	old = h.facts
	h.facts = Facts{Info: raw, NCPU: info.NCPU, MemTotal: info.MemTotal, Labels: info.Labels,
		Version: v.Version, MaxAPI: v.APIVersion, MinAPI: v.MinAPIVersion, EngineName: info.Name}
	if old.NCPU != info.NCPU || old.MemTotal != info.MemTotal || !slices.Equal(old.Labels, info.Labels) ||
		old.MaxAPI != v.APIVersion || old.Version != v.Version {
		h.changedLocked()
	}
	h.mu.Unlock()
	return nil
}

// run keeps the host's health and cache current until ctx ends.
func (h *Host) run(ctx context.Context, interval, timeout time.Duration) {
	var bg sync.WaitGroup
	bg.Go(func() { h.watchHealth(ctx, interval, timeout) })
	bg.Go(h.startImageRefresh(ctx))
	defer bg.Wait() // a removed host's gauges must stay removed
	defer h.reads.events.Wait()
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		started := time.Now()
		err := h.syncAndFollow(ctx)
		if time.Since(started) > 10*time.Second {
			backoff = 200 * time.Millisecond // it had been working: retry soon
		}
		if ctx.Err() != nil {
			return
		}
		h.mu.Lock()
		h.synced = false
		h.lastErr = err
		h.publishHealthLocked()
		h.mu.Unlock()
		h.log.Warn("event stream broken; will resync", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		if backoff < 5*time.Second {
			backoff *= 2
		}
	}
}

// publishHealthLocked sets the health gauge; under h.mu so that an older
// state never overwrites a newer one.
func (h *Host) publishHealthLocked() {
	up := h.healthy && h.synced
	if up == h.published && h.gaugeSet {
		return // every check publishes: spare the gauge's label lookup
	}
	if up != h.published {
		h.published = up
		h.changedLocked()
		if h.onHealth != nil {
			h.onHealth(up)
		}
	}
	h.gaugeSet = true
	h.metrics.setHealth(h.Name, up)
}

// watchHealth checks the engine at least once an interval (see nextCheck);
// two failures in a row mark it unhealthy, one success healthy again.
func (h *Host) watchHealth(ctx context.Context, interval, timeout time.Duration) {
	p := newProbe(ctx, h.Endpoint)
	defer p.close()
	// The (re)connect reads /info; later reads are spread over the hosts
	// (due at least an interval from now).
	now := monotonic()
	proof, factsAt := now, now-jitter((factsEvery-1)*interval)
	first, _ := nextCheck(now, proof, factsAt, interval)
	next := time.NewTimer(first)
	defer next.Stop()
	for {
		forced := false
		select {
		case <-ctx.Done():
			return
		case <-next.C:
		case <-h.suspect:
			forced = true // a forwarded call failed: check now
		}
		now = monotonic()
		h.mu.RLock()
		answers := h.healthy && h.failures == 0
		h.mu.RUnlock()
		var facts bool
		if answers {
			proof = max(proof, time.Duration(h.heard.Load()))
			var wait time.Duration
			if wait, facts = nextCheck(now, proof, factsAt, interval); wait > 0 && !forced {
				next.Reset(wait) // it answered meanwhile: not due yet
				continue
			}
		} else {
			// Failing or not synced yet: every check counts, proof or not.
			facts = now-factsAt >= factsEvery*interval
		}
		err := h.check(ctx, p, facts, timeout)
		if facts {
			factsAt = now
		}
		h.mu.Lock()
		if err != nil {
			h.failures++
			h.lastErr = err
			if h.failures >= 2 {
				h.healthy = false
			}
		} else {
			h.failures = 0
			h.healthy = true
		}
		h.publishHealthLocked()
		failing := h.failures == 1
		h.mu.Unlock()
		wait := interval
		if err == nil {
			proof = monotonic()
			wait, _ = nextCheck(proof, proof, factsAt, interval)
		} else if failing {
			wait = min(interval, confirmAfter) // confirm a first failure soon
		}
		next.Reset(wait)
	}
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

// factsEvery: /info (labels, CPUs, memory) is read every so many
// intervals; the other checks ping. At a thousand hosts /info every two
// seconds each cost 5.6% of a core; a ping is a tenth of it.
const factsEvery = 10

// check asks the engine whether it answers, over the health probe: GET
// /_ping, or with facts GET /info (decoded only when it changed).
func (h *Host) check(ctx context.Context, p *probe, facts bool, timeout time.Duration) error {
	path := "/_ping"
	if facts {
		path = "/info"
	}
	status, body, err := p.get(path, time.Now().Add(timeout), facts)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", path, status)
	}
	if !facts {
		return nil
	}
	h.mu.RLock()
	same, known := bytes.Equal(body, h.facts.Info), h.facts.MaxAPI != ""
	h.mu.RUnlock()
	if same && known {
		return nil
	}
	// setFacts reads /version too until it is known: only before the
	// first sync.
	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return h.setFacts(fctx, bytes.Clone(body), false)
}

// confirmAfter is how soon a first failed check is checked again: two in a
// row mark the host unhealthy.
const confirmAfter = 250 * time.Millisecond

// ReportFailure is the passive check: a call forwarded to the engine failed
// at the transport (refused, reset, timed out). The health watcher checks
// the engine at once; it marks the host unhealthy only if the engine fails
// its own checks, so one dropped connection does not take a host out.
func (h *Host) ReportFailure(err error) {
	h.metrics.passiveFailure(h.Name)
	select {
	case h.suspect <- struct{}{}:
	default: // a check is already due
	}
}

// syncAndFollow subscribes to container events first, then lists every
// container, so that nothing that happens in between is missed: each event
// re-reads its container, which is idempotent.
func (h *Host) syncAndFollow(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream := h.client.Events(ctx, client.EventsListOptions{
		Filters: make(client.Filters).Add("type",
			string(events.ContainerEventType), string(events.NetworkEventType), string(events.ImageEventType)),
	})
	if err := h.resync(ctx); err != nil {
		return err
	}
	h.mu.Lock()
	h.synced = true
	h.healthy = true
	h.lastErr = nil
	h.publishHealthLocked()
	h.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-stream.Err:
			if err == nil {
				err = io.EOF
			}
			return err
		case msg := <-stream.Messages:
			h.apply(ctx, msg)
		}
	}
}

func (h *Host) apply(ctx context.Context, msg events.Message) {
	switch msg.Type {
	case events.NetworkEventType:
		// A container joining or leaving a network changes its list entry
		// and its inspect; the event names the network as its actor.
		if msg.Action == events.ActionConnect || msg.Action == events.ActionDisconnect {
			if id := msg.Actor.Attributes["container"]; id != "" {
				h.refreshAfterEvent(ctx, id, readFull, false, string(msg.Action))
			}
		}
		return
	case events.ImageEventType:
		// Coalesced: a burst of image events lists the images once or
		// twice, not once per event, and the stream is not held meanwhile.
		h.requestImageRefresh()
		return
	}
	id := msg.Actor.ID
	if id == "" {
		return
	}
	switch msg.Action {
	case events.ActionDestroy:
		h.Forget(id)
	case events.ActionExecCreate, events.ActionExecDie:
		// Inspect lists the container's exec IDs.
		h.refreshAfterEvent(ctx, id, readInspect, false, string(msg.Action))
	case events.ActionExecStart, events.ActionTop, events.ActionAttach, events.ActionResize,
		events.ActionCopy, events.ActionArchivePath, events.ActionExtractToDir,
		events.ActionExport, events.ActionCommit:
		// These change neither the list nor inspect.
	default:
		if strings.HasPrefix(string(msg.Action), "exec_") {
			return
		}
		// A container created through Clocker is cached by the proxy's own
		// read after its create: its create event reads it only if not.
		h.refreshAfterEvent(ctx, id, readFull, msg.Action == events.ActionCreate, string(msg.Action))
	}
}

func (h *Host) forget(id string) {
	h.mu.Lock()
	if _, ok := h.containers[id]; ok {
		delete(h.containers, id)
		h.changedLocked()
	}
	n := len(h.containers)
	h.mu.Unlock()
	h.metrics.setContainers(h.Name, n)
}

// listRaw lists containers on the engine and keeps each one's own JSON.
func (h *Host) listRaw(ctx context.Context, q url.Values) ([]Container, error) {
	body, status, err := h.getJSON(ctx, "/containers/json", q)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("GET /containers/json: status %d: %s", status, strings.TrimSpace(string(body)))
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, fmt.Errorf("GET /containers/json: %w", err)
	}
	out := make([]Container, 0, len(raws))
	for _, raw := range raws {
		c := Container{Host: h.Name, Raw: raw}
		if err := json.Unmarshal(raw, &c.Summary); err != nil {
			return nil, fmt.Errorf("GET /containers/json: %w", err)
		}
		out = append(out, c)
	}
	return out, nil
}

// inspect reads what the list does not give: the engine's inspect JSON
// (served to clients from the cache), the precise creation time and the
// resources the container reserves.
func (h *Host) inspect(ctx context.Context, c *Container) error {
	body, status, err := h.getJSON(ctx, "/containers/"+c.Summary.ID+"/json", nil)
	if err != nil {
		return err
	}
	if status == http.StatusNotFound {
		return fmt.Errorf("inspect %s: %w", c.Summary.ID, errdefs.ErrNotFound)
	}
	if status != http.StatusOK {
		return fmt.Errorf("inspect %s: status %d", c.Summary.ID, status)
	}
	var in struct {
		Created    time.Time
		HostConfig struct {
			NanoCpus  int64 `json:"NanoCpus"`
			CPUQuota  int64 `json:"CpuQuota"`
			CPUPeriod int64 `json:"CpuPeriod"`
			Memory    int64
		}
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return err
	}
	c.Created = in.Created
	c.NanoCPUs = ReservedNanoCPUs(in.HostConfig.NanoCpus, in.HostConfig.CPUQuota, in.HostConfig.CPUPeriod)
	c.Memory = in.HostConfig.Memory
	// Exactly sized: io.ReadAll's spare capacity would stay with every
	// cached container.
	c.Inspect = bytes.Clone(bytes.TrimSpace(body))
	return nil
}

// resync replaces the cache with the engine's full list, inspecting every
// container: what changed while the stream was down is not known.
func (h *Host) resync(ctx context.Context) error {
	if err := h.refreshFacts(ctx); err != nil {
		return err
	}
	if err := h.RefreshImages(ctx); err != nil {
		// Placement then asks the engine per create; not worth failing for.
		h.log.Warn("image list", "err", err)
		h.mu.Lock()
		h.images = imageIndex{}
		h.mu.Unlock()
	}
	h.syncMu.Lock()
	defer h.syncMu.Unlock()
	list, err := h.listRaw(ctx, url.Values{"all": {"1"}})
	if err != nil {
		return err
	}
	fresh := make(map[string]*Container, len(list))
	for i := range list {
		fresh[list[i].Summary.ID] = &list[i]
	}
	// A few at a time: a thousand hosts resyncing at once must not open
	// tens of thousands of connections.
	if err := parallel(ctx, 4, len(list), func(i int) error {
		if err := h.inspect(ctx, &list[i]); err != nil {
			// Gone between list and inspect (its destroy event follows), or
			// unreadable: keep what was inspected before, if anything.
			h.keepInspected(&list[i])
		}
		return nil
	}); err != nil {
		return err
	}
	h.mu.Lock()
	h.containers = fresh
	h.changedLocked()
	h.mu.Unlock()
	h.metrics.setContainers(h.Name, len(fresh))
	return nil
}

// parallel runs fn(0..n-1) with at most width at once and returns the first
// error; once ctx ends, the calls not yet begun are skipped.
func parallel(ctx context.Context, width, n int, fn func(i int) error) error {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return fanout.FirstError(fanout.Limit(idx, width, func(i int) (struct{}, error) {
		if err := ctx.Err(); err != nil {
			return struct{}{}, err
		}
		return struct{}{}, fn(i)
	}))
}

// ListWithSize lists the engine's containers with their sizes (which only
// the engine can measure), keeping cached creation times.
func (h *Host) ListWithSize(ctx context.Context) ([]Container, error) {
	list, err := h.listRaw(ctx, url.Values{"all": {"1"}, "size": {"1"}})
	if err != nil {
		return nil, err
	}
	list = slices.DeleteFunc(list, func(c Container) bool { return h.isHidden(c.Summary.ID) })
	for i := range list {
		if c, ok := h.Container(list[i].Summary.ID); ok {
			list[i].Created, list[i].NanoCPUs, list[i].Memory = c.Created, c.NanoCPUs, c.Memory
		} else {
			list[i].Created = time.Unix(list[i].Summary.Created, 0)
		}
	}
	return list, nil
}
