package blueprint

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clocker/clocker/blueprint/camp"
	"github.com/clocker/clocker/internal/errdefs"
)

// Adjunct states as Brooklyn's Lifecycle names them.
const (
	AdjunctRunning   = "RUNNING"
	AdjunctStopped   = "STOPPED"
	AdjunctDestroyed = "DESTROYED"
)

// Adjunct is a policy or an enricher attached to an entity.
type Adjunct struct {
	ID string
	// Type is the type as written; Kind "policy" or "enricher".
	Type string
	Kind string
	// Config as given (values may hold *camp.Call).
	Config map[string]any
	Entity *Entity

	mu    sync.Mutex
	state string
	impl  behaviour
}

// Name is the adjunct's display name: its short type.
func (a *Adjunct) Name() string {
	if n, ok := a.Config["name"].(string); ok && n != "" {
		return n
	}
	return camp.ShortType(a.Type)
}

// State is RUNNING or STOPPED.
func (a *Adjunct) State() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state
}

func (a *Adjunct) running() bool { return a.State() == AdjunctRunning }

// behaviour is what an adjunct type does: it hears every sensor
// published in its application (src and the values set) and acts
// through the manager. Handlers are called without Manager.mu held and
// must not block.
type behaviour interface {
	sensor(src *Entity, kv map[string]any)
	// stop cancels pending timers.
	stop()
}

// configKey is one documented config key of an adjunct type.
type configKey struct {
	Name        string
	Type        string
	Default     any
	Description string
}

// adjunctType is a known policy or enricher.
type adjunctType struct {
	Kind string
	Keys []configKey
	New  func(m *Manager, a *Adjunct) (behaviour, error)
}

// adjunctTypes by short type name; filled by the files of each type.
var adjunctTypes = map[string]*adjunctType{}

