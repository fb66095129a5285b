// Package deploy deploys compose files server-side: a file posted to
// /v1/applications is parsed with compose-go, turned into a plan (every
// network, volume and container as `docker compose up` would create
// them, with compose's labels and names), checked and placed before
// anything is made, then made through the front door's in-process
// client, with depends_on conditions waited on by the server. See
// README.md for the flow.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/labels"
)

// Engine is the part of the moby client a deploy uses: in Clocker the
// front door's in-process client, in tests a fake.
type Engine interface {
	ContainerCreate(ctx context.Context, opts client.ContainerCreateOptions) (client.ContainerCreateResult, error)
	ContainerStart(ctx context.Context, id string, opts client.ContainerStartOptions) (client.ContainerStartResult, error)
	ContainerInspect(ctx context.Context, id string, opts client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	ContainerList(ctx context.Context, opts client.ContainerListOptions) (client.ContainerListResult, error)
	ContainerRemove(ctx context.Context, id string, opts client.ContainerRemoveOptions) (client.ContainerRemoveResult, error)
	NetworkCreate(ctx context.Context, name string, opts client.NetworkCreateOptions) (client.NetworkCreateResult, error)
	NetworkInspect(ctx context.Context, id string, opts client.NetworkInspectOptions) (client.NetworkInspectResult, error)
	NetworkConnect(ctx context.Context, id string, opts client.NetworkConnectOptions) (client.NetworkConnectResult, error)
	NetworkRemove(ctx context.Context, id string, opts client.NetworkRemoveOptions) (client.NetworkRemoveResult, error)
	VolumeCreate(ctx context.Context, opts client.VolumeCreateOptions) (client.VolumeCreateResult, error)
	VolumeInspect(ctx context.Context, id string, opts client.VolumeInspectOptions) (client.VolumeInspectResult, error)
	VolumeRemove(ctx context.Context, id string, opts client.VolumeRemoveOptions) (client.VolumeRemoveResult, error)
	ImageInspect(ctx context.Context, image string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error)
	Info(ctx context.Context, opts client.InfoOptions) (client.SystemInfoResult, error)
}

// Placer answers where a create would go without making it (the front
// door's POST /v1/fleet/placement): "" and the refusal when no host fits.
type Placer interface {
	Explain(ctx context.Context, create client.ContainerCreateOptions) (host string, refusal error, err error)
}

// Options configure a Deployer.
type Options struct {
	Engine Engine
	// EngineAs is the engine that acts for a tenant (a deploy's owner)
	// as if it had sent each call; nil: Engine for every owner.
	EngineAs func(owner string) Engine
	Placer   Placer
	Log      *slog.Logger
	// WaitTimeout bounds each depends_on wait (default 5m).
	WaitTimeout time.Duration
	// PollInterval is how often a dependency's state is read (default
	// 200ms).
	PollInterval time.Duration
}

// Deployer deploys compose files through the front door.
type Deployer struct{ o Options }

// New makes a Deployer.
func New(o Options) *Deployer {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = 5 * time.Minute
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 200 * time.Millisecond
	}
	return &Deployer{o: o}
}

// IsCompose tells a compose file from a blueprint (see the function).
func (d *Deployer) IsCompose(body []byte) bool { return IsCompose(body) }

// Prepare reads the request's compose file (query: name, workdir, file,
// profile), plans and checks it: images on the fleet, names free, every
// replica placeable. Nothing is made; on success run makes the project,
// acting for owner (a tenant; "": the admins').
func (d *Deployer) Prepare(ctx context.Context, owner string, body []byte, q url.Values) (string, func(context.Context) (any, error), error) {
	if owner != "" && d.o.EngineAs != nil {
		as := *d
		as.o.Engine = d.o.EngineAs(owner)
		d = &as
	}
	src := Source{File: body, Name: q.Get("name"), WorkingDir: q.Get("workdir"), Path: q.Get("file"), Profiles: q["profile"]}
	plan, err := d.Plan(ctx, src)
	if err != nil {
		return "", nil, err
	}
	if err := d.Check(ctx, plan); err != nil {
		return "", nil, err
	}
	return plan.Project, func(ctx context.Context) (any, error) { return d.Run(ctx, plan) }, nil
}

