package deploy

import (
	"fmt"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// Host is a host of the fleet as placement preferences see it.
type Host struct {
	Name   string
	Labels map[string]string
}

// constraintEnv maps deploy.placement.constraints (Swarm mode's syntax)
// onto Clocker's Swarm-classic constraint env entries, which the front
// door's placement reads and removes before the engine sees them:
//
//	node.hostname==h1      → constraint:node==h1
//	node.labels.K==V       → constraint:K==V   (engine labels: Clocker's
//	engine.labels.K==V     → constraint:K==V    hosts have no other kind)
//
// and the same with !=. Anything else is refused, naming it.
func constraintEnv(service string, constraints []string) ([]string, error) {
	var out []string
	for _, c := range constraints {
		key, op, value, err := splitConstraint(c)
		if err != nil {
			return nil, invalid("service %s: constraint %q: %v", service, c, err)
		}
		k, err := placementKey(key)
		if err != nil {
			return nil, invalid("service %s: constraint %q: %v", service, c, err)
		}
		out = append(out, "constraint:"+k+op+value)
	}
	return out, nil
}

func splitConstraint(c string) (key, op, value string, err error) {
	for _, o := range []string{"==", "!="} {
		if k, v, ok := strings.Cut(c, o); ok {
			key, value = strings.TrimSpace(k), strings.TrimSpace(v)
			if key == "" || value == "" {
				return "", "", "", fmt.Errorf("want KEY==VALUE or KEY!=VALUE")
			}
			return key, o, value, nil
		}
	}
	return "", "", "", fmt.Errorf("want KEY==VALUE or KEY!=VALUE")
}

// placementKey is the Clocker constraint key of a Swarm-mode attribute.
func placementKey(attr string) (string, error) {
	switch {
	case attr == "node.hostname":
		return "node", nil
	case strings.HasPrefix(attr, "node.labels.") && len(attr) > len("node.labels."):
		return strings.TrimPrefix(attr, "node.labels."), nil
	case strings.HasPrefix(attr, "engine.labels.") && len(attr) > len("engine.labels."):
		return strings.TrimPrefix(attr, "engine.labels."), nil
	}
	return "", fmt.Errorf("Clocker places by node.hostname, node.labels.KEY and engine.labels.KEY, not %s", attr)
}

// spreadEnv maps deploy.placement.preferences (spread over a label) onto
// soft constraints, one per replica: the label's values among the fleet's
// hosts, sorted, are dealt out in turn, so replica n goes to a host whose
// value is the n-th (mod the number of values) when such a host fits.
// Hosts without the label are not aimed at. With no host carrying the
// label the preference changes nothing (as in Swarm).
func spreadEnv(service string, prefs []types.PlacementPreferences, fleet []Host, replica int) ([]string, error) {
	var out []string
	for _, p := range prefs {
		if p.Spread == "" {
			return nil, invalid("service %s: a placement preference must be spread: node.labels.KEY", service)
		}
		k, err := placementKey(p.Spread)
		if err != nil || k == "node" {
			return nil, invalid("service %s: preference spread: %s: Clocker spreads over node.labels.KEY or engine.labels.KEY", service, p.Spread)
		}
		seen := map[string]bool{}
		var values []string
		for _, h := range fleet {
			if v, ok := h.Labels[k]; ok && !seen[v] {
				seen[v] = true
				values = append(values, v)
			}
		}
		if len(values) == 0 {
			continue
		}
		sort.Strings(values)
		out = append(out, "constraint:"+k+"==~"+values[replica%len(values)])
	}
	return out, nil
}
