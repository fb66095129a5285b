package reschedule

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/clocker/clocker/admission"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/labels"
)

// Policies a container may ask for.
const (
	// OnNodeFailure recreates the container elsewhere when its host stays
	// down.
	OnNodeFailure = "on-node-failure"
	// Off leaves it where it is (the default).
	Off = "off"
)

// envPrefix marks the env entry of the policy, as classic Swarm's:
// -e reschedule:on-node-failure.
const envPrefix = "reschedule:"

// PolicyStep is the create pipeline's validate step of rescheduling: it
// reads the policy of a create (env reschedule:POLICY, Swarm's label
// com.docker.swarm.reschedule-policies, Clocker's io.clocker.reschedule),
// removes the env entries (engines must not see them) and records the
// policy as the label io.clocker.reschedule, which the Rescheduler reads.
// A policy other than on-node-failure or off is an ErrInvalid, and the
// create is left as it was.
type PolicyStep struct{}

// Name names the step in metrics and logs.
func (PolicyStep) Name() string { return "reschedule-policy" }

// Validate reads and records the create's reschedule policy.
func (PolicyStep) Validate(c *admission.Create) error {
	env, on, given, err := policyOf(c.Spec.Env, c.Spec.Labels)
	if err != nil || !given {
		return err
	}
	if len(env) != len(c.Spec.Env) {
		c.SetEnv(env)
	}
	if on {
		c.SetLabel(labels.Reschedule, OnNodeFailure)
	} else {
		c.DeleteLabel(labels.Reschedule)
	}
	return nil
}

// policyOf reads the policy of a container's env and labels: the env
// without the policy's entries, whether rescheduling is on, and whether a
// policy was given at all.
func policyOf(env []string, lbls map[string]string) (kept []string, on, given bool, err error) {
	var policies []string
	for _, e := range env {
		if p, ok := strings.CutPrefix(e, envPrefix); ok {
			policies = append(policies, p)
			continue
		}
		kept = append(kept, e)
	}
	if raw := lbls[labels.SwarmReschedulePolicies]; raw != "" {
		var ps []string
		if err := json.Unmarshal([]byte(raw), &ps); err != nil {
			return nil, false, false, errdefs.New(errdefs.ErrInvalid,
				fmt.Sprintf("label %s: want a JSON array such as [\"on-node-failure\"]: %v", labels.SwarmReschedulePolicies, err))
		}
		policies = append(policies, ps...)
	}
	if p := lbls[labels.Reschedule]; p != "" {
		policies = append(policies, p)
	}
	for _, p := range policies {
		switch p {
		case OnNodeFailure:
			on = true
		case Off:
		default:
			return nil, false, false, errdefs.New(errdefs.ErrInvalid,
				fmt.Sprintf("invalid reschedule policy %q: on-node-failure or off", p))
		}
	}
	return kept, on, len(policies) > 0, nil
}
