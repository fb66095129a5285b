package fleetnet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/clocker/clocker/admission"
	"github.com/clocker/clocker/engineapi"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/sdn"
)

// LinksNetwork is the fleet network Clocker makes for legacy links
// across hosts: the linking container and the linked one join it, so the
// link's address is reachable wherever each runs.
const LinksNetwork = "clocker-links"

// LinksStepName is the name of LinksStep in the create pipeline.
const LinksStepName = "legacy-links"

// LinksStep serves `--link NAME:ALIAS` on the default bridge when NAME
// runs on another host than the one placement chose (placement prefers
// NAME's host; see placement.LinkPreferences). Default bridges of two
// hosts do not reach each other, so at the bind, per such link:
//
//   - NAME joins LinksNetwork on its host (when it is not on it yet);
//   - the link leaves HostConfig.Links (the engine cannot see NAME), and
//     what the engine would have set is set instead: ALIAS_… variables
//     with NAME's LinksNetwork address, and /etc/hosts names (ExtraHosts);
//   - once the engine made the container (Created, before the client's
//     answer) it joins LinksNetwork, its endpoint keeping the links
//     ("NAME:ALIAS"): that is where inspect and `docker rm --link` find
//     them.
//
// Undo disconnects what the bind connected. Links to containers on the
// chosen host are left to its engine.
type LinksStep struct {
	fleet *hosts.Fleet
	nets  *Controller // nil: fleet networks are off; links stay on one host
	mu    sync.Mutex  // makes LinksNetwork once
}

// NewLinksStep makes the step over fleet's hosts and nets's networks.
func NewLinksStep(fleet *hosts.Fleet, nets *Controller) *LinksStep {
	return &LinksStep{fleet: fleet, nets: nets}
}

// Name is LinksStepName.
func (*LinksStep) Name() string { return LinksStepName }

// remoteLink is a link to a container on another host.
type remoteLink struct {
	link, ref, alias string
	host             *hosts.Host
	id               string
}

// Bind serves the links to containers on other hosts (see LinksStep).
func (s *LinksStep) Bind(ctx context.Context, c *admission.Create) (admission.Binding, error) {
	links := engineapi.LegacyLinks(c.Spec.HostConfig)
	if s.nets == nil || len(links) == 0 {
		return admission.Binding{}, nil
	}
	var remote []remoteLink
	var keep []string
	for _, l := range links {
		ref, alias := engineapi.ParseLink(l)
		h, ctr, err := s.fleet.Resolve(ctx, ref)
		if err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				return admission.Binding{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("could not get container for %s: %v", ref, err))
			}
			return admission.Binding{}, err
		}
		if h.Name == c.Host.Name {
			keep = append(keep, l)
			continue
		}
		remote = append(remote, remoteLink{link: l, ref: ref, alias: alias, host: h, id: ctr.ID()})
	}
	if len(remote) == 0 {
		return admission.Binding{}, nil
	}
	var undos []func(context.Context)
	undo := func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
		defer cancel()
		for i := len(undos) - 1; i >= 0; i-- {
			undos[i](uctx)
		}
	}
	fail := func(err error) (admission.Binding, error) {
		undo()
		return admission.Binding{}, err
	}
	n, err := s.network(ctx)
	if err != nil {
		return fail(err)
	}
	j, err := s.nets.join(ctx, n, c.Host, Addrs{})
	if err != nil {
		return fail(err)
	}
	undos = append(undos, func(ctx context.Context) { s.nets.unjoin(ctx, j) })
	var env, extra, endpointLinks []string
	for _, r := range remote {
		t, connected, err := s.connectTarget(ctx, n, r, c.Name)
		if connected {
			undos = append(undos, func(ctx context.Context) { s.disconnect(ctx, r.host, r.id) })
		}
		if err != nil {
			return fail(err)
		}
		env = append(env, engineapi.LinkEnv(c.Name, r.alias, engineapi.LinkTarget{
			IP: t.ip, Env: t.env, ExposedPorts: t.ports})...)
		extra = append(extra, engineapi.LinkHosts(r.alias, t.hostname, t.name, t.ip)...)
		endpointLinks = append(endpointLinks, t.name+":"+r.alias)
	}
	hc := c.Spec.HostConfig
	hc.Links = keep
	hc.ExtraHosts = append(slices.Clone(hc.ExtraHosts), extra...)
	c.Changed("HostConfig", "Links")
	c.Changed("HostConfig", "ExtraHosts")
	c.SetEnv(engineapi.MergeEnv(env, c.Spec.Env))
	return admission.Binding{Undo: undo, Created: func(ctx context.Context, c *admission.Create) error {
		_, err := c.Host.Client().NetworkConnect(ctx, n.Name, client.NetworkConnectOptions{
			Container: c.ID, EndpointConfig: &network.EndpointSettings{Links: endpointLinks}})
		if err != nil {
			return engineError(c.Host, "connecting the container to "+n.Name, err)
		}
		s.nets.Changed()
		return nil
	}}, nil
}

