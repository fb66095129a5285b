package proxy

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/labels"
)

// The reschedule policy's rule lives in reschedule.PolicyStep, which proxy
// may not import (the rescheduler is a client of the front door). Until the
// chain is given that step from outside, policyStep keeps applying this
// copy of its rule on the body's bytes: delete both then.

// RescheduleLabel marks a container for rescheduling; Clocker sets it from
// the env entry and Swarm's label, and reads it after restarts.
const RescheduleLabel = labels.Reschedule

const (
	policyOnNodeFailure = "on-node-failure"
	envReschedule       = "reschedule:"
	swarmRescheduleKey  = labels.SwarmReschedulePolicies
)

// withReschedulePolicy reads the reschedule policy of a create body (env
// reschedule:POLICY, Swarm's label, Clocker's label), removes the env
// entries (engines must not see them) and records the policy as
// RescheduleLabel. A policy other than on-node-failure or off is a 400.
func withReschedulePolicy(body []byte) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
	}
	var env []string
	var labels map[string]string
	if raw, ok := fields["Env"]; ok {
		_ = json.Unmarshal(raw, &env)
	}
	if raw, ok := fields["Labels"]; ok {
		_ = json.Unmarshal(raw, &labels)
	}
	var policies []string
	kept := env[:0:0]
	for _, e := range env {
		if p, ok := strings.CutPrefix(e, envReschedule); ok {
			policies = append(policies, p)
			continue
		}
		kept = append(kept, e)
	}
	if raw := labels[swarmRescheduleKey]; raw != "" {
		var ps []string
		if err := json.Unmarshal([]byte(raw), &ps); err != nil {
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("label %s: want a JSON array such as [\"on-node-failure\"]: %v", swarmRescheduleKey, err))
		}
		policies = append(policies, ps...)
	}
	if p := labels[RescheduleLabel]; p != "" {
		policies = append(policies, p)
	}
	if len(policies) == 0 {
		return body, nil
	}
	on := false
	for _, p := range policies {
		switch p {
		case policyOnNodeFailure:
			on = true
		case "off":
		default:
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid reschedule policy %q: on-node-failure or off", p))
		}
	}
	if len(kept) != len(env) {
		b, err := json.Marshal(kept)
		if err != nil {
			return nil, err
		}
		fields["Env"] = b
	}
	if labels == nil {
		labels = map[string]string{}
	}
	if on {
		labels[RescheduleLabel] = policyOnNodeFailure
	} else {
		delete(labels, RescheduleLabel)
	}
	b, err := json.Marshal(labels)
	if err != nil {
		return nil, err
	}
	fields["Labels"] = b
	return json.Marshal(fields)
}
