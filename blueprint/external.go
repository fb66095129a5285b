package blueprint

import (
	"fmt"
	"os"
	"strings"

	"github.com/clocker/clocker/blueprint/camp"
	"github.com/clocker/clocker/internal/errdefs"
)

// ExternalProvider answers $brooklyn:external(provider, key): Brooklyn's
// external configuration suppliers (secrets kept out of blueprints).
type ExternalProvider interface {
	Lookup(key string) (string, error)
}

// EnvPrefix is what the env provider's keys start with: a blueprint
// reads only the variables of clocker serve meant for blueprints, never
// its own settings or credentials.
const EnvPrefix = "CLOCKER_BP_"

// EnvProvider reads the environment of clocker serve, variables named
// CLOCKER_BP_* only.
type EnvProvider struct{}

// Lookup reads variable key.
func (EnvProvider) Lookup(key string) (string, error) {
	if !strings.HasPrefix(key, EnvPrefix) {
		return "", fmt.Errorf("the env provider serves only variables named %s*, not %q", EnvPrefix, key)
	}
	v, ok := os.LookupEnv(key)
	if !ok {
		return "", fmt.Errorf("environment variable %s is not set on the Clocker server", key)
	}
	return v, nil
}

var _ ExternalProvider = EnvProvider{}

// external evaluates $brooklyn:external(provider, key).
func (m *Manager) externalValue(c *camp.Call) (string, error) {
	provider, key := str(c.Args[0]), str(c.Args[1])
	p, ok := m.external[provider]
	if !ok {
		names := make([]string, 0, len(m.external))
		for k := range m.external {
			names = append(names, k)
		}
		return "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("$brooklyn:external provider %q is not configured (known: %s)", provider, strings.Join(names, ", ")))
	}
	v, err := p.Lookup(key)
	if err != nil {
		return "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("$brooklyn:external(%q, %q): %v", provider, key, err))
	}
	return v, nil
}

// checkExternal refuses a plan whose external values cannot be read now.
func (m *Manager) checkExternal(plan *camp.Plan) error {
	return plan.EachCall(func(n *camp.Node, c *camp.Call) error {
		if c.Fn != "external" {
			return nil
		}
		if _, err := m.externalValue(c); err != nil {
			return errdefs.New(errdefs.ErrInvalid, n.Label()+": "+err.Error())
		}
		return nil
	})
}

// objectValue evaluates $brooklyn:object (the plan admits placement
// strategies only): a map of its type and config.
func objectValue(c *camp.Call) (any, error) {
	t, cfg, err := camp.ObjectSpec(c.Args[0])
	if err != nil {
		return nil, errdefs.New(errdefs.ErrInvalid, err.Error())
	}
	out := map[string]any{"type": t}
	for k, v := range cfg {
		out[k] = v
	}
	return out, nil
}

// withMemberSpecs are the plan's nodes and its clusters' member specs.
func withMemberSpecs(plan *camp.Plan) []*camp.Node {
	out := append([]*camp.Node(nil), plan.Nodes...)
	for _, n := range plan.Nodes {
		if n.MemberSpec != nil {
			out = append(out, n.MemberSpec)
		}
	}
	return out
}
