// Package blueprint deploys Apache Brooklyn CAMP blueprints on the fleet
// and serves Brooklyn's REST API for them. It is a client of the front
// door: every container, network and volume an application has is made
// through the in-process Docker client, so it is placed, named and
// networked as any `docker run`. Applications and their entities'
// sensors persist in the store and are resumed after a restart.
package blueprint

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/clocker/clocker/blueprint/camp"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/store"
)

// Engine is the part of the moby client blueprints use: in Clocker the
// in-process client of the front door, in tests a fake.
type Engine interface {
	ContainerCreate(ctx context.Context, opts client.ContainerCreateOptions) (client.ContainerCreateResult, error)
	ContainerStart(ctx context.Context, id string, opts client.ContainerStartOptions) (client.ContainerStartResult, error)
	ContainerStop(ctx context.Context, id string, opts client.ContainerStopOptions) (client.ContainerStopResult, error)
	ContainerRestart(ctx context.Context, id string, opts client.ContainerRestartOptions) (client.ContainerRestartResult, error)
	ContainerRemove(ctx context.Context, id string, opts client.ContainerRemoveOptions) (client.ContainerRemoveResult, error)
	ContainerInspect(ctx context.Context, id string, opts client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	ContainerList(ctx context.Context, opts client.ContainerListOptions) (client.ContainerListResult, error)
	// ContainerLogs reads the streams of activities (activities.go).
	ContainerLogs(ctx context.Context, id string, opts client.ContainerLogsOptions) (client.ContainerLogsResult, error)
	NetworkCreate(ctx context.Context, name string, opts client.NetworkCreateOptions) (client.NetworkCreateResult, error)
	NetworkInspect(ctx context.Context, id string, opts client.NetworkInspectOptions) (client.NetworkInspectResult, error)
	NetworkRemove(ctx context.Context, id string, opts client.NetworkRemoveOptions) (client.NetworkRemoveResult, error)
	NetworkList(ctx context.Context, opts client.NetworkListOptions) (client.NetworkListResult, error)
	VolumeList(ctx context.Context, opts client.VolumeListOptions) (client.VolumeListResult, error)
	VolumeRemove(ctx context.Context, id string, opts client.VolumeRemoveOptions) (client.VolumeRemoveResult, error)
	ImageInspect(ctx context.Context, image string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error)
	Info(ctx context.Context, opts client.InfoOptions) (client.SystemInfoResult, error)
	ContainerStats(ctx context.Context, id string, opts client.ContainerStatsOptions) (client.ContainerStatsResult, error)
	// Exec runs software processes' checks and reconfigures load
	// balancers; NetworkConnect joins containers to VirtualNetworks.
	ExecCreate(ctx context.Context, id string, opts client.ExecCreateOptions) (client.ExecCreateResult, error)
	ExecStart(ctx context.Context, execID string, opts client.ExecStartOptions) (client.ExecStartResult, error)
	ExecInspect(ctx context.Context, execID string, opts client.ExecInspectOptions) (client.ExecInspectResult, error)
	NetworkConnect(ctx context.Context, network string, opts client.NetworkConnectOptions) (client.NetworkConnectResult, error)
	Events(ctx context.Context, opts client.EventsListOptions) client.EventsResult
	// The container entity's pause and resume effectors (container_ops.go).
	ContainerPause(ctx context.Context, id string, opts client.ContainerPauseOptions) (client.ContainerPauseResult, error)
	ContainerUnpause(ctx context.Context, id string, opts client.ContainerUnpauseOptions) (client.ContainerUnpauseResult, error)
}

// Lifecycle values of the service.state sensor.
const (
	StateCreated  = "created"
	StateStarting = "starting"
	StateRunning  = "running"
	StateStopping = "stopping"
	StateStopped  = "stopped"
	StateOnFire   = "on-fire"
)

// Sensor names every entity publishes.
const (
	SensorState = "service.state"
	SensorUp    = "service.isUp"
)

// Options configure a Manager.
type Options struct {
	Engine Engine
	// Store keeps applications across restarts (nil: memory only).
	Store store.Store
	Log   *slog.Logger
	// Version is what /v1/server/version reports.
	Version string
	// WaitTimeout bounds each attributeWhenReady (an entity's
	// start.timeout / startTimeout overrides it); default 5m.
	WaitTimeout time.Duration
	// Clock is what policies time with (default the wall clock).
	Clock Clock
	// PollInterval is how often containers are checked after start
	// (default 2s; negative: never, tests call Poll).
	PollInterval time.Duration
	// External are the providers of $brooklyn:external (default: env).
	External map[string]ExternalProvider
	// Compose deploys the compose files posted to /v1/applications (nil:
	// they are refused as blueprints).
	Compose ComposeDeployer
	// Owner is the tenant a REST request acts for ("" for an admin, or
	// with tenants off): an application is its submitter's, and a tenant
	// reaches only its own (others' answer 404). Nil: no tenants.
	Owner func(ctx context.Context) string
	// EngineAs is the engine that acts for an application's owner, as if
	// the owner had sent each call (clocker serve: the in-process client
	// of that tenant); nil or owner "": Engine.
	EngineAs func(owner string) Engine
}

// ComposeDeployer deploys compose files (package compose/deploy): the
// deploy handler hands it the bodies it recognises, and runs what it
// prepared as a task, answering as for a blueprint.
type ComposeDeployer interface {
	// IsCompose tells a compose file (services: a map) from a blueprint.
	IsCompose(body []byte) bool
	// Prepare checks and places the file, making nothing; run makes the
	// project named project, acting for owner ("": the admins'). q is
	// the request's query.
	Prepare(ctx context.Context, owner string, body []byte, q url.Values) (project string, run func(context.Context) (any, error), err error)
}

// Manager holds the applications and runs their tasks.
type Manager struct {
	eng Engine
	st  store.Store
	// catalog holds the types blueprints may name (catalog.go).
	// catalog is the fleet's catalog; tenantCat the tenants' own
	// (catalog_tenants.go).
	catalog   *catalog
	tenantCat tenantCatalogs
	log       *slog.Logger
	version   string
	wait      time.Duration
	clock     Clock
	compose   ComposeDeployer
	ownerOf   func(ctx context.Context) string
	engAs     func(owner string) Engine

	mu       sync.Mutex
	apps     map[string]*App
	entities map[string]*Entity
	// stored is each application's record as this manager last wrote or
	// read it: Resume re-reads those another manager changed since.
	stored map[string][]byte
	// resuming serialises Resume with itself.
	resuming sync.Mutex
	// changed is closed (and replaced) whenever a sensor changes, waking
	// every attributeWhenReady.
	changed chan struct{}
	tasks   taskLog
	// external are $brooklyn:external's providers by name.
	external map[string]ExternalProvider
	// web are the controllers' upstream lists (webcluster.go).
	web webState
	// projects serialises finding compose projects with forgetting them,
	// so a list read before a project's removal never brings it back.
	projects sync.Mutex
	// ctx ends with Close: running tasks stop.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// quiet is set while this manager does not lead the fleet: its
	// policies and enrichers hear nothing and their timers are stopped,
	// so that applications are acted on by one manager at a time.
	quiet atomic.Bool
}

// App is a deployed application.
type App struct {
	ID        string
	Name      string
	Plan      string
	Locations []string
	Created   time.Time
	// Owner is the tenant that submitted the application ("": the
	// admins'); its containers, networks and volumes are that tenant's.
	Owner string
	// Network is the application's fleet network.
	Network string
	// Deleting is set once DELETE was asked (resumed after a restart).
	Deleting bool
	// Project is the compose project the application was found as: its
	// entities are derived from containers, not from a plan (project.go).
	// Empty for a blueprint.
	Project string
	// downVolumes: the delete also removes the project's volumes.
	downVolumes bool
	Root        *Entity
	plan        *camp.Plan
	byNode      map[*camp.Node]*Entity
	// run serialises the application's lifecycle tasks (start, delete).
	run sync.Mutex
	// tree guards the entities' kids (clusters grow and shrink).
	tree sync.RWMutex
	// cancel stops the running start when the application is deleted.
	cancel context.CancelFunc
	// expunged are the planned entities expunged (rest_entity.go); guarded
	// by Manager.mu.
	expunged []string
}

// Entity is one entity of an application.
type Entity struct {
	ID     string
	App    *App
	Parent *Entity
	Node   *camp.Node
	// kids are the children (a cluster's: its members); guarded by
	// App.tree.
	kids []*Entity
	// adjuncts are its policies and enrichers; guarded by Manager.mu.
	adjuncts []*Adjunct
	// Guarded by Manager.mu.
	sensors     map[string]any
	containerID string
	resolved    map[string]any
	lastErr     string
}

// New makes a manager; call Resume to bring back stored applications.
func New(o Options) *Manager {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = 5 * time.Minute
	}
	if o.Clock == nil {
		o.Clock = wallClock{}
	}
	if o.PollInterval == 0 {
		o.PollInterval = 2 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		eng: o.Engine, st: o.Store, log: o.Log, version: o.Version, wait: o.WaitTimeout, clock: o.Clock, compose: o.Compose,
		ownerOf: o.Owner, engAs: o.EngineAs,
		apps: map[string]*App{}, entities: map[string]*Entity{}, stored: map[string][]byte{}, changed: make(chan struct{}),
		tasks: newTaskLog(500), ctx: ctx, cancel: cancel, external: o.External,
	}
	if m.external == nil {
		m.external = map[string]ExternalProvider{"env": EnvProvider{}}
	}
	if o.PollInterval > 0 {
		m.wg.Add(1)
		go m.watch(o.PollInterval)
	}
	m.tasks.attach(o.Store, o.Log)
	m.catalog, m.tenantCat.byOwner = loadCatalog(o.Store, o.Log, m.checkItem)
	m.wg.Add(1)
	go m.watchStops()
	return m
}

