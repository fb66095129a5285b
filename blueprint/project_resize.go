package blueprint

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/labels"
)

// A compose service grows by clones of one of its containers: the same
// config, compose's labels with the next container number and a name in
// compose's pattern, so `docker compose ps` (either client) shows them
// as replicas of the service, and `down` removes them.

// resizeService grows or shrinks compose service svc to size containers
// (the highest numbers go first) and answers the size reached.
func (m *Manager) resizeService(ctx context.Context, svc *Entity, size int) (int, error) {
	if size < 1 {
		return 0, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("desiredSize %d: a compose service keeps at least one container (new ones are cloned from it); stop it instead", size))
	}
	kids := svc.Children()
	if len(kids) == 0 {
		return 0, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("service %s has no container to clone", svc.Node.Name))
	}
	var errs []error
	if grow := size - len(kids); grow > 0 {
		tmpl, err := m.template(ctx, kids)
		if err != nil {
			return len(kids), err
		}
		next, err := m.nextNumber(ctx, svc)
		if err != nil {
			return len(kids), err
		}
		for i := range grow {
			if _, err := m.addReplica(ctx, svc, tmpl, next+i); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	for i := len(kids) - 1; i >= size; i-- {
		errs = append(errs, m.removeMember(ctx, kids[i]))
	}
	m.setSensors(svc, map[string]any{SensorReplicasWanted: size})
	m.publishService(svc)
	m.publishProject(svc.App)
	m.save(svc.App)
	return len(svc.Children()), errors.Join(errs...)
}

// replaceServiceMember starts a clone of member memberID, then removes it.
func (m *Manager) replaceServiceMember(ctx context.Context, svc *Entity, memberID string) (string, error) {
	var old *Entity
	for _, k := range svc.Children() {
		if k.ID == memberID {
			old = k
		}
	}
	if old == nil {
		return "", errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("'%s' is not a container of service %s", memberID, svc.Node.Name))
	}
	tmpl, err := m.template(ctx, []*Entity{old})
	if err != nil {
		return "", err
	}
	next, err := m.nextNumber(ctx, svc)
	if err != nil {
		return "", err
	}
	e, err := m.addReplica(ctx, svc, tmpl, next)
	if err != nil {
		return "", err
	}
	err = m.removeMember(ctx, old)
	m.publishService(svc)
	m.publishProject(svc.App)
	m.save(svc.App)
	return e.ID, err
}

// template inspects the container a new replica is cloned from: the
// first running one of kids, else the first.
func (m *Manager) template(ctx context.Context, kids []*Entity) (container.InspectResponse, error) {
	pick := kids[0]
	for _, k := range kids {
		if v, _ := m.Sensor(k, "docker.container.running"); v == true {
			pick = k
			break
		}
	}
	m.mu.Lock()
	id := pick.containerID
	m.mu.Unlock()
	in, err := m.engOf(kids[0].App).ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return container.InspectResponse{}, fmt.Errorf("inspect %s to clone it: %w", pick.Node.Name, err)
	}
	// Clocker gave it its host's DNS servers (a label inspect hides): the
	// clone, maybe on another host, gets its own.
	f := make(client.Filters).Add("id", in.Container.ID).Add("label", labels.DNS)
	if l, err := m.engOf(kids[0].App).ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f}); err == nil && len(l.Items) == 1 && in.Container.HostConfig != nil {
		if given := l.Items[0].Labels[labels.DNS]; given != "" && given == joinDNS(in.Container.HostConfig.DNS) {
			in.Container.HostConfig.DNS = nil
		}
	}
	return in.Container, nil
}

