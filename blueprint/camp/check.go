package camp

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Function arities: min, max (-1: any).
type arity struct{ min, max int }

// refFns name an entity; they take no receiver.
var refFns = map[string]arity{
	"self": {0, 0}, "parent": {0, 0}, "root": {0, 0}, "scopeRoot": {0, 0},
	"entity": {1, 1}, "component": {1, 2}, "sibling": {1, 1}, "child": {1, 1},
	"descendant": {1, 1}, "ancestor": {1, 1},
}

// onRefFns apply to a reference, or bare to self.
var onRefFns = map[string]arity{
	"attributeWhenReady": {1, 1}, "config": {1, 1}, "sensor": {1, 1}, "entityId": {0, 0},
}

// valueFns compute values; they take no receiver.
var valueFns = map[string]arity{
	"formatString": {1, -1}, "regexReplacement": {3, 3}, "urlEncode": {1, 1},
	"literal": {1, 1}, "object": {1, 1}, "entitySpec": {1, 1}, "external": {2, 2},
}

// Scopes of component(scope, id).
var scopes = map[string]bool{
	"global": true, "child": true, "parent": true, "sibling": true, "descendant": true,
	"ancestor": true, "root": true, "scopeRoot": true, "this": true,
}

// LinkKeys are the config keys whose values are links alias → entity:
// the linking container waits for the linked one's address.
var LinkKeys = []string{"links", "docker.container.links"}

// check validates every DSL value, resolves references, records waits,
// refuses cycles and orders start-up.
func (p *Plan) check() error {
	for _, n := range p.Nodes {
		for _, k := range slices.Sorted(maps.Keys(n.Config)) {
			if err := p.walk(n, n.Config[k], func(c *Call) error { return p.checkCall(n, c, &n.Waits) }); err != nil {
				return fmt.Errorf("%s: config %s: %v", n.Label(), k, err)
			}
		}
		// A member's config resolves from its place under the cluster;
		// its waits hold back that member only.
		if spec := n.MemberSpec; spec != nil {
			for _, k := range slices.Sorted(maps.Keys(spec.Config)) {
				if err := p.walk(spec, spec.Config[k], func(c *Call) error { return p.checkCall(spec, c, nil) }); err != nil {
					return fmt.Errorf("%s: memberSpec config %s: %v", n.Label(), k, err)
				}
			}
		}
		// A StaticSensor's waits hold back the sensor, not the start.
		for _, s := range n.Initializers {
			if err := p.walk(n, s.Value, func(c *Call) error { return p.checkCall(n, c, nil) }); err != nil {
				return fmt.Errorf("%s: sensor %s: %v", n.Label(), s.Name, err)
			}
		}
		for _, k := range LinkKeys {
			links, ok := n.Config[k].(map[string]any)
			if !ok {
				continue
			}
			for alias, v := range links {
				c, ok := v.(*Call)
				if ok {
					_, ok = refFns[c.Fn]
				}
				if !ok {
					return fmt.Errorf("%s: link %s: want an entity reference such as $brooklyn:component(\"db\")", n.Label(), alias)
				}
				t, err := p.Resolve(n, c)
				if err != nil {
					return fmt.Errorf("%s: link %s: %v", n.Label(), alias, err)
				}
				addWait(&n.Waits, Wait{Target: t, Sensor: "host.subnet.address"})
			}
		}
	}
	if err := p.checkNetworks(); err != nil {
		return err
	}
	if cyc := p.cycle(); cyc != nil {
		names := make([]string, len(cyc))
		for i, n := range cyc {
			names[i] = n.Label()
		}
		return fmt.Errorf("DSL cycle: %s wait on each other (attributeWhenReady)", strings.Join(names, " -> "))
	}
	p.order()
	return nil
}

