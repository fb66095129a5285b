package admission

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Step is one step of the chain. A step implements the phases it takes
// part in (Validator, Preparer, Placer, Binder); its name labels its
// latency metric and its errors in logs.
type Step interface {
	Name() string
}

// Validator checks a create without side effects; it may normalise the
// create itself (strip env entries Clocker reads, set labels).
type Validator interface {
	Step
	Validate(c *Create) error
}

// Preparer reads the fleet's state to add pins and filters to the
// placement request; it takes nothing.
type Preparer interface {
	Step
	Prepare(ctx context.Context, c *Create) error
}

// Placer chooses c.Host and reserves room on it; the chain has one.
type Placer interface {
	Step
	Place(ctx context.Context, c *Create) (Binding, error)
}

// Binder takes something the container will hold, on c.Host.
type Binder interface {
	Step
	Bind(ctx context.Context, c *Create) (Binding, error)
}

// Binding is what a place or bind step took. Undo gives it back when a
// later step or the engine refused the create; Done is called once the
// engine created the container (and the fleet's cache shows it). Created,
// when set, finishes the container on its engine before the client has
// its answer (what an engine of the API version cannot take in one
// create, such as a second network): the forward runs it through
// Create.Created. Any may be nil.
type Binding struct {
	Undo, Done func()
	Created    func(ctx context.Context, c *Create) error
}

// Forward sends the encoded create to c.Host; created tells whether the
// engine made the container (c.ID set). Once the engine made it, it calls
// c.Created before it writes the client's answer; when that fails, it
// removes the container and returns the error (created false).
type Forward func(ctx context.Context, c *Create, body []byte) (created bool, err error)

// Chain is the ordered list of steps.
type Chain struct {
	steps   []Step
	seconds *prometheus.HistogramVec
}

// NewChain checks the steps (exactly one Placer; every step takes part in
// some phase) and registers the step latency metric on reg (nil: none).
func NewChain(reg prometheus.Registerer, steps ...Step) (*Chain, error) {
	placers := 0
	for _, s := range steps {
		_, v := s.(Validator)
		_, p := s.(Preparer)
		_, pl := s.(Placer)
		_, b := s.(Binder)
		if pl {
			placers++
		}
		if !v && !p && !pl && !b {
			return nil, fmt.Errorf("admission step %s takes part in no phase", s.Name())
		}
	}
	if placers != 1 {
		return nil, fmt.Errorf("admission chain has %d placers, want 1", placers)
	}
	ch := &Chain{steps: steps, seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "clocker", Subsystem: "create", Name: "step_duration_seconds",
		Help:    "Time each step of the create pipeline took, by step and phase.",
		Buckets: []float64{.00001, .00005, .0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5},
	}, []string{"step", "phase"})}
	if reg != nil {
		if err := reg.Register(ch.seconds); err != nil {
			return nil, err
		}
	}
	return ch, nil
}

// Steps lists the chain's step names in order.
func (ch *Chain) Steps() []string {
	out := make([]string, len(ch.steps))
	for i, s := range ch.steps {
		out[i] = s.Name()
	}
	return out
}

// Phase names, as in the metric.
const (
	PhaseValidate = "validate"
	PhasePrepare  = "prepare"
	PhasePlace    = "place"
	PhaseBind     = "bind"
	PhaseForward  = "forward"
	PhaseDone     = "done"
	PhaseUndo     = "undo"
)

func (ch *Chain) observe(step, phase string, start time.Time) {
	ch.seconds.WithLabelValues(step, phase).Observe(time.Since(start).Seconds())
}

// Run admits c: validate, prepare, place, bind, then forward, then done,
// or undo on any failure. It returns the first error.
func (ch *Chain) Run(ctx context.Context, c *Create, forward Forward) (err error) {
	if err := ch.Plan(ctx, c); err != nil {
		return err
	}
	return ch.bindAndForward(ctx, c, forward)
}

// Plan runs the validate and prepare phases only: c.Request is then what
// placement would be asked (a dry run), and nothing was taken.
func (ch *Chain) Plan(ctx context.Context, c *Create) error {
	for _, s := range ch.steps {
		if v, ok := s.(Validator); ok {
			start := time.Now()
			err := v.Validate(c)
			ch.observe(s.Name(), PhaseValidate, start)
			if err != nil {
				return err
			}
		}
	}
	for _, s := range ch.steps {
		if p, ok := s.(Preparer); ok {
			start := time.Now()
			err := p.Prepare(ctx, c)
			ch.observe(s.Name(), PhasePrepare, start)
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (ch *Chain) bindAndForward(ctx context.Context, c *Create, forward Forward) (err error) {
	var taken []taken
	defer func() {
		// Reverse order: what was bound last is given back first.
		for i := len(taken) - 1; i >= 0; i-- {
			t := taken[i]
			f, phase := t.b.Undo, PhaseUndo
			if err == nil {
				f, phase = t.b.Done, PhaseDone
			}
			if f != nil {
				start := time.Now()
				f()
				ch.observe(t.step, phase, start)
			}
		}
	}()
	for _, s := range ch.steps {
		if p, ok := s.(Placer); ok {
			start := time.Now()
			b, err := p.Place(ctx, c)
			ch.observe(s.Name(), PhasePlace, start)
			if err != nil {
				return err
			}
			taken = append(taken, takenBy(s, b))
			if c.Host == nil {
				return fmt.Errorf("admission step %s placed no host", s.Name())
			}
		}
	}
	for _, s := range ch.steps {
		if b, ok := s.(Binder); ok {
			start := time.Now()
			bd, err := b.Bind(ctx, c)
			ch.observe(s.Name(), PhaseBind, start)
			if err != nil {
				return err
			}
			taken = append(taken, takenBy(s, bd))
			if bd.Created != nil {
				c.created = append(c.created, bd.Created)
			}
		}
	}
	body, err := c.Body()
	if err != nil {
		return fmt.Errorf("encoding the create: %w", err)
	}
	start := time.Now()
	created, err := forward(ctx, c, body)
	ch.observe("engine", PhaseForward, start)
	if err == nil && !created {
		err = errNotCreated
	}
	return err
}

// errNotCreated undoes the bindings of a create the engine refused (the
// forward wrote the engine's answer).
var errNotCreated = errors.New("the engine did not create the container")

// NotCreated tells whether Run's error only says that the engine refused
// the create: the client has its answer already.
func NotCreated(err error) bool { return errors.Is(err, errNotCreated) }

type taken struct {
	step string
	b    Binding
}

func takenBy(s Step, b Binding) taken { return taken{step: s.Name(), b: b} }
