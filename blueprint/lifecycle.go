package blueprint

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/clocker/clocker/blueprint/camp"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/internal/store"
)

// startApp starts the application: its network, its StaticSensors, then
// every entity at once, each blocking only on what it waits for (the
// plan refused cycles, so this ends).
func (m *Manager) startApp(app *App) *Task {
	ctx, cancel := context.WithCancel(m.ctx)
	app.cancel = cancel
	return m.submitCtx(ctx, app.Root, "start", func(ctx context.Context) (any, error) {
		app.run.Lock()
		defer app.run.Unlock()
		defer m.save(app)
		err := m.ensureNetwork(ctx, app)
		if err == nil {
			m.publishStatic(ctx, app)
			err = m.startEntity(ctx, app.Root)
		}
		if err != nil {
			m.fail(app.Root, err)
		}
		return nil, err
	})
}

// ensureNetwork makes the application's fleet network once.
func (m *Manager) ensureNetwork(ctx context.Context, app *App) error {
	if _, err := m.engOf(app).NetworkInspect(ctx, app.Network, client.NetworkInspectOptions{}); err == nil {
		return nil
	}
	_, err := m.engOf(app).NetworkCreate(ctx, app.Network, client.NetworkCreateOptions{
		Driver: "bridge",
		Labels: map[string]string{labels.BlueprintApplication: app.ID},
	})
	if err != nil && !cerrdefs.IsConflict(err) {
		return fmt.Errorf("network %s: %w", app.Network, err)
	}
	return nil
}

// publishStatic publishes every StaticSensor; one whose value waits
// resolves in the background.
func (m *Manager) publishStatic(ctx context.Context, app *App) {
	for _, e := range app.all() {
		for _, s := range e.Node.Initializers {
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				v, err := m.eval(ctx, e, s.Value)
				if err != nil {
					m.log.Warn("blueprint: static sensor", "entity", e.ID, "sensor", s.Name, "err", err)
					return
				}
				m.setSensors(e, map[string]any{s.Name: coerce(v, s.TargetType)})
			}()
		}
	}
}

// coerce converts a static value to its targetType.
func coerce(v any, targetType string) any {
	switch t := camp.NormType(targetType); t {
	case "integer", "long":
		var n int64
		if _, err := fmt.Sscan(str(v), &n); err == nil {
			return n
		}
	case "double":
		var f float64
		if _, err := fmt.Sscan(str(v), &f); err == nil {
			return f
		}
	case "boolean":
		return str(v) == "true"
	case "string":
		return str(v)
	}
	return v
}

func (m *Manager) fail(e *Entity, err error) {
	m.mu.Lock()
	e.lastErr = err.Error()
	m.mu.Unlock()
	m.setSensors(e, map[string]any{SensorState: StateOnFire, SensorUp: false, "service.problems": err.Error()})
}

