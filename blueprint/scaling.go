package blueprint

import (
	"math"
	"sort"
	"sync"
	"time"

	"github.com/clocker/clocker/blueprint/camp"
)

func init() {
	var keys []configKey
	for _, k := range []configKey{
		{"metric", "java.lang.String", nil, "The numeric sensor to watch (a cluster without it: its members' average, e.g. docker.cpu.percent)"},
		{"entityWithMetric", "org.apache.brooklyn.api.entity.Entity", nil, "The entity publishing the metric (default the policy's entity)"},
		{"metricLowerBound", "java.lang.Number", nil, "Below it the pool shrinks"},
		{"metricUpperBound", "java.lang.Number", nil, "Above it the pool grows"},
		{"minPoolSize", "java.lang.Integer", 1, "Smallest size"},
		{"maxPoolSize", "java.lang.Integer", math.MaxInt32, "Largest size"},
		{"resizeUpIterationIncrement", "java.lang.Integer", 1, "Grow by multiples of this"},
		{"resizeUpIterationMax", "java.lang.Integer", math.MaxInt32, "Grow by at most this at once"},
		{"resizeDownIterationIncrement", "java.lang.Integer", 1, "Shrink by multiples of this"},
		{"resizeDownIterationMax", "java.lang.Integer", math.MaxInt32, "Shrink by at most this at once"},
		{"minPeriodBetweenExecs", "java.time.Duration", "100ms", "Least time between two resizes"},
		{"resizeUpStabilizationDelay", "java.time.Duration", "0ms", "Time the metric stays high before growing"},
		{"resizeDownStabilizationDelay", "java.time.Duration", "0ms", "Time the metric stays low before shrinking"},
	} {
		keys = append(keys, k)
	}
	adjunctTypes["AutoScalerPolicy"] = &adjunctType{Kind: "policy", New: newAutoScaler, Keys: keys}
	adjunctTypes["Aggregator"] = &adjunctType{Kind: "enricher", New: newAggregator, Keys: []configKey{
		{"enricher.sourceSensor", "java.lang.String", nil, "The members' (or children's) sensor"},
		{"enricher.targetSensor", "java.lang.String", nil, "The sensor published on the entity"},
		{"transformation", "java.lang.String", "list", "list, sum, average, min, max or count"},
		{"enricher.aggregating.fromChildren", "java.lang.Boolean", false, "Aggregate the children (a cluster's members always)"},
	}}
	adjunctTypes["Propagator"] = &adjunctType{Kind: "enricher", New: newPropagator, Keys: []configKey{
		{"producer", "org.apache.brooklyn.api.entity.Entity", nil, "The entity whose sensors are copied (default self)"},
		{"propagating", "java.util.Collection", nil, "Sensors to copy"},
		{"propagatingAll", "java.lang.Boolean", false, "Copy every sensor"},
		{"sensorMapping", "java.util.Map", nil, "Source sensor → published name"},
	}}
}

// autoScaler is AutoScalerPolicy: the pool (a cluster) grows when its
// metric is above metricUpperBound and shrinks below metricLowerBound,
// in proportion, within bounds, after its stabilisation delays.
type autoScaler struct {
	m                                *Manager
	a                                *Adjunct
	metric                           string
	lower, upper                     float64
	hasLower, hasUpper               bool
	minSize, maxSize                 int
	upIncr, upMax, downIncr, downMax int
	minPeriod, upDelay, downDelay    time.Duration
	timers                           timers
	mu                               sync.Mutex
	hotSince, coldSince, lastResize  time.Time
}

