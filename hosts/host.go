package hosts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/clocker/clocker/internal/errdefs"
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
	// Transport carries forwarded requests to the engine (pooled).
	Transport *http.Transport
	client    *client.Client
	log       *slog.Logger
	metrics   *Metrics

	// syncMu orders every read-then-write of the cache (resync, Refresh,
	// and forgetting on destroy): an engine answer taken before a later
	// change must not be written after it, or a removed container would
	// come back.
	syncMu sync.Mutex

	mu         sync.RWMutex
	containers map[string]*Container // by full ID
	facts      Facts
	healthy    bool
	synced     bool // cache filled since the last (re)connect
	lastErr    error
	failures   int
}

func newHost(rec Record, ep Endpoint, log *slog.Logger, m *Metrics) (*Host, error) {
	tr := ep.Transport()
	cli, err := ep.newClient(tr)
	if err != nil {
		return nil, err
	}
	return &Host{
		Record:     rec,
		Endpoint:   ep,
		Transport:  tr,
		client:     cli,
		log:        log.With("host", rec.Name),
		metrics:    m,
		containers: map[string]*Container{},
	}, nil
}

// Healthy reports whether the engine answers and its cache is in sync.
func (h *Host) Healthy() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.healthy && h.synced
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
		out = append(out, *c)
	}
	return out
}

// Container returns one cached container by full ID.
func (h *Host) Container(id string) (Container, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	c, ok := h.containers[id]
	if !ok {
		return Container{}, false
	}
	return *c, true
}

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
	return h.Transport.RoundTrip(req)
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
	raw, status, err := h.getJSON(ctx, "/info", nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET /info: status %d", status)
	}
	var info struct {
		Name     string
		NCPU     int
		MemTotal int64
		Labels   []string
	}
	if err := json.Unmarshal(raw, &info); err != nil {
		return fmt.Errorf("GET /info: %w", err)
	}
	vraw, status, err := h.getJSON(ctx, "/version", nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET /version: status %d", status)
	}
	var v struct {
		Version       string
		APIVersion    string `json:"ApiVersion"`
		MinAPIVersion string
	}
	if err := json.Unmarshal(vraw, &v); err != nil {
		return fmt.Errorf("GET /version: %w", err)
	}
	if v.MinAPIVersion == "" {
		v.MinAPIVersion = "1.12"
	}
	h.mu.Lock()
	h.facts = Facts{Info: raw, NCPU: info.NCPU, MemTotal: info.MemTotal, Labels: info.Labels,
		Version: v.Version, MaxAPI: v.APIVersion, MinAPI: v.MinAPIVersion, EngineName: info.Name}
	h.mu.Unlock()
	return nil
}

// run keeps the host's health and cache current until ctx ends.
func (h *Host) run(ctx context.Context, interval time.Duration) {
	go h.watchHealth(ctx, interval)
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
	h.metrics.setHealth(h.Name, h.healthy && h.synced)
}

// watchHealth pings the engine on a ticker; two failures in a row mark it
// unhealthy, one success healthy again.
func (h *Host) watchHealth(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, interval)
		err := h.refreshFacts(pctx)
		cancel()
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
		h.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// syncAndFollow subscribes to container events first, then lists every
