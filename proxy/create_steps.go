package proxy

import (
	"context"

	"github.com/clocker/clocker/admission"
	"github.com/clocker/clocker/placement"
	"github.com/clocker/clocker/sdn/ingress"
)

// createSteps is the create pipeline, in order. Each step says in which
// phases it takes part (admission: validate, prepare, place, bind); the
// chain runs the phases in that order and each phase in this order.
func (s *Server) createSteps() []admission.Step {
	return []admission.Step{
		// Its name: the engine's rule (validate), picked when the client
		// gave none; held unique fleet-wide (bind, before anything that
		// names it).
		placement.NewNameStep(s.Fleet),
		// Where the container may go: resources, published ports,
		// constraints and affinities (validate), pins to what it uses
		// (prepare).
		placement.NewRequestStep(s.Fleet),
		networkPinStep{s},
		// Its reschedule policy (validate): a bad one refuses the create
		// before anything is taken.
		policyStep{},
		// The scheduler's choice and a reservation on it.
		s.placer,
		// Its published ports, claimed fleet-wide (ingress).
		ingress.NewCreateStep(s.Ingress),
		// Its fleet networks joined on the chosen host, and the host's
		// fleet DNS.
		fleetNetStep{s},
	}
}

type networkPinStep struct{ s *Server }

func (networkPinStep) Name() string { return "network-pins" }

func (st networkPinStep) Prepare(ctx context.Context, c *admission.Create) error {
	pins, err := st.s.networkPins(ctx, c.Spec)
	if err != nil {
		return err
	}
	c.Request.Pins = append(c.Request.Pins, pins...)
	return nil
}

type policyStep struct{}

func (policyStep) Name() string { return "reschedule-policy" }

func (policyStep) Validate(c *admission.Create) error {
	return rewriteBody(c, withReschedulePolicy)
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
