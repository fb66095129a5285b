package provision

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/clocker/clocker/internal/errdefs"
)

// HeadroomPolicy is Clocker's autoscaling rule: keep at least Headroom
// container slots free, where a host holds PerHost containers.
//
//	available = PerHost × hosts − containers
//	available < headroom            → provision a host (up to MaxHosts)
//	available > headroom + PerHost  → with ScaleIn, after ScaleInAfter,
//	                                  drain and remove an empty host
//
// Hosts are those that take work (healthy, not draining) plus those being
// provisioned; containers are the user's on those hosts, in any state, as
// placement's max-containers counts them.
type HeadroomPolicy struct {
	Provisioner     string
	PerHost         int
	Headroom        int
	HeadroomPercent float64 // of all slots, instead of Headroom when > 0
	MaxHosts        int     // 0: no limit
	ScaleIn         bool
	ScaleInAfter    time.Duration // how long the fleet stays cold before a host goes
	Interval        time.Duration // how often the sensors are read
}

// Validate checks a policy before it runs.
func (p HeadroomPolicy) Validate() error {
	switch {
	case p.PerHost <= 0:
		return errdefs.New(errdefs.ErrInvalid, "headroom needs --max-containers-per-host N (the slots of a host)")
	case p.Headroom < 0 || p.HeadroomPercent < 0 || p.HeadroomPercent > 100:
		return errdefs.New(errdefs.ErrInvalid, "headroom: --headroom must be ≥ 0 and --headroom-percent within 0-100")
	case p.Headroom > 0 && p.HeadroomPercent > 0:
		return errdefs.New(errdefs.ErrInvalid, "give --headroom or --headroom-percent, not both")
	case p.MaxHosts < 0:
		return errdefs.New(errdefs.ErrInvalid, "--max-hosts must be ≥ 0")
	}
	return nil
}

// HostLoad is one host as the policy sees it.
type HostLoad struct {
	Name       string
	Containers int  // the user's, any state
	Usable     bool // healthy and not draining
	Removable  bool // made by the policy's provisioner: scale-in may destroy it
}

// Sensors are what the policy reads from the fleet, exported as metrics.
type Sensors struct {
	Hosts, Pending      int // usable hosts (incl. pending), of which pending
	Slots, Containers   int
	Available, Headroom int
	Needed              int // slots missing to reach the headroom
	Utilisation         float64
	Hot, Cold           bool
	Empty               []string // removable usable hosts with no container
	AllHosts            int      // every host and machine in flight, for MaxHosts
}

// Sense computes the sensors for a fleet view.
func (p HeadroomPolicy) Sense(view []HostLoad, pending int) Sensors {
	s := Sensors{Pending: pending, Hosts: pending, AllHosts: len(view) + pending}
	for _, h := range view {
		if !h.Usable {
			continue
		}
		s.Hosts++
		s.Containers += h.Containers
		if h.Containers == 0 && h.Removable {
			s.Empty = append(s.Empty, h.Name)
		}
	}
	s.Slots = p.PerHost * s.Hosts
	s.Available = s.Slots - s.Containers
	s.Headroom = p.Headroom
	if p.HeadroomPercent > 0 {
		s.Headroom = int(math.Ceil(p.HeadroomPercent / 100 * float64(s.Slots)))
	}
	if s.Slots > 0 {
		s.Utilisation = float64(s.Containers) / float64(s.Slots)
	}
	s.Needed = max(0, s.Headroom-s.Available)
	s.Hot = s.Available < s.Headroom
	s.Cold = s.Available > s.Headroom+p.PerHost
	return s
}

// Autoscaler applies a HeadroomPolicy to the fleet with a Manager.
type Autoscaler struct {
	m      *Manager
	policy HeadroomPolicy

	mu        sync.Mutex
	inFlight  bool
	coldSince time.Time
	backoff   time.Duration
	retryAt   time.Time
	last      Sensors
}