func newAutoScaler(m *Manager, a *Adjunct) (behaviour, error) {
	s := &autoScaler{m: m, a: a}
	k := func(n string) []string { return []string{n, "autoscaler." + n} }
	s.metric = a.text("", k("metric")...)
	if s.metric == "" {
		return nil, errMissing("metric")
	}
	var err error
	num := func(def float64, name string) float64 {
		if err != nil {
			return 0
		}
		var f float64
		f, err = a.number(def, k(name)...)
		return f
	}
	_, s.hasLower = a.raw(k("metricLowerBound")...)
	_, s.hasUpper = a.raw(k("metricUpperBound")...)
	s.lower = num(0, "metricLowerBound")
	s.upper = num(0, "metricUpperBound")
	s.minSize = int(num(1, "minPoolSize"))
	s.maxSize = int(num(math.MaxInt32, "maxPoolSize"))
	s.upIncr = int(num(1, "resizeUpIterationIncrement"))
	s.upMax = int(num(math.MaxInt32, "resizeUpIterationMax"))
	s.downIncr = int(num(1, "resizeDownIterationIncrement"))
	s.downMax = int(num(math.MaxInt32, "resizeDownIterationMax"))
	if err != nil {
		return nil, err
	}
	if s.minPeriod, err = a.duration(100*time.Millisecond, k("minPeriodBetweenExecs")...); err != nil {
		return nil, err
	}
	if s.upDelay, err = a.duration(0, k("resizeUpStabilizationDelay")...); err != nil {
		return nil, err
	}
	if s.downDelay, err = a.duration(0, k("resizeDownStabilizationDelay")...); err != nil {
		return nil, err
	}
	if s.hasLower && s.hasUpper && s.lower > s.upper {
		return nil, errBounds
	}
	if s.upIncr < 1 || s.downIncr < 1 || s.minSize < 0 || s.maxSize < s.minSize {
		return nil, errPool
	}
	return s, nil
}

func (s *autoScaler) stop() { s.timers.stopAll() }

// source is the entity publishing the metric.
func (s *autoScaler) source() *Entity {
	e := s.a.Entity
	if v, ok := s.a.raw("entityWithMetric", "autoscaler.entityWithMetric"); ok {
		if c, ok := v.(*camp.Call); ok {
			if t, err := s.m.ref(e, c); err == nil && t != nil {
				return t
			}
		}
	}
	return e
}

func (s *autoScaler) sensor(src *Entity, kv map[string]any) {
	if _, ok := kv[s.metric]; !ok {
		return
	}
	t := s.source()
	if src != t && src.Parent != t {
		return
	}
	s.evaluate()
}

// desired is the pool size the metric asks for (the current size when
// within bounds), and whether it is hot or cold.
func (s *autoScaler) desired(size int, v float64) (int, string) {
	switch {
	case s.hasUpper && v > s.upper:
		want := size + s.upIncr
		if size > 0 && s.upper > 0 {
			want = max(want, int(math.Ceil(float64(size)*v/s.upper)))
		}
		delta := roundUp(want-size, s.upIncr)
		delta = min(delta, s.upMax)
		return min(max(size+delta, s.minSize), s.maxSize), SensorResizablePoolHot
	case s.hasLower && v < s.lower:
		want := size - s.downIncr
		if s.lower > 0 {
			want = min(want, int(math.Ceil(float64(size)*v/s.lower)))
		}
		delta := roundUp(size-want, s.downIncr)
		delta = min(delta, s.downMax)
		return max(min(size-delta, s.maxSize), s.minSize), SensorResizablePoolCold
	}
	return min(max(size, s.minSize), s.maxSize), ""
}

func roundUp(n, step int) int {
	if n <= 0 {
		return 0
	}
	return (n + step - 1) / step * step
}

// evaluate resizes when the metric has been out of bounds for the
// stabilisation delay, else rechecks when it will have been.
func (s *autoScaler) evaluate() {
	if !s.a.running() {
		return
	}
	c := s.a.Entity
	if s.m.State(c) != StateRunning {
		return
	}
	v, ok := s.m.metricValue(s.source(), s.metric)
	if !ok {
		return
	}
	size := len(c.Children())
	want, temp := s.desired(size, v)
	now := s.m.clock.Now()
	s.mu.Lock()
	var since time.Time
	var delay time.Duration
	switch temp {
	case SensorResizablePoolHot:
		s.coldSince = time.Time{}
		if s.hotSince.IsZero() {
			s.hotSince = now
		}
		since, delay = s.hotSince, s.upDelay
	case SensorResizablePoolCold:
		s.hotSince = time.Time{}
		if s.coldSince.IsZero() {
			s.coldSince = now
		}
		since, delay = s.coldSince, s.downDelay
	default:
		s.hotSince, s.coldSince = time.Time{}, time.Time{}
	}
	wait := time.Duration(0)
	if temp != "" {
		wait = max(since.Add(delay).Sub(now), s.lastResize.Add(s.minPeriod).Sub(now))
	}
	act := temp != "" && wait <= 0 && want != size
	if act {
		s.lastResize, s.hotSince, s.coldSince = now, time.Time{}, time.Time{}
	}
	s.mu.Unlock()
	if temp == "" || want == size {
		s.timers.cancel("recheck")
		return
	}
	if !act {
		s.timers.set(s.m, "recheck", wait, s.evaluate)
		return
	}
	s.m.setSensors(c, map[string]any{temp: map[string]any{
		"poolCurrentSize": size, "poolCurrentWorkrate": v, "poolHighThreshold": s.upper, "poolLowThreshold": s.lower, "desiredSize": want,
	}})
	if _, err := s.m.Invoke(c, "resize", map[string]any{"desiredSize": want}); err != nil {
		s.m.log.Warn("blueprint: autoscaler resize", "cluster", c.ID, "err", err)
	}
}

