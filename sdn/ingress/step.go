package ingress

import (
	"context"

	"github.com/clocker/clocker/admission"
)

// CreateStep is the ingress's step of the create pipeline (Name
// "ingress"):
//
//   - validate: the host ports of the bindings the ingress takes (on
//     every address of the host) are "", "0", a port or a range; nothing
//     is claimed or bound;
//   - bind (on the placed host): the published host ports are claimed
//     fleet-wide, random ones picked from the ingress range (with -P the
//     ports the create and the host's image expose), the manager's
//     listeners bound unless the host publishes locally, and every binding
//     made explicit in HostConfig.PortBindings. A port held by a replica
//     of the same compose service is not claimed: compose creates a
//     service's new container before it stops the old one, and the new
//     one takes the port when the old one lets it go (it cannot start
//     before). Undo gives the ports back
//     and closes the listeners; Done hands them to the container the
//     caches now show.
//
// With a nil Table (ingress off) it does nothing: published ports are
// each host's own.
type CreateStep struct{ t *Table }

// NewCreateStep returns t's create step.
func NewCreateStep(t *Table) CreateStep { return CreateStep{t: t} }

// Name implements admission.Step.
func (CreateStep) Name() string { return "ingress" }

// Validate implements admission.Validator.
func (s CreateStep) Validate(c *admission.Create) error {
	if s.t == nil {
		return nil
	}
	return validatePorts(c.Spec)
}

// Bind implements admission.Binder.
func (s CreateStep) Bind(ctx context.Context, c *admission.Create) (admission.Binding, error) {
	if s.t == nil {
		return admission.Binding{}, nil
	}
	cl, err := s.t.claim(ctx, c.Host, c.Name, c.Spec)
	if err != nil || cl == nil {
		return admission.Binding{}, err
	}
	c.Changed("HostConfig", "PortBindings")
	return admission.Binding{Undo: cl.undo, Done: cl.done}, nil
}

var (
	_ admission.Validator = CreateStep{}
	_ admission.Binder    = CreateStep{}
)
