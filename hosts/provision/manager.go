package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/store"
)

// Manager provisions hosts with the configured drivers, keeps their
// machines in bbolt and re-adopts them after a restart.
type Manager struct {
	fleet   *hosts.Fleet
	store   store.Store
	log     *slog.Logger
	metrics *Metrics
	drivers map[string]Provisioner
	// EngineWait bounds how long a new machine's engine may take to answer.
	EngineWait time.Duration
	// ImageSource is an engine to copy images from when no host of the
	// fleet has any yet (the machine's own engine; "" for none).
	ImageSource string
	// IsAgent tells Clocker's own containers (not the user's) apart.
	IsAgent func(*hosts.Container) bool

	mu       sync.Mutex
	machines map[string]Machine // by host name, as stored
	pending  map[string]Machine // being made: listed as pending
}

// NewManager builds a manager over a fleet and its store; metrics may be nil.
func NewManager(fleet *hosts.Fleet, st store.Store, log *slog.Logger, m *Metrics) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{fleet: fleet, store: st, log: log, metrics: m, drivers: map[string]Provisioner{},
		EngineWait: 60 * time.Second, machines: map[string]Machine{}, pending: map[string]Machine{}}
}

// isUsers: a container of the user's, not one of Clocker's agents.
func (m *Manager) isUsers(c *hosts.Container) bool { return m.IsAgent == nil || !m.IsAgent(c) }

// Use makes a driver available to Provision.
func (m *Manager) Use(p Provisioner) { m.drivers[p.Name()] = p }

// Driver returns a configured driver.
func (m *Manager) Driver(name string) (Provisioner, bool) {
	p, ok := m.drivers[name]
	return p, ok
}

