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
)

// Cluster config keys (DynamicCluster's names first).
var (
	keyInitialSize = []string{"initialSize", "cluster.initial.size"}
	keyMaxSize     = []string{"cluster.max.size", "maxSize"}
)

// clusterInt reads an integer config of cluster c.
func clusterInt(c *Entity, keys []string, def int) (int, error) {
	v, ok := lookup(c.Node.Config, keys)
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(str(v))
	if err != nil || n < 0 {
		return 0, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s: %s: %q is not a size", c.Node.Label(), keys[0], str(v)))
	}
	return n, nil
}

// newMember adds a member entity to cluster c (not yet started).
func (m *Manager) newMember(c *Entity, id string, rec *entityRecord) *Entity {
	n := c.Node.NewMember(id)
	e := &Entity{ID: id, App: c.App, Parent: c, Node: n, sensors: map[string]any{}}
	if rec != nil {
		e.containerID, e.resolved, e.lastErr = rec.ContainerID, rec.Resolved, rec.Error
		for k, v := range rec.Sensors {
			e.sensors[k] = v
		}
	}
	c.App.tree.Lock()
	c.kids = append(c.kids, e)
	c.App.byNode[n] = e
	c.App.tree.Unlock()
	return e
}

// resize grows or shrinks cluster c to size members: new members are
// started at once; the newest go first when shrinking. It answers the
// size reached.
func (m *Manager) resize(ctx context.Context, c *Entity, size int) (int, error) {
	if c.App.Project != "" {
		return m.resizeService(ctx, c, size)
	}
	if c.Node.MemberSpec == nil {
		return 0, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s has no memberSpec: nothing to resize", c.Node.Label()))
	}
	maxSize, err := clusterInt(c, keyMaxSize, -1)
	if err != nil {
		return 0, err
	}
	if size < 0 || (maxSize >= 0 && size > maxSize) {
		return 0, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("desiredSize %d: want 0 to %d", size, maxSize))
	}
	kids := c.Children()
	var errs []error
	if size > len(kids) {
		var fresh []*Entity
		m.mu.Lock()
		for range size - len(kids) {
			e := m.newMember(c, NewID(), nil)
			e.sensors[SensorState], e.sensors[SensorUp] = StateCreated, false
			m.attachPlanned(e)
			m.entities[e.ID] = e
			fresh = append(fresh, e)
		}
		m.mu.Unlock()
		m.publishGroup(c)
		m.save(c.App)
		var wg sync.WaitGroup
		errs = make([]error, len(fresh))
		for i, e := range fresh {
			wg.Go(func() { errs[i] = m.startEntity(ctx, e) })
		}
		wg.Wait()
	}
	for i := len(kids) - 1; i >= size; i-- {
		errs = append(errs, m.removeMember(ctx, kids[i]))
	}
	m.publishGroup(c)
	m.quorum(c)
	m.save(c.App)
	return len(c.Children()), errors.Join(errs...)
}

// removeMember removes member e: its container (with anonymous volumes),
// its policies, its place in the cluster.
func (m *Manager) removeMember(ctx context.Context, e *Entity) error {
	m.stopAdjuncts(e)
	m.mu.Lock()
	id := e.containerID
	m.mu.Unlock()
	if id != "" {
		if _, err := m.engOf(e.App).ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("remove member %s: %w", e.ID, err)
		}
	}
	m.detach(e)
	return nil
}

// stopAdjuncts detaches e's policies and enrichers and stops them.
func (m *Manager) stopAdjuncts(e *Entity) {
	m.mu.Lock()
	list := e.adjuncts
	e.adjuncts = nil
	m.mu.Unlock()
	for _, a := range list {
		a.impl.stop()
	}
}

// detach takes e (no longer running anything) out of its parent's
// children and the manager's index; its policies are stopped.
func (m *Manager) detach(e *Entity) {
	m.stopAdjuncts(e)
	c := e.Parent
	c.App.tree.Lock()
	for i, k := range c.kids {
		if k == e {
			c.kids = append(c.kids[:i:i], c.kids[i+1:]...)
			break
		}
	}
	delete(c.App.byNode, e.Node)
	c.App.tree.Unlock()
	m.mu.Lock()
	delete(m.entities, e.ID)
	m.mu.Unlock()
	m.setState(e, "destroyed", false)
}

// replaceMember starts a new member, then removes the old one.
func (m *Manager) replaceMember(ctx context.Context, c *Entity, memberID string) (string, error) {
	if c.App.Project != "" {
		return m.replaceServiceMember(ctx, c, memberID)
	}
	var old *Entity
	for _, k := range c.Children() {
		if k.ID == memberID {
			old = k
		}
	}
	if old == nil {
		return "", errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("'%s' is not a member of %s", memberID, c.Node.Label()))
	}
	m.mu.Lock()
	e := m.newMember(c, NewID(), nil)
	e.sensors[SensorState], e.sensors[SensorUp] = StateCreated, false
	m.attachPlanned(e)
	m.entities[e.ID] = e
	m.mu.Unlock()
	m.save(c.App)
	if err := m.startEntity(ctx, e); err != nil {
		return "", err
	}
	err := m.removeMember(ctx, old)
	m.publishGroup(c)
	m.quorum(c)
	m.save(c.App)
	return e.ID, err
}

// publishGroup publishes group.members (member ids) and its count.
func (m *Manager) publishGroup(c *Entity) {
	kids := c.Children()
	ids := make([]any, len(kids))
	for i, k := range kids {
		ids[i] = k.ID
	}
	m.setSensors(c, map[string]any{SensorGroupMembers: ids, SensorGroupMembersCount: len(ids)})
	m.mirrorGroup(c)
}

// quorum sets a running cluster's service.isUp from its members: up when
// at least one member is up, or it has none (Brooklyn's
// atLeastOneUnlessEmpty); a running cluster with no member up is on fire.
func (m *Manager) quorum(c *Entity) {
	if c.Node.Kind != camp.KindCluster {
		return
	}
	state := m.State(c)
	if state != StateRunning && state != StateOnFire {
		return
	}
	kids := c.Children()
	up := len(kids) == 0
	for _, k := range kids {
		if v, _ := m.Sensor(k, SensorUp); v == true {
			up = true
			break
		}
	}
	cur, _ := m.Sensor(c, SensorUp)
	if cur == up && (state == StateRunning) == up {
		return
	}
	if up {
		m.setSensors(c, map[string]any{SensorState: StateRunning, SensorUp: true, SensorServiceProblemsKey: nil})
	} else {
		m.setSensors(c, map[string]any{SensorState: StateOnFire, SensorUp: false, SensorServiceProblemsKey: "no member is up"})
	}
}

// growToInitial makes a cluster's first members on its first start.
func (m *Manager) growToInitial(c *Entity) error {
	n, err := clusterInt(c, keyInitialSize, 1)
	if err != nil {
		return err
	}
	if _, done := m.Sensor(c, SensorGroupMembersCount); done || c.Node.MemberSpec == nil {
		return nil
	}
	m.mu.Lock()
	for range n {
		e := m.newMember(c, NewID(), nil)
		e.sensors[SensorState], e.sensors[SensorUp] = StateCreated, false
		m.attachPlanned(e)
		m.entities[e.ID] = e
	}
	m.mu.Unlock()
	m.publishGroup(c)
	return m.save(c.App)
}