func knownAdjuncts() string {
	names := make([]string, 0, len(adjunctTypes))
	for n := range adjunctTypes {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// newAdjunct builds an adjunct of e (nil e: only checks type and config).
func (m *Manager) newAdjunct(e *Entity, kind, typ string, cfg map[string]any) (*Adjunct, error) {
	t, ok := adjunctTypes[camp.ShortType(typ)]
	if !ok {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("unknown %s type %q; known: %s", kind, typ, knownAdjuncts()))
	}
	if cfg == nil {
		cfg = map[string]any{}
	}
	a := &Adjunct{ID: NewID(), Type: typ, Kind: t.Kind, Config: cfg, Entity: e, state: AdjunctRunning}
	impl, err := t.New(m, a)
	if err != nil {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s %s: %v", kind, camp.ShortType(typ), err))
	}
	a.impl = impl
	return a, nil
}

// checkAdjuncts refuses a plan with an unknown policy type or bad config.
func (m *Manager) checkAdjuncts(plan *camp.Plan) error {
	nodes := append([]*camp.Node(nil), plan.Nodes...)
	for _, n := range plan.Nodes {
		if n.MemberSpec != nil {
			nodes = append(nodes, n.MemberSpec)
		}
	}
	for _, n := range nodes {
		for _, list := range [][]camp.Adjunct{n.Policies, n.Enrichers} {
			for _, a := range list {
				if _, err := m.newAdjunct(nil, "policy", a.Type, a.Config); err != nil {
					return errdefs.New(errdefs.ErrInvalid, n.Label()+": "+err.Error())
				}
			}
		}
	}
	return nil
}

// attachPlanned gives e the adjuncts its node lists (a checked plan).
func (m *Manager) attachPlanned(e *Entity) {
	for _, list := range [][]camp.Adjunct{e.Node.Policies, e.Node.Enrichers} {
		for _, p := range list {
			a, err := m.newAdjunct(e, "policy", p.Type, p.Config)
			if err != nil {
				m.log.Warn("blueprint: adjunct", "entity", e.ID, "err", err)
				continue
			}
			e.adjuncts = append(e.adjuncts, a)
		}
	}
}

// Adjuncts lists e's policies (kind "policy") or enrichers.
func (m *Manager) Adjuncts(e *Entity, kind string) []*Adjunct {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Adjunct
	for _, a := range e.adjuncts {
		if kind == "" || a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

// AdjunctOf finds one of e's adjuncts by id, name or short type.
func (m *Manager) AdjunctOf(e *Entity, ref string) (*Adjunct, error) {
	list := m.Adjuncts(e, "")
	for _, match := range []func(a *Adjunct) bool{
		func(a *Adjunct) bool { return a.ID == ref },
		func(a *Adjunct) bool { return a.Name() == ref },
		func(a *Adjunct) bool { return camp.ShortType(a.Type) == ref || a.Type == ref },
	} {
		for _, a := range list {
			if match(a) {
				return a, nil
			}
		}
	}
	return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("Policy '%s' not found on entity '%s'", ref, e.Node.Name))
}

// AddAdjunct attaches a new policy or enricher of type typ to e, running.
func (m *Manager) AddAdjunct(e *Entity, typ string, cfg map[string]any) (*Adjunct, error) {
	for k, v := range cfg {
		pv, err := camp.ParseValue(v)
		if err != nil {
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("config %s: %v", k, err))
		}
		cfg[k] = pv
	}
	a, err := m.newAdjunct(e, "policy", typ, cfg)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	e.adjuncts = append(e.adjuncts, a)
	m.mu.Unlock()
	return a, m.save(e.App)
}

// SetAdjunctState starts (RUNNING), stops (STOPPED) or destroys
// (DESTROYED: detached) an adjunct.
func (m *Manager) SetAdjunctState(a *Adjunct, state string) error {
	a.mu.Lock()
	a.state = state
	a.mu.Unlock()
	if state != AdjunctRunning {
		a.impl.stop()
	}
	if state == AdjunctDestroyed {
		m.mu.Lock()
		e := a.Entity
		for i, x := range e.adjuncts {
			if x == a {
				e.adjuncts = append(e.adjuncts[:i:i], e.adjuncts[i+1:]...)
				break
			}
		}
		m.mu.Unlock()
	}
	return m.save(a.Entity.App)
}

// dispatch tells every running adjunct of src's application what src
// published.
func (m *Manager) dispatch(src *Entity, kv map[string]any) {
	if src.App == nil {
		return
	}
	if p := src.Parent; p != nil && p.Node.Kind == camp.KindCluster {
		if _, ok := kv[SensorUp]; ok {
			m.quorum(p)
		} else if _, ok := kv[SensorState]; ok {
			m.quorum(p)
		}
	}
	if m.quiet.Load() {
		return // another manager leads: it acts
	}
	m.webChanged(src, kv)
	var list []*Adjunct
	m.mu.Lock()
	for _, e := range src.App.all() {
		list = append(list, e.adjuncts...)
	}
	m.mu.Unlock()
	for _, a := range list {
		if a.running() {
			a.impl.sensor(src, kv)
		}
	}
}

// adjunctRecord is what the store keeps of an adjunct.
type adjunctRecord struct {
	ID, Type, Kind, State string
	Config                map[string]any `json:",omitempty"`
}

func (a *Adjunct) record() adjunctRecord {
	cfg := map[string]any{}
	for k, v := range a.Config {
		cfg[k] = plain(v) // DSL as its $brooklyn: string, read back by camp.ParseValue
	}
	return adjunctRecord{ID: a.ID, Type: a.Type, Kind: a.Kind, State: a.State(), Config: cfg}
}

// restoreAdjuncts rebuilds e's adjuncts from the store.
func (m *Manager) restoreAdjuncts(e *Entity, recs []adjunctRecord) {
	for _, r := range recs {
		cfg := map[string]any{}
		for k, v := range r.Config {
			pv, err := camp.ParseValue(v)
			if err != nil {
				pv = v
			}
			cfg[k] = pv
		}
		a, err := m.newAdjunct(e, r.Kind, r.Type, cfg)
		if err != nil {
			m.log.Warn("blueprint: stored adjunct", "entity", e.ID, "err", err)
			continue
		}
		a.ID, a.state = r.ID, r.State
		e.adjuncts = append(e.adjuncts, a)
	}
}

// Config helpers: the first of names set in a's config, converted.

func (a *Adjunct) raw(names ...string) (any, bool) {
	for _, n := range names {
		if v, ok := a.Config[n]; ok && v != nil {
			return v, true
		}
	}
	return nil, false
}

func (a *Adjunct) duration(def time.Duration, names ...string) (time.Duration, error) {
	v, ok := a.raw(names...)
	if !ok {
		return def, nil
	}
	if n, ok := v.(int); ok {
		return time.Duration(n) * time.Millisecond, nil
	}
	d, err := camp.ParseDuration(str(v))
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a duration such as 30s", names[0], str(v))
	}
	return d, nil
}

func (a *Adjunct) number(def float64, names ...string) (float64, error) {
	v, ok := a.raw(names...)
	if !ok {
		return def, nil
	}
	f, err := strconv.ParseFloat(str(v), 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a number", names[0], str(v))
	}
	return f, nil
}

func (a *Adjunct) boolean(def bool, names ...string) (bool, error) {
	v, ok := a.raw(names...)
	if !ok {
		return def, nil
	}
	b, err := strconv.ParseBool(str(v))
	if err != nil {
		return false, fmt.Errorf("%s: %q is not true or false", names[0], str(v))
	}
	return b, nil
}

func (a *Adjunct) text(def string, names ...string) string {
	if v, ok := a.raw(names...); ok {
		return str(v)
	}
	return def
}

// emit publishes an event sensor on e (a map with the time and a
// description, so each event is a change).
func (m *Manager) emit(e *Entity, sensor, desc string) {
	m.setSensors(e, map[string]any{sensor: map[string]any{
		"entityId": e.ID, "description": desc, "time": m.clock.Now().UnixMilli(),
	}})
}

type configError string

func (e configError) Error() string { return string(e) }

func errMissing(key string) error { return configError(key + " is required") }
func errList(key string) error    { return configError(key + ": wrong shape (a list or a map)") }

const (
	errBounds         = configError("metricLowerBound is above metricUpperBound")
	errPool           = configError("pool bounds: increments at least 1, 0 <= minPoolSize <= maxPoolSize")
	errTransformation = configError("transformation: one of list, sum, average, min, max, count")
)