// SetActing makes the applications' policies and enrichers act (true,
// the default) or stay quiet (false: the manager lost the fleet's
// leadership; pending timers stopped, no sensor reaches them until it
// leads again, when each entity's state is dispatched anew).
func (m *Manager) SetActing(on bool) {
	m.quiet.Store(!on)
	if on {
		// What happened while quiet is news to the policies: each entity's
		// state and up-ness, as they stand, as if just published.
		for _, a := range m.Apps() {
			for _, e := range a.all() {
				kv := map[string]any{}
				for _, k := range []string{SensorState, SensorUp} {
					if v, ok := m.Sensor(e, k); ok {
						kv[k] = v
					}
				}
				if len(kv) > 0 {
					m.dispatch(e, kv)
				}
			}
		}
		return
	}
	m.stopBehaviours()
}

// stopBehaviours stops the pending timers of every adjunct of every
// application.
func (m *Manager) stopBehaviours() {
	for _, a := range m.Apps() {
		for _, e := range a.all() {
			for _, x := range m.Adjuncts(e, "") {
				x.impl.stop()
			}
		}
	}
}

// Close stops running tasks and policies and waits for them.
func (m *Manager) Close() {
	m.cancel()
	m.stopBehaviours()
	m.wg.Wait()
}

// NewID is a Brooklyn-style id: 10 lower-case letters and digits.
func NewID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	if b[0] >= '0' && b[0] <= '9' {
		b[0] = 'a' + b[0] - '0' // ids start with a letter, as names may not be numbers
	}
	return string(b)
}

