package scheduler

import (
	"fmt"
	"path"
	"strings"
)

// RuleType is what a Clocker affinity rule looks for on a host.
type RuleType string

// Clocker's rule types.
const (
	// RuleType matches a container of an image (repository, glob); without
	// a parameter, of the request's image.
	RuleTypeImage RuleType = "TYPE"
	// RuleName matches a container by name (glob).
	RuleName RuleType = "NAME"
	// RuleID matches a container by ID prefix.
	RuleID RuleType = "ID"
	// RuleApplication matches a container of an application (group,
	// compose project); without a parameter, of the request's.
	RuleApplication RuleType = "APPLICATION"
	// RuleEmpty matches a host without containers.
	RuleEmpty RuleType = "EMPTY"
)

// Rule is one of Clocker's affinity rules: [NOT] TYPE|NAME|ID|APPLICATION|EMPTY [param].
// A host must meet every rule of a request.
type Rule struct {
	Not   bool
	Type  RuleType
	Param string
}

// ParseRules parses rules separated by newlines or ";".
func ParseRules(s string) ([]Rule, error) {
	var out []Rule
	for _, line := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == ';' }) {
		if strings.TrimSpace(line) == "" {
			continue
		}
		r, err := ParseRule(line)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// ParseRule parses one rule, e.g. "NOT TYPE redis" or "EMPTY".
func ParseRule(s string) (Rule, error) {
	var r Rule
	f := strings.Fields(s)
	if len(f) > 0 && strings.EqualFold(f[0], "NOT") {
		r.Not, f = true, f[1:]
	}
	if len(f) == 0 {
		return r, fmt.Errorf("affinity rule %q: want [NOT] TYPE|NAME|ID|APPLICATION|EMPTY [param]", s)
	}
	r.Type = RuleType(strings.ToUpper(f[0]))
	if len(f) > 2 {
		return r, fmt.Errorf("affinity rule %q: one parameter at most", s)
	}
	if len(f) == 2 {
		r.Param = f[1]
	}
	switch r.Type {
	case RuleTypeImage, RuleApplication:
	case RuleName, RuleID:
		if r.Param == "" {
			return r, fmt.Errorf("affinity rule %q: %s needs a parameter", s, r.Type)
		}
	case RuleEmpty:
		if r.Param != "" {
			return r, fmt.Errorf("affinity rule %q: EMPTY takes no parameter", s)
		}
	default:
		return r, fmt.Errorf("affinity rule %q: unknown type %q (known: TYPE, NAME, ID, APPLICATION, EMPTY)", s, f[0])
	}
	if r.Param != "" {
		if _, err := path.Match(r.Param, ""); err != nil {
			return r, fmt.Errorf("affinity rule %q: bad pattern: %v", s, err)
		}
	}
	return r, nil
}

func (r *Rule) String() string {
	s := string(r.Type)
	if r.Param != "" {
		s += " " + r.Param
	}
	if r.Not {
		s = "NOT " + s
	}
	return s
}

// Holds reports whether host n meets the rule for req.
func (r *Rule) Holds(req *Request, n *Node) bool {
	return r.found(req, n) != r.Not
}

func (r *Rule) found(req *Request, n *Node) bool {
	if r.Type == RuleEmpty {
		return n.Containers == 0
	}
	want := r.Param
	switch {
	case want != "":
	case r.Type == RuleTypeImage:
		want = imageRepo(req.Image)
	case r.Type == RuleApplication:
		want = req.Group
	}
	if want == "" {
		return false
	}
	for i := range n.Items {
		c := &n.Items[i]
		var ok bool
		switch r.Type {
		case RuleTypeImage:
			ok = globMatch(want, imageRepo(c.Image)) || globMatch(want, c.Image)
		case RuleName:
			ok = globMatch(want, c.Name)
		case RuleID:
			ok = strings.HasPrefix(c.ID, want)
		case RuleApplication:
			ok = c.Group != "" && globMatch(want, c.Group)
		}
		if ok {
			return true
		}
	}
	return false
}

func globMatch(pattern, s string) bool {
	ok, _ := path.Match(pattern, s)
	return ok
}