// NewAutoscaler checks the policy and its provisioner.
func (m *Manager) NewAutoscaler(p HeadroomPolicy) (*Autoscaler, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if _, ok := m.drivers[p.Provisioner]; !ok {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("headroom: provisioner %q is not configured", p.Provisioner))
	}
	if p.Interval <= 0 {
		p.Interval = time.Second
	}
	if p.ScaleInAfter <= 0 {
		p.ScaleInAfter = time.Minute
	}
	return &Autoscaler{m: m, policy: p}, nil
}

// Sensors returns the last reading.
func (a *Autoscaler) Sensors() Sensors {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

// Run reads the sensors every Interval and acts, until ctx ends.
func (a *Autoscaler) Run(ctx context.Context) {
	t := time.NewTicker(a.policy.Interval)
	defer t.Stop()
	for {
		a.Step(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// view reads the fleet as the policy sees it.
func (a *Autoscaler) view() ([]HostLoad, int) {
	var out []HostLoad
	for _, h := range a.m.fleet.Hosts() {
		mc, made := a.m.Machine(h.Name)
		out = append(out, HostLoad{Name: h.Name, Containers: h.CountContainers(a.m.isUsers), Usable: h.Healthy() && !h.Draining(),
			Removable: made && mc.Provisioner == a.policy.Provisioner})
	}
	return out, len(a.m.Pending())
}

// Step reads the sensors once and starts what the policy asks for.
func (a *Autoscaler) Step(ctx context.Context, now time.Time) {
	view, pending := a.view()
	s := a.policy.Sense(view, pending)
	a.m.metrics.sense(s)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.last = s
	if !s.Cold {
		a.coldSince = time.Time{}
	} else if a.coldSince.IsZero() {
		a.coldSince = now
	}
	if a.inFlight || now.Before(a.retryAt) {
		return
	}
	switch {
	case s.Hot && (a.policy.MaxHosts == 0 || s.AllHosts < a.policy.MaxHosts):
		a.inFlight = true
		a.m.log.Info("headroom: provisioning a host", "available", s.Available, "headroom", s.Headroom, "hosts", s.Hosts)
		go a.grow(ctx)
	case s.Cold && a.policy.ScaleIn && now.Sub(a.coldSince) >= a.policy.ScaleInAfter && len(s.Empty) > 0 && s.Hosts > 1:
		victim := slices.MaxFunc(s.Empty, compareHostNames) // the newest first
		a.inFlight = true
		a.m.log.Info("headroom: removing an idle host", "host", victim, "available", s.Available, "headroom", s.Headroom)
		go a.shrink(ctx, victim)
	}
}

func (a *Autoscaler) grow(ctx context.Context) {
	_, err := a.m.Provision(ctx, a.policy.Provisioner, Request{})
	a.done(err)
}

// shrink drains a host first, so that no container is placed there while
// it goes, then removes it if it is still empty.
func (a *Autoscaler) shrink(ctx context.Context, name string) {
	err := a.m.fleet.SetDraining(name, true)
	if err == nil {
		if h, ok := a.m.fleet.Host(name); ok && h.CountContainers(a.m.isUsers) > 0 {
			err = a.m.fleet.SetDraining(name, false) // a container arrived meanwhile: keep it
		} else {
			err = a.m.Remove(ctx, name)
		}
	}
	a.mu.Lock()
	a.coldSince = time.Time{} // the fleet must stay cold a while again
	a.mu.Unlock()
	a.done(err)
}

// done ends an action; failures back off (5 s doubling to 2 min) so a
// broken provisioner is not hammered.
func (a *Autoscaler) done(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.inFlight = false
	if err == nil {
		a.backoff = 0
		return
	}
	a.backoff = min(max(2*a.backoff, 5*time.Second), 2*time.Minute)
	a.retryAt = time.Now().Add(a.backoff)
	a.m.log.Error("headroom: action failed", "err", err, "retry_in", a.backoff)
}

// compareHostNames orders local2 before local10.
func compareHostNames(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}
