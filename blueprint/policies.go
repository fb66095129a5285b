package blueprint

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/clocker/clocker/blueprint/camp"
)

// Sensors the HA policies emit (Brooklyn's HASensors).
const (
	SensorEntityFailed       = "ha.entityFailed"
	SensorEntityRecovered    = "ha.entityRecovered"
	SensorRestartFailed      = "ha.entityFailed.restart"
	SensorReplacementFailed  = "ha.entityFailed.replacement"
	SensorResizablePoolHot   = "resizablepool.hot"
	SensorResizablePoolCold  = "resizablepool.cold"
	SensorGroupMembers       = "group.members"
	SensorGroupMembersCount  = "group.members.count"
	SensorServiceProblemsKey = "service.problems"
)

// adjunctSensors are the sensors each adjunct type may publish on its
// entity: known (204 while unset) from the start.
var adjunctSensors = map[string][]string{
	"ServiceFailureDetector": {SensorEntityFailed, SensorEntityRecovered},
	"ServiceRestarter":       {SensorRestartFailed},
	"ServiceReplacer":        {SensorReplacementFailed},
	"AutoScalerPolicy":       {SensorResizablePoolHot, SensorResizablePoolCold},
}

// timers holds an adjunct's pending timers so stop cancels them.
type timers struct {
	mu   sync.Mutex
	stop map[string]func() bool
}

func (t *timers) set(m *Manager, name string, d time.Duration, f func()) {
	t.cancel(name)
	s := m.clock.AfterFunc(d, f) // not under t.mu: a due f may set timers
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stop == nil {
		t.stop = map[string]func() bool{}
	}
	t.stop[name] = s
}

func (t *timers) cancel(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.stop[name]; s != nil {
		s()
		delete(t.stop, name)
	}
}

func (t *timers) stopAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.stop {
		s()
	}
	t.stop = nil
}

func init() {
	adjunctTypes["ServiceFailureDetector"] = &adjunctType{Kind: "enricher", New: newFailureDetector, Keys: []configKey{
		{"onlyReportIfPreviouslyUp", "java.lang.Boolean", true, "Only report a failure once the entity has been up"},
		{"serviceOnFire.stabilizationDelay", "java.time.Duration", "0ms", "Time on fire before the entity is reported failed (with entityFailed.stabilizationDelay)"},
		{"entityFailed.stabilizationDelay", "java.time.Duration", "0ms", "Time down before ha.entityFailed is emitted"},
		{"entityRecovered.stabilizationDelay", "java.time.Duration", "0ms", "Time up before ha.entityRecovered is emitted"},
	}}
	adjunctTypes["ServiceRestarter"] = &adjunctType{Kind: "policy", New: newRestarter, Keys: []configKey{
		{"failOnRecurringFailuresInThisDuration", "java.time.Duration", "3m", "A second failure within this time is not restarted: the entity goes on fire"},
		{"setOnFireOnFailure", "java.lang.Boolean", true, "Set the entity on fire when a restart fails"},
		{"failureSensorToMonitor", "java.lang.String", SensorEntityFailed, "The sensor whose events trigger a restart"},
	}}
	adjunctTypes["ServiceReplacer"] = &adjunctType{Kind: "policy", New: newReplacer, Keys: []configKey{
		{"failureSensorToMonitor", "java.lang.String", SensorRestartFailed, "The members' sensor whose events trigger a replacement"},
		{"failOnRecurringFailuresInThisDuration", "java.time.Duration", "5m", "Window in which failOnNumRecurringFailures failures stop replacing"},
		{"failOnNumRecurringFailures", "java.lang.Integer", 5, "Failures within the window that set the cluster on fire instead"},
	}}
}

// failureDetector is ServiceFailureDetector: ha.entityFailed when its
// entity goes on fire (after being up), ha.entityRecovered when it is up
// again, each after its stabilisation delay.
type failureDetector struct {
	m                       *Manager
	a                       *Adjunct
	onlyIfUp                bool
	failDelay, recoverDelay time.Duration
	timers                  timers
	mu                      sync.Mutex
	wasUp, failed, reported bool
}