// owner is the tenant a request's context acts for ("": an admin, or
// tenants off).
func (m *Manager) owner(ctx context.Context) string {
	if m.ownerOf == nil {
		return ""
	}
	return m.ownerOf(ctx)
}

// engFor is the engine that acts for owner.
func (m *Manager) engFor(owner string) Engine {
	if owner == "" || m.engAs == nil {
		return m.eng
	}
	return m.engAs(owner)
}

// engOf is the engine that acts for application a: its owner's.
func (m *Manager) engOf(a *App) Engine { return m.engFor(a.Owner) }

// visible tells whether the request's context may see application a:
// admins see every one, a tenant its own.
func (m *Manager) visible(ctx context.Context, a *App) bool {
	o := m.owner(ctx)
	return o == "" || a.Owner == o
}

// deployPlan is Deploy and DeployAs (deploy.go).
func (m *Manager) deployPlan(ctx context.Context, id string, yaml []byte) (*App, *Task, error) {
	owner := m.owner(ctx)
	_, view := m.catalogFor(owner)
	yaml, err := view.expandPlan(yaml)
	if err != nil {
		return nil, nil, err
	}
	newID := NewID
	if id != "" {
		newID = func() string {
			if id == "" {
				return NewID()
			}
			given := id
			id = ""
			return given
		}
	}
	plan, err := camp.Parse(yaml, newID)
	if err != nil {
		return nil, nil, errdefs.New(errdefs.ErrInvalid, err.Error())
	}
	if err := m.checkNetworks(ctx, owner, plan); err != nil {
		return nil, nil, err
	}
	if err := m.checkExternal(plan); err != nil {
		return nil, nil, err
	}
	for _, n := range withMemberSpecs(plan) {
		if !n.Kind.RunsContainer() {
			continue
		}
		if _, err := m.engFor(owner).ImageInspect(ctx, n.Image); err != nil {
			if cerrdefs.IsNotFound(err) || strings.Contains(err.Error(), "No such image") {
				return nil, nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s: image %s is on no host of the fleet (load or pull it first)", n.Label(), n.Image))
			}
			return nil, nil, fmt.Errorf("%s: image %s: %w", n.Label(), n.Image, err)
		}
	}
	if err := m.checkAdjuncts(plan); err != nil {
		return nil, nil, err
	}
	app := m.newApp(plan, string(yaml), nil)
	app.Created, app.Owner = time.Now(), owner
	m.mu.Lock()
	if m.apps[app.ID] != nil {
		m.mu.Unlock()
		return nil, nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("Application '%s' already exists", app.ID))
	}
	m.register(app)
	for _, e := range app.all() {
		e.sensors[SensorState] = StateCreated
		e.sensors[SensorUp] = false
	}
	m.mu.Unlock()
	if err := m.save(app); err != nil {
		m.mu.Lock()
		m.unregister(app)
		m.mu.Unlock()
		return nil, nil, err
	}
	t := m.startApp(app)
	return app, t, nil
}

