package admission

import (
	"strings"

	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"

	"github.com/moby/moby/api/types/container"

	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/internal/tenant"
)

// TenantStep gives a tenant's create (--tenants; Create.Tenant set) its
// owner label and stores every name in it as the engines hold the
// tenant's names (internal/tenant): the container's, its networks',
// its named volumes', the containers of --volumes-from and --link. On
// each user network the container also answers by the name its tenant
// gave it (an alias), so that DNS on its tenant's networks keeps
// resolving "web". It runs after the name step, so that a picked name
// is the tenant's too.
//
// References to containers (--volumes-from, --link, and the container:X
// modes of --network, --pid and --ipc) are names, full IDs or unique ID
// prefixes of the tenant's own containers: Resolve finds them; another
// tenant's is "no such container".
type TenantStep struct {
	// Resolve answers the engine name of the tenant's container that ref
	// (a name as the tenant gave it, an ID or an ID prefix) names; an
	// error wrapping errdefs.ErrNotFound when the tenant has none. Nil:
	// references are taken as the tenant's names.
	Resolve func(t tenant.Scope, ref string) (string, error)
}

// Name is the step's name: "tenant".
func (TenantStep) Name() string { return "tenant" }

// ref is the engine's reference for the tenant's container ref.
func (s TenantStep) ref(t tenant.Scope, ref string) (string, error) {
	if s.Resolve == nil {
		if t.HasPrefix(ref) {
			return ref, nil
		}
		return t.EngineName(ref), nil
	}
	return s.Resolve(t, ref)
}

// containerMode rewrites a "container:REF" mode of field (NetworkMode,
// PidMode, IpcMode); other modes stay.
func (s TenantStep) containerMode(t tenant.Scope, mode string) (string, bool, error) {
	ref, ok := strings.CutPrefix(mode, "container:")
	if !ok || ref == "" {
		return mode, false, nil
	}
	name, err := s.ref(t, ref)
	if err != nil {
		return "", false, err
	}
	return "container:" + name, true, nil
}

// Validate rewrites the names of a tenant's create; others pass as they
// are.
func (s TenantStep) Validate(c *Create) error {
	if c.Tenant == nil {
		return nil
	}
	t := *c.Tenant
	c.SetLabel(labels.Owner, t.Name)
	shown := strings.TrimPrefix(c.Name, "/")
	if c.Name != "" && !t.HasPrefix(c.Name) {
		c.Name = t.EngineName(shown)
		c.Request.Name = c.Name
	}
	hc := c.Spec.HostConfig
	if mode := string(hc.NetworkMode); userNetwork(mode) && !t.HasPrefix(mode) {
		hc.NetworkMode = container.NetworkMode(t.EngineName(mode))
		c.Changed("HostConfig", "NetworkMode")
	}
	if mode := string(hc.NetworkMode); userNetwork(mode) && shown != "" {
		// The CLI names the network of --network in NetworkMode alone:
		// its endpoint is where the alias goes.
		if c.Spec.NetworkingConfig == nil {
			c.Spec.NetworkingConfig = &network.NetworkingConfig{}
		}
		nc := c.Spec.NetworkingConfig
		_, given := nc.EndpointsConfig[t.ShownName(mode)]
		if _, ok := nc.EndpointsConfig[mode]; !ok && !given {
			if nc.EndpointsConfig == nil {
				nc.EndpointsConfig = map[string]*network.EndpointSettings{}
			}
			nc.EndpointsConfig[mode] = &network.EndpointSettings{}
		}
	}
	if nc := c.Spec.NetworkingConfig; nc != nil && len(nc.EndpointsConfig) > 0 {
		eps := make(map[string]*network.EndpointSettings, len(nc.EndpointsConfig))
		for name, ep := range nc.EndpointsConfig {
			if !userNetwork(name) {
				eps[name] = ep
				continue
			}
			if ep == nil {
				ep = &network.EndpointSettings{}
			}
			if shown != "" {
				ep.Aliases = append(ep.Aliases, shown)
			}
			if !t.HasPrefix(name) {
				name = t.EngineName(name)
			}
			eps[name] = ep
		}
		nc.EndpointsConfig = eps
		c.Changed("NetworkingConfig")
	}
	if len(hc.Binds) > 0 {
		for i, b := range hc.Binds {
			src, rest, ok := strings.Cut(b, ":")
			if ok && src != "" && !strings.HasPrefix(src, "/") && !t.HasPrefix(src) {
				hc.Binds[i] = t.EngineName(src) + ":" + rest
			}
		}
		c.Changed("HostConfig", "Binds")
	}
	if len(hc.Mounts) > 0 {
		for i, m := range hc.Mounts {
			if m.Type == mount.TypeVolume && m.Source != "" && !t.HasPrefix(m.Source) {
				hc.Mounts[i].Source = t.EngineName(m.Source)
			}
		}
		c.Changed("HostConfig", "Mounts")
	}
	if len(hc.VolumesFrom) > 0 {
		for i, v := range hc.VolumesFrom {
			ref, mode, hasMode := strings.Cut(v, ":") // NAME[:ro|rw]
			name, err := s.ref(t, ref)
			if err != nil {
				return err
			}
			if hasMode {
				name += ":" + mode
			}
			hc.VolumesFrom[i] = name
		}
		c.Changed("HostConfig", "VolumesFrom")
	}
	if len(hc.Links) > 0 {
		for i, l := range hc.Links {
			ref, alias, hasAlias := strings.Cut(l, ":") // NAME[:ALIAS]
			name, err := s.ref(t, strings.TrimPrefix(ref, "/"))
			if err != nil {
				return err
			}
			if !hasAlias {
				alias = strings.TrimPrefix(ref, "/") // the engine's default alias: the name as given
			}
			hc.Links[i] = name + ":" + alias
		}
		c.Changed("HostConfig", "Links")
	}
	for _, m := range []struct {
		mode  *string
		field string
	}{{(*string)(&hc.NetworkMode), "NetworkMode"}, {(*string)(&hc.PidMode), "PidMode"}, {(*string)(&hc.IpcMode), "IpcMode"}} {
		mode, changed, err := s.containerMode(t, *m.mode)
		if err != nil {
			return err
		}
		if changed {
			*m.mode = mode
			c.Changed("HostConfig", m.field)
		}
	}
	return nil
}

// userNetwork tells whether a network mode or endpoint names a network
// of the user's (not the engine's own, nor another container's).
func userNetwork(mode string) bool {
	switch mode {
	case "", "default", "bridge", "host", "none":
		return false
	}
	return !strings.HasPrefix(mode, "container:")
}