func newFailureDetector(m *Manager, a *Adjunct) (behaviour, error) {
	d := &failureDetector{m: m, a: a}
	var err error
	if d.onlyIfUp, err = a.boolean(true, "onlyReportIfPreviouslyUp"); err != nil {
		return nil, err
	}
	fire, err := a.duration(0, "serviceOnFire.stabilizationDelay")
	if err != nil {
		return nil, err
	}
	if d.failDelay, err = a.duration(0, "entityFailed.stabilizationDelay"); err != nil {
		return nil, err
	}
	d.failDelay += fire
	if d.recoverDelay, err = a.duration(0, "entityRecovered.stabilizationDelay"); err != nil {
		return nil, err
	}
	return d, nil
}

// stop drops the pending reports; a failure not yet reported is
// forgotten, to be seen anew (a manager that leads again re-dispatches
// each entity's state).
func (d *failureDetector) stop() {
	d.timers.stopAll()
	d.mu.Lock()
	if d.failed && !d.reported {
		d.failed = false
	}
	d.mu.Unlock()
}

func (d *failureDetector) sensor(src *Entity, kv map[string]any) {
	e := d.a.Entity
	if src != e {
		return
	}
	_, s1 := kv[SensorState]
	_, s2 := kv[SensorUp]
	if !s1 && !s2 {
		return
	}
	state := d.m.State(e)
	up, _ := d.m.Sensor(e, SensorUp)
	d.mu.Lock()
	var next string
	switch {
	case state == StateOnFire:
		if !d.failed && (!d.onlyIfUp || d.wasUp) {
			d.failed, next = true, "failed"
		}
	case (state == StateStopped || state == StateStopping) && d.failed && !d.reported:
		// Stopped on purpose before the failure was reported: none.
		d.failed, next = false, "-"
	case state == StateRunning && up == true:
		d.wasUp = true
		if d.failed {
			d.failed = false
			if d.reported {
				next = "recovered"
			} else {
				next = "-" // recovered before the failure was reported
			}
		}
	}
	d.mu.Unlock()
	switch next {
	case "failed":
		d.timers.cancel("recovered")
		d.after("failed", d.failDelay, func() {
			d.mu.Lock()
			fire := d.failed && !d.reported && d.a.running()
			if fire {
				d.reported = true
			}
			d.mu.Unlock()
			if fire {
				d.m.emit(e, SensorEntityFailed, "entity "+e.ID+" failed: "+str(first(d.m.Sensor(e, SensorServiceProblemsKey))))
			}
		})
	case "recovered":
		d.timers.cancel("failed")
		d.after("recovered", d.recoverDelay, func() {
			d.mu.Lock()
			fire := !d.failed && d.reported && d.a.running()
			if fire {
				d.reported = false
			}
			d.mu.Unlock()
			if fire {
				d.m.emit(e, SensorEntityRecovered, "entity "+e.ID+" recovered")
			}
		})
	case "-":
		d.timers.cancel("failed")
	}
}

// after runs f after delay (at once when 0), with no lock held.
func (d *failureDetector) after(name string, delay time.Duration, f func()) {
	if delay <= 0 {
		d.timers.cancel(name)
		f()
		return
	}
	d.timers.set(d.m, name, delay, f)
}

func first(v any, _ bool) any { return v }

// restarter is ServiceRestarter: restarts its entity (on a compose
// service: the failed container) on each failure event; a second failure
// of one entity within the window gives up.
type restarter struct {
	m        *Manager
	a        *Adjunct
	window   time.Duration
	setFire  bool
	sensorNm string
	mu       sync.Mutex
	// last failure by entity id.
	last map[string]time.Time
}

func newRestarter(m *Manager, a *Adjunct) (behaviour, error) {
	r := &restarter{m: m, a: a, sensorNm: a.text(SensorEntityFailed, "failureSensorToMonitor"), last: map[string]time.Time{}}
	var err error
	if r.window, err = a.duration(3*time.Minute, "failOnRecurringFailuresInThisDuration"); err != nil {
		return nil, err
	}
	if r.setFire, err = a.boolean(true, "setOnFireOnFailure"); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *restarter) stop() {}

