package blueprint

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/clocker/clocker/blueprint/camp"
)

// A ControlledDynamicWebAppCluster is a controller and a cluster (its two
// children, see camp.WebCluster). The controller is Clocker's balancer:
// busybox nc handing each TCP connection to the next upstream, read from
// a file in its container. Whenever the cluster's members change, or one
// comes up or goes down, that file is rewritten through exec with the
// members that are up (no restart: its address and port stay). The web
// cluster publishes the controller's main.uri as main.uri and webapp.url,
// and the cluster's group.members; resize goes to the cluster.

// Sensors of a web cluster and its controller.
const (
	SensorWebappURL   = "webapp.url"
	SensorMainURI     = "main.uri"
	SensorPoolTargets = "proxy.serverpool.targets"
)

// kindSensors are the sensors an entity of a kind may publish.
var kindSensors = map[camp.Kind][]string{
	camp.KindWebCluster: {SensorMainURI, SensorWebappURL, SensorGroupMembers, SensorGroupMembersCount},
	camp.KindNetwork:    {SensorNetworkID, SensorNetworkName, SensorNetworkCIDR},
}

// webState serialises the controllers' reconfigurations: one at a time
// per web cluster, the newest list winning.
type webState struct {
	mu      sync.Mutex
	locks   map[string]*sync.Mutex
	written map[string]string
	syncs   inflight // background rewrites under way
}

// inflight counts background work that is not a task, so that a caller
// can wait until none is under way.
type inflight struct {
	mu    sync.Mutex
	n     int
	quiet chan struct{} // closed when n drops to 0
}

func (f *inflight) add() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		f.quiet = make(chan struct{})
	}
	f.n++
}

func (f *inflight) done() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n--; f.n == 0 {
		close(f.quiet)
	}
}

// wait returns once none is under way (at once when none is).
func (f *inflight) wait() {
	f.mu.Lock()
	n, q := f.n, f.quiet
	f.mu.Unlock()
	if n > 0 {
		<-q
	}
}

func (w *webState) lock(id string) *sync.Mutex {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.locks == nil {
		w.locks, w.written = map[string]*sync.Mutex{}, map[string]string{}
	}
	if w.locks[id] == nil {
		w.locks[id] = &sync.Mutex{}
	}
	return w.locks[id]
}

// byNodeEntity is the application's entity of node n.
func (a *App) byNodeEntity(n *camp.Node) *Entity {
	a.tree.RLock()
	defer a.tree.RUnlock()
	return a.byNode[n]
}

func isClusterEffector(name string) bool {
	for _, e := range clusterEffectors {
		if e.Name == name {
			return true
		}
	}
	return false
}

// webClusterOf is the web cluster whose cluster is c, if any.
func webClusterOf(c *Entity) *Entity {
	if p := c.Parent; p != nil && p.Node.Web != nil && p.Node.Web.Cluster == c.Node {
		return p
	}
	return nil
}

// webClusterStarted publishes the web cluster's sensors once its
// controller and cluster run, and points the controller at the members.
func (m *Manager) webClusterStarted(w *Entity) {
	ctl := w.App.byNodeEntity(w.Node.Web.Controller)
	if uri, ok := m.Sensor(ctl, SensorMainURI); ok {
		m.setSensors(w, map[string]any{SensorMainURI: uri, SensorWebappURL: uri})
	}
	if c := w.App.byNodeEntity(w.Node.Web.Cluster); c != nil {
		m.mirrorGroup(c)
	}
	m.syncControllerNow(m.ctx, w)
}

// mirrorGroup copies a web cluster's cluster's members to the web cluster
// and reconfigures its controller.
func (m *Manager) mirrorGroup(c *Entity) {
	w := webClusterOf(c)
	if w == nil {
		return
	}
	members, _ := m.Sensor(c, SensorGroupMembers)
	count, _ := m.Sensor(c, SensorGroupMembersCount)
	m.setSensors(w, map[string]any{SensorGroupMembers: members, SensorGroupMembersCount: count})
	m.syncController(w)
}

// webChanged reacts to a member's or a controller's sensors: the
// controller follows the members that are up, also after it restarted.
func (m *Manager) webChanged(src *Entity, kv map[string]any) {
	_, up := kv[SensorUp]
	_, addr := kv["host.subnet.address"]
	if !up && !addr {
		return
	}
	p := src.Parent
	if p == nil {
		return
	}
	if p.Node.Web != nil && p.Node.Web.Controller == src.Node {
		m.syncController(p)
		return
	}
	if w := webClusterOf(p); w != nil {
		m.syncController(w)
	}
}

// syncController rewrites the controller's upstreams in the background.
func (m *Manager) syncController(w *Entity) {
	if m.ctx.Err() != nil {
		return // closing
	}
	m.wg.Add(1)
	m.web.syncs.add()
	go func() {
		defer m.wg.Done()
		defer m.web.syncs.done()
		m.syncControllerNow(m.ctx, w)
	}()
}

// upstreams are the members that are up, as ADDR:PORT.
func (m *Manager) upstreams(w *Entity) []string {
	c := w.App.byNodeEntity(w.Node.Web.Cluster)
	if c == nil {
		return nil
	}
	var out []string
	for _, k := range c.Children() {
		up, _ := m.Sensor(k, SensorUp)
		addr, _ := m.Sensor(k, "host.subnet.address")
		if up == true && str(addr) != "" {
			out = append(out, fmt.Sprintf("%s:%d", str(addr), w.Node.Web.MemberPort))
		}
	}
	return out
}

// syncControllerNow writes the upstreams into the controller when they
// changed since the last write.
func (m *Manager) syncControllerNow(ctx context.Context, w *Entity) {
	l := m.web.lock(w.ID)
	l.Lock()
	defer l.Unlock()
	ctl := w.App.byNodeEntity(w.Node.Web.Controller)
	if ctl == nil || m.State(ctl) != StateRunning {
		return // it is written when the controller runs
	}
	m.mu.Lock()
	id := ctl.containerID
	m.mu.Unlock()
	list := strings.Join(m.upstreams(w), " ")
	m.web.mu.Lock()
	same := m.web.written[w.ID] == id+"\x00"+list
	m.web.mu.Unlock()
	if same {
		return
	}
	code, err := m.execRun(ctx, id, "sh", "-c", `printf '%s\n' "$1" > `+camp.UpstreamsFile+`.new && mv `+camp.UpstreamsFile+`.new `+camp.UpstreamsFile, "sh", list)
	if err != nil || code != 0 {
		m.log.Warn("blueprint: reconfiguring the controller", "entity", w.ID, "code", code, "err", err)
		return
	}
	m.web.mu.Lock()
	m.web.written[w.ID] = id + "\x00" + list
	m.web.mu.Unlock()
	targets := []any{}
	for _, t := range strings.Fields(list) {
		targets = append(targets, t)
	}
	m.setSensors(ctl, map[string]any{SensorPoolTargets: targets})
}
