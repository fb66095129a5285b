package scheduler

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Chain is an ordered list of strategy elements, each a filter, a ranker or
// both, as written: "max-containers=12,breadth-first".
type Chain struct {
	elems      []string // as written, for String
	filters    []Filter
	rankers    []Ranker
	needsUsage bool
}

// String is the chain as written.
func (c *Chain) String() string { return strings.Join(c.elems, ",") }

// NeedsUsage reports whether the chain reads sampled CPU or memory use.
func (c *Chain) NeedsUsage() bool { return c.needsUsage }

// Filters are the chain's filters, in order.
func (c *Chain) Filters() []Filter { return c.filters }

// Rankers are the chain's rankers, in order.
func (c *Chain) Rankers() []Ranker { return c.rankers }

// argKind says whether an element takes an option.
type argKind int

const (
	argNone argKind = iota
	argRequired
	argOptional
)

// element is one entry of the registry: its option and its constructor.
type element struct {
	arg   argKind
	usage bool   // reads sampled usage
	help  string // the option's form, for errors
	mk    func(name, arg string) ([]Filter, []Ranker, error)
}

// elements are the built-in strategy elements by name.
var elements = map[string]element{
	"random":           {mk: mkRandom},
	"depth-first":      {mk: mkDepthFirst},
	"breadth-first":    {mk: mkBreadthFirst},
	"least-containers": {mk: mkLeastContainers},
	"lowest-cpu-usage": {mk: mkLowestCPU, usage: true},
	"least-memory":     {mk: mkLeastMemory, usage: true},
	"max-containers":   {arg: argRequired, help: "max-containers=N", mk: mkMaxContainers},
	"max-cpu-usage":    {arg: argRequired, help: "max-cpu-usage=F (0..1, or a percentage such as 80%)", mk: mkMaxCPU, usage: true},
	"label":            {arg: argRequired, help: "label=KEY or label=KEY=VALUE", mk: mkLabel},
	"hostname":         {arg: argRequired, help: "hostname=REGEX", mk: mkHostname},
	"group":            {arg: argOptional, help: "group or group=exclusive", mk: mkGroup},
	"geographic":       {arg: argOptional, help: "geographic[=spread|spread-region|zone:Z|region:R|prefer-zone:Z|prefer-region:R]", mk: mkGeographic},
	"affinity":         {arg: argRequired, help: "affinity=[NOT] TYPE|NAME|ID|APPLICATION|EMPTY [param]", mk: mkAffinity},
}

// aliases are Swarm's names for Clocker's strategies.
var aliases = map[string]string{
	"binpack": "depth-first",
	"spread":  "breadth-first",
}