// Plan loads src and builds its plan over the fleet's hosts.
func (d *Deployer) Plan(ctx context.Context, src Source) (*Plan, error) {
	p, err := Load(ctx, src)
	if err != nil {
		return nil, err
	}
	fleet, err := d.fleet(ctx)
	if err != nil {
		return nil, err
	}
	return Build(p, fleet)
}

// fleet reads the hosts and their labels from the front door's /info
// (its SystemStatus lists every host; unhealthy ones are left out).
func (d *Deployer) fleet(ctx context.Context) ([]Host, error) {
	info, err := d.o.Engine.Info(ctx, client.InfoOptions{})
	if err != nil {
		return nil, fmt.Errorf("fleet info: %w", err)
	}
	return HostsOf(info.Info.SystemStatus), nil
}

// HostsOf reads Clocker's /info SystemStatus: " NAME" then "  └ KEY"
// rows for that host.
func HostsOf(status [][2]string) []Host {
	var out []Host
	var cur *Host
	healthy := false
	flush := func() {
		if cur != nil && healthy {
			out = append(out, *cur)
		}
	}
	for _, kv := range status {
		k := kv[0]
		switch {
		case strings.HasPrefix(k, " ") && !strings.HasPrefix(k, "  "):
			flush()
			cur, healthy = &Host{Name: strings.TrimSpace(k), Labels: map[string]string{}}, false
		case cur != nil && strings.TrimSpace(k) == "└ Status":
			healthy = kv[1] == "Healthy"
		case cur != nil && strings.TrimSpace(k) == "└ Labels":
			for _, l := range strings.Split(kv[1], ", ") {
				if k, v, ok := strings.Cut(l, "="); ok {
					cur.Labels[k] = v
				}
			}
		}
	}
	flush()
	return out
}

// Check refuses a plan that cannot be made, before anything is: an
// image on no host (400), an external network or volume missing (400),
// a container name taken or the project already deployed (409), a
// replica no host takes (409 naming each host's reason, as a create).
func (d *Deployer) Check(ctx context.Context, plan *Plan) error {
	eng := d.o.Engine
	images := map[string]bool{}
	for _, s := range plan.Services {
		for _, c := range s.Containers {
			img := c.Create.Config.Image
			if images[img] {
				continue
			}
			images[img] = true
			if _, err := eng.ImageInspect(ctx, img); err != nil {
				if cerrdefs.IsNotFound(err) {
					return invalid("service %s: image %s is on no host of the fleet (load or pull it first)", s.Name, img)
				}
				return fmt.Errorf("image %s: %w", img, err)
			}
		}
	}
	for _, n := range plan.Networks {
		if !n.External {
			continue
		}
		if _, err := eng.NetworkInspect(ctx, n.Name, client.NetworkInspectOptions{}); err != nil {
			return invalid("external network %s: %v", n.Name, err)
		}
	}
	for _, v := range plan.Volumes {
		if !v.External {
			continue
		}
		if _, err := eng.VolumeInspect(ctx, v.Name, client.VolumeInspectOptions{}); err != nil {
			return invalid("external volume %s: %v", v.Name, err)
		}
	}
	running, err := eng.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", labels.ComposeProject+"="+plan.Project)})
	if err != nil {
		return fmt.Errorf("list project %s: %w", plan.Project, err)
	}
	if len(running.Items) > 0 {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("project %s is already deployed (%d containers; docker compose -p %s down first)", plan.Project, len(running.Items), plan.Project))
	}
	type refusal struct {
		text string
		err  error
	}
	var refusals []refusal
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	placed := map[string]string{} // container name → the host placement picked
	for _, s := range plan.Services {
		for _, c := range s.Containers {
			if _, err := eng.ContainerInspect(ctx, c.Create.Name, client.ContainerInspectOptions{}); err == nil {
				return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container name %s is already in use", c.Create.Name))
			}
		}
	}
	for _, s := range plan.Services {
		for _, c := range s.Containers {
			if d.o.Placer == nil {
				continue
			}
			wg.Add(1)
			go func(s string, c Container) {
				defer wg.Done()
				host, r, err := d.o.Placer.Explain(ctx, dryRun(c.Create))
				mu.Lock()
				defer mu.Unlock()
				placed[c.Create.Name] = host
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if r != nil {
					refusals = append(refusals, refusal{fmt.Sprintf("service %s replica %d: %v", s, c.Number, r), r})
				}
			}(s.Name, c)
		}
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if len(refusals) > 0 {
		// As a create that fits nowhere: the status of the first refusal
		// (409 for constraints and room), every replica's reasons.
		sort.Slice(refusals, func(i, j int) bool { return refusals[i].text < refusals[j].text })
		texts := make([]string, len(refusals))
		for i, r := range refusals {
			texts[i] = r.text
		}
		kind := errdefs.ErrConflict
		for _, k := range []error{errdefs.ErrInvalid, errdefs.ErrNotFound, errdefs.ErrUnavailable, errdefs.ErrConflict} {
			if errors.Is(refusals[0].err, k) {
				kind = k
				break
			}
		}
		return errdefs.New(kind, "compose project "+plan.Project+": "+strings.Join(texts, "; "))
	}
	placeVolumes(plan, placed)
	return nil
}

