package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/internal/store"
	"github.com/clocker/clocker/sdn"
)

// Rescheduling: a container created with -e reschedule:on-node-failure (or
// the label com.docker.swarm.reschedule-policies=["on-node-failure"], or
// io.clocker.reschedule=on-node-failure) whose host stays unhealthy for
// the reschedule delay is created again, with the same name and config,
// on a healthy host through the front door itself (so placement, names,
// ingress and networks treat it as any create), and started if it ran.
// The stale copy is hidden from every view meanwhile and removed from its
// engine as soon as that host answers again. Each move is stored first, so
// a restarted manager hides and removes what it must.
//
//	host down ≥ delay ─► store record ─► hide stale ─► create + start (front door)
//	host back         ─► remove stale on its engine ─► forget record

// RescheduleLabel marks a container for rescheduling; Clocker sets it from
// the env entry and Swarm's label, and reads it after restarts.
const RescheduleLabel = labels.Reschedule

const (
	policyOnNodeFailure = "on-node-failure"
	envReschedule       = "reschedule:"
	swarmRescheduleKey  = labels.SwarmReschedulePolicies
)

// withReschedulePolicy reads the reschedule policy of a create body (env
// reschedule:POLICY, Swarm's label, Clocker's label), removes the env
// entries (engines must not see them) and records the policy as
// RescheduleLabel. A policy other than on-node-failure or off is a 400.
func withReschedulePolicy(body []byte) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
	}
	var env []string
	var labels map[string]string
	if raw, ok := fields["Env"]; ok {
		_ = json.Unmarshal(raw, &env)
	}
	if raw, ok := fields["Labels"]; ok {
		_ = json.Unmarshal(raw, &labels)
	}
	var policies []string
	kept := env[:0:0]
	for _, e := range env {
		if p, ok := strings.CutPrefix(e, envReschedule); ok {
			policies = append(policies, p)
			continue
		}
		kept = append(kept, e)
	}
	if raw := labels[swarmRescheduleKey]; raw != "" {
		var ps []string
		if err := json.Unmarshal([]byte(raw), &ps); err != nil {
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("label %s: want a JSON array such as [\"on-node-failure\"]: %v", swarmRescheduleKey, err))
		}
		policies = append(policies, ps...)
	}
	if p := labels[RescheduleLabel]; p != "" {
		policies = append(policies, p)
	}
	if len(policies) == 0 {
		return body, nil
	}
	on := false
	for _, p := range policies {
		switch p {
		case policyOnNodeFailure:
			on = true
		case "off":
		default:
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid reschedule policy %q: on-node-failure or off", p))
		}
	}
	if len(kept) != len(env) {
		b, err := json.Marshal(kept)
		if err != nil {
			return nil, err
		}
		fields["Env"] = b
	}
	if labels == nil {
		labels = map[string]string{}
	}
	if on {
		labels[RescheduleLabel] = policyOnNodeFailure
	} else {
		delete(labels, RescheduleLabel)
	}
	b, err := json.Marshal(labels)
	if err != nil {
		return nil, err
	}
	fields["Labels"] = b
	return json.Marshal(fields)
}

// rescheduleRecord is one move, stored under the stale copy's ID.
type rescheduleRecord struct {
	Name    string
	OldHost string
	OldID   string
	NewID   string `json:",omitempty"`
	At      time.Time
}

// Rescheduler moves reschedulable containers off hosts that stay down.
type Rescheduler struct {
	s     *Server
	store *store.Store // nil: moves are not kept across restarts (tests)
	after time.Duration

	mu        sync.Mutex
	records   map[string]*rescheduleRecord // by OldID
	downSince map[string]time.Time         // by host
	retryAt   map[string]time.Time         // by container ID: a failed move waits
	handler   http.Handler
}