// Pending lists the machines being made, oldest first.
func (m *Manager) Pending() []Machine {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Collect(maps.Values(m.pending))
	slices.SortFunc(out, func(a, b Machine) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Machine returns the stored machine of a host made by a provisioner.
func (m *Manager) Machine(name string) (Machine, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mc, ok := m.machines[name]
	return mc, ok
}

// Machines lists the machines made by driver ("" for every driver).
func (m *Manager) Machines(driver string) []Machine {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Machine
	for _, mc := range m.machines {
		if driver == "" || mc.Provisioner == driver {
			out = append(out, mc)
		}
	}
	slices.SortFunc(out, func(a, b Machine) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Restore reads the stored machines and re-adopts them: engines that are
// gone are started again, machines left half-made by a crash are undone.
// Hosts the fleet knows come back through the fleet's own store.
func (m *Manager) Restore(ctx context.Context) error {
	var stored []Machine
	err := m.store.ForEach(store.BucketMachines, func(_ string, v []byte) error {
		var mc Machine
		if err := json.Unmarshal(v, &mc); err != nil {
			return err
		}
		stored = append(stored, mc)
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading stored machines: %w", err)
	}
	var wg sync.WaitGroup
	for _, mc := range stored {
		p, ok := m.drivers[mc.Provisioner]
		if !ok {
			m.log.Warn("stored machine of a provisioner that is not configured: left as it is", "host", mc.Name, "provisioner", mc.Provisioner)
			continue
		}
		m.mu.Lock()
		m.machines[mc.Name] = mc
		m.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !mc.Ready {
				m.undo(ctx, p, mc, errors.New("left half-made by a restart"))
				return
			}
			adopted, err := p.Adopt(ctx, mc)
			if err != nil {
				m.log.Error("re-adopting a machine failed; its host stays in the fleet as unhealthy", "host", mc.Name, "err", err)
				return
			}
			adopted.Ready = true
			if err := m.save(adopted); err != nil {
				m.log.Error("store machine", "host", mc.Name, "err", err)
			}
			m.log.Info("machine re-adopted", "host", mc.Name, "provisioner", mc.Provisioner)
		}()
	}
	wg.Wait()
	return nil
}

// Provision makes a host with driver, waits until its engine answers,
// adds it to the fleet and copies the fleet's images onto it.
func (m *Manager) Provision(ctx context.Context, driver string, req Request) (*hosts.Host, error) {
	p, ok := m.drivers[driver]
	if !ok {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("provisioner %q is not configured (configured: %s)", driver, strings.Join(slices.Sorted(maps.Keys(m.drivers)), ", ")))
	}
	start := time.Now()
	mc, err := m.reserve(driver, req.Name)
	if err != nil {
		return nil, err
	}
	req.Name = mc.Name
	h, err := m.provision(ctx, p, mc, req)
	m.metrics.observe(driver, start, err)
	if err != nil {
		return nil, err
	}
	m.log.Info("host provisioned", "host", h.Name, "provisioner", driver, "url", h.URL, "took", time.Since(start).Round(time.Millisecond))
	return h, nil
}

func (m *Manager) provision(ctx context.Context, p Provisioner, mc Machine, req Request) (*hosts.Host, error) {
	if err := m.save(mc); err != nil { // first, so a crash from here on is seen at restart
		m.release(mc.Name)
		return nil, err
	}
	made, err := p.Create(ctx, req)
	if err != nil {
		m.forget(mc.Name)
		return nil, fmt.Errorf("provision %s with %s: %w", mc.Name, mc.Provisioner, err)
	}
	made.Name, made.Provisioner, made.Ready = mc.Name, mc.Provisioner, false
	made.Record.Name, made.Record.Provisioner = mc.Name, mc.Provisioner
	if err := m.save(made); err != nil {
		m.undo(ctx, p, made, err)
		return nil, err
	}
	m.mu.Lock()
	m.pending[mc.Name] = made
	m.mu.Unlock()
	h, err := m.join(ctx, made.Record)
	if err != nil {
		m.undo(ctx, p, made, err)
		return nil, fmt.Errorf("provision %s with %s: %w", mc.Name, mc.Provisioner, err)
	}
	made.Ready = true
	if err := m.save(made); err != nil {
		m.log.Error("store machine", "host", mc.Name, "err", err)
	}
	m.release(mc.Name)
	m.fleet.Announce("provision", h.Name, h.URL)
	return h, nil
}

// join waits for the new engine to answer, copies the fleet's images onto
// it, then adds it to the fleet (stored) and waits for its cache: a host
// that shows up healthy takes containers at once.
func (m *Manager) join(ctx context.Context, rec hosts.Record) (*hosts.Host, error) {
	ep, err := hosts.ParseEndpoint(rec.URL)
	if err == nil {
		ep, err = ep.WithTLS(rec.TLS)
	}
	if err != nil {
		return nil, err
	}
	dst := &engine{base: ep.Base, rt: ep.Transport(), name: rec.Name}
	wctx, cancel := context.WithTimeout(ctx, m.EngineWait)
	defer cancel()
	if err := waitAnswer(wctx, dst); err != nil {
		return nil, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("the engine of %s (%s) did not answer within %s: %v", rec.Name, rec.URL, m.EngineWait, err))
	}
	if err := m.seedImages(ctx, dst); err != nil {
		m.log.Warn("copying images to a new host", "host", rec.Name, "err", err)
	}
	h, err := m.fleet.Join(wctx, rec)
	if err != nil {
		return nil, err
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !h.Healthy() && h.LastError() == nil && wctx.Err() == nil {
		select {
		case <-wctx.Done():
		case <-tick.C:
		}
	}
	return h, nil
}

// waitAnswer polls an engine's /_ping until it answers or ctx ends.
func waitAnswer(ctx context.Context, e *engine) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := e.do(pctx, "GET", "/_ping", nil, nil)
		cancel()
		if err == nil {
			return resp.Body.Close()
		}
		select {
		case <-ctx.Done():
			return err
		case <-tick.C:
		}
	}
}

// Heal starts again the engines of provisioned hosts that stop answering:
// after a host disconnects and stays down for after, its driver re-adopts
// the machine (a local engine that died is started in its namespace; an
// ssh machine's engine over SSH), retried with back-off up to 5 min while
// the host stays down. Its rescheduled containers' stale copies are then
// removed as for any host that comes back. Runs until ctx ends.
func (m *Manager) Heal(ctx context.Context, after time.Duration) {
	_, events, cancel := m.fleet.SubscribeEvents()
	defer cancel()
	var (
		mu      sync.Mutex
		healing = map[string]bool{}
	)
	start := func(host string) {
		if mc, made := m.Machine(host); !made || !mc.Ready {
			return
		}
		mu.Lock()
		busy := healing[host]
		healing[host] = true
		mu.Unlock()
		if busy {
			return
		}
		go func() {
			m.heal(ctx, host, after)
			mu.Lock()
			delete(healing, host)
			mu.Unlock()
		}()
	}
	// Hosts already down when healing starts (at a manager's start, or
	// before the subscription above) sent their disconnect before it.
	for _, h := range m.fleet.Hosts() {
		if !h.Healthy() {
			start(h.Name)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Action == "disconnect" {
				start(ev.Host)
			}
		}
	}
}

func (m *Manager) heal(ctx context.Context, name string, wait time.Duration) {
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		h, inFleet := m.fleet.Host(name)
		mc, made := m.Machine(name)
		if !inFleet || !made || h.Healthy() {
			return // back by itself, or gone
		}
		p, ok := m.drivers[mc.Provisioner]
		if !ok {
			return
		}
		actx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		_, err := p.Adopt(actx, mc)
		cancel()
		if err == nil {
			m.log.Info("provisioned host down: its engine was started again", "host", name, "provisioner", mc.Provisioner)
			return
		}
		m.log.Warn("provisioned host down: starting its engine failed", "host", name, "err", err)
		wait = min(2*wait, 5*time.Minute)
	}
}

