package admission

import (
	"strings"

	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"

	"github.com/clocker/clocker/internal/labels"
	"github.com/moby/moby/api/types/container"
)

// TenantStep gives a tenant's create (--tenants; Create.Tenant set) its
// owner label and stores every name in it as the engines hold the
// tenant's names (internal/tenant): the container's, its networks',
// its named volumes', the containers of --volumes-from and --link. On
// each user network the container also answers by the name its tenant
// gave it (an alias), so that DNS on its tenant's networks keeps
// resolving "web". It runs after the name step, so that a picked name
// is the tenant's too.
type TenantStep struct{}

// Name is the step's name: "tenant".
func (TenantStep) Name() string { return "tenant" }

// Validate rewrites the names of a tenant's create; others pass as they
// are.
func (TenantStep) Validate(c *Create) error {
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
			if !t.HasPrefix(v) {
				hc.VolumesFrom[i] = t.EngineName(v)
			}
		}
		c.Changed("HostConfig", "VolumesFrom")
	}
	if len(hc.Links) > 0 {
		for i, l := range hc.Links {
			if !t.HasPrefix(l) {
				hc.Links[i] = t.EngineName(l)
			}
		}
		c.Changed("HostConfig", "Links")
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
