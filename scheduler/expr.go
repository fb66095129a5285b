package scheduler

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	lbl "github.com/clocker/clocker/internal/labels"
)

// Labels and environment prefixes placement reads from a create request.
const (
	// EnvConstraint and EnvAffinity prefix Swarm's expressions in Env
	// (-e constraint:node==h1); these entries never reach the engine.
	EnvConstraint = "constraint:"
	EnvAffinity   = "affinity:"
	// LabelConstraints and LabelAffinities hold JSON arrays of Swarm
	// expressions ("node==h1"), as Swarm wrote them.
	LabelConstraints = lbl.SwarmConstraints
	LabelAffinities  = lbl.SwarmAffinities
	// LabelStrategy chooses a strategy chain for one container.
	LabelStrategy = lbl.Strategy
	// LabelAffinity holds Clocker affinity rules, one per line or ";".
	LabelAffinity = lbl.Affinity
	// LabelGroup, LabelApplication and LabelComposeProject name a
	// container's group, in that order of precedence.
	LabelGroup          = lbl.Group
	LabelApplication    = lbl.Application
	LabelComposeProject = lbl.ComposeProject
)

// GroupOf is the group (application) of a container with these labels:
// io.clocker.group, else io.clocker.application, else its compose project.
func GroupOf(labels map[string]string) string {
	for _, k := range []string{LabelGroup, LabelApplication, LabelComposeProject} {
		if v := labels[k]; v != "" {
			return v
		}
	}
	return ""
}

// Expr is one of Swarm's constraint or affinity expressions:
// KEY==VALUE, KEY!=VALUE, soft with ==~ and !=~. VALUE is a glob (* and ?)
// or a /regular expression/.
type Expr struct {
	Key, Value string
	// Negate: the operator is !=.
	Negate bool
	// Soft: dropped when no host meets it.
	Soft bool
	re   *regexp.Regexp
	// literal is set when Value has no wildcard: matched by equality, which
	// is what most expressions are and far cheaper than a regexp.
	literal bool
}

