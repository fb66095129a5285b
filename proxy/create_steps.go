package proxy

import (
	"github.com/clocker/clocker/admission"
	"github.com/clocker/clocker/placement"
	"github.com/clocker/clocker/reschedule"
	"github.com/clocker/clocker/sdn/fleetnet"
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
		// A tenant's create (--tenants): its owner label, and every name
		// in it stored as the engines hold the tenant's names; its
		// references to containers only to its own.
		admission.TenantStep{Resolve: s.tenantRef},
		// Where the container may go: resources, published ports,
		// constraints and affinities (validate), pins to what it uses
		// (prepare).
		placement.NewRequestStep(s.Fleet),
		// Its reschedule policy (validate): a bad one refuses the create
		// before anything is taken.
		reschedule.PolicyStep{},
		// The scheduler's choice and a reservation on it.
		s.placer,
		// Its published ports, claimed fleet-wide (ingress).
		ingress.NewCreateStep(s.Ingress),
		// Its fleet networks joined on the chosen host, and the host's
		// fleet DNS.
		fleetnet.NewCreateStep(s.Fleet, s.Nets),
		// Its --links to containers on other hosts, over a fleet network
		// (the engine serves those on its own host).
		fleetnet.NewLinksStep(s.Fleet, s.Nets),
	}
}