// placeVolumes puts each named volume on the host placement picked for
// the first container that mounts it (label io.clocker.host), so that
// the container's constraints, not the volume's own placement, decide
// where both go: containers follow their volume.
func placeVolumes(plan *Plan, placed map[string]string) {
	for i := range plan.Volumes {
		v := &plan.Volumes[i]
		if v.External {
			continue
		}
	users:
		for _, s := range plan.Services {
			for _, c := range s.Containers {
				for _, m := range c.Create.HostConfig.Mounts {
					if m.Type == "volume" && m.Source == v.Name && placed[c.Create.Name] != "" {
						v.Create.Labels[labels.Host] = placed[c.Create.Name]
						break users
					}
				}
			}
		}
	}
}

// dryRun is what placement is asked before the project's networks and
// volumes exist: the create without them (fleet networks span every
// host; named volumes are made with the project, on the host placement
// picks for them).
func dryRun(c client.ContainerCreateOptions) client.ContainerCreateOptions {
	cfg := *c.Config
	hc := *c.HostConfig
	hc.NetworkMode = ""
	hc.Mounts = nil
	for _, m := range c.HostConfig.Mounts {
		if m.Type != "volume" {
			hc.Mounts = append(hc.Mounts, m)
		}
	}
	return client.ContainerCreateOptions{Name: "", Config: &cfg, HostConfig: &hc}
}

// made records what a run made, to undo it.
type made struct {
	mu         sync.Mutex
	containers []string
	volumes    []string
	networks   []string
}

func (m *made) add(list *[]string, id string) {
	m.mu.Lock()
	*list = append(*list, id)
	m.mu.Unlock()
}

// Run makes the plan: networks, volumes, then every service once its
// dependencies meet their conditions, replicas of a service at once.
// A create or start that fails undoes everything the run made; a
// dependency that fails its condition (unhealthy, exited non-zero, not
// ready within WaitTimeout) stops the run, leaving what runs for
// inspection, as docker compose up does.
func (d *Deployer) Run(ctx context.Context, plan *Plan) (any, error) {
	var m made
	result, err := d.run(ctx, plan, &m)
	if err != nil && !errors.Is(err, errWait) {
		d.undo(&m)
	}
	return result, err
}

var errWait = errors.New("dependency condition not met")