var (
	exprKey   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.\-/]*$`)
	exprValue = regexp.MustCompile(`^[A-Za-z0-9:\-_\s.*()?+\[\]\\^$|/{},=@]+$`)
)

// ParseExpr parses "KEY==VALUE" (or !=, ==~, !=~).
func ParseExpr(s string) (Expr, error) {
	var e Expr
	eq, ne := strings.Index(s, "=="), strings.Index(s, "!=")
	var i int
	switch {
	case eq < 0 && ne < 0:
		return e, fmt.Errorf("expression %q: one of the operators ==, != (soft: ==~, !=~) is expected", s)
	case ne >= 0 && (eq < 0 || ne < eq):
		i, e.Negate = ne, true
	default:
		i = eq
	}
	e.Key, e.Value = strings.TrimSpace(s[:i]), strings.TrimSpace(s[i+2:])
	if v, ok := strings.CutPrefix(e.Value, "~"); ok {
		e.Value, e.Soft = v, true
	}
	if !exprKey.MatchString(e.Key) {
		return e, fmt.Errorf("expression %q: key %q is invalid", s, e.Key)
	}
	if e.Value == "" || !exprValue.MatchString(e.Value) {
		return e, fmt.Errorf("expression %q: value %q is invalid", s, e.Value)
	}
	pattern := ""
	e.literal = !strings.ContainsAny(e.Value, "*?") && !(len(e.Value) >= 2 && e.Value[0] == '/' && e.Value[len(e.Value)-1] == '/')
	if len(e.Value) >= 2 && e.Value[0] == '/' && e.Value[len(e.Value)-1] == '/' {
		pattern = e.Value[1 : len(e.Value)-1]
	} else {
		// A glob: * and ? are wildcards, the rest is literal.
		q := regexp.QuoteMeta(e.Value)
		q = strings.ReplaceAll(q, `\*`, ".*")
		q = strings.ReplaceAll(q, `\?`, ".")
		pattern = "^" + q + "$"
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return e, fmt.Errorf("expression %q: %v", s, err)
	}
	e.re = re
	return e, nil
}

// String is the expression as written.
func (e *Expr) String() string {
	op := "=="
	if e.Negate {
		op = "!="
	}
	if e.Soft {
		op += "~"
	}
	return e.Key + op + e.Value
}

func (e *Expr) match(s string) bool {
	if e.literal {
		return s == e.Value
	}
	return e.re.MatchString(s)
}

// holds turns "a match was found" into the expression's verdict.
func (e *Expr) holds(found bool) bool { return found != e.Negate }

// Placement is what a create request asks of placement, beyond resources.
type Placement struct {
	Constraints, Affinities []Expr
	Rules                   []Rule
	// Chain is the container's own strategy (io.clocker.strategy), or nil.
	Chain *Chain
	// Replicas is the spread of a compose service's replicas
	// (io.clocker.replicas): "" when not a replica or off.
	Replicas string
}

// ParsePlacement reads Swarm's constraint:/affinity: entries from env, the
// Swarm labels, io.clocker.affinity, io.clocker.strategy and
// io.clocker.replicas. It returns env
// without the constraint and affinity entries (the engine must not see
// them), or an error naming the first malformed expression.
func ParsePlacement(env []string, labels map[string]string) (Placement, []string, error) {
	var p Placement
	clean := make([]string, 0, len(env))
	for _, kv := range env {
		var (
			list *[]Expr
			rest string
			kind string
		)
		if v, ok := strings.CutPrefix(kv, EnvConstraint); ok {
			list, rest, kind = &p.Constraints, v, "constraint"
		} else if v, ok := strings.CutPrefix(kv, EnvAffinity); ok {
			list, rest, kind = &p.Affinities, v, "affinity"
		} else {
			clean = append(clean, kv)
			continue
		}
		e, err := ParseExpr(rest)
		if err != nil {
			return p, nil, fmt.Errorf("invalid %s: %v", kind, err)
		}
		if kind == "affinity" {
			if err := checkAffinityKey(e); err != nil {
				return p, nil, err
			}
		}
		*list = append(*list, e)
	}
	if len(clean) == len(env) {
		clean = env // nothing removed: the caller keeps the body as sent
	}
	for _, l := range []struct {
		label, kind string
		list        *[]Expr
	}{{LabelConstraints, "constraint", &p.Constraints}, {LabelAffinities, "affinity", &p.Affinities}} {
		raw, ok := labels[l.label]
		if !ok || strings.TrimSpace(raw) == "" {
			continue
		}
		var exprs []string
		if err := json.Unmarshal([]byte(raw), &exprs); err != nil {
			return p, nil, fmt.Errorf("invalid label %s: want a JSON array of expressions such as [\"node==h1\"]: %v", l.label, err)
		}
		for _, s := range exprs {
			e, err := ParseExpr(s)
			if err != nil {
				return p, nil, fmt.Errorf("invalid %s in label %s: %v", l.kind, l.label, err)
			}
			if l.kind == "affinity" {
				if err := checkAffinityKey(e); err != nil {
					return p, nil, err
				}
			}
			*l.list = append(*l.list, e)
		}
	}
	if raw := labels[LabelAffinity]; strings.TrimSpace(raw) != "" {
		rules, err := ParseRules(raw)
		if err != nil {
			return p, nil, fmt.Errorf("invalid label %s: %v", LabelAffinity, err)
		}
		p.Rules = rules
	}
	if raw := labels[LabelStrategy]; strings.TrimSpace(raw) != "" {
		c, err := ParseChain(raw)
		if err != nil {
			return p, nil, fmt.Errorf("invalid label %s: %v", LabelStrategy, err)
		}
		p.Chain = c
	}
	r, err := parseReplicas(labels)
	if err != nil {
		return p, nil, err
	}
	p.Replicas = r
	return p, clean, nil
}

// checkAffinityKey refuses the affinity keys that mean nothing on a
// container: only container, image and container label keys do.
func checkAffinityKey(e Expr) error {
	if e.Key == "node" {
		return fmt.Errorf("invalid affinity %s: affinities name a container, an image or a container label; use constraint:node==… for a host", &e)
	}
	return nil
}

// imageRepo is an image reference without its tag or digest.
func imageRepo(ref string) string {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndexByte(ref, ':'); i >= 0 && !strings.Contains(ref[i:], "/") {
		ref = ref[:i]
	}
	return ref
}
