package blueprint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/clocker/clocker/blueprint/camp"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/internal/store"
)

// Compose projects as applications. Every compose project on the fleet
// (its containers' com.docker.compose.project/.service labels, whichever
// client made them) is an application whose entities are derived from
// its containers rather than from a plan: the project, an entity per
// service (a cluster: resize, replaceMember, quorum, policies), a child
// per container. The watch finds them on each poll; the effectors,
// policies, persistence and REST are the blueprint manager's own.

// Entity types of a project application.
const (
	TypeComposeProject   = "io.clocker.compose.Project"
	TypeComposeService   = "io.clocker.compose.Service"
	TypeComposeContainer = "io.clocker.compose.Container"
)

// Sensors of a compose service.
const (
	SensorReplicasWanted  = "service.replicas.wanted"
	SensorReplicasRunning = "service.replicas.running"
	// SensorPolicyProblems lists the io.clocker.policy.* labels that
	// could not be attached.
	SensorPolicyProblems = "service.policy.problems"
)

// Config keys of project entities.
const (
	configProject         = "compose.project"
	configService         = "compose.service"
	configContainerNumber = "compose.container-number"
)

func init() {
	sensorDocs[SensorReplicasWanted] = "Replicas the compose service should have (io.clocker.replicas.wanted, else the count when first found; resize sets it)"
	sensorDocs[SensorReplicasRunning] = "Replicas of the compose service running"
	sensorDocs[SensorPolicyProblems] = "io.clocker.policy.* labels of the service that could not be attached"
}

// isService tells whether e is a compose service.
func isService(e *Entity) bool { return e.Node.Type == TypeComposeService }

// covers tells whether a policy on e acts on what src publishes: its own
// entity, and on a compose service each of its containers.
func covers(e, src *Entity) bool {
	return src == e || (isService(e) && src.Parent == e)
}

// serviceContainers are one project's replicas by service.
type serviceContainers map[string][]container.Summary

// number is a container's com.docker.compose.container-number (0 when
// unset or not a number).
func number(l map[string]string) int {
	n, _ := strconv.Atoi(l[labels.ComposeContainerNumber])
	return n
}

// discoverProjects finds the compose projects on the fleet (one list
// through the front door), records their containers' states in running,
// and brings the project applications in step: a new project becomes an
// application, a project's new and vanished containers and services
// become and stop being entities, a project with no container left is
// forgotten. Applications with a task under way are left for the next
// round.
func (m *Manager) discoverProjects(ctx context.Context, running map[string]bool) error {
	f := make(client.Filters).Add("label", labels.ComposeProject)
	list, err := m.eng.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return err
	}
	owners, err := m.composeOwners(ctx)
	if err != nil {
		return err
	}
	// Projects are a tenant's: alice's and bob's "web" are two.
	found := map[projectKey]serviceContainers{}
	for _, c := range list.Items {
		p, s := c.Labels[labels.ComposeProject], c.Labels[labels.ComposeService]
		// compose run's one-offs are no replicas; a blueprint's containers
		// are its application's.
		if p == "" || s == "" || strings.EqualFold(c.Labels[labels.ComposeOneoff], "true") || c.Labels[labels.BlueprintApplication] != "" {
			continue
		}
		running[c.ID] = c.State == container.StateRunning
		k := projectKey{owner: owners[c.ID], name: p}
		if found[k] == nil {
			found[k] = serviceContainers{}
		}
		found[k][s] = append(found[k][s], c)
	}
	m.projects.Lock()
	defer m.projects.Unlock()
	known := map[projectKey]*App{}
	for _, a := range m.Apps() {
		if a.Project != "" {
			known[projectKey{owner: a.Owner, name: a.Project}] = a
		}
	}
	keys := make([]projectKey, 0, len(found))
	for k := range found {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].owner < keys[j].owner || keys[i].owner == keys[j].owner && keys[i].name < keys[j].name
	})
	for _, k := range keys {
		name := k.name
		a := known[k]
		if a == nil {
			a = m.newProject(name, m.projectID(name))
			a.Created, a.Owner = time.Now(), k.owner
			m.reconcileProject(ctx, a, found[k])
			m.mu.Lock()
			m.register(a)
			m.mu.Unlock()
			m.log.Info("blueprint: compose project found", "project", name, "id", a.ID, "owner", a.Owner)
			continue
		}
		if a.Deleting || !a.run.TryLock() {
			continue
		}
		m.reconcileProject(ctx, a, found[k])
		a.run.Unlock()
	}
	for k, a := range known {
		name := k.name
		if _, ok := found[k]; ok || a.Deleting || !a.run.TryLock() {
			continue
		}
		m.log.Info("blueprint: compose project gone", "project", name, "id", a.ID)
		err := m.forgetProject(a)
		a.run.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// projectKey tells projects apart: a project name is its owner's.
type projectKey struct{ owner, name string }

// composeOwners are the owners of the tenants' compose containers by ID
// (none without tenants). The owner label is shown only to a list
// filtered on it.
func (m *Manager) composeOwners(ctx context.Context) (map[string]string, error) {
	if m.engAs == nil {
		return nil, nil
	}
	f := make(client.Filters).Add("label", labels.ComposeProject).Add("label", labels.Owner)
	list, err := m.eng.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(list.Items))
	for _, c := range list.Items {
		out[c.ID] = c.Labels[labels.Owner]
	}
	return out, nil
}