// joinDNS writes servers as the io.clocker.dns label holds them.
func joinDNS(servers []netip.Addr) string {
	s := make([]string, len(servers))
	for i, a := range servers {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

// nextNumber is one above the highest container number the service has
// on the fleet (containers not yet seen by the watch too).
func (m *Manager) nextNumber(ctx context.Context, svc *Entity) (int, error) {
	f := make(client.Filters).Add("label", labels.ComposeProject+"="+svc.App.Project).Add("label", labels.ComposeService+"="+svc.Node.Name)
	list, err := m.engOf(svc.App).ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return 0, err
	}
	top := 0
	for _, c := range list.Items {
		top = max(top, number(c.Labels))
	}
	for _, k := range svc.Children() {
		top = max(top, containerNumber(k))
	}
	return top + 1, nil
}

// addReplica makes, registers and starts replica num of svc from tmpl;
// one that does not start is removed again.
func (m *Manager) addReplica(ctx context.Context, svc *Entity, tmpl container.InspectResponse, num int) (*Entity, error) {
	opts, err := cloneOptions(tmpl, num)
	if err != nil {
		return nil, err
	}
	res, err := m.engOf(svc.App).ContainerCreate(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", opts.Name, err)
	}
	e := m.addContainer(svc, res.ID, opts.Name, opts.Config.Image, num)
	sortReplicas(svc)
	m.save(svc.App)
	if err := m.startEntity(ctx, e); err != nil {
		if rerr := m.removeMember(ctx, e); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return nil, err
	}
	return e, nil
}

// cloneOptions is the create of replica num from tmpl's inspect: its
// config and host config, compose's labels with the new number, a name
// in compose's pattern (project-service-N, or v1's project_service_N),
// its networks with their aliases.
func cloneOptions(tmpl container.InspectResponse, num int) (client.ContainerCreateOptions, error) {
	if tmpl.Config == nil || tmpl.HostConfig == nil {
		return client.ContainerCreateOptions{}, fmt.Errorf("container %s: inspect without config", tmpl.ID)
	}
	cfg := *tmpl.Config
	cfg.Labels = maps.Clone(tmpl.Config.Labels)
	for k := range cfg.Labels {
		if labels.IsBookkeeping(k) {
			delete(cfg.Labels, k)
		}
	}
	cfg.Labels[labels.ComposeContainerNumber] = strconv.Itoa(num)
	// The engine gives a container without one its short ID as hostname.
	if cfg.Hostname != "" && strings.HasPrefix(tmpl.ID, cfg.Hostname) {
		cfg.Hostname = ""
	}
	hc := *tmpl.HostConfig
	// Published ports: the fleet holds a host port for one container, and
	// inspect shows the one it picked for "80" as if asked for: the clone
	// publishes the same container ports on ports of its own.
	hc.PortBindings = network.PortMap{}
	for p, bs := range tmpl.HostConfig.PortBindings {
		for _, b := range bs {
			hc.PortBindings[p] = append(hc.PortBindings[p], network.PortBinding{HostIP: b.HostIP})
		}
	}
	old := strings.TrimPrefix(tmpl.Name, "/")
	name := replicaName(old, tmpl.Config.Labels, num)
	endpoints := map[string]*network.EndpointSettings{}
	if tmpl.NetworkSettings != nil {
		for net, ep := range tmpl.NetworkSettings.Networks {
			if ep == nil {
				continue
			}
			var aliases []string
			for _, a := range ep.Aliases {
				switch {
				case strings.HasPrefix(tmpl.ID, a): // the engine's own short-ID alias
				case a == old:
					aliases = append(aliases, name)
				default:
					aliases = append(aliases, a)
				}
			}
			endpoints[net] = &network.EndpointSettings{Aliases: aliases, Links: ep.Links, DriverOpts: ep.DriverOpts}
		}
	}
	opts := client.ContainerCreateOptions{Name: name, Config: &cfg, HostConfig: &hc}
	if len(endpoints) > 0 {
		opts.NetworkingConfig = &network.NetworkingConfig{EndpointsConfig: endpoints}
	}
	return opts, nil
}

// replicaName is old's name with its container number replaced by num
// (compose v2 joins with "-", v1 with "_"); project-service-num when old
// does not end in its number.
func replicaName(old string, l map[string]string, num int) string {
	if n := l[labels.ComposeContainerNumber]; n != "" {
		for _, sep := range []string{"-", "_"} {
			if base, ok := strings.CutSuffix(old, sep+n); ok {
				return base + sep + strconv.Itoa(num)
			}
		}
	}
	return fmt.Sprintf("%s-%s-%d", l[labels.ComposeProject], l[labels.ComposeService], num)
}
