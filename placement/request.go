package placement

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/clocker/clocker/admission"
	"github.com/clocker/clocker/engineapi"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/scheduler"
)

// ParseRequest reads what placement needs from a create body: resources,
// published host ports, labels, and the Swarm and Clocker expressions. It
// returns the env without the constraint:/affinity: entries and whether
// any were removed. A malformed expression or a negative resource is
// ErrInvalid (400).
func ParseRequest(name string, spec *container.CreateRequest) (scheduler.Request, []string, bool, error) {
	req := scheduler.Request{Kind: scheduler.KindContainer, Name: name, Image: spec.Image, Labels: spec.Labels}
	pl, env, err := scheduler.ParsePlacement(spec.Env, spec.Labels)
	if err != nil {
		return req, nil, false, errdefs.New(errdefs.ErrInvalid, err.Error())
	}
	req.Constraints, req.Affinities, req.Rules, req.Chain, req.Replicas = pl.Constraints, pl.Affinities, pl.Rules, pl.Chain, pl.Replicas
	req.Group = scheduler.GroupOf(spec.Labels)
	if hc := spec.HostConfig; hc != nil {
		if hc.Memory < 0 || hc.NanoCPUs < 0 || hc.CPUShares < 0 {
			return req, nil, false, errdefs.New(errdefs.ErrInvalid, "memory, CPUs and CPU shares cannot be negative")
		}
		// CPU shares are a weight and reserve nothing (not CPUs, as Swarm
		// classic read them); --cpus and --cpu-quota do.
		req.Memory = hc.Memory
		req.NanoCPUs = hosts.ReservedNanoCPUs(hc.NanoCPUs, hc.CPUQuota, hc.CPUPeriod)
		if hc.NetworkMode != "host" {
			seen := map[scheduler.Port]bool{}
			for port, bs := range hc.PortBindings {
				for _, b := range bs {
					if p, ok := hostPort(b.HostPort, string(port.Proto())); ok && !seen[p] {
						seen[p] = true
						req.Ports = append(req.Ports, p)
					}
				}
			}
		}
	}
	return req, env, len(env) != len(spec.Env), nil
}

// Pins lists the hosts a container must share with what it uses: its
// named volumes, --volumes-from and container: namespaces (--link on the
// default bridge is a preference: see LinkPreferences). (A user network's host is the fleet-network
// step's to pin.)
func Pins(ctx context.Context, fleet *hosts.Fleet, spec *container.CreateRequest) ([]scheduler.Pin, error) {
	var pins []scheduler.Pin
	pinContainer := func(ref, why string) error {
		h, _, err := fleet.Resolve(ctx, ref)
		if err != nil {
			return err
		}
		pins = append(pins, scheduler.Pin{Host: h.Name, Reason: fmt.Sprintf("container %s (%s)", ref, why)})
		return nil
	}
	hc := spec.HostConfig
	if hc == nil {
		hc = &container.HostConfig{}
	}
	for _, vf := range hc.VolumesFrom {
		ref, _, _ := strings.Cut(vf, ":")
		if err := pinContainer(ref, "--volumes-from"); err != nil {
			return nil, err
		}
	}
	for _, mode := range []string{string(hc.NetworkMode), string(hc.PidMode), string(hc.IpcMode)} {
		if ref, ok := strings.CutPrefix(mode, "container:"); ok {
			if err := pinContainer(ref, "shared namespace"); err != nil {
				return nil, err
			}
		}
	}
	for _, vol := range namedVolumes(hc) {
		if h := holderOf(ctx, fleet, "/volumes/"+url.PathEscape(vol)); h != nil {
			pins = append(pins, scheduler.Pin{Host: h.Name, Reason: "volume " + vol})
		}
	}
	return pins, nil
}

// LinkPreferences are soft constraints (node==~HOST) to the hosts of the
// containers a create links to on the default bridge: it goes where they
// run when it fits there, as one engine would serve it; elsewhere the
// legacy-links step (sdn/fleetnet) serves the links across hosts. A link
// to a container that does not exist is the engine's 400.
func LinkPreferences(ctx context.Context, fleet *hosts.Fleet, spec *container.CreateRequest) ([]scheduler.Expr, error) {
	var out []scheduler.Expr
	seen := map[string]bool{}
	for _, l := range engineapi.LegacyLinks(spec.HostConfig) {
		ref, _ := engineapi.ParseLink(l)
		h, _, err := fleet.Resolve(ctx, ref)
		if err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("could not get container for %s: %v", ref, err))
			}
			return nil, err
		}
		if seen[h.Name] {
			continue
		}
		seen[h.Name] = true
		e, err := scheduler.ParseExpr("node==~" + h.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// holderOf returns the first healthy host where GET path succeeds.
func holderOf(ctx context.Context, fleet *hosts.Fleet, path string) *hosts.Host {
	for _, h := range fleet.Hosts() {
		if !h.Healthy() {
			continue
		}
		if _, status, err := h.GetJSON(ctx, path, nil); err == nil && status == http.StatusOK {
			return h
		}
	}
	return nil
}

// namedVolumes are the named (not bind) volumes a container mounts.
func namedVolumes(hc *container.HostConfig) []string {
	var out []string
	for _, b := range hc.Binds {
		src, _, ok := strings.Cut(b, ":")
		if ok && src != "" && !strings.HasPrefix(src, "/") && !strings.HasPrefix(src, ".") {
			out = append(out, src)
		}
	}
	for _, m := range hc.Mounts {
		if m.Type == mount.TypeVolume && m.Source != "" {
			out = append(out, m.Source)
		}
	}
	return out
}

// RequestStep is the create pipeline's step that turns a create into a
// placement request: it validates (constraints, affinities, rules,
// resources) and prepares (pins).
type RequestStep struct {
	fleet *hosts.Fleet
}

// NewRequestStep returns the placement-request step for the fleet.
func NewRequestStep(fleet *hosts.Fleet) *RequestStep { return &RequestStep{fleet: fleet} }

// Name is the step's name: "placement-request".
func (*RequestStep) Name() string { return "placement-request" }

// Validate fills c.Request from the spec (name, image, labels, resources,
// published ports, group, constraints, affinities, rules, the container's
// own strategy, the compose replicas' spread) and removes the constraint:/affinity: entries from the
// env. A malformed expression or a negative resource is a 400; nothing
// outside c changes.
func (*RequestStep) Validate(c *admission.Create) error {
	req, env, changed, err := ParseRequest(c.Name, c.Spec)
	if err != nil {
		return err
	}
	r := &c.Request
	r.Kind = scheduler.KindContainer
	r.Name, r.Image, r.Labels, r.Group = req.Name, req.Image, req.Labels, req.Group
	r.Memory, r.NanoCPUs = req.Memory, req.NanoCPUs
	r.Ports = req.Ports
	r.Constraints, r.Affinities, r.Rules, r.Chain, r.Replicas = req.Constraints, req.Affinities, req.Rules, req.Chain, req.Replicas
	if changed {
		c.SetEnv(env)
	}
	return nil
}

// Prepare pins the request to the hosts of what the container uses (see
// Pins) and prefers those of the containers it links to (see
// LinkPreferences); it takes nothing.
func (s *RequestStep) Prepare(ctx context.Context, c *admission.Create) error {
	pins, err := Pins(ctx, s.fleet, c.Spec)
	if err != nil {
		return err
	}
	c.Request.Pins = append(c.Request.Pins, pins...)
	prefs, err := LinkPreferences(ctx, s.fleet, c.Spec)
	if err != nil {
		return err
	}
	c.Request.Constraints = append(c.Request.Constraints, prefs...)
	return nil
}