// projectID is the id of a project's application: its name (what a
// server-side deploy answered as the entity of its start task), unless
// an application or entity has it.
func (m *Manager) projectID(name string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.apps[name] != nil || m.entities[name] != nil {
		return NewID()
	}
	return name
}

// newProject is an empty project application.
func (m *Manager) newProject(name, id string) *App {
	n := &camp.Node{EntityID: id, Name: name, Type: TypeComposeProject, Kind: camp.KindApplication,
		Locations: []string{LocationID}, Config: map[string]any{configProject: name}}
	a := &App{ID: id, Name: name, Project: name, Locations: n.Locations, byNode: map[*camp.Node]*Entity{}}
	a.Root = &Entity{ID: id, App: a, Node: n, sensors: map[string]any{}}
	a.byNode[n] = a.Root
	return a
}

// adopt adds an entity over node n under parent.
func (m *Manager) adopt(parent *Entity, n *camp.Node) *Entity {
	n.Parent = parent.Node
	e := &Entity{ID: n.EntityID, App: parent.App, Parent: parent, Node: n, sensors: map[string]any{}}
	a := parent.App
	a.tree.Lock()
	parent.kids = append(parent.kids, e)
	a.byNode[n] = e
	a.tree.Unlock()
	m.mu.Lock()
	m.entities[e.ID] = e
	m.mu.Unlock()
	return e
}

func serviceNode(project, service, id string) *camp.Node {
	return &camp.Node{EntityID: id, PlanID: service, Name: service, Type: TypeComposeService, Kind: camp.KindCluster,
		Config: map[string]any{configProject: project, configService: service}}
}

func containerNode(name, image string, num int, id string) *camp.Node {
	return &camp.Node{EntityID: id, Name: name, Type: TypeComposeContainer, Kind: camp.KindContainer, Image: image,
		Config: map[string]any{"image": image, configContainerNumber: num}}
}

// addContainer makes the entity of a container of service svc, with a
// ServiceFailureDetector so the service's policies hear of its failures.
func (m *Manager) addContainer(svc *Entity, id, name, image string, num int) *Entity {
	e := m.adopt(svc, containerNode(name, image, num, NewID()))
	m.mu.Lock()
	e.containerID = id
	m.mu.Unlock()
	// Not only after being up: after a restart of Clocker the detector has
	// not seen it up, and a stopped container found is stopped, not on fire.
	// The delay leaves time for the stop event of a container stopped on
	// purpose (compose stop, down) to say so (watchStops).
	d, err := m.newAdjunct(e, "enricher", "org.apache.brooklyn.policy.ha.ServiceFailureDetector",
		map[string]any{"onlyReportIfPreviouslyUp": false, "entityFailed.stabilizationDelay": failedDelay.String()})
	if err == nil {
		m.mu.Lock()
		e.adjuncts = append(e.adjuncts, d)
		m.mu.Unlock()
	}
	return e
}

