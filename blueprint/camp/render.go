package camp

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Render writes the plan as text: each entity with its type, config,
// sensors and waits, then the start-up order. Golden tests compare it.
func (p *Plan) Render() string {
	var b strings.Builder
	var node func(n *Node, indent string)
	node = func(n *Node, indent string) {
		fmt.Fprintf(&b, "%s%s %q type=%s kind=%s", indent, n.EntityID, n.Name, n.Type, n.Kind)
		if n.PlanID != "" {
			fmt.Fprintf(&b, " id=%s", n.PlanID)
		}
		if n.Image != "" {
			fmt.Fprintf(&b, " image=%s", n.Image)
		}
		b.WriteByte('\n')
		if len(n.Locations) > 0 {
			fmt.Fprintf(&b, "%s  locations: %s\n", indent, strings.Join(n.Locations, ", "))
		}
		for _, prm := range n.Parameters {
			fmt.Fprintf(&b, "%s  parameter %s (%s) default=%s\n", indent, prm.Name, prm.Type, renderArg(prm.Default))
		}
		for _, k := range slices.Sorted(maps.Keys(n.Config)) {
			fmt.Fprintf(&b, "%s  config %s = %s\n", indent, k, renderValue(n.Config[k]))
		}
		for _, s := range n.Initializers {
			fmt.Fprintf(&b, "%s  sensor %s (%s) = %s\n", indent, s.Name, s.TargetType, renderValue(s.Value))
		}
		for _, a := range n.Policies {
			fmt.Fprintf(&b, "%s  policy %s %s\n", indent, a.Type, renderValue(a.Config))
		}
		for _, a := range n.Enrichers {
			fmt.Fprintf(&b, "%s  enricher %s %s\n", indent, a.Type, renderValue(a.Config))
		}
		if n.Strategy != "" {
			fmt.Fprintf(&b, "%s  placement strategy %s\n", indent, n.Strategy)
		}
		if n.Affinity != "" {
			fmt.Fprintf(&b, "%s  placement affinity %s\n", indent, strings.ReplaceAll(n.Affinity, "\n", "; "))
		}
		if len(n.Networks) > 0 {
			fmt.Fprintf(&b, "%s  networks %s\n", indent, strings.Join(n.Networks, ", "))
		}
		if n.Kind == KindNetwork {
			name, _ := NetworkName(n)
			fmt.Fprintf(&b, "%s  network %s\n", indent, name)
		}
		if n.Web != nil {
			fmt.Fprintf(&b, "%s  balances %s -> members' port %d\n", indent, n.Web.Controller.Name, n.Web.MemberPort)
		}
		if n.MemberSpec != nil {
			fmt.Fprintf(&b, "%s  memberSpec:\n", indent)
			node(n.MemberSpec, indent+"    ")
		}
		for _, w := range n.Waits {
			fmt.Fprintf(&b, "%s  waits %s.%s\n", indent, w.Target.Label(), w.Sensor)
		}
		for _, c := range n.Children {
			node(c, indent+"  ")
		}
	}
	node(p.Root, "")
	for i, layer := range p.Order {
		names := make([]string, len(layer))
		for j, n := range layer {
			names[j] = n.Label()
		}
		fmt.Fprintf(&b, "start %d: %s\n", i, strings.Join(names, ", "))
	}
	return b.String()
}

func renderValue(v any) string {
	if c, ok := v.(*Call); ok {
		return c.String()
	}
	return renderArg(v)
}