// newApp builds the application's entities over the plan; stored gives
// sensors and containers back on resume.
func (m *Manager) newApp(plan *camp.Plan, yaml string, rec *appRecord) *App {
	app := &App{ID: plan.Root.EntityID, Name: plan.Root.Name, Plan: yaml, plan: plan, byNode: map[*camp.Node]*Entity{}}
	app.Locations = plan.Root.Locations
	app.Network = "brooklyn-" + app.ID
	if rec != nil {
		app.expunged = rec.Expunged
	}
	var build func(n *camp.Node, parent *Entity) *Entity
	build = func(n *camp.Node, parent *Entity) *Entity {
		e := &Entity{ID: n.EntityID, App: app, Parent: parent, Node: n, sensors: map[string]any{}}
		r, stored := entityRecord{}, false
		if rec != nil {
			r, stored = rec.Entities[n.EntityID]
		}
		if stored {
			e.containerID, e.resolved, e.lastErr = r.ContainerID, r.Resolved, r.Error
			for k, v := range r.Sensors {
				e.sensors[k] = v
			}
			m.restoreAdjuncts(e, r.Adjuncts)
		} else {
			m.attachPlanned(e)
		}
		app.byNode[n] = e
		for _, c := range n.Children {
			if !slices.Contains(app.expunged, c.EntityID) {
				e.kids = append(e.kids, build(c, e))
			}
		}
		for _, id := range r.Members {
			mr := rec.Entities[id]
			k := m.newMember(e, id, &mr)
			m.restoreAdjuncts(k, mr.Adjuncts)
		}
		return e
	}
	app.Root = build(plan.Root, nil)
	return app
}