// failedDelay is how long a compose container is on fire before it is
// reported failed to the policies.
const failedDelay = 3 * time.Second

// watchStops hears the fleet's stop events of compose containers until
// Close: a container stopped on purpose (compose stop or down, docker
// stop) is stopped, not failed, so no policy brings it back. Kills and
// crashes have no stop event. A stream follows the hosts that were up
// when it opened: a host (re)connecting opens a new one.
func (m *Manager) watchStops() {
	defer m.wg.Done()
	for m.ctx.Err() == nil {
		// No label filter: it would leave out the fleet's engine events.
		f := make(client.Filters).Add("type", string(events.ContainerEventType), "engine").Add("event", string(events.ActionStop), "engine_connect")
		ctx, cancel := context.WithCancel(m.ctx)
		res := m.eng.Events(ctx, client.EventsListOptions{Filters: f})
	read:
		for {
			select {
			case <-m.ctx.Done():
				cancel()
				return
			case msg, ok := <-res.Messages:
				if !ok || msg.Type == "engine" {
					break read
				}
				if msg.Actor.Attributes[labels.ComposeProject] != "" {
					m.stoppedOnPurpose(ctx, msg.Actor.ID)
				}
			case err := <-res.Err:
				m.log.Debug("blueprint: stop events", "err", err)
				break read
			}
		}
		cancel()
		select {
		case <-m.ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// stopWindow is how far back a stop event explains a container found
// dead.
const stopWindow = 15 * time.Second

// checkStopped marks a replica on fire stopped when its container has a
// stop event in the last stopWindow: the live stream (watchStops) follows
// only the hosts up when it opened, the engines' history every one.
func (m *Manager) checkStopped(e *Entity) {
	m.mu.Lock()
	id := e.containerID
	m.mu.Unlock()
	now := time.Now()
	ctx, cancel := context.WithTimeout(m.ctx, 5*time.Second)
	defer cancel()
	f := make(client.Filters).Add("type", string(events.ContainerEventType)).Add("event", string(events.ActionStop)).Add("container", id)
	res := m.eng.Events(ctx, client.EventsListOptions{Filters: f,
		Since: strconv.FormatInt(now.Add(-stopWindow).Unix(), 10), Until: strconv.FormatInt(now.Unix()+1, 10)})
	for {
		select {
		case msg, ok := <-res.Messages:
			if !ok {
				return
			}
			if msg.Actor.ID == id {
				m.stoppedOnPurpose(ctx, id)
				return
			}
		case <-res.Err:
			return
		case <-ctx.Done():
			return
		}
	}
}

// stoppedOnPurpose marks the entity of container id stopped when it was
// running or on fire and its container does not run.
func (m *Manager) stoppedOnPurpose(ctx context.Context, id string) {
	var e *Entity
	m.mu.Lock()
	for _, x := range m.entities {
		if x.containerID == id && x.App.Project != "" {
			e = x
		}
	}
	m.mu.Unlock()
	if e == nil {
		return
	}
	if s := m.State(e); s != StateRunning && s != StateOnFire {
		return // a task of ours stopped it: it says what it is
	}
	in, err := m.eng.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err == nil && in.Container.State != nil && in.Container.State.Running {
		return // running again
	}
	m.setSensors(e, map[string]any{SensorState: StateStopped, SensorUp: false, "docker.container.running": false, SensorServiceProblemsKey: nil})
}

// containerNumber is a container entity's replica number.
func containerNumber(e *Entity) int {
	n, _ := e.Node.Config[configContainerNumber].(int)
	return n
}

// sortReplicas orders a service's containers by number, the newest last
// (what a shrink removes first).
func sortReplicas(svc *Entity) {
	svc.App.tree.Lock()
	defer svc.App.tree.Unlock()
	sort.SliceStable(svc.kids, func(i, j int) bool { return containerNumber(svc.kids[i]) < containerNumber(svc.kids[j]) })
}

// setChanged publishes the values that differ from the entity's.
func (m *Manager) setChanged(e *Entity, kv map[string]any) {
	m.mu.Lock()
	for k, v := range kv {
		if cur, ok := e.sensors[k]; ok && fmt.Sprint(cur) == fmt.Sprint(v) {
			delete(kv, k)
		}
	}
	m.mu.Unlock()
	if len(kv) > 0 {
		m.setSensors(e, kv)
	}
}

// reconcileProject brings app's entities in step with its containers.
func (m *Manager) reconcileProject(ctx context.Context, a *App, services serviceContainers) {
	changed := false
	byName := map[string]*Entity{}
	for _, s := range a.Root.Children() {
		byName[s.Node.Name] = s
	}
	for _, name := range slices.Sorted(maps.Keys(services)) {
		ctrs := services[name]
		sort.SliceStable(ctrs, func(i, j int) bool { return number(ctrs[i].Labels) < number(ctrs[j].Labels) })
		svc, fresh := byName[name], false
		if svc == nil {
			svc, fresh = m.adopt(a.Root, serviceNode(a.Project, name, NewID())), true
		}
		have := map[string]*Entity{}
		for _, k := range svc.Children() {
			m.mu.Lock()
			have[k.containerID] = k
			m.mu.Unlock()
		}
		seen := map[string]bool{}
		moved := false
		for _, c := range ctrs {
			seen[c.ID] = true
			if k := have[c.ID]; k != nil {
				// Started again outside Clocker (compose start): up again.
				if c.State == container.StateRunning && m.State(k) == StateStopped {
					_ = m.refresh(ctx, k)
				}
				continue
			}
			name := ownName(c.Names)
			k := m.addContainer(svc, c.ID, name, c.Image, number(c.Labels))
			_ = m.refresh(ctx, k) // a stopped one is published stopped
			moved = true
		}
		for id, k := range have {
			if !seen[id] {
				m.detach(k)
				moved = true
			}
		}
		sortReplicas(svc)
		wanted := map[string]any{}
		if fresh {
			n := len(ctrs)
			if v, err := strconv.Atoi(ctrs[0].Labels[labels.ReplicasWanted]); err == nil && v > 0 {
				n = v
			}
			wanted[SensorReplicasWanted] = n
			m.attachLabelPolicies(svc, ctrs[0].Labels)
		} else if moved {
			// compose up --scale, rm: the project's own count changed.
			wanted[SensorReplicasWanted] = len(ctrs)
		}
		m.setChanged(svc, wanted)
		changed = changed || fresh || moved
	}
	for name, svc := range byName {
		if _, ok := services[name]; !ok {
			for _, k := range svc.Children() {
				m.detach(k)
			}
			m.detach(svc)
			changed = true
		}
	}
	if changed {
		m.save(a)
	}
}

// publishProjects publishes every project application's service and
// project states, once the round's container states are in.
func (m *Manager) publishProjects() {
	for _, a := range m.Apps() {
		if a.Project == "" || !a.run.TryLock() {
			continue
		}
		for _, svc := range a.Root.Children() {
			for _, k := range svc.Children() {
				if m.State(k) == StateOnFire {
					m.checkStopped(k)
				}
			}
			m.publishService(svc)
		}
		m.publishProject(a)
		a.run.Unlock()
	}
}

// ownName is a container's own name among a list's names ("/name"; the
// others are its links' "/other/alias").
func ownName(names []string) string {
	for _, n := range names {
		if strings.Count(n, "/") == 1 {
			return n[1:]
		}
	}
	return ""
}

// publishService publishes a service's members and running count and,
// unless a task of it is under way, its state from its containers:
// running while one is up (stopped when none runs and none failed).
func (m *Manager) publishService(svc *Entity) {
	kids := svc.Children()
	runningN, stopped := 0, 0
	for _, k := range kids {
		if v, _ := m.Sensor(k, "docker.container.running"); v == true {
			runningN++
		}
		if m.State(k) == StateStopped {
			stopped++
		}
	}
	m.setChanged(svc, map[string]any{SensorReplicasRunning: runningN})
	ids := make([]any, len(kids))
	for i, k := range kids {
		ids[i] = k.ID
	}
	m.setChanged(svc, map[string]any{SensorGroupMembers: ids, SensorGroupMembersCount: len(ids)})
	switch state := m.State(svc); {
	case runningN == 0 && stopped == len(kids):
		m.setChanged(svc, map[string]any{SensorState: StateStopped, SensorUp: false})
	case state == "" || state == StateStopped:
		m.setSensors(svc, map[string]any{SensorState: StateRunning, SensorUp: runningN > 0})
		m.quorum(svc)
	default:
		m.quorum(svc)
	}
}

// publishProject sets the project's state from its services': stopped
// when all are, on fire when one is, else running (up when all are).
func (m *Manager) publishProject(a *App) {
	svcs := a.Root.Children()
	stopped, fire, up := 0, 0, 0
	for _, s := range svcs {
		switch m.State(s) {
		case StateStopped:
			stopped++
		case StateOnFire:
			fire++
		}
		if v, _ := m.Sensor(s, SensorUp); v == true {
			up++
		}
	}
	switch {
	case len(svcs) > 0 && stopped == len(svcs):
		m.setChanged(a.Root, map[string]any{SensorState: StateStopped, SensorUp: false, SensorServiceProblemsKey: nil})
	case fire > 0:
		m.setChanged(a.Root, map[string]any{SensorState: StateOnFire, SensorUp: false, SensorServiceProblemsKey: fmt.Sprintf("%d of %d services on fire", fire, len(svcs))})
	default:
		kv := map[string]any{SensorState: StateRunning, SensorUp: up == len(svcs)}
		if _, ok := m.Sensor(a.Root, SensorServiceProblemsKey); ok {
			kv[SensorServiceProblemsKey] = nil
		}
		m.setChanged(a.Root, kv)
	}
}

// startProjectContainer starts a compose container entity's container
// (it exists: compose or a resize made it).
func (m *Manager) startProjectContainer(ctx context.Context, e *Entity) error {
	m.mu.Lock()
	id := e.containerID
	m.mu.Unlock()
	if _, err := m.engOf(e.App).ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil && !isNotModified(err) {
		return fmt.Errorf("start %s: %w", e.Node.Name, err)
	}
	return m.refresh(ctx, e)
}

// projectAddress is a compose container's address: on the project's
// default network, else on the first of its networks by name.
func projectAddress(e *Entity, nets map[string]*network.EndpointSettings) string {
	if e.App.Project == "" {
		return ""
	}
	names := slices.Sorted(maps.Keys(nets))
	def := e.App.Project + "_default"
	sort.SliceStable(names, func(i, j int) bool { return names[i] == def && names[j] != def })
	for _, n := range names {
		if ep := nets[n]; ep != nil && ep.IPAddress.IsValid() {
			return ep.IPAddress.String()
		}
	}
	return ""
}

// Policy labels: io.clocker.policy.KIND[=true|false] and
// io.clocker.policy.KIND.KEY=VALUE.
var policyKinds = map[string]string{
	"restarter":  "org.apache.brooklyn.policy.ha.ServiceRestarter",
	"replacer":   "org.apache.brooklyn.policy.ha.ServiceReplacer",
	"autoscaler": "org.apache.brooklyn.policy.autoscaling.AutoScalerPolicy",
}

// metricAliases are the short metric names the autoscaler label takes.
var metricAliases = map[string]string{"cpu": SensorCPUPercent, "memory": SensorMemoryPercent}

// labelPolicies reads the policy labels: each kind asked for with its
// config (in kind order), and what is wrong with the others.
func labelPolicies(l map[string]string) (kinds []string, cfgs map[string]map[string]any, problems []string) {
	on := map[string]bool{}
	cfgs = map[string]map[string]any{}
	for _, k := range slices.Sorted(maps.Keys(l)) {
		rest, ok := strings.CutPrefix(k, labels.PolicyPrefix)
		if !ok {
			continue
		}
		kind, key, hasKey := strings.Cut(rest, ".")
		if _, known := policyKinds[kind]; !known {
			problems = append(problems, fmt.Sprintf("%s: unknown policy %q (known: autoscaler, replacer, restarter)", k, kind))
			continue
		}
		if cfgs[kind] == nil {
			cfgs[kind] = map[string]any{}
		}
		if !hasKey {
			b, err := strconv.ParseBool(l[k])
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %q is not true or false", k, l[k]))
				on[kind] = false
				continue
			}
			if _, set := on[kind]; !set || !b {
				on[kind] = b
			}
			continue
		}
		v := l[k]
		if kind == "autoscaler" && key == "metric" && metricAliases[v] != "" {
			v = metricAliases[v]
		}
		cfgs[kind][key] = v
		if _, set := on[kind]; !set {
			on[kind] = true
		}
	}
	for _, kind := range slices.Sorted(maps.Keys(on)) {
		if on[kind] {
			kinds = append(kinds, kind)
		}
	}
	// A replacer without a restarter replaces a container as soon as it
	// fails (there is no failed restart to wait for).
	if on["replacer"] && !on["restarter"] {
		if _, set := cfgs["replacer"]["failureSensorToMonitor"]; !set {
			cfgs["replacer"]["failureSensorToMonitor"] = SensorEntityFailed
		}
	}
	return kinds, cfgs, problems
}

// attachLabelPolicies attaches the policies a service's labels ask for;
// those that cannot be are listed in service.policy.problems.
func (m *Manager) attachLabelPolicies(svc *Entity, l map[string]string) {
	kinds, cfgs, problems := labelPolicies(l)
	for _, kind := range kinds {
		a, err := m.newAdjunct(svc, "policy", policyKinds[kind], cfgs[kind])
		if err != nil {
			problems = append(problems, labels.PolicyPrefix+kind+": "+err.Error())
			continue
		}
		m.mu.Lock()
		svc.adjuncts = append(svc.adjuncts, a)
		m.mu.Unlock()
	}
	if len(problems) > 0 {
		m.log.Warn("blueprint: policy labels", "service", svc.Node.Name, "problems", problems)
		list := make([]any, len(problems))
		for i, p := range problems {
			list[i] = p
		}
		m.setSensors(svc, map[string]any{SensorPolicyProblems: list})
	}
}

// projectRecord is what the store keeps of a project application beside
// its entities' records: the entity tree.
type projectRecord struct {
	Name        string
	DownVolumes bool `json:",omitempty"`
	Services    []serviceRecord
}

type serviceRecord struct {
	ID, Name   string
	Containers []replicaRecord
}

type replicaRecord struct {
	ID, Name, Image string
	Number          int
}

func (m *Manager) saveProject(a *App) error {
	m.mu.Lock()
	rec := appRecord{ID: a.ID, Created: a.Created, Deleting: a.Deleting, Owner: a.Owner, Entities: map[string]entityRecord{},
		Project: &projectRecord{Name: a.Project, DownVolumes: a.downVolumes}}
	for _, s := range a.Root.Children() {
		sr := serviceRecord{ID: s.ID, Name: s.Node.Name}
		for _, k := range s.Children() {
			sr.Containers = append(sr.Containers, replicaRecord{ID: k.ID, Name: k.Node.Name, Image: k.Node.Image, Number: containerNumber(k)})
		}
		rec.Project.Services = append(rec.Project.Services, sr)
	}
	for _, e := range a.all() {
		r := entityRecord{ContainerID: e.containerID, Sensors: e.sensors}
		for _, x := range e.adjuncts {
			r.Adjuncts = append(r.Adjuncts, x.record())
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

// projectFromRecord rebuilds a stored project application with its
// entities' ids, sensors and policies.
func (m *Manager) projectFromRecord(r appRecord) *App {
	p := r.Project
	a := m.newProject(p.Name, r.ID)
	a.downVolumes = p.DownVolumes
	restore := func(e *Entity) {
		er := r.Entities[e.ID]
		e.containerID = er.ContainerID
		for k, v := range er.Sensors {
			e.sensors[k] = v
		}
		m.restoreAdjuncts(e, er.Adjuncts)
	}
	restore(a.Root)
	for _, sr := range p.Services {
		svc := m.adopt(a.Root, serviceNode(p.Name, sr.Name, sr.ID))
		restore(svc)
		for _, cr := range sr.Containers {
			restore(m.adopt(svc, containerNode(cr.Name, cr.Image, cr.Number, cr.ID)))
		}
	}
	return a
}

// setDownVolumes records whether a delete of project application a
// removes its volumes too (DELETE …?volumes=true, compose down -v).
func (m *Manager) setDownVolumes(a *App, v string) error {
	b := false
	if v != "" {
		var err error
		if b, err = strconv.ParseBool(v); err != nil {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("volumes=%q: want true or false", v))
		}
	}
	m.mu.Lock()
	a.downVolumes = b
	m.mu.Unlock()
	return nil
}

// downProject does what `docker compose down` does: stops and removes
// the project's containers (one-offs too), removes its networks and,
// when asked, its volumes (anonymous and named); then the application is
// forgotten.
func (m *Manager) downProject(a *App) *Task {
	return m.submit(a.Root, "destroy", func(ctx context.Context) (any, error) {
		a.run.Lock()
		defer a.run.Unlock()
		for _, e := range a.all() {
			m.stopAdjuncts(e) // nothing is restarted or replaced while it goes
		}
		m.setState(a.Root, StateStopping, false)
		m.mu.Lock()
		volumes := a.downVolumes
		m.mu.Unlock()
		f := make(client.Filters).Add("label", labels.ComposeProject+"="+a.Project)
		list, err := m.engOf(a).ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil {
			return nil, err
		}
		var wg sync.WaitGroup
		errs := make([]error, len(list.Items))
		for i, c := range list.Items {
			wg.Go(func() {
				if _, err := m.engOf(a).ContainerStop(ctx, c.ID, client.ContainerStopOptions{}); err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsNotModified(err) {
					m.log.Debug("blueprint: down: stop", "container", c.ID, "err", err)
				}
				if _, err := m.engOf(a).ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: volumes}); err != nil && !cerrdefs.IsNotFound(err) {
					errs[i] = fmt.Errorf("container %s: %w", c.ID, err)
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			m.fail(a.Root, err)
			return nil, err
		}
		nets, err := m.engOf(a).NetworkList(ctx, client.NetworkListOptions{Filters: f})
		if err != nil {
			return nil, err
		}
		for _, n := range nets.Items {
			if _, err := m.engOf(a).NetworkRemove(ctx, n.Name, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("network %s: %w", n.Name, err))
			}
		}
		if volumes {
			vols, err := m.engOf(a).VolumeList(ctx, client.VolumeListOptions{Filters: f})
			if err != nil {
				return nil, err
			}
			for _, v := range vols.Items {
				if _, err := m.engOf(a).VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
					errs = append(errs, fmt.Errorf("volume %s: %w", v.Name, err))
				}
			}
		}
		if err := errors.Join(errs...); err != nil {
			m.fail(a.Root, err)
			return nil, err
		}
		m.setState(a.Root, "destroyed", false)
		m.projects.Lock()
		defer m.projects.Unlock()
		return nil, m.forgetProject(a)
	})
}

// forgetProject drops a project application: its policies, its record,
// its entities. The caller holds m.projects.
func (m *Manager) forgetProject(a *App) error {
	for _, e := range a.all() {
		m.stopAdjuncts(e)
	}
	if m.st != nil {
		if err := m.st.Delete(store.BucketApplications, a.ID); err != nil {
			return err
		}
	}
	m.mu.Lock()
	m.unregister(a)
	m.mu.Unlock()
	return nil
}