// network is LinksNetwork, made on first use.
func (s *LinksStep) network(ctx context.Context) (sdn.Network, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.nets.Network(LinksNetwork); ok {
		return n, nil
	}
	return s.nets.Create(ctx, NetworkRequest{Name: LinksNetwork, Labels: map[string]string{
		"io.clocker.purpose": "legacy links across hosts"}})
}

// target is what a link tells of the linked container.
type target struct {
	ip             netip.Addr
	env            []string
	ports          network.PortSet
	name, hostname string
}

// connectTarget joins r's container to n on its host unless it is on n
// already (connected tells whether this call connected it) and reads
// what the link's variables need. The container must run, as an engine
// requires when the linking container starts.
func (s *LinksStep) connectTarget(ctx context.Context, n sdn.Network, r remoteLink, parent string) (target, bool, error) {
	h := r.host
	read := func() (target, bool, error) {
		res, err := h.Client().ContainerInspect(ctx, r.id, client.ContainerInspectOptions{})
		if err != nil {
			return target{}, false, engineError(h, "inspecting "+r.ref, err)
		}
		ci := res.Container
		t := target{name: ci.Name}
		if ci.Config != nil {
			t.env, t.ports, t.hostname = ci.Config.Env, ci.Config.ExposedPorts, ci.Config.Hostname
		}
		if ci.State == nil || !ci.State.Running {
			return t, false, errdefs.New(errdefs.ErrConflict, fmt.Sprintf(
				"Cannot link to a non running container: %s AS /%s/%s", ci.Name, parent, r.alias))
		}
		if ci.NetworkSettings != nil {
			if ep := ci.NetworkSettings.Networks[n.Name]; ep != nil && ep.IPAddress.IsValid() {
				t.ip = ep.IPAddress
				return t, true, nil
			}
		}
		return t, false, nil
	}
	t, on, err := read()
	if err != nil || on {
		return t, false, err
	}
	if _, err := s.nets.join(ctx, n, h, Addrs{}); err != nil {
		return t, false, err
	}
	if _, err := h.Client().NetworkConnect(ctx, n.Name, client.NetworkConnectOptions{Container: r.id}); err != nil {
		return t, false, engineError(h, "connecting "+r.ref+" to "+n.Name, err)
	}
	s.nets.Changed()
	if err := h.Refresh(ctx, r.id); err != nil {
		s.nets.log.Warn("cache refresh after connect", "host", h.Name, "id", r.id, "err", err)
	}
	t, on, err = read()
	if err == nil && !on {
		err = fmt.Errorf("%s has no address on %s after connecting it", r.ref, n.Name)
	}
	return t, true, err
}

// disconnect takes a container a failed create connected off
// LinksNetwork.
func (s *LinksStep) disconnect(ctx context.Context, h *hosts.Host, id string) {
	if _, err := h.Client().NetworkDisconnect(ctx, LinksNetwork, client.NetworkDisconnectOptions{Container: id, Force: true}); err != nil {
		s.nets.log.Warn("undoing a link's connect", "host", h.Name, "id", id, "err", err)
	}
	s.nets.Changed()
	_ = h.Refresh(ctx, id)
}

// RemoveLink serves `docker rm --link /parent/alias` for a link the links
// step served across hosts: the parent (id on h) leaves LinksNetwork and
// joins it again with its other such links, if any (an engine's endpoint
// links cannot be changed in place). found is false when the parent has
// no such link: the engine's own links are the engine's to remove.
func (c *Controller) RemoveLink(ctx context.Context, h *hosts.Host, id, alias string) (found bool, err error) {
	res, err := h.Client().ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return false, engineError(h, "inspecting "+id, err)
	}
	ns := res.Container.NetworkSettings
	if ns == nil || ns.Networks[LinksNetwork] == nil {
		return false, nil
	}
	var rest []string
	for _, l := range ns.Networks[LinksNetwork].Links {
		if _, a := engineapi.ParseLink(l); a == alias {
			found = true
		} else {
			rest = append(rest, l)
		}
	}
	if !found {
		return false, nil
	}
	if _, err := h.Client().NetworkDisconnect(ctx, LinksNetwork, client.NetworkDisconnectOptions{Container: id}); err != nil {
		return true, engineError(h, "disconnecting "+id+" from "+LinksNetwork, err)
	}
	if len(rest) > 0 {
		if _, err := h.Client().NetworkConnect(ctx, LinksNetwork, client.NetworkConnectOptions{
			Container: id, EndpointConfig: &network.EndpointSettings{Links: rest}}); err != nil {
			return true, engineError(h, "connecting "+id+" to "+LinksNetwork, err)
		}
	}
	c.Changed()
	return true, h.Refresh(ctx, id)
}