func (d *Deployer) run(ctx context.Context, plan *Plan, m *made) (any, error) {
	eng := d.o.Engine
	for _, n := range plan.Networks {
		if n.External {
			continue
		}
		if _, err := eng.NetworkInspect(ctx, n.Name, client.NetworkInspectOptions{}); err == nil {
			continue // compose reuses a network of that name
		}
		res, err := eng.NetworkCreate(ctx, n.Name, n.Create)
		if err != nil {
			return nil, fmt.Errorf("network %s: %w", n.Name, err)
		}
		m.add(&m.networks, res.ID)
	}
	for _, v := range plan.Volumes {
		if v.External {
			continue
		}
		if _, err := eng.VolumeInspect(ctx, v.Name, client.VolumeInspectOptions{}); err == nil {
			continue
		}
		if _, err := eng.VolumeCreate(ctx, v.Create); err != nil {
			return nil, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		m.add(&m.volumes, v.Name)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	started := map[string]chan struct{}{}
	ids := map[string][]string{}
	var idsMu sync.Mutex
	for _, s := range plan.Services {
		started[s.Name] = make(chan struct{})
	}
	errs := make(chan error, len(plan.Services))
	for _, s := range plan.Services {
		go func(s *Service) {
			err := func() error {
				for _, dep := range s.DependsOn {
					select {
					case <-started[dep.Service]:
					case <-ctx.Done():
						return ctx.Err()
					}
					idsMu.Lock()
					depIDs := ids[dep.Service]
					idsMu.Unlock()
					if err := d.wait(ctx, s.Name, dep, depIDs); err != nil {
						if dep.Required || !errors.Is(err, errWait) {
							return err
						}
						// required: false — compose only warns.
						d.o.Log.Warn("compose deploy: optional dependency not ready, starting anyway", "err", err)
					}
				}
				got, err := d.startService(ctx, s, m)
				idsMu.Lock()
				ids[s.Name] = got
				idsMu.Unlock()
				return err
			}()
			if err == nil {
				close(started[s.Name])
			} else {
				cancel()
			}
			errs <- err
		}(s)
	}
	var first error
	for range plan.Services {
		if err := <-errs; err != nil && (first == nil || errors.Is(first, context.Canceled)) {
			first = err
		}
	}
	if first != nil {
		return nil, first
	}
	var names []string
	for _, s := range plan.Services {
		for _, c := range s.Containers {
			names = append(names, c.Create.Name)
		}
	}
	return map[string]any{"project": plan.Project, "containers": names}, nil
}

// startService creates every replica at once, then starts them.
func (d *Deployer) startService(ctx context.Context, s *Service, m *made) ([]string, error) {
	ids := make([]string, len(s.Containers))
	errs := make([]error, len(s.Containers))
	var wg sync.WaitGroup
	for i, c := range s.Containers {
		wg.Add(1)
		go func(i int, c Container) {
			defer wg.Done()
			create, extra := primaryNetwork(c.Create)
			res, err := d.o.Engine.ContainerCreate(ctx, create)
			if err != nil {
				errs[i] = fmt.Errorf("service %s: create %s: %w", s.Name, c.Create.Name, err)
				return
			}
			m.add(&m.containers, res.ID)
			ids[i] = res.ID
			for _, name := range slices.Sorted(maps.Keys(extra)) {
				if _, err := d.o.Engine.NetworkConnect(ctx, name, client.NetworkConnectOptions{Container: res.ID, EndpointConfig: extra[name]}); err != nil {
					errs[i] = fmt.Errorf("service %s: connect %s to %s: %w", s.Name, c.Create.Name, name, err)
					return
				}
			}
			if _, err := d.o.Engine.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
				errs[i] = fmt.Errorf("service %s: start %s: %w", s.Name, c.Create.Name, err)
			}
		}(i, c)
	}
	wg.Wait()
	return ids, errors.Join(errs...)
}

// primaryNetwork splits a create on several networks into the create on
// its primary one and the others to connect before start, as compose
// does for engines before API 1.44 (the fleet's Debian engines speak
// 1.41 and refuse several endpoints at create).
func primaryNetwork(c client.ContainerCreateOptions) (client.ContainerCreateOptions, map[string]*network.EndpointSettings) {
	nc := c.NetworkingConfig
	if nc == nil || len(nc.EndpointsConfig) < 2 {
		return c, nil
	}
	primary := string(c.HostConfig.NetworkMode)
	extra := map[string]*network.EndpointSettings{}
	for name, ep := range nc.EndpointsConfig {
		if name != primary {
			extra[name] = ep
		}
	}
	c.NetworkingConfig = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{primary: nc.EndpointsConfig[primary]}}
	return c, extra
}

