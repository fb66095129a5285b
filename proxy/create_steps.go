package proxy

import (
	"context"

	"github.com/clocker/clocker/admission"
	"github.com/clocker/clocker/sdn/ingress"
)

// createSteps is the create pipeline, in order. Each step says in which
// phases it takes part (admission: validate, prepare, place, bind); the
// chain runs the phases in that order and each phase in this order.
func (s *Server) createSteps() []admission.Step {
	return []admission.Step{
		// Where the container may go: resources, published ports,
		// constraints and affinities (validate), pins to what it uses
		// (prepare).
		requestStep{s},
		// Its reschedule policy (validate): a bad one refuses the create
		// before anything is taken.
		policyStep{},
		// The scheduler's choice and a reservation on it.
		placeStep{s},
		// Its name, unique fleet-wide.
		nameStep{s},
		// Its published ports, claimed fleet-wide (ingress).
		ingress.NewCreateStep(s.Ingress),
		// Its fleet networks joined on the chosen host, and the host's
		// fleet DNS.
		fleetNetStep{s},
	}
}

type requestStep struct{ s *Server }

func (requestStep) Name() string { return "placement-request" }

func (requestStep) Validate(c *admission.Create) error {
	req, env, changed, err := placementRequest(c.Name, c.Spec)
	if err != nil {
		return err
	}
	c.Request = req
	if changed {
		c.SetEnv(env)
	}
	return nil
}

func (st requestStep) Prepare(ctx context.Context, c *admission.Create) error {
	pins, err := st.s.pins(ctx, c.Spec)
	if err != nil {
		return err
	}
	c.Request.Pins = pins
	return nil
}

type policyStep struct{}

func (policyStep) Name() string { return "reschedule-policy" }

func (policyStep) Validate(c *admission.Create) error {
	return rewriteBody(c, withReschedulePolicy)
}

type placeStep struct{ s *Server }

func (placeStep) Name() string { return "place" }

func (st placeStep) Place(ctx context.Context, c *admission.Create) (admission.Binding, error) {
	_, h, release, err := st.s.decide(ctx, &c.Request, false)
	if err != nil {
		return admission.Binding{}, placementError(err, c.Spec.Image)
	}
	c.Host = h
	c.SetLabel(HostLabel, h.Name)
	return admission.Binding{Undo: release, Done: release}, nil
}

type nameStep struct{ s *Server }

func (nameStep) Name() string { return "name" }

func (st nameStep) Bind(ctx context.Context, c *admission.Create) (admission.Binding, error) {
	var release func()
	var err error
	if c.NameGiven {
		release, err = st.s.Fleet.ReserveName(ctx, c.Name)
	} else {
		// Engines name containers independently and would repeat each
		// other's names: Clocker picks a fleet-unique one.
		c.Name, release, err = st.s.Fleet.ReserveGeneratedName(ctx)
	}
	if err != nil {
		return admission.Binding{}, err
	}
	return admission.Binding{Undo: release, Done: release}, nil
}

type fleetNetStep struct{ s *Server }

func (fleetNetStep) Name() string { return "fleet-networks" }

func (st fleetNetStep) Bind(ctx context.Context, c *admission.Create) (admission.Binding, error) {
	spec := *c.Spec
	err := rewriteBody(c, func(body []byte) ([]byte, error) {
		return st.s.fleetCreateHook(ctx, c.Host, &spec, body)
	})
	return admission.Binding{}, err
}

// rewriteBody runs a step that works on the body's bytes.
func rewriteBody(c *admission.Create, f func([]byte) ([]byte, error)) error {
	body, err := c.Body()
	if err != nil {
		return err
	}
	out, err := f(body)
	if err != nil {
		return err
	}
	return c.Replace(out)
}
