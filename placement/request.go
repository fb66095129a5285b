package placement

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/clocker/clocker/admission"
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
	req.Constraints, req.Affinities, req.Rules, req.Chain = pl.Constraints, pl.Affinities, pl.Rules, pl.Chain
	req.Group = scheduler.GroupOf(spec.Labels)
	if hc := spec.HostConfig; hc != nil {
		req.Memory, req.NanoCPUs, req.CPUShares = hc.Memory, hc.NanoCPUs, hc.CPUShares
		if req.Memory < 0 || req.NanoCPUs < 0 || req.CPUShares < 0 {
			return req, nil, false, errdefs.New(errdefs.ErrInvalid, "memory, CPUs and CPU shares cannot be negative")
		}
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
// named volumes, --volumes-from, --link and container: namespaces. (A
// user network's host is the fleet-network step's to pin.)
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
	for _, l := range hc.Links {
		ref, _, _ := strings.Cut(l, ":")
		if err := pinContainer(strings.TrimPrefix(ref, "/"), "--link"); err != nil {
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
// own strategy) and removes the constraint:/affinity: entries from the
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
	r.Memory, r.NanoCPUs, r.CPUShares = req.Memory, req.NanoCPUs, req.CPUShares
	r.Ports = req.Ports
	r.Constraints, r.Affinities, r.Rules, r.Chain = req.Constraints, req.Affinities, req.Rules, req.Chain
	if changed {
		c.SetEnv(env)
	}
	return nil
}

// Prepare pins the request to the hosts of what the container uses (see
// Pins); it takes nothing.
func (s *RequestStep) Prepare(ctx context.Context, c *admission.Create) error {
	pins, err := Pins(ctx, s.fleet, c.Spec)
	if err != nil {
		return err
	}
	c.Request.Pins = append(c.Request.Pins, pins...)
	return nil
}