func (r *restarter) sensor(src *Entity, kv map[string]any) {
	if !covers(r.a.Entity, src) {
		return
	}
	if _, ok := kv[r.sensorNm]; !ok {
		return
	}
	e := src
	now := r.m.clock.Now()
	r.mu.Lock()
	last := r.last[e.ID]
	recurring := !last.IsZero() && now.Sub(last) < r.window
	r.last[e.ID] = now
	r.mu.Unlock()
	if recurring {
		r.giveUp(e, fmt.Sprintf("failed again within %s of the last failure: not restarted", r.window))
		return
	}
	t, err := r.m.Invoke(e, "restart", nil)
	if err != nil {
		r.giveUp(e, err.Error())
		return
	}
	r.m.wg.Add(1)
	go func() {
		defer r.m.wg.Done()
		<-t.Done()
		if _, err := t.Result(); err != nil {
			r.giveUp(e, "restart failed: "+err.Error())
		}
	}()
}

func (r *restarter) giveUp(e *Entity, why string) {
	if r.setFire {
		r.m.setSensors(e, map[string]any{SensorState: StateOnFire, SensorUp: false, SensorServiceProblemsKey: why})
	}
	r.m.emit(e, SensorRestartFailed, why)
}

// replacer is ServiceReplacer on a cluster: a member whose failure
// sensor fires is replaced by a new one; too many failures within the
// window set the cluster on fire instead.
type replacer struct {
	m        *Manager
	a        *Adjunct
	window   time.Duration
	max      int
	sensorNm string
	mu       sync.Mutex
	fails    []time.Time
}

func newReplacer(m *Manager, a *Adjunct) (behaviour, error) {
	r := &replacer{m: m, a: a, sensorNm: a.text(SensorRestartFailed, "failureSensorToMonitor")}
	var err error
	if r.window, err = a.duration(5*time.Minute, "failOnRecurringFailuresInThisDuration"); err != nil {
		return nil, err
	}
	n, err := a.number(5, "failOnNumRecurringFailures")
	if err != nil {
		return nil, err
	}
	r.max = int(n)
	return r, nil
}

func (r *replacer) stop() {}

func (r *replacer) sensor(src *Entity, kv map[string]any) {
	c := r.a.Entity
	if src.Parent != c || c.Node.Kind != camp.KindCluster {
		return
	}
	if _, ok := kv[r.sensorNm]; !ok {
		return
	}
	now := r.m.clock.Now()
	r.mu.Lock()
	kept := r.fails[:0]
	for _, t := range r.fails {
		if now.Sub(t) < r.window {
			kept = append(kept, t)
		}
	}
	r.fails = append(kept, now)
	tooMany := len(r.fails) >= r.max
	r.mu.Unlock()
	if tooMany {
		why := fmt.Sprintf("%d member failures within %s: not replaced", r.max, r.window)
		r.m.setSensors(c, map[string]any{SensorState: StateOnFire, SensorUp: false, SensorServiceProblemsKey: why})
		r.m.emit(c, SensorReplacementFailed, why)
		return
	}
	t, err := r.m.Invoke(c, "replaceMember", map[string]any{"memberId": src.ID})
	if err != nil {
		r.m.emit(c, SensorReplacementFailed, err.Error())
		return
	}
	r.m.wg.Add(1)
	go func() {
		defer r.m.wg.Done()
		<-t.Done()
		if _, err := t.Result(); err != nil {
			r.m.emit(c, SensorReplacementFailed, "replacing "+src.ID+": "+err.Error())
		}
	}()
}

// metricValue reads a numeric sensor of e, else the average over e's
// members/children that publish it (a cluster's docker.cpu.percent).
func (m *Manager) metricValue(e *Entity, sensor string) (float64, bool) {
	if v, ok := m.Sensor(e, sensor); ok {
		return toFloat(v)
	}
	var sum float64
	var n int
	for _, k := range e.Children() {
		if v, ok := m.Sensor(k, sensor); ok {
			if f, ok := toFloat(v); ok {
				sum += f
				n++
			}
		}
	}
	if n == 0 {
		return 0, false
	}
	return sum / float64(n), true
}

func toFloat(v any) (float64, bool) {
	switch t := v.(type) {
	case float64:
		return t, !math.IsNaN(t)
	case int:
		return float64(t), true
	case int64:
		return float64(t), true
	case bool:
		return 0, false
	}
	var f float64
	_, err := fmt.Sscan(str(v), &f)
	return f, err == nil
}