// container, so that nothing that happens in between is missed: each event
// re-reads its container, which is idempotent.
func (h *Host) syncAndFollow(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream := h.client.Events(ctx, client.EventsListOptions{
		Filters: make(client.Filters).Add("type", string(events.ContainerEventType)),
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
	id := msg.Actor.ID
	if id == "" {
		return
	}
	switch msg.Action {
	case events.ActionDestroy:
		h.syncMu.Lock()
		h.forget(id)
		h.syncMu.Unlock()
	case events.ActionExecCreate, events.ActionExecStart, events.ActionExecDie,
		events.ActionTop, events.ActionAttach, events.ActionResize,
		events.ActionCopy, events.ActionArchivePath, events.ActionExtractToDir,
		events.ActionExport, events.ActionCommit:
		// These do not change what the list shows.
	default:
		if strings.HasPrefix(string(msg.Action), "exec_") {
			return
		}
		if err := h.Refresh(ctx, id); err != nil {
			h.log.Debug("refresh after event", "id", id, "action", msg.Action, "err", err)
		}
	}
}

func (h *Host) forget(id string) {
	h.mu.Lock()
	delete(h.containers, id)
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

// inspectFacts reads what the list does not give: the precise creation time
// and the resources the container reserves.
func (h *Host) inspectFacts(ctx context.Context, c *Container) error {
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
			CPUShares int64 `json:"CpuShares"`
			Memory    int64
		}
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return err
	}
	c.Created = in.Created
	c.NanoCPUs = in.HostConfig.NanoCpus
	c.Memory = in.HostConfig.Memory
	return nil
}

// resync replaces the cache with the engine's full list.
func (h *Host) resync(ctx context.Context) error {
	if err := h.refreshFacts(ctx); err != nil {
		return err
	}
	h.syncMu.Lock()
	defer h.syncMu.Unlock()
	list, err := h.listRaw(ctx, url.Values{"all": {"1"}})
	if err != nil {
		return err
	}
	h.mu.RLock()
	old := h.containers
	h.mu.RUnlock()
	fresh := make(map[string]*Container, len(list))
	var todo []*Container
	for i := range list {
		c := &list[i]
		if prev, ok := old[c.Summary.ID]; ok && !prev.Created.IsZero() {
			c.Created, c.NanoCPUs, c.Memory = prev.Created, prev.NanoCPUs, prev.Memory
		} else {
			todo = append(todo, c)
		}
		fresh[c.Summary.ID] = c
	}
	if err := parallel(ctx, 16, len(todo), func(i int) error {
		if err := h.inspectFacts(ctx, todo[i]); err != nil {
			// Gone between list and inspect: keep the list's seconds.
			todo[i].Created = time.Unix(todo[i].Summary.Created, 0)
		}
		return nil
	}); err != nil {
		return err
	}
	h.mu.Lock()
	h.containers = fresh
	h.mu.Unlock()
	h.metrics.setContainers(h.Name, len(fresh))
	return nil
}

// Refresh re-reads one container from the engine into the cache, dropping
// it when the engine no longer has it.
func (h *Host) Refresh(ctx context.Context, id string) error {
	h.syncMu.Lock()
	defer h.syncMu.Unlock()
	f, _ := json.Marshal(map[string][]string{"id": {id}})
	list, err := h.listRaw(ctx, url.Values{"all": {"1"}, "filters": {string(f)}})
	if err != nil {
		return err
	}
	var found *Container
	for i := range list {
		if list[i].Summary.ID == id {
			found = &list[i]
		}
	}
	if found == nil {
		h.forget(id)
		return nil
	}
	h.mu.RLock()
	prev, ok := h.containers[id]
	h.mu.RUnlock()
	if ok && !prev.Created.IsZero() {
		found.Created, found.NanoCPUs, found.Memory = prev.Created, prev.NanoCPUs, prev.Memory
	} else if err := h.inspectFacts(ctx, found); errors.Is(err, errdefs.ErrNotFound) {
		h.forget(id) // removed between list and inspect
		return nil
	} else if err != nil {
		found.Created = time.Unix(found.Summary.Created, 0)
	}
	h.mu.Lock()
	h.containers[id] = found
	n := len(h.containers)
	h.mu.Unlock()
	h.metrics.setContainers(h.Name, n)
	return nil
}

// parallel runs fn(0..n-1) with at most width at once and returns the first
// error.
func parallel(ctx context.Context, width, n int, fn func(i int) error) error {
	sem := make(chan struct{}, width)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(i); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// ListWithSize lists the engine's containers with their sizes (which only
// the engine can measure), keeping cached creation times.
func (h *Host) ListWithSize(ctx context.Context) ([]Container, error) {
	list, err := h.listRaw(ctx, url.Values{"all": {"1"}, "size": {"1"}})
	if err != nil {
		return nil, err
	}
	for i := range list {
		if c, ok := h.Container(list[i].Summary.ID); ok {
			list[i].Created, list[i].NanoCPUs, list[i].Memory = c.Created, c.NanoCPUs, c.Memory
		} else {
			list[i].Created = time.Unix(list[i].Summary.Created, 0)
		}
	}
	return list, nil
}