// undo destroys a machine that could not be finished and forgets it.
func (m *Manager) undo(ctx context.Context, p Provisioner, mc Machine, why error) {
	m.log.Warn("undoing a machine", "host", mc.Name, "provisioner", mc.Provisioner, "why", why)
	if _, ok := m.fleet.Host(mc.Name); ok {
		_ = m.fleet.Remove(mc.Name, func(*hosts.Container) bool { return false })
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := p.Destroy(dctx, mc); err != nil {
		m.log.Error("destroying a half-made machine", "host", mc.Name, "err", err)
		return // keep the record: the next restart tries again
	}
	m.forget(mc.Name)
}

// Remove takes a host out of the fleet (refused while it has the user's
// containers, unless draining) and, when a provisioner made it, destroys
// its machine.
func (m *Manager) Remove(ctx context.Context, name string) error {
	mc, made := m.Machine(name)
	if _, inFleet := m.fleet.Host(name); inFleet || !made {
		if err := m.fleet.Remove(name, m.isUsers); err != nil {
			return err
		}
	}
	if !made {
		return nil
	}
	p, ok := m.drivers[mc.Provisioner]
	if !ok {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("host %s was made by provisioner %q, which is not configured: removed from the fleet, its machine left as it is", name, mc.Provisioner))
	}
	if err := p.Destroy(ctx, mc); err != nil {
		return fmt.Errorf("destroy %s: %w", name, err)
	}
	m.forget(name)
	m.fleet.Announce("destroy", name, mc.Record.URL)
	m.log.Info("host destroyed", "host", name, "provisioner", mc.Provisioner)
	return nil
}

// reserve picks the host's name (the driver's name and the lowest free
// number when none is asked for) and holds it while the machine is made.
func (m *Manager) reserve(driver, name string) (Machine, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	taken := func(n string) bool {
		_, inFleet := m.fleet.Host(n)
		_, made := m.machines[n]
		_, pending := m.pending[n]
		return inFleet || made || pending
	}
	if name == "" {
		for i := 1; ; i++ {
			if n := driver + strconv.Itoa(i); !taken(n) {
				name = n
				break
			}
		}
	} else if taken(name) {
		return Machine{}, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("host name %q is already taken", name))
	}
	mc := Machine{Name: name, Provisioner: driver}
	m.pending[name] = mc
	return mc, nil
}

// release ends a machine's pending state.
func (m *Manager) release(name string) {
	m.mu.Lock()
	delete(m.pending, name)
	m.mu.Unlock()
}

// save stores a machine.
func (m *Manager) save(mc Machine) error {
	if err := m.store.Put(store.BucketMachines, mc.Name, mc); err != nil {
		return fmt.Errorf("store machine %s: %w", mc.Name, err)
	}
	m.mu.Lock()
	m.machines[mc.Name] = mc
	m.mu.Unlock()
	return nil
}

// forget drops a machine's record.
func (m *Manager) forget(name string) {
	if err := m.store.Delete(store.BucketMachines, name); err != nil {
		m.log.Error("forget machine", "host", name, "err", err)
	}
	m.mu.Lock()
	delete(m.machines, name)
	delete(m.pending, name)
	m.mu.Unlock()
}