// wait blocks until every container of dep meets its condition: started
// (already true), healthy, or exited 0. A dependency that can no longer
// meet it fails at once, naming it; WaitTimeout bounds the wait.
func (d *Deployer) wait(ctx context.Context, service string, dep Dependency, ids []string) error {
	if dep.Condition == ServiceStarted {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, d.o.WaitTimeout)
	defer cancel()
	tick := time.NewTicker(d.o.PollInterval)
	defer tick.Stop()
	for {
		done := true
		for _, id := range ids {
			res, err := d.o.Engine.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
			if err != nil {
				if ctx.Err() != nil {
					done = false
					break
				}
				return fmt.Errorf("service %s: dependency %s: %w", service, dep.Service, err)
			}
			ok, err := conditionMet(dep, res.Container)
			if err != nil {
				return fmt.Errorf("service %s: %w: %w", service, errWait, err)
			}
			done = done && ok
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("service %s: %w: %s not %s within %s", service, errWait, dep.Service, dep.Condition, d.o.WaitTimeout)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// conditionMet reads one container's state against the condition: met,
// not yet, or never (an error naming why).
func conditionMet(dep Dependency, c container.InspectResponse) (bool, error) {
	st := c.State
	if st == nil {
		return false, nil
	}
	name := strings.TrimPrefix(c.Name, "/")
	switch dep.Condition {
	case ServiceHealthy:
		if st.Health == nil {
			return false, fmt.Errorf("dependency %s (%s) has no healthcheck", dep.Service, name)
		}
		switch st.Health.Status {
		case container.Healthy:
			return true, nil
		case container.Unhealthy:
			return false, fmt.Errorf("dependency %s (%s) is unhealthy", dep.Service, name)
		}
		if !st.Running && !st.Restarting {
			return false, fmt.Errorf("dependency %s (%s) exited (code %d) before it was healthy", dep.Service, name, st.ExitCode)
		}
		return false, nil
	case ServiceCompleted:
		if st.Status != container.StateExited && st.Status != container.StateDead {
			return false, nil
		}
		if st.ExitCode != 0 {
			return false, fmt.Errorf("dependency %s (%s) exited with code %d", dep.Service, name, st.ExitCode)
		}
		return true, nil
	}
	return true, nil
}

// undo removes what a failed run made, last made first.
func (d *Deployer) undo(m *made) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := len(m.containers) - 1; i >= 0; i-- {
		if _, err := d.o.Engine.ContainerRemove(ctx, m.containers[i], client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			d.o.Log.Warn("compose deploy: undo", "container", m.containers[i], "err", err)
		}
	}
	for _, v := range m.volumes {
		if _, err := d.o.Engine.VolumeRemove(ctx, v, client.VolumeRemoveOptions{Force: true}); err != nil {
			d.o.Log.Warn("compose deploy: undo", "volume", v, "err", err)
		}
	}
	for _, n := range m.networks {
		if _, err := d.o.Engine.NetworkRemove(ctx, n, client.NetworkRemoveOptions{}); err != nil {
			d.o.Log.Warn("compose deploy: undo", "network", n, "err", err)
		}
	}
}
