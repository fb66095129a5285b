package reschedule

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/clocker/clocker/admission"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/labels"
)

// The step reads the policy from the env entry, Swarm's label or
// Clocker's, keeps the env entries from the engine and records the policy
// as Clocker's label; a bad policy is refused and leaves the create as it
// was.
func TestPolicyStep(t *testing.T) {
	const swarm = labels.SwarmReschedulePolicies
	for _, tt := range []struct {
		name       string
		body       string
		wantEnv    []string
		wantLabels map[string]string
		wantErr    string // part of the ErrInvalid's message
	}{
		{name: "no policy: untouched", body: `{"Image":"busybox","Env":["A=1"],"Labels":{"x":"y"}}`,
			wantEnv: []string{"A=1"}, wantLabels: map[string]string{"x": "y"}},
		{name: "env", body: `{"Image":"busybox","Env":["reschedule:on-node-failure","A=1"]}`,
			wantEnv: []string{"A=1"}, wantLabels: map[string]string{labels.Reschedule: OnNodeFailure}},
		{name: "env only", body: `{"Image":"busybox","Env":["reschedule:on-node-failure"]}`,
			wantEnv: []string{}, wantLabels: map[string]string{labels.Reschedule: OnNodeFailure}},
		{name: "swarm label", body: `{"Image":"busybox","Labels":{"` + swarm + `":"[\"on-node-failure\"]"}}`,
			wantLabels: map[string]string{swarm: `["on-node-failure"]`, labels.Reschedule: OnNodeFailure}},
		{name: "clocker label", body: `{"Image":"busybox","Labels":{"` + labels.Reschedule + `":"on-node-failure"}}`,
			wantLabels: map[string]string{labels.Reschedule: OnNodeFailure}},
		{name: "off and on: on", body: `{"Image":"busybox","Env":["reschedule:off"],"Labels":{"` + labels.Reschedule + `":"on-node-failure"}}`,
			wantEnv: []string{}, wantLabels: map[string]string{labels.Reschedule: OnNodeFailure}},
		{name: "off removes the label", body: `{"Image":"busybox","Labels":{"` + labels.Reschedule + `":"off","x":"y"}}`,
			wantLabels: map[string]string{"x": "y"}},
		{name: "bad env policy", body: `{"Image":"busybox","Env":["reschedule:sometimes","A=1"],"Labels":{"x":"y"}}`,
			wantErr: `invalid reschedule policy "sometimes"`},
		{name: "bad clocker label", body: `{"Image":"busybox","Env":["reschedule:on-node-failure"],"Labels":{"` + labels.Reschedule + `":"always"}}`,
			wantErr: `invalid reschedule policy "always"`},
		{name: "swarm label not JSON", body: `{"Image":"busybox","Env":["reschedule:on-node-failure"],"Labels":{"` + swarm + `":"on-node-failure"}}`,
			wantErr: "want a JSON array"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := admission.NewCreate("web", nil, []byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			before, _ := admission.NewCreate("web", nil, []byte(tt.body))
			err = PolicyStep{}.Validate(c)
			if tt.wantErr != "" {
				if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want ErrInvalid with %q", err, tt.wantErr)
				}
				got, _ := c.Body()
				want, _ := before.Body()
				if string(got) != string(want) || !reflect.DeepEqual(c.Spec, before.Spec) {
					t.Errorf("a refused create changed: %s, was %s", got, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Spec.Env, tt.wantEnv) || !reflect.DeepEqual(c.Spec.Labels, tt.wantLabels) {
				t.Errorf("env %q labels %v, want %q %v", c.Spec.Env, c.Spec.Labels, tt.wantEnv, tt.wantLabels)
			}
			body, err := c.Body()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(body), "reschedule:") {
				t.Errorf("the engine would see the env entry: %s", body)
			}
		})
	}
}

func TestPolicyStepName(t *testing.T) {
	var step admission.Validator = PolicyStep{}
	if step.Name() != "reschedule-policy" {
		t.Errorf("name %q", step.Name())
	}
}