func (a *App) all() []*Entity {
	a.tree.RLock()
	defer a.tree.RUnlock()
	var out []*Entity
	var walk func(e *Entity)
	walk = func(e *Entity) {
		out = append(out, e)
		for _, c := range e.kids {
			walk(c)
		}
	}
	walk(a.Root)
	return out
}

// Children are e's children; a cluster's are its members.
func (e *Entity) Children() []*Entity {
	e.App.tree.RLock()
	defer e.App.tree.RUnlock()
	return append([]*Entity(nil), e.kids...)
}

// register and unregister need m.mu.
func (m *Manager) register(app *App) {
	m.apps[app.ID] = app
	for _, e := range app.all() {
		m.entities[e.ID] = e
	}
}

func (m *Manager) unregister(app *App) {
	delete(m.apps, app.ID)
	delete(m.stored, app.ID)
	for _, e := range app.all() {
		delete(m.entities, e.ID)
	}
}

// Apps lists the applications, oldest first.
func (m *Manager) Apps() []*App {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*App, 0, len(m.apps))
	for _, a := range m.apps {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// App finds an application by id, else by name (case-insensitive).
func (m *Manager) App(ref string) (*App, error) {
	return m.AppFor(context.Background(), ref)
}

// AppFor is App among the applications ctx's tenant may see (all for
// an admin): another tenant's is not found, as an unknown one.
func (m *Manager) AppFor(ctx context.Context, ref string) (*App, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a, ok := m.apps[ref]; ok && m.visible(ctx, a) {
		return a, nil
	}
	var named *App
	for _, a := range m.apps {
		if strings.EqualFold(a.Name, ref) && m.visible(ctx, a) && (named == nil || a.Created.Before(named.Created)) {
			named = a
		}
	}
	if named != nil {
		return named, nil
	}
	return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("Application '%s' not found", ref))
}

// AppsFor are the applications ctx's tenant may see, oldest first.
func (m *Manager) AppsFor(ctx context.Context) []*App {
	all := m.Apps()
	out := all[:0]
	for _, a := range all {
		if m.visible(ctx, a) {
			out = append(out, a)
		}
	}
	return out
}

// Entity finds an entity of app by id, else by display name, else by
// YAML id; the application itself is one.
func (m *Manager) Entity(app *App, ref string) (*Entity, error) {
	all := app.all()
	for _, match := range []func(e *Entity) bool{
		func(e *Entity) bool { return e.ID == ref },
		func(e *Entity) bool { return e.Node.Name == ref },
		func(e *Entity) bool { return e.Node.PlanID == ref && ref != "" },
		func(e *Entity) bool { return strings.EqualFold(e.Node.Name, ref) },
	} {
		for _, e := range all {
			if match(e) {
				return e, nil
			}
		}
	}
	return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("Entity '%s' not found in application '%s'", ref, app.Name))
}

// Sensor reads one sensor; ok false when unset.
func (m *Manager) Sensor(e *Entity, name string) (any, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := e.sensors[name]
	return v, ok
}

// Sensors copies the entity's sensors.
func (m *Manager) Sensors(e *Entity) map[string]any {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]any, len(e.sensors))
	for k, v := range e.sensors {
		out[k] = v
	}
	return out
}