// walk calls fn for every *Call in v (nested ones too).
func (p *Plan) walk(n *Node, v any, fn func(*Call) error) error {
	switch t := v.(type) {
	case *Call:
		if t.Fn == "literal" {
			return fn(t)
		}
		if err := fn(t); err != nil {
			return err
		}
		for _, a := range t.Args {
			if err := p.walk(n, a, fn); err != nil {
				return err
			}
		}
		if t.Recv != nil {
			return p.walk(n, t.Recv, fn)
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(t)) {
			if err := p.walk(n, t[k], fn); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range t {
			if err := p.walk(n, e, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkArity(c *Call, a arity) error {
	if len(c.Args) < a.min || (a.max >= 0 && len(c.Args) > a.max) {
		want := fmt.Sprint(a.min)
		if a.max != a.min {
			want = fmt.Sprintf("%d or more", a.min)
			if a.max > 0 {
				want = fmt.Sprintf("%d to %d", a.min, a.max)
			}
		}
		return fmt.Errorf("%s takes %s arguments, got %d in %s", c.Fn, want, len(c.Args), c)
	}
	return nil
}

func addWait(waits *[]Wait, w Wait) {
	if waits == nil {
		return
	}
	for _, o := range *waits {
		if o == w {
			return
		}
	}
	*waits = append(*waits, w)
}

// checkCall validates one call and, for attributeWhenReady, records the
// wait in waits (when not nil).
func (p *Plan) checkCall(n *Node, c *Call, waits *[]Wait) error {
	if a, ok := refFns[c.Fn]; ok {
		if c.Recv != nil {
			return fmt.Errorf("%s cannot follow another call in %s", c.Fn, c)
		}
		if err := checkArity(c, a); err != nil {
			return err
		}
		_, err := p.Resolve(n, c)
		return err
	}
	if a, ok := onRefFns[c.Fn]; ok {
		if c.Recv != nil {
			if _, isRef := refFns[c.Recv.Fn]; !isRef {
				return fmt.Errorf("%s must follow an entity reference (component, self, parent, …), not %s, in %s", c.Fn, c.Recv.Fn, c)
			}
		}
		if err := checkArity(c, a); err != nil {
			return err
		}
		if c.Fn == "attributeWhenReady" {
			sensor, ok := c.Args[0].(string)
			if !ok {
				return fmt.Errorf("attributeWhenReady wants a sensor name, in %s", c)
			}
			t := n
			if c.Recv != nil {
				var err error
				if t, err = p.Resolve(n, c.Recv); err != nil {
					return err
				}
			}
			addWait(waits, Wait{Target: t, Sensor: sensor})
		}
		return nil
	}
	if a, ok := valueFns[c.Fn]; ok {
		if c.Recv != nil {
			return fmt.Errorf("%s cannot follow another call in %s", c.Fn, c)
		}
		if err := checkArity(c, a); err != nil {
			return err
		}
		switch c.Fn {
		case "object":
			return checkObject(c)
		case "entitySpec":
			return fmt.Errorf("$brooklyn:entitySpec is supported only as the memberSpec of a DynamicCluster or ControlledDynamicWebAppCluster")
		case "external":
			for _, a := range c.Args {
				if _, ok := a.(string); !ok {
					return fmt.Errorf("external wants a provider name and a key (strings), in %s", c)
				}
			}
		case "formatString":
			if _, ok := c.Args[0].(string); !ok {
				if _, dsl := c.Args[0].(*Call); !dsl {
					return fmt.Errorf("formatString wants a pattern string first, in %s", c)
				}
			}
		}
		return nil
	}
	return fmt.Errorf("unknown DSL function %s in %s", c.Fn, c)
}

// Resolve finds the entity a reference call names, from n.
func (p *Plan) Resolve(n *Node, c *Call) (*Node, error) {
	if c.Recv != nil {
		return nil, fmt.Errorf("%s is not an entity reference", c)
	}
	arg := func(i int) (string, error) {
		switch s := c.Args[i].(type) {
		case string:
			return s, nil
		case int:
			return fmt.Sprint(s), nil
		}
		return "", fmt.Errorf("%s wants a string argument", c)
	}
	switch c.Fn {
	case "self":
		return n, nil
	case "parent":
		if n.Parent == nil {
			return nil, fmt.Errorf("%s: %s has no parent", c, n.Label())
		}
		return n.Parent, nil
	case "root", "scopeRoot":
		return p.Root, nil
	}
	scope := c.Fn
	var id string
	var err error
	switch {
	case c.Fn == "component" && len(c.Args) == 2:
		if scope, err = arg(0); err != nil {
			return nil, err
		}
		if !scopes[scope] {
			return nil, fmt.Errorf("component scope %q unknown (known: global, child, parent, sibling, descendant, ancestor, root, scopeRoot, this), in %s", scope, c)
		}
		id, err = arg(1)
	default:
		if c.Fn == "component" || c.Fn == "entity" {
			scope = "global"
		}
		id, err = arg(0)
	}
	if err != nil {
		return nil, err
	}
	var cands []*Node
	switch scope {
	case "global":
		cands = p.Nodes
	case "child":
		cands = n.Children
	case "sibling":
		if n.Parent != nil {
			for _, s := range n.Parent.Children {
				if s != n {
					cands = append(cands, s)
				}
			}
		}
	case "descendant":
		cands = descendants(n)
	case "ancestor":
		for a := n.Parent; a != nil; a = a.Parent {
			cands = append(cands, a)
		}
	case "parent":
		if n.Parent != nil {
			cands = []*Node{n.Parent}
		}
	case "root", "scopeRoot":
		cands = []*Node{p.Root}
	case "this":
		cands = []*Node{n}
	}
	// The YAML id first, then the entity id.
	for _, cand := range cands {
		if cand.PlanID == id {
			return cand, nil
		}
	}
	for _, cand := range cands {
		if cand.EntityID == id {
			return cand, nil
		}
	}
	return nil, fmt.Errorf("component %q not found (scope %s, from %s) in %s", id, scope, n.Label(), c)
}

func descendants(n *Node) []*Node {
	var out []*Node
	for _, c := range n.Children {
		out = append(out, c)
		out = append(out, descendants(c)...)
	}
	return out
}

// staticValue is the StaticSensor value n publishes as sensor, if any.
func staticValue(n *Node, sensor string) (any, bool) {
	for _, s := range n.Initializers {
		if s.Name == sensor {
			return s.Value, true
		}
	}
	return nil, false
}

// edges are the entities n's start really waits for: a wait on another
// entity's StaticSensor only needs what that sensor's value waits for
// (static sensors are published when the entity is made, before it
// starts).
func (p *Plan) edges(n *Node) []*Node {
	var out []*Node
	seen := map[*Node]bool{}
	var add func(from *Node, w Wait, depth int)
	add = func(from *Node, w Wait, depth int) {
		if v, ok := staticValue(w.Target, w.Sensor); ok && depth < len(p.Nodes)+1 {
			_ = p.walk(w.Target, v, func(c *Call) error {
				if c.Fn == "attributeWhenReady" {
					t := w.Target
					if c.Recv != nil {
						t, _ = p.Resolve(w.Target, c.Recv)
					}
					if t != nil {
						add(w.Target, Wait{Target: t, Sensor: c.Args[0].(string)}, depth+1)
					}
				}
				return nil
			})
			return
		}
		if !seen[w.Target] {
			seen[w.Target] = true
			out = append(out, w.Target)
		}
	}
	for _, w := range n.Waits {
		add(n, w, 0)
	}
	return out
}

// cycle returns the entities of a wait cycle (first repeated at the end),
// or nil.
func (p *Plan) cycle() []*Node {
	const (
		white = iota
		grey
		black
	)
	color := map[*Node]int{}
	var stack []*Node
	var found []*Node
	var visit func(n *Node) bool
	visit = func(n *Node) bool {
		color[n] = grey
		stack = append(stack, n)
		for _, t := range p.edges(n) {
			switch color[t] {
			case grey:
				for i, s := range stack {
					if s == t {
						found = append(append([]*Node{}, stack[i:]...), t)
						return true
					}
				}
			case white:
				if visit(t) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return false
	}
	for _, n := range p.Nodes {
		if color[n] == white && visit(n) {
			return found
		}
	}
	return nil
}

// order layers the entities: layer k waits only on layers before it.
func (p *Plan) order() {
	level := map[*Node]int{}
	var depth func(n *Node) int
	depth = func(n *Node) int {
		if d, ok := level[n]; ok {
			return d
		}
		d := 0
		for _, t := range p.edges(n) {
			d = max(d, depth(t)+1)
		}
		level[n] = d
		return d
	}
	p.Order = nil
	for _, n := range p.Nodes {
		d := depth(n)
		for len(p.Order) <= d {
			p.Order = append(p.Order, nil)
		}
		p.Order[d] = append(p.Order[d], n)
	}
}