// startEntity starts e: a container entity its container, then its
// children, all at once; a group only its children. It fails when any
// of them does.
func (m *Manager) startEntity(ctx context.Context, e *Entity) (err error) {
	ctx, end := m.subtask(ctx, e, "start")
	defer func() { end(err) }()
	m.setSensors(e, map[string]any{SensorState: StateStarting, "service.problems": nil})
	if e.Node.Kind == camp.KindCluster {
		if err := m.growToInitial(e); err != nil {
			m.fail(e, err)
			return err
		}
	}
	if e.Node.Kind == camp.KindNetwork {
		if err := m.startNetwork(ctx, e); err != nil {
			m.fail(e, err)
			return err
		}
	}
	if e.Node.Kind.RunsContainer() {
		if err := m.startContainer(ctx, e); err != nil {
			m.fail(e, err)
			m.save(e.App)
			return err
		}
		m.save(e.App)
	}
	var wg sync.WaitGroup
	kids := e.Children()
	errs := make([]error, len(kids))
	for i, c := range kids {
		wg.Go(func() { errs[i] = m.startEntity(ctx, c) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		m.fail(e, err)
		return err
	}
	m.setState(e, StateRunning, true)
	if e.Node.Kind == camp.KindCluster {
		m.publishGroup(e)
		m.quorum(e)
	}
	if e.Node.Kind == camp.KindWebCluster {
		m.webClusterStarted(e)
	}
	m.save(e.App)
	return nil
}

// stopEntity stops e's container and its children's.
func (m *Manager) stopEntity(ctx context.Context, e *Entity) error {
	m.setState(e, StateStopping, false)
	var wg sync.WaitGroup
	kids := e.Children()
	errs := make([]error, len(kids)+1)
	for i, c := range kids {
		wg.Go(func() { errs[i] = m.stopEntity(ctx, c) })
	}
	wg.Wait()
	m.mu.Lock()
	id := e.containerID
	m.mu.Unlock()
	if id != "" {
		if _, err := m.engOf(e.App).ContainerStop(ctx, id, client.ContainerStopOptions{}); err != nil && !cerrdefs.IsNotModified(err) {
			errs[len(kids)] = err
		}
		m.setSensors(e, map[string]any{"docker.container.running": false})
	}
	if err := errors.Join(errs...); err != nil {
		m.fail(e, err)
		return err
	}
	m.setState(e, StateStopped, false)
	m.save(e.App)
	return nil
}

// Effectors every entity has.
var effectors = []Effector{
	{Name: "start", Description: "Start the entity and its children (a container entity: its container, made when missing)"},
	{Name: "stop", Description: "Stop the entity and its children"},
	{Name: "restart", Description: "Stop, then start the entity and its children"},
}

// clusterEffectors are DynamicCluster's besides those.
var clusterEffectors = []Effector{
	{Name: "resize", Description: "Change the cluster's size to desiredSize members", ReturnType: "java.lang.Integer",
		Parameters: []EffectorParameter{{Name: "desiredSize", Type: "java.lang.Integer", Description: "The new size"}}},
	{Name: "resizeByDelta", Description: "Grow (or shrink, when negative) the cluster by delta members", ReturnType: "java.lang.Integer",
		Parameters: []EffectorParameter{{Name: "delta", Type: "java.lang.Integer", Description: "Members to add (negative: remove)"}}},
	{Name: "replaceMember", Description: "Replace a member by a new one", ReturnType: "java.lang.String",
		Parameters: []EffectorParameter{{Name: "memberId", Type: "java.lang.String", Description: "The member's entity id"}}},
}

// Effector is an operation on an entity.
type Effector struct {
	Name        string
	Description string
	// ReturnType is a Java type name ("void" when empty).
	ReturnType string
	Parameters []EffectorParameter
}

// EffectorParameter is one parameter of an effector.
type EffectorParameter struct {
	Name, Type, Description string
}

// Effectors lists e's effectors.
func (m *Manager) Effectors(e *Entity) []Effector {
	if e.Node.Kind == camp.KindCluster || e.Node.Kind == camp.KindWebCluster {
		return append(append([]Effector(nil), effectors...), clusterEffectors...)
	}
	if e.Node.Kind.RunsContainer() {
		return append(append([]Effector(nil), effectors...), containerEffectors...)
	}
	return effectors
}

// intParam reads an integer effector parameter (JSON number or text).
func intParam(params map[string]any, name string) (int, error) {
	v, ok := params[name]
	if !ok {
		return 0, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("parameter %s is required", name))
	}
	n, err := strconv.Atoi(str(v))
	if err != nil {
		return 0, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("parameter %s: %q is not an integer", name, str(v)))
	}
	return n, nil
}