// setSensors publishes values (nil deletes) and wakes the waiters.
func (m *Manager) setSensors(e *Entity, kv map[string]any) {
	m.mu.Lock()
	for k, v := range kv {
		if v == nil {
			delete(e.sensors, k)
		} else {
			e.sensors[k] = v
		}
	}
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
	m.dispatch(e, kv)
}

func (m *Manager) setState(e *Entity, state string, up bool) {
	m.setSensors(e, map[string]any{SensorState: state, SensorUp: up})
}

// State is the entity's service.state.
func (m *Manager) State(e *Entity) string {
	v, _ := m.Sensor(e, SensorState)
	s, _ := v.(string)
	return s
}

// Status is the application's status as Brooklyn names it.
func (m *Manager) Status(a *App) string {
	switch m.State(a.Root) {
	case StateCreated:
		return "ACCEPTED"
	case StateStarting:
		return "STARTING"
	case StateRunning:
		return "RUNNING"
	case StateStopping:
		return "STOPPING"
	case StateStopped:
		return "STOPPED"
	case StateOnFire:
		return "ERROR"
	}
	return "UNKNOWN"
}

// appRecord is what the store keeps of an application.
type appRecord struct {
	ID       string
	Plan     string
	Created  time.Time
	Deleting bool
	// Owner is the tenant whose application it is ("": the admins').
	Owner string `json:",omitempty"`
	// IDs are the entities' ids in the plan's depth-first order, so a
	// re-parse gives every entity its id back.
	IDs      []string
	Entities map[string]entityRecord
	// Project is set for a compose project's application.
	Project *projectRecord `json:",omitempty"`
	// Expunged are planned entities no longer built (with their subtrees).
	Expunged []string `json:",omitempty"`
}

type entityRecord struct {
	ContainerID string          `json:",omitempty"`
	Sensors     map[string]any  `json:",omitempty"`
	Resolved    map[string]any  `json:",omitempty"`
	Error       string          `json:",omitempty"`
	Adjuncts    []adjunctRecord `json:",omitempty"`
	// Members are a cluster's member ids (their records beside).
	Members []string `json:",omitempty"`
}

func (m *Manager) save(a *App) error {
	if m.st == nil {
		return nil
	}
	if a.Project != "" {
		return m.saveProject(a)
	}
	m.mu.Lock()
	rec := appRecord{ID: a.ID, Plan: a.Plan, Created: a.Created, Deleting: a.Deleting, Owner: a.Owner, Entities: map[string]entityRecord{}, Expunged: a.expunged}
	for _, n := range a.plan.Nodes {
		rec.IDs = append(rec.IDs, n.EntityID)
	}
	for _, e := range a.all() {
		r := entityRecord{ContainerID: e.containerID, Sensors: e.sensors, Resolved: e.resolved, Error: e.lastErr}
		for _, x := range e.adjuncts {
			r.Adjuncts = append(r.Adjuncts, x.record())
		}
		if e.Node.Kind == camp.KindCluster {
			for _, k := range e.Children() {
				r.Members = append(r.Members, k.ID)
			}
		}
		rec.Entities[e.ID] = r
	}
	data, err := json.Marshal(rec)
	m.mu.Unlock()
	if err != nil {
		return err
	}
	return m.put(a, data)
}

// put writes application a's record, and remembers it as the one stored.
func (m *Manager) put(a *App, data []byte) error {
	if err := m.st.Put(store.BucketApplications, a.ID, json.RawMessage(data)); err != nil {
		return err
	}
	m.mu.Lock()
	if m.apps[a.ID] == a {
		m.stored[a.ID] = data
	}
	m.mu.Unlock()
	return nil
}