// NewRescheduler loads the stored moves and hides their stale copies.
func (s *Server) NewRescheduler(st *store.Store, after time.Duration) (*Rescheduler, error) {
	rs := &Rescheduler{s: s, store: st, after: after, records: map[string]*rescheduleRecord{},
		downSince: map[string]time.Time{}, retryAt: map[string]time.Time{}, handler: s.Handler()}
	if st != nil {
		err := st.ForEach(store.BucketReschedules, func(_ string, v []byte) error {
			var r rescheduleRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			rs.records[r.OldID] = &r
			if h, ok := s.Fleet.Host(r.OldHost); ok {
				h.Hide(r.OldID)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("reschedules: %w", err)
		}
	}
	return rs, nil
}

// Run checks the fleet every tick until ctx ends.
func (rs *Rescheduler) Run(ctx context.Context) {
	t := time.NewTicker(min(time.Second, max(rs.after/4, 50*time.Millisecond)))
	defer t.Stop()
	for {
		rs.tick(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (rs *Rescheduler) tick(ctx context.Context, now time.Time) {
	for _, h := range rs.s.Fleet.Hosts() {
		if h.Healthy() {
			rs.mu.Lock()
			delete(rs.downSince, h.Name)
			rs.mu.Unlock()
			rs.removeStale(ctx, h)
			continue
		}
		rs.mu.Lock()
		since, ok := rs.downSince[h.Name]
		if !ok {
			rs.downSince[h.Name] = now
		}
		rs.mu.Unlock()
		if !ok || now.Sub(since) < rs.after {
			continue
		}
		for _, c := range h.Containers() {
			if c.Summary.Labels[RescheduleLabel] != policyOnNodeFailure {
				continue
			}
			rs.mu.Lock()
			_, moved := rs.records[c.ID()]
			wait := rs.retryAt[c.ID()]
			rs.mu.Unlock()
			if moved || now.Before(wait) {
				continue
			}
			if err := rs.move(ctx, h, c, since); err != nil {
				rs.s.Log.Warn("reschedule failed; will retry", "host", h.Name, "container", c.ID(), "err", err)
				rs.mu.Lock()
				rs.retryAt[c.ID()] = now.Add(10 * time.Second)
				rs.mu.Unlock()
			}
		}
	}
}

// move recreates container c of the down host h elsewhere.
func (rs *Rescheduler) move(ctx context.Context, h *hosts.Host, c hosts.Container, downSince time.Time) error {
	if c.Inspect == nil {
		return fmt.Errorf("its configuration was never read")
	}
	body, name, running, err := recreateBody(c, downSince)
	if err != nil {
		return err
	}
	rec := &rescheduleRecord{Name: name, OldHost: h.Name, OldID: c.ID(), At: time.Now().UTC()}
	if err := rs.save(rec); err != nil {
		return err
	}
	h.Hide(c.ID()) // frees the name and keeps `docker ps` to one copy
	status, out := rs.call(ctx, http.MethodPost, "/containers/create?name="+url.QueryEscape(name), body)
	if status != http.StatusCreated {
		h.Unhide(c.ID())
		rs.forget(rec)
		return fmt.Errorf("create: %d %s", status, bytes.TrimSpace(out))
	}
	var created struct {
		ID string `json:"Id"`
	}
	_ = json.Unmarshal(out, &created)
	rec.NewID = created.ID
	if err := rs.save(rec); err != nil {
		rs.s.Log.Warn("reschedule: store", "err", err)
	}
	if running {
		if status, out := rs.call(ctx, http.MethodPost, "/containers/"+created.ID+"/start", nil); status != http.StatusNoContent && status != http.StatusNotModified {
			return fmt.Errorf("start %s: %d %s", created.ID, status, bytes.TrimSpace(out))
		}
	}
	rs.s.Log.Info("rescheduled", "name", name, "from", h.Name, "old", c.ID(), "new", created.ID)
	return nil
}

// removeStale removes the stale copies on h, which answers again.
func (rs *Rescheduler) removeStale(ctx context.Context, h *hosts.Host) {
	rs.mu.Lock()
	var mine []*rescheduleRecord
	for _, r := range rs.records {
		if r.OldHost == h.Name && r.NewID != "" {
			mine = append(mine, r)
		}
	}
	rs.mu.Unlock()
	for _, r := range mine {
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete,
			h.Endpoint.Base.String()+"/containers/"+r.OldID+"?force=1&v=0", nil)
		if err != nil {
			continue
		}
		resp, err := h.RoundTrip(req)
		if err != nil {
			continue // next tick
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotFound {
			rs.s.Log.Warn("reschedule: remove stale copy", "host", h.Name, "id", r.OldID, "status", resp.StatusCode)
			continue
		}
		_ = h.Refresh(ctx, r.OldID) // drops it from the cache
		h.Unhide(r.OldID)
		rs.forget(r)
		rs.s.Log.Info("stale copy removed", "host", h.Name, "name", r.Name, "id", r.OldID)
	}
}

func (rs *Rescheduler) save(r *rescheduleRecord) error {
	if rs.store != nil {
		if err := rs.store.Put(store.BucketReschedules, r.OldID, r); err != nil {
			return err
		}
	}
	rs.mu.Lock()
	rs.records[r.OldID] = r
	rs.mu.Unlock()
	return nil
}

func (rs *Rescheduler) forget(r *rescheduleRecord) {
	if rs.store != nil {
		if err := rs.store.Delete(store.BucketReschedules, r.OldID); err != nil {
			rs.s.Log.Warn("reschedule: store", "err", err)
		}
	}
	rs.mu.Lock()
	delete(rs.records, r.OldID)
	rs.mu.Unlock()
}

// call sends one request through the front door, in process.
func (rs *Rescheduler) call(ctx context.Context, method, path string, body []byte) (int, []byte) {
	req := httptest.NewRequest(method, path, bytes.NewReader(body)).WithContext(ctx)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	rs.handler.ServeHTTP(w, req)
	return w.Code, w.Body.Bytes()
}

// stoppedByFailure is how long before its host was seen down a container
// may have stopped and still count as stopped by the failure: an engine
// that shuts down stops its containers first (a crash leaves them running
// in the cache).
const stoppedByFailure = 30 * time.Second

// recreateBody turns a container's inspect JSON into the create body that
// makes it again: its config, host config and the networks it joined; and
// whether it ran when its host failed.
func recreateBody(c hosts.Container, downSince time.Time) (body []byte, name string, running bool, err error) {
	var in struct {
		ID         string `json:"Id"`
		Name       string
		Config     map[string]json.RawMessage
		HostConfig json.RawMessage
		State      struct {
			Running    bool
			StartedAt  time.Time
			FinishedAt time.Time
		}
		Network struct {
			Networks map[string]struct {
				Aliases []string
				Links   []string
			}
		} `json:"NetworkSettings"`
	}
	if err := json.Unmarshal(c.Inspect, &in); err != nil {
		return nil, "", false, fmt.Errorf("inspect: %w", err)
	}
	fields := in.Config
	if fields == nil {
		return nil, "", false, fmt.Errorf("inspect has no Config")
	}
	// The engine gives a container without one its short ID as hostname.
	var hostname string
	_ = json.Unmarshal(fields["Hostname"], &hostname)
	if hostname != "" && strings.HasPrefix(in.ID, hostname) {
		delete(fields, "Hostname")
	}
	var labels map[string]string
	_ = json.Unmarshal(fields["Labels"], &labels)
	delete(labels, HostLabel) // set again for the new host
	if fields["Labels"], err = json.Marshal(labels); err != nil {
		return nil, "", false, err
	}
	fields["HostConfig"] = in.HostConfig
	endpoints := map[string]any{}
	for net, ep := range in.Network.Networks {
		if sdn.PerHostNetwork(net) {
			continue
		}
		var aliases []string
		for _, a := range ep.Aliases {
			if !strings.HasPrefix(in.ID, a) { // the engine's own short-ID alias
				aliases = append(aliases, a)
			}
		}
		endpoints[net] = map[string]any{"Aliases": aliases, "Links": ep.Links}
	}
	if len(endpoints) > 0 {
		if fields["NetworkingConfig"], err = json.Marshal(map[string]any{"EndpointsConfig": endpoints}); err != nil {
			return nil, "", false, err
		}
	}
	body, err = json.Marshal(fields)
	running = in.State.Running || (in.State.FinishedAt.After(in.State.StartedAt) &&
		in.State.FinishedAt.After(downSince.Add(-stoppedByFailure)))
	return body, strings.TrimPrefix(in.Name, "/"), running, err
}
