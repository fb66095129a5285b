package placement

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/clocker/clocker/engineapi"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/fanout"
	"github.com/clocker/clocker/internal/keylock"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/scheduler"
)

// A volume or per-host network create takes the shape of a container
// create, without the steps that do not apply (no ports, no reservation:
// the object is made at once):
//
//	validate  the host the create names (HOST/NAME, io.clocker.host), the name
//	prepare   a census: how many objects of the kind each healthy host holds,
//	          and which hold the name already
//	place     the named host, else an existing holder (volumes), else
//	          PlaceObject (compose project, strategy, fewest objects)
//	bind      the name, locked fleet-wide until the caller's forward is done
//
// The caller forwards the create to the chosen host, then calls Done.

// NamedObject is a volume or per-host network create.
type NamedObject struct {
	// Kind is scheduler.KindVolume or scheduler.KindNetwork.
	Kind scheduler.Kind
	// Ref is the name as the client gave it: NAME, HOST/NAME, or "" (a
	// volume the engine names).
	Ref string
	// Labels are the object's labels as the client gave them.
	Labels map[string]string
	// List lists the names of the objects of the kind a host holds
	// (built-in networks included: they are left out here). The caller's,
	// so that a host's failure reads as its other answers do.
	List func(ctx context.Context, h *hosts.Host) ([]string, error)
}

// NamedPlacement is where a named object goes.
type NamedPlacement struct {
	// Host is where to send the create.
	Host *hosts.Host
	// Name is the object's name without its HOST/ prefix.
	Name string
	// Builtin is a built-in network's name: the create goes to the first
	// healthy host, for the engine's own refusal.
	Builtin bool
	unlock  func()
}

// Done releases the name; the object is made (or refused) by now.
func (p NamedPlacement) Done() {
	if p.unlock != nil {
		p.unlock()
	}
}

// PlaceNamed places a volume or per-host network create. A name that
// exists already is refused for a network (the engine's 409, which
// compose takes for "exists"); for a volume it is answered by the host
// that has it, as an engine answers (the existing volume), unless the
// create names another host.
func (p *Placer) PlaceNamed(ctx context.Context, o NamedObject) (NamedPlacement, error) {
	// validate
	want, name, err := p.requestedHost(o.Ref, o.Labels)
	if err != nil {
		return NamedPlacement{}, err
	}
	if o.Kind == scheduler.KindNetwork && name == "" {
		return NamedPlacement{}, errdefs.New(errdefs.ErrInvalid, "invalid name: ")
	}
	hs, err := p.fleet.Healthy()
	if err != nil {
		return NamedPlacement{}, err
	}
	if o.Kind == scheduler.KindNetwork && engineapi.IsBuiltinNetwork(name) {
		return NamedPlacement{Host: hs[0], Name: name, Builtin: true}, nil
	}
	// bind (taken first: the census must not miss a create of the name
	// under way)
	np := NamedPlacement{Name: name}
	if name != "" {
		np.unlock = LockName(o.Kind, name)
	}
	// prepare
	counts, holders, err := census(ctx, o.Kind, hs, name, o.List)
	if err != nil {
		np.Done()
		return NamedPlacement{}, err
	}
	// place
	switch {
	case o.Kind == scheduler.KindNetwork && len(holders) > 0:
		err = errdefs.New(errdefs.ErrConflict, fmt.Sprintf("network with name %s already exists", name))
	case want != nil && slices.Contains(holders, want):
		np.Host = want
	case want == nil && len(holders) > 0:
		np.Host = holders[0]
	case len(holders) > 0:
		err = errdefs.New(errdefs.ErrConflict, fmt.Sprintf("volume %s already exists on host %s", name, strings.Join(hostNames(holders), ", ")))
	default:
		np.Host, err = p.PlaceObject(ctx, hs, Object{Kind: o.Kind, Host: want, Project: o.Labels[labels.ComposeProject], Objects: counts})
	}
	if err != nil {
		np.Done()
		return NamedPlacement{}, err
	}
	return np, nil
}

// requestedHost is the host a create asks for: HOST/NAME or the label
// io.clocker.host=HOST (both must agree). It returns the bare name.
func (p *Placer) requestedHost(ref string, objLabels map[string]string) (*hosts.Host, string, error) {
	h, bare := p.fleet.Qualified(ref)
	want, ok := objLabels[labels.Host]
	if !ok {
		return h, bare, nil
	}
	if h != nil && h.Name != want {
		return nil, "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s names host %s but the label %s=%s names host %s", ref, h.Name, labels.Host, want, want))
	}
	lh, found := p.fleet.Host(want)
	if !found {
		return nil, "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("label %s=%s: no host %q in the fleet (hosts: %s)", labels.Host, want, want, strings.Join(p.fleet.Names(), ", ")))
	}
	return lh, bare, nil
}

// census asks every host of hs at once for its objects of the kind: how
// many each holds (built-in networks not counted), and which hold name,
// in hs's order. The first host's failure, in hs's order, is the error.
func census(ctx context.Context, kind scheduler.Kind, hs []*hosts.Host, name string, list func(context.Context, *hosts.Host) ([]string, error)) (map[string]int, []*hosts.Host, error) {
	answers := fanout.Each(hs, func(h *hosts.Host) ([]string, error) { return list(ctx, h) })
	if err := fanout.FirstError(answers); err != nil {
		return nil, nil, err
	}
	counts := map[string]int{}
	var holders []*hosts.Host
	for i, a := range answers {
		held := false
		for _, n := range a.Value {
			if kind == scheduler.KindNetwork && engineapi.IsBuiltinNetwork(n) {
				continue
			}
			counts[hs[i].Name]++
			held = held || name != "" && n == name
		}
		if held {
			holders = append(holders, hs[i])
		}
	}
	return counts, holders, nil
}

func hostNames(hs []*hosts.Host) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Name
	}
	return out
}

// LockName serializes the creates of one volume or network name, so that
// two concurrent creates cannot make it on two hosts (fleet networks
// take the network's lock too). It returns the release.
func LockName(kind scheduler.Kind, name string) func() {
	return nameLocks.Lock(kind.String() + "/" + name)
}

// nameLocks live with the process, keyed by kind and name.
var nameLocks keylock.Map