// Resume brings the manager's applications in step with the store and
// carries on what they were doing. One it does not have is resumed: a
// start is run again (containers already made are adopted, never made
// twice), a delete is finished. One whose record another manager changed
// since this one last wrote or read it is read again, its policies
// restarted from the record; one no longer stored (another manager
// deleted it) is dropped, its containers left to that manager. An
// application with a task under way here is left as it is. The first
// call (a manager's first term as leader) finds none in memory; a later
// one (leading again) catches up with what the other leader did, the
// catalogs too.
func (m *Manager) Resume() error {
	if m.st == nil {
		return nil
	}
	m.resuming.Lock()
	defer m.resuming.Unlock()
	m.reloadCatalogs()
	type stored struct {
		rec appRecord
		raw []byte
	}
	var recs []stored
	err := m.st.ForEach(store.BucketApplications, func(key string, value []byte) error {
		var r appRecord
		if err := json.Unmarshal(value, &r); err != nil {
			m.log.Warn("blueprint: unreadable stored application", "id", key, "err", err)
			return nil
		}
		var raw bytes.Buffer
		if json.Compact(&raw, value) != nil {
			raw.Write(value)
		}
		recs = append(recs, stored{r, raw.Bytes()})
		return nil
	})
	if err != nil {
		return err
	}
	inStore := map[string]bool{}
	for _, s := range recs {
		inStore[s.rec.ID] = true
		m.mu.Lock()
		old, same := m.apps[s.rec.ID], bytes.Equal(m.stored[s.rec.ID], s.raw)
		m.mu.Unlock()
		if old != nil {
			if same {
				continue
			}
			if !m.drop(old) {
				continue
			}
			m.log.Info("blueprint: application changed by another manager: read again", "id", old.ID, "name", old.Name)
		}
		m.resumeRecord(s.rec, s.raw)
	}
	for _, a := range m.Apps() {
		m.mu.Lock()
		_, wasStored := m.stored[a.ID]
		m.mu.Unlock()
		// Never stored: deployed here a moment ago, its record not yet
		// written.
		if !inStore[a.ID] && wasStored && m.drop(a) {
			m.log.Info("blueprint: application deleted by another manager: dropped", "id", a.ID, "name", a.Name)
		}
	}
	return nil
}

// drop takes application a out of this manager (its policies stopped,
// nothing done to its containers), unless a task of it is under way
// here; it tells which.
func (m *Manager) drop(a *App) bool {
	if !a.run.TryLock() {
		m.log.Info("blueprint: application busy here: not read again", "id", a.ID)
		return false
	}
	defer a.run.Unlock()
	for _, e := range a.all() {
		m.stopAdjuncts(e)
	}
	m.mu.Lock()
	if m.apps[a.ID] == a {
		m.unregister(a)
	}
	m.mu.Unlock()
	return true
}

// resumeRecord brings back the application stored as r (raw).
func (m *Manager) resumeRecord(r appRecord, raw []byte) {
	var app *App
	if r.Project != nil {
		// A compose project's: the watch brings it in step.
		app = m.projectFromRecord(r)
	} else {
		ids := r.IDs
		plan, err := camp.Parse([]byte(r.Plan), func() string {
			if len(ids) == 0 {
				return NewID()
			}
			id := ids[0]
			ids = ids[1:]
			return id
		})
		if err != nil {
			m.log.Warn("blueprint: stored plan no longer parses", "id", r.ID, "err", err)
			return
		}
		app = m.newApp(plan, r.Plan, &r)
	}
	app.Created, app.Deleting, app.Owner = r.Created, r.Deleting, r.Owner
	restart := !app.Deleting && app.Project == "" && app.Root.sensors[SensorState] != StateStopped
	m.mu.Lock()
	if restart {
		// Starting from the moment it is listed, until its start (which
		// adopts the containers already made) has run: never shown
		// running from the record and then starting.
		app.Root.sensors[SensorState] = StateStarting
	}
	m.register(app)
	m.stored[app.ID] = raw
	m.mu.Unlock()
	m.log.Info("blueprint: resuming application", "id", app.ID, "name", app.Name, "deleting", app.Deleting)
	switch {
	case app.Deleting:
		m.deleteApp(app)
	case restart:
		m.startApp(app)
	}
}

// errOnFire is a wait's target that failed.
var errOnFire = errors.New("on fire")