// knownNames lists every element name and alias, sorted.
func knownNames() string {
	names := make([]string, 0, len(elements)+len(aliases))
	for n := range elements {
		names = append(names, n)
	}
	for a, n := range aliases {
		names = append(names, a+" ("+n+")")
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func lookup(name string) (element, bool) {
	if n, ok := aliases[name]; ok {
		name = n
	}
	e, ok := elements[name]
	return e, ok
}

// ParseChain parses a strategy chain: NAME[=OPTION] entries separated by
// commas, in order. A comma inside an option (a regex such as h{1,3}) stays
// with it when what follows is not a known name.
func ParseChain(spec string) (*Chain, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, fmt.Errorf("empty placement strategy (known: %s)", knownNames())
	}
	var parts []string
	for _, p := range strings.Split(spec, ",") {
		name, _, _ := strings.Cut(strings.TrimSpace(p), "=")
		if _, ok := lookup(name); !ok && len(parts) > 0 && strings.Contains(parts[len(parts)-1], "=") {
			parts[len(parts)-1] += "," + p
			continue
		}
		parts = append(parts, strings.TrimSpace(p))
	}
	c := &Chain{}
	for _, p := range parts {
		name, arg, hasArg := strings.Cut(p, "=")
		name = strings.TrimSpace(name)
		e, ok := lookup(name)
		if !ok {
			return nil, fmt.Errorf("unknown placement strategy %q (known: %s)", name, knownNames())
		}
		switch {
		case e.arg == argNone && hasArg:
			return nil, fmt.Errorf("placement strategy %q takes no option (got %q)", name, arg)
		case e.arg == argRequired && (!hasArg || arg == ""):
			return nil, fmt.Errorf("placement strategy %q needs an option: %s", name, e.help)
		}
		fs, rs, err := e.mk(name, arg)
		if err != nil {
			return nil, fmt.Errorf("placement strategy %q: %v (want %s)", p, err, e.help)
		}
		c.elems = append(c.elems, p)
		c.filters = append(c.filters, fs...)
		c.rankers = append(c.rankers, rs...)
		c.needsUsage = c.needsUsage || e.usage
	}
	return c, nil
}

// --- generic shapes ----------------------------------------------------------

// nodeFilter is a filter given by a function.
type nodeFilter struct {
	name string
	keep func(req *Request, n *Node) (bool, Reason)
}

func (f nodeFilter) Name() string                              { return f.name }
func (f nodeFilter) Keep(req *Request, n *Node) (bool, Reason) { return f.keep(req, n) }

// nodeRanker scores each node on its own.
type nodeRanker struct {
	name  string
	rr    bool
	score func(req *Request, n *Node) float64
}

func (r nodeRanker) Name() string     { return r.name }
func (r nodeRanker) RoundRobin() bool { return r.rr }
func (r nodeRanker) Score(req *Request, nodes []*Node, scores []float64) {
	for i, n := range nodes {
		scores[i] = r.score(req, n)
	}
}

// reservedShare is the part of the host's CPUs and memory reserved once
// req is placed there, as Swarm weighed hosts: 0 (idle) to 2 (both full).
func reservedShare(req *Request, n *Node) float64 {
	w := 0.0
	if n.MemTotal > 0 {
		w += float64(n.ReservedMemory+req.Memory) / float64(n.MemTotal)
	}
	if n.NCPU > 0 {
		w += float64(n.ReservedNanoCPUs+req.NanoCPUs) / (float64(n.NCPU) * 1e9)
	}
	return w
}

// --- the elements ------------------------------------------------------------

func mkRandom(name, _ string) ([]Filter, []Ranker, error) {
	return nil, []Ranker{nodeRanker{name: name, score: func(*Request, *Node) float64 { return rand.Float64() }}}, nil
}

// depth-first fills the fullest host that still fits: most reserved, then
// most containers running.
func mkDepthFirst(name, _ string) ([]Filter, []Ranker, error) {
	return nil, []Ranker{
		nodeRanker{name: name + ":reserved", score: func(req *Request, n *Node) float64 { return reservedShare(req, n) }},
		nodeRanker{name: name + ":containers", score: func(_ *Request, n *Node) float64 { return float64(n.Running) }},
	}, nil
}

// breadth-first takes the emptiest host: least reserved, then fewest
// containers running (stopped ones are not load), then fewest containers;
// equal hosts take turns.
func mkBreadthFirst(name, _ string) ([]Filter, []Ranker, error) {
	return nil, []Ranker{
		nodeRanker{name: name + ":reserved", score: func(req *Request, n *Node) float64 { return -reservedShare(req, n) }},
		nodeRanker{name: name + ":running", score: func(_ *Request, n *Node) float64 { return -float64(n.Running) }},
		// Stopped containers break ties only: they take disk, not CPU.
		nodeRanker{name: name + ":containers", rr: true, score: func(_ *Request, n *Node) float64 { return -float64(n.Containers) }},
	}, nil
}

func mkLeastContainers(name, _ string) ([]Filter, []Ranker, error) {
	return nil, []Ranker{nodeRanker{name: name, score: func(_ *Request, n *Node) float64 { return -float64(n.Containers) }}}, nil
}

// lowest-cpu-usage prefers the host whose sampled CPU use is lowest; hosts
// not sampled yet rank as if busy.
func mkLowestCPU(name, _ string) ([]Filter, []Ranker, error) {
	return nil, []Ranker{nodeRanker{name: name, score: func(_ *Request, n *Node) float64 {
		if !n.Usage.Known {
			return -1
		}
		return -n.Usage.CPU
	}}}, nil
}

// least-memory prefers the host with the largest share of memory free:
// sampled use when known, else reservations.
func mkLeastMemory(name, _ string) ([]Filter, []Ranker, error) {
	return nil, []Ranker{nodeRanker{name: name, score: func(_ *Request, n *Node) float64 {
		if n.MemTotal <= 0 {
			return 0
		}
		used := n.ReservedMemory
		if n.Usage.Known {
			used = n.Usage.Memory
		}
		return 1 - float64(used)/float64(n.MemTotal)
	}}}, nil
}

func mkMaxContainers(_, arg string) ([]Filter, []Ranker, error) {
	limit, err := strconv.Atoi(arg)
	if err != nil || limit < 1 {
		return nil, nil, fmt.Errorf("%q is not a positive number", arg)
	}
	return []Filter{nodeFilter{name: FilterMaxContainers, keep: func(_ *Request, n *Node) (bool, Reason) {
		if n.Containers >= limit {
			return false, Reason(fmt.Sprintf("%d containers, max-containers=%d", n.Containers, limit))
		}
		return true, ""
	}}}, nil, nil
}

func mkMaxCPU(_, arg string) ([]Filter, []Ranker, error) {
	s := strings.TrimSpace(arg)
	pct := strings.HasSuffix(s, "%")
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if pct {
		f /= 100
	}
	if err != nil || f <= 0 || f > 1 {
		return nil, nil, fmt.Errorf("%q is not a CPU share in (0, 1]", arg)
	}
	return []Filter{nodeFilter{name: FilterMaxCPUUsage, keep: func(_ *Request, n *Node) (bool, Reason) {
		if n.Usage.Known && n.Usage.CPU > f {
			return false, Reason(fmt.Sprintf("CPU usage %.0f%% over max-cpu-usage=%s", n.Usage.CPU*100, arg))
		}
		return true, ""
	}}}, nil, nil
}

func mkLabel(_, arg string) ([]Filter, []Ranker, error) {
	key, val, hasVal := strings.Cut(arg, "=")
	if key == "" {
		return nil, nil, fmt.Errorf("empty label key")
	}
	return []Filter{nodeFilter{name: FilterLabel, keep: func(_ *Request, n *Node) (bool, Reason) {
		v, ok := n.Labels[key]
		switch {
		case !ok:
			return false, Reason("engine label " + key + " missing")
		case hasVal && v != val:
			return false, Reason(fmt.Sprintf("engine label %s=%s, not %s", key, v, val))
		}
		return true, ""
	}}}, nil, nil
}

func mkHostname(_, arg string) ([]Filter, []Ranker, error) {
	re, err := regexp.Compile(arg)
	if err != nil {
		return nil, nil, err
	}
	return []Filter{nodeFilter{name: FilterHostname, keep: func(_ *Request, n *Node) (bool, Reason) {
		if !re.MatchString(n.Name) {
			return false, Reason("name does not match hostname=" + arg)
		}
		return true, ""
	}}}, nil, nil
}

// group keeps the containers of one group (application, compose project)
// together: hosts already running some rank first. With exclusive, groups
// also keep apart: a host running another group's containers is turned
// down.
func mkGroup(name, arg string) ([]Filter, []Ranker, error) {
	if arg != "" && arg != "exclusive" {
		return nil, nil, fmt.Errorf("unknown option %q", arg)
	}
	together := nodeRanker{name: name, score: func(req *Request, n *Node) float64 {
		if req.Group == "" {
			return 0
		}
		k := 0
		for i := range n.Items {
			if n.Items[i].Group == req.Group {
				k++
			}
		}
		return float64(k)
	}}
	if arg != "exclusive" {
		return nil, []Ranker{together}, nil
	}
	apart := nodeFilter{name: FilterGroup, keep: func(req *Request, n *Node) (bool, Reason) {
		for i := range n.Items {
			if g := n.Items[i].Group; g != req.Group {
				if g == "" {
					g = "no group"
				}
				mine := req.Group
				if mine == "" {
					mine = "no group"
				}
				return false, Reason(fmt.Sprintf("runs containers of %s (group=exclusive; this one is of %s)", quoteGroup(g), quoteGroup(mine)))
			}
		}
		return true, ""
	}}
	return []Filter{apart}, []Ranker{together}, nil
}

func quoteGroup(g string) string {
	if g == "no group" {
		return g
	}
	return "group " + strconv.Quote(g)
}

// Engine labels geographic placement reads.
const (
	LabelRegion = "region"
	LabelZone   = "zone"
)

// geographic works on hosts labelled region= and zone=: it requires a
// zone or region, prefers one, or spreads a group (else an image) across
// zones or regions.
func mkGeographic(name, arg string) ([]Filter, []Ranker, error) {
	mode, val, _ := strings.Cut(arg, ":")
	switch mode {
	case "", "spread", "spread-zone", "spread-region":
		key := LabelZone
		if mode == "spread-region" {
			key = LabelRegion
		}
		return nil, []Ranker{zoneSpread{name: name, key: key}}, nil
	case "zone", "region":
		if val == "" {
			return nil, nil, fmt.Errorf("%s: needs a value", mode)
		}
		return []Filter{nodeFilter{name: FilterGeographic, keep: func(_ *Request, n *Node) (bool, Reason) {
			if v, ok := n.Labels[mode]; !ok || v != val {
				have := "none"
				if ok {
					have = v
				}
				return false, Reason(fmt.Sprintf("%s %s required, host is in %s", mode, val, have))
			}
			return true, ""
		}}}, nil, nil
	case "prefer-zone", "prefer-region":
		key := strings.TrimPrefix(mode, "prefer-")
		if val == "" {
			return nil, nil, fmt.Errorf("%s: needs a value", mode)
		}
		return nil, []Ranker{nodeRanker{name: name, score: func(_ *Request, n *Node) float64 {
			if n.Labels[key] == val {
				return 1
			}
			return 0
		}}}, nil
	}
	return nil, nil, fmt.Errorf("unknown option %q", arg)
}

// zoneSpread prefers the zone holding the fewest of the request's group
// (or image) among the feasible hosts.
type zoneSpread struct{ name, key string }

func (z zoneSpread) Name() string { return z.name }
func (z zoneSpread) Score(req *Request, nodes []*Node, scores []float64) {
	count := map[string]int{}
	for _, n := range nodes {
		count[n.Labels[z.key]] += kin(req, n)
	}
	for i, n := range nodes {
		scores[i] = -float64(count[n.Labels[z.key]])
	}
}

// kin counts the containers of n that belong with req: same group, or
// same image when req has no group.
func kin(req *Request, n *Node) int {
	k := 0
	for i := range n.Items {
		c := &n.Items[i]
		if (req.Group != "" && c.Group == req.Group) || (req.Group == "" && req.Image != "" && c.Image == req.Image) {
			k++
		}
	}
	return k
}

func mkAffinity(_, arg string) ([]Filter, []Ranker, error) {
	r, err := ParseRule(arg)
	if err != nil {
		return nil, nil, err
	}
	return []Filter{nodeFilter{name: FilterRule, keep: func(req *Request, n *Node) (bool, Reason) {
		if !r.Holds(req, n) {
			return false, Reason(fmt.Sprintf("affinity rule %q not met", &r))
		}
		return true, ""
	}}}, nil, nil
}