// aggregator is Aggregator: a sensor of the members (or children)
// combined into one of the entity.
type aggregator struct {
	m              *Manager
	a              *Adjunct
	source, target string
	how            string
}

func newAggregator(m *Manager, a *Adjunct) (behaviour, error) {
	g := &aggregator{m: m, a: a, source: a.text("", "enricher.sourceSensor", "sourceSensor"), target: a.text("", "enricher.targetSensor", "targetSensor")}
	g.how = a.text("list", "transformation", "enricher.transformation")
	if g.source == "" {
		return nil, errMissing("enricher.sourceSensor")
	}
	if g.target == "" {
		g.target = g.source
	}
	switch g.how {
	case "list", "sum", "average", "min", "max", "count":
	default:
		return nil, errTransformation
	}
	return g, nil
}

func (g *aggregator) stop() {}

func (g *aggregator) sensor(src *Entity, kv map[string]any) {
	e := g.a.Entity
	_, changed := kv[g.source]
	_, membership := kv[SensorGroupMembers]
	if !(changed && src.Parent == e) && !(membership && src == e) {
		return
	}
	var vals []any
	for _, k := range e.Children() {
		if v, ok := g.m.Sensor(k, g.source); ok {
			vals = append(vals, v)
		}
	}
	var out any
	switch g.how {
	case "list":
		out = vals
		if vals == nil {
			out = []any{}
		}
	case "count":
		out = len(vals)
	default:
		var nums []float64
		for _, v := range vals {
			if f, ok := toFloat(v); ok {
				nums = append(nums, f)
			}
		}
		if len(nums) == 0 {
			out = nil
			break
		}
		sort.Float64s(nums)
		sum := 0.0
		for _, f := range nums {
			sum += f
		}
		switch g.how {
		case "sum":
			out = sum
		case "average":
			out = sum / float64(len(nums))
		case "min":
			out = nums[0]
		case "max":
			out = nums[len(nums)-1]
		}
	}
	g.m.setSensors(e, map[string]any{g.target: out})
}

// propagator is Propagator: sensors of a producer republished on the
// entity (by the same or a mapped name).
type propagator struct {
	m       *Manager
	a       *Adjunct
	all     bool
	mapping map[string]string
}

func newPropagator(m *Manager, a *Adjunct) (behaviour, error) {
	p := &propagator{m: m, a: a, mapping: map[string]string{}}
	var err error
	if p.all, err = a.boolean(false, "propagatingAll", "enricher.propagating.propagatingAll"); err != nil {
		return nil, err
	}
	if v, ok := a.raw("propagating", "enricher.propagating.inclusions"); ok {
		list, ok := v.([]any)
		if !ok {
			return nil, errList("propagating")
		}
		for _, x := range list {
			p.mapping[str(x)] = str(x)
		}
	}
	if v, ok := a.raw("sensorMapping", "enricher.propagating.sensorMapping"); ok {
		mp, ok := v.(map[string]any)
		if !ok {
			return nil, errList("sensorMapping")
		}
		for k, x := range mp {
			p.mapping[k] = str(x)
		}
	}
	if !p.all && len(p.mapping) == 0 {
		return nil, errMissing("propagating")
	}
	return p, nil
}

func (p *propagator) stop() {}

func (p *propagator) producer() *Entity {
	e := p.a.Entity
	if v, ok := p.a.raw("producer", "enricher.producer"); ok {
		if c, ok := v.(*camp.Call); ok {
			if t, err := p.m.ref(e, c); err == nil && t != nil {
				return t
			}
		}
	}
	return e
}

func (p *propagator) sensor(src *Entity, kv map[string]any) {
	e := p.a.Entity
	if src == e || src != p.producer() {
		return
	}
	out := map[string]any{}
	for k, v := range kv {
		if to, ok := p.mapping[k]; ok {
			out[to] = v
		} else if p.all && k != SensorState && k != SensorUp {
			out[k] = v
		}
	}
	if len(out) > 0 {
		p.m.setSensors(e, out)
	}
}