// Invoke runs effector name on e as a task.
func (m *Manager) Invoke(e *Entity, name string, params map[string]any) (*Task, error) {
	var fn func(ctx context.Context) (any, error)
	if w := e.Node.Web; w != nil && isClusterEffector(name) {
		e = e.App.byNodeEntity(w.Cluster) // Brooklyn's resize of a web cluster is its cluster's
	}
	cluster := e.Node.Kind == camp.KindCluster
	switch {
	case cluster && name == "resize":
		n, err := intParam(params, "desiredSize")
		if err != nil {
			return nil, err
		}
		fn = func(ctx context.Context) (any, error) { return m.resize(ctx, e, n) }
	case cluster && name == "resizeByDelta":
		d, err := intParam(params, "delta")
		if err != nil {
			return nil, err
		}
		fn = func(ctx context.Context) (any, error) { return m.resize(ctx, e, max(len(e.Children())+d, 0)) }
	case cluster && name == "replaceMember":
		id := str(params["memberId"])
		if id == "" {
			return nil, errdefs.New(errdefs.ErrInvalid, "parameter memberId is required")
		}
		fn = func(ctx context.Context) (any, error) { return m.replaceMember(ctx, e, id) }
	}
	if fn != nil {
		return m.submit(e, name, func(ctx context.Context) (any, error) {
			e.App.run.Lock()
			defer e.App.run.Unlock()
			return fn(ctx)
		}), nil
	}
	switch name {
	case "start":
		fn = func(ctx context.Context) (any, error) { return nil, m.startEntity(ctx, e) }
	case "stop":
		fn = func(ctx context.Context) (any, error) { return nil, m.stopEntity(ctx, e) }
	case "restart":
		fn = func(ctx context.Context) (any, error) {
			if err := m.stopEntity(ctx, e); err != nil {
				return nil, err
			}
			return nil, m.startEntity(ctx, e)
		}
	default:
		if fn = m.containerEffector(e, name); fn == nil {
			return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("Effector '%s' not found on entity '%s'", name, e.Node.Name))
		}
	}
	return m.submit(e, name, func(ctx context.Context) (any, error) {
		e.App.run.Lock()
		defer e.App.run.Unlock()
		return fn(ctx)
	}), nil
}

// Delete stops and removes the application: its containers (with their
// anonymous volumes), the named volumes it made, its network, its
// record.
func (m *Manager) Delete(app *App) *Task {
	m.mu.Lock()
	app.Deleting = true
	m.mu.Unlock()
	if err := m.save(app); err != nil {
		m.log.Warn("blueprint: saving delete", "app", app.ID, "err", err)
	}
	return m.deleteApp(app)
}

func (m *Manager) deleteApp(app *App) *Task {
	if app.Project != "" {
		return m.downProject(app)
	}
	if app.cancel != nil {
		app.cancel() // a start still waiting gives up
	}
	return m.submit(app.Root, "destroy", func(ctx context.Context) (any, error) {
		app.run.Lock()
		defer app.run.Unlock()
		m.setState(app.Root, StateStopping, false)
		var errs []error
		// Every container labelled with the application, also one made
		// just before a crash and never recorded.
		f := make(client.Filters).Add("label", labels.BlueprintApplication+"="+app.ID)
		list, err := m.engOf(app).ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil {
			return nil, err
		}
		for _, c := range list.Items {
			if _, err := m.engOf(app).ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, err)
			}
		}
		for _, v := range appVolumes(app) {
			if _, err := m.engOf(app).VolumeRemove(ctx, v, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("volume %s: %w", v, err))
			}
		}
		errs = append(errs, m.removeNetworks(ctx, app)...)
		if _, err := m.engOf(app).NetworkRemove(ctx, app.Network, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("network %s: %w", app.Network, err))
		}
		if err := errors.Join(errs...); err != nil {
			m.fail(app.Root, err)
			return nil, err
		}
		m.setState(app.Root, "destroyed", false)
		if m.st != nil {
			if err := m.st.Delete(store.BucketApplications, app.ID); err != nil {
				return nil, err
			}
		}
		m.mu.Lock()
		m.unregister(app)
		m.mu.Unlock()
		return nil, nil
	})
}
