package camp

import (
	"fmt"
	"strings"
)

// KindCluster is a DynamicCluster: members made from its memberSpec.
const KindCluster Kind = "cluster"

// MemberSpecKeys name a cluster's member spec ($brooklyn:entitySpec).
var MemberSpecKeys = []string{"memberSpec", "dynamiccluster.memberspec"}

// Adjunct is one of brooklyn.policies or brooklyn.enrichers: its type as
// written and its config (flag-style keys and brooklyn.config merged;
// values may hold *Call).
type Adjunct struct {
	Type   string
	Config map[string]any
}

func parseAdjuncts(key string, raw any) ([]Adjunct, error) {
	if raw == nil {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("%s must be a list, got %s", key, describe(raw))
	}
	var out []Adjunct
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s[%d]: want a map with type", key, i)
		}
		t, _ := m["policyType"].(string)
		if t == "" {
			t, _ = m["enricherType"].(string)
		}
		if t == "" {
			t, _ = m["type"].(string)
		}
		if t == "" {
			return nil, fmt.Errorf("%s[%d]: no type", key, i)
		}
		a := Adjunct{Type: t, Config: map[string]any{}}
		for k, v := range m {
			if k == "type" || k == "policyType" || k == "enricherType" || k == "brooklyn.config" {
				continue
			}
			a.Config[k] = v
		}
		if bc, ok := m["brooklyn.config"].(map[string]any); ok {
			for k, v := range bc {
				a.Config[k] = v
			}
		}
		for k, v := range a.Config {
			pv, err := ParseValue(v)
			if err != nil {
				return nil, fmt.Errorf("%s[%d] %s: %v", key, i, k, err)
			}
			a.Config[k] = pv
		}
		out = append(out, a)
	}
	return out, nil
}

// ShortType is a type's last dotted segment: what Clocker matches.
func ShortType(t string) string {
	if i := strings.LastIndex(t, "."); i >= 0 {
		return t[i+1:]
	}
	return t
}

// memberSpec takes the cluster's $brooklyn:entitySpec out of its config
// and parses it as a service whose parent is the cluster.
func memberSpec(n *Node) error {
	for _, k := range MemberSpecKeys {
		v, ok := n.Config[k]
		if !ok {
			continue
		}
		delete(n.Config, k)
		c, ok := v.(*Call)
		if !ok || c.Fn != "entitySpec" || c.Recv != nil || len(c.Args) != 1 {
			return fmt.Errorf("%s must be $brooklyn:entitySpec({type: …})", k)
		}
		spec, err := parseService(unparse(c.Args[0]), k)
		if err != nil {
			return err
		}
		if len(spec.Children) > 0 {
			return fmt.Errorf("%s: members with brooklyn.children are not supported", k)
		}
		spec.Parent = n
		n.MemberSpec = spec
	}
	return nil
}

// unparse turns a parsed value back into YAML-decoded form, so a spec
// given as a DSL argument can be read as a service.
func unparse(v any) any {
	switch t := v.(type) {
	case *Call:
		return t.String()
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = unparse(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = unparse(x)
		}
		return out
	}
	return v
}

// NewMember is a member of cluster n made from its MemberSpec with the
// given entity id (config shared: plans are read-only once parsed).
func (n *Node) NewMember(id string) *Node {
	s := *n.MemberSpec
	s.EntityID, s.Parent, s.Children = id, n, nil
	return &s
}
