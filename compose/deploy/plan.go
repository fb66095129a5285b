package deploy

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/clocker/clocker/internal/labels"
)

// ComposeVersion is the compose CLI whose labels and config hashes a
// deploy reproduces (com.docker.compose.version).
const ComposeVersion = "5.6.0"

// Compose's labels beyond the ones Clocker itself reads (internal/labels).
const (
	labelConfigHash  = "com.docker.compose.config-hash"
	labelNumber      = "com.docker.compose.container-number"
	labelVersion     = "com.docker.compose.version"
	labelWorkingDir  = "com.docker.compose.project.working_dir"
	labelConfigFiles = "com.docker.compose.project.config_files"
	labelDependsOn   = "com.docker.compose.depends_on"
	labelNetwork     = "com.docker.compose.network"
	labelVolume      = "com.docker.compose.volume"
)

// Plan is what a compose file deploys: every object made through the
// front door, with the body of each create, in the order made.
type Plan struct {
	Project    string
	WorkingDir string
	Networks   []Network
	Volumes    []Volume
	// Services in dependency order: each after those it depends on.
	Services []*Service
}

// Network is a project network: a fleet network unless external.
type Network struct {
	Key, Name string
	External  bool
	Create    client.NetworkCreateOptions
}

// Volume is a named volume of the project.
type Volume struct {
	Key, Name string
	External  bool
	Create    client.VolumeCreateOptions
}

// Service is one service: its replicas and what they wait for.
type Service struct {
	Name      string
	DependsOn []Dependency
	// Containers are the replicas, numbered from 1.
	Containers []Container
}

// Dependency is a depends_on entry: started, healthy or completed.
type Dependency struct {
	Service   string
	Condition string
	Required  bool
}

// Dependency conditions.
const (
	ServiceStarted   = types.ServiceConditionStarted
	ServiceHealthy   = types.ServiceConditionHealthy
	ServiceCompleted = types.ServiceConditionCompletedSuccessfully
)

// Container is one replica's create.
type Container struct {
	Number int
	Create client.ContainerCreateOptions
}

// Build turns a loaded project into the plan, as `docker compose up`
// would create it (names, labels, networks, mounts), with
// deploy.placement mapped onto Clocker's constraints over fleet.
func Build(p *types.Project, fleet []Host) (*Plan, error) {
	plan := &Plan{Project: p.Name, WorkingDir: p.WorkingDir}
	for _, k := range slices.Sorted(maps.Keys(p.Networks)) {
		n := p.Networks[k]
		nw := Network{Key: k, Name: n.Name, External: bool(n.External)}
		if !nw.External {
			hash, err := NetworkHash(n)
			if err != nil {
				return nil, err
			}
			nw.Create = client.NetworkCreateOptions{
				Driver: n.Driver, Options: n.DriverOpts, Internal: n.Internal, Attachable: n.Attachable,
				EnableIPv4: n.EnableIPv4, EnableIPv6: n.EnableIPv6,
				Labels: merge(n.Labels, map[string]string{
					labelNetwork: k, labels.ComposeProject: p.Name, labelVersion: ComposeVersion, labelConfigHash: hash,
				}),
			}
			ipam, err := toIPAM(n.Ipam)
			if err != nil {
				return nil, invalid("network %s: %v", k, err)
			}
			nw.Create.IPAM = ipam
		}
		plan.Networks = append(plan.Networks, nw)
	}
	for _, k := range slices.Sorted(maps.Keys(p.Volumes)) {
		v := p.Volumes[k]
		vol := Volume{Key: k, Name: v.Name, External: bool(v.External)}
		if !vol.External {
			hash, err := VolumeHash(v)
			if err != nil {
				return nil, err
			}
			vol.Create = client.VolumeCreateOptions{
				Name: v.Name, Driver: v.Driver, DriverOpts: v.DriverOpts,
				Labels: merge(v.Labels, map[string]string{
					labelVolume: k, labels.ComposeProject: p.Name, labelVersion: ComposeVersion, labelConfigHash: hash,
				}),
			}
		}
		plan.Volumes = append(plan.Volumes, vol)
	}
	order, err := dependencyOrder(p)
	if err != nil {
		return nil, err
	}
	for _, name := range order {
		s, err := buildService(p, p.Services[name], fleet)
		if err != nil {
			return nil, err
		}
		plan.Services = append(plan.Services, s)
	}
	return plan, nil
}

// dependencyOrder lists the services, each after its dependencies (names
// sorted among equals); a cycle is refused with its path.
func dependencyOrder(p *types.Project) ([]string, error) {
	var out []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(n string, path []string) error
	visit = func(n string, path []string) error {
		switch state[n] {
		case 1:
			return invalid("dependency cycle: %s", strings.Join(append(path, n), " -> "))
		case 2:
			return nil
		}
		state[n] = 1
		for _, d := range slices.Sorted(maps.Keys(p.Services[n].DependsOn)) {
			if _, ok := p.Services[d]; !ok {
				return invalid("service %s depends on unknown service %s", n, d)
			}
			if err := visit(d, append(path, n)); err != nil {
				return err
			}
		}
		state[n] = 2
		out = append(out, n)
		return nil
	}
	for _, n := range p.ServiceNames() {
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func buildService(p *types.Project, s types.ServiceConfig, fleet []Host) (*Service, error) {
	svc := &Service{Name: s.Name}
	var depLabel []string
	for _, d := range slices.Sorted(maps.Keys(s.DependsOn)) {
		dep := s.DependsOn[d]
		cond := dep.Condition
		if cond == "" {
			cond = ServiceStarted
		}
		switch cond {
		case ServiceStarted, ServiceHealthy, ServiceCompleted:
		default:
			return nil, invalid("service %s: depends_on %s: unknown condition %s", s.Name, d, cond)
		}
		svc.DependsOn = append(svc.DependsOn, Dependency{Service: d, Condition: cond, Required: dep.Required})
		depLabel = append(depLabel, fmt.Sprintf("%s:%s:%t", d, dep.Condition, dep.Restart))
	}
	replicas := 1
	if s.Deploy != nil && s.Deploy.Replicas != nil {
		replicas = *s.Deploy.Replicas
	} else if s.Scale != nil {
		replicas = *s.Scale
	}
	if replicas < 0 {
		return nil, invalid("service %s: replicas %d", s.Name, replicas)
	}
	if s.ContainerName != "" && replicas > 1 {
		return nil, invalid("service %s: container_name %s cannot name %d replicas", s.Name, s.ContainerName, replicas)
	}
	hash, err := ServiceHash(s)
	if err != nil {
		return nil, err
	}
	constraints, err := constraintEnv(s.Name, placement(s).Constraints)
	if err != nil {
		return nil, err
	}
	for n := 1; n <= replicas; n++ {
		name := s.ContainerName
		if name == "" {
			name = fmt.Sprintf("%s-%s-%d", p.Name, s.Name, n)
		}
		spread, err := spreadEnv(s.Name, placement(s).Preferences, fleet, n-1)
		if err != nil {
			return nil, err
		}
		lbl := merge(s.Labels, map[string]string{
			labels.ComposeProject: p.Name, labels.ComposeService: s.Name, labels.ComposeOneoff: "False",
			labelVersion: ComposeVersion, labelWorkingDir: p.WorkingDir,
			labelConfigFiles: strings.Join(p.ComposeFiles, ","),
			labelConfigHash:  hash, labelNumber: strconv.Itoa(n),
			labelDependsOn: strings.Join(depLabel, ","),
		})
		create, err := containerCreate(p, s, name, lbl, append(append([]string{}, constraints...), spread...))
		if err != nil {
			return nil, err
		}
		svc.Containers = append(svc.Containers, Container{Number: n, Create: create})
	}
	return svc, nil
}

func placement(s types.ServiceConfig) types.Placement {
	if s.Deploy == nil {
		return types.Placement{}
	}
	return s.Deploy.Placement
}

// containerCreate is the create of one replica, as compose's
// getCreateConfigs makes it for the keys Clocker deploys.
func containerCreate(p *types.Project, s types.ServiceConfig, name string, lbl map[string]string, placementEnv []string) (client.ContainerCreateOptions, error) {
	bad := func(format string, a ...any) (client.ContainerCreateOptions, error) {
		return client.ContainerCreateOptions{}, invalid("service %s: "+format, append([]any{s.Name}, a...)...)
	}
	var env []string
	for _, k := range slices.Sorted(maps.Keys(s.Environment)) {
		if v := s.Environment[k]; v != nil {
			env = append(env, k+"="+*v)
		} else {
			env = append(env, k)
		}
	}
	env = append(env, placementEnv...)
	cfg := &container.Config{
		Image: s.Image, Cmd: s.Command, Entrypoint: s.Entrypoint, Env: env, Labels: lbl,
		Hostname: s.Hostname, Domainname: s.DomainName, User: s.User, WorkingDir: s.WorkingDir,
		Tty: s.Tty, OpenStdin: s.StdinOpen, AttachStdout: true, AttachStderr: true,
		StopSignal: s.StopSignal, ExposedPorts: network.PortSet{},
	}
	if s.StopGracePeriod != nil {
		secs := int(time.Duration(*s.StopGracePeriod).Seconds())
		cfg.StopTimeout = &secs
	}
	if h := s.HealthCheck; h != nil {
		hc := &container.HealthConfig{Test: h.Test}
		if h.Disable {
			hc.Test = []string{"NONE"}
		}
		if h.Interval != nil {
			hc.Interval = time.Duration(*h.Interval)
		}
		if h.Timeout != nil {
			hc.Timeout = time.Duration(*h.Timeout)
		}
		if h.StartPeriod != nil {
			hc.StartPeriod = time.Duration(*h.StartPeriod)
		}
		if h.StartInterval != nil {
			hc.StartInterval = time.Duration(*h.StartInterval)
		}
		if h.Retries != nil {
			hc.Retries = int(*h.Retries)
		}
		cfg.Healthcheck = hc
	}
	hc := &container.HostConfig{
		PortBindings: network.PortMap{}, RestartPolicy: restartPolicy(s),
		Privileged: s.Privileged, CapAdd: s.CapAdd, CapDrop: s.CapDrop, ReadonlyRootfs: s.ReadOnly,
		Init: s.Init, ShmSize: int64(s.ShmSize), Sysctls: s.Sysctls, SecurityOpt: s.SecurityOpt,
		ExtraHosts: s.ExtraHosts.AsList(":"), DNSSearch: s.DNSSearch, DNSOptions: s.DNSOpts,
		GroupAdd: s.GroupAdd,
	}
	for _, d := range s.DNS {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return bad("dns %q: %v", d, err)
		}
		hc.DNS = append(hc.DNS, a)
	}
	if s.Logging != nil {
		hc.LogConfig = container.LogConfig{Type: s.Logging.Driver, Config: s.Logging.Options}
	}
	if len(s.Tmpfs) > 0 {
		hc.Tmpfs = map[string]string{}
		for _, t := range s.Tmpfs {
			k, v, _ := strings.Cut(t, ":")
			hc.Tmpfs[k] = v
		}
	}
	hc.Resources.Memory = int64(s.MemLimit)
	hc.Resources.MemoryReservation = int64(s.MemReservation)
	hc.Resources.CPUShares = s.CPUShares
	hc.Resources.NanoCPUs = int64(s.CPUS * 1e9)
	if s.Deploy != nil {
		if l := s.Deploy.Resources.Limits; l != nil {
			if l.MemoryBytes > 0 {
				hc.Resources.Memory = int64(l.MemoryBytes)
			}
			if l.NanoCPUs > 0 {
				hc.Resources.NanoCPUs = int64(l.NanoCPUs.Value() * 1e9)
			}
		}
		if r := s.Deploy.Resources.Reservations; r != nil && r.MemoryBytes > 0 {
			hc.Resources.MemoryReservation = int64(r.MemoryBytes)
		}
	}
	for _, e := range s.Expose {
		port, err := network.ParsePort(e)
		if err != nil {
			return bad("expose %s: %v", e, err)
		}
		cfg.ExposedPorts[port] = struct{}{}
	}
	for _, pc := range s.Ports {
		proto := pc.Protocol
		if proto == "" {
			proto = "tcp"
		}
		port, err := network.ParsePort(fmt.Sprintf("%d/%s", pc.Target, proto))
		if err != nil {
			return bad("port %d: %v", pc.Target, err)
		}
		cfg.ExposedPorts[port] = struct{}{}
		b := network.PortBinding{HostPort: pc.Published}
		if pc.HostIP != "" {
			if b.HostIP, err = netip.ParseAddr(pc.HostIP); err != nil {
				return bad("port %d host_ip %q: %v", pc.Target, pc.HostIP, err)
			}
		}
		hc.PortBindings[port] = append(hc.PortBindings[port], b)
	}
	for _, v := range s.Volumes {
		m := mount.Mount{Target: v.Target, ReadOnly: v.ReadOnly}
		switch v.Type {
		case types.VolumeTypeVolume:
			m.Type = mount.TypeVolume
			m.Source = v.Source
			if v.Source != "" {
				vol, ok := p.Volumes[v.Source]
				if !ok {
					return bad("volume %s is not declared under volumes", v.Source)
				}
				m.Source = vol.Name
			}
			if v.Volume != nil && v.Volume.NoCopy {
				m.VolumeOptions = &mount.VolumeOptions{NoCopy: true}
			}
		case types.VolumeTypeBind:
			m.Type, m.Source = mount.TypeBind, v.Source
			if v.Bind != nil && v.Bind.CreateHostPath {
				// docker run -v creates a missing host path; a mount does not.
				hc.Binds = append(hc.Binds, bindSpec(v))
				continue
			}
		case types.VolumeTypeTmpfs:
			m.Type = mount.TypeTmpfs
		default:
			return bad("volume type %s is not deployed by Clocker", v.Type)
		}
		hc.Mounts = append(hc.Mounts, m)
	}
	var nc *network.NetworkingConfig
	switch {
	case s.NetworkMode != "":
		hc.NetworkMode = container.NetworkMode(s.NetworkMode)
	case len(p.Networks) == 0:
		hc.NetworkMode = network.NetworkNone
	default:
		nc = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{}}
		keys := s.NetworksByPriority()
		if len(keys) == 0 {
			keys = []string{"default"}
		}
		for i, k := range keys {
			pn, ok := p.Networks[k]
			if !ok {
				return bad("network %s is not declared under networks", k)
			}
			if i == 0 {
				hc.NetworkMode = container.NetworkMode(pn.Name)
			}
			ep := &network.EndpointSettings{Aliases: []string{name, s.Name}}
			if sn := s.Networks[k]; sn != nil {
				ep.Aliases = append(ep.Aliases, sn.Aliases...)
				if sn.Ipv4Address != "" {
					a, err := netip.ParseAddr(sn.Ipv4Address)
					if err != nil {
						return bad("network %s ipv4_address: %v", k, err)
					}
					ep.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: a}
				}
			}
			nc.EndpointsConfig[pn.Name] = ep
		}
	}
	return client.ContainerCreateOptions{Name: name, Config: cfg, HostConfig: hc, NetworkingConfig: nc}, nil
}

func bindSpec(v types.ServiceVolumeConfig) string {
	s := v.Source + ":" + v.Target
	if v.ReadOnly {
		s += ":ro"
	}
	return s
}

// restartPolicy is compose's: restart, else deploy.restart_policy.
func restartPolicy(s types.ServiceConfig) container.RestartPolicy {
	if s.Restart != "" {
		name, n, _ := strings.Cut(s.Restart, ":")
		attempts, _ := strconv.Atoi(n)
		return container.RestartPolicy{Name: container.RestartPolicyMode(name), MaximumRetryCount: attempts}
	}
	if s.Deploy != nil && s.Deploy.RestartPolicy != nil {
		rp := s.Deploy.RestartPolicy
		var attempts int
		if rp.MaxAttempts != nil {
			attempts = int(*rp.MaxAttempts)
		}
		mode := map[string]container.RestartPolicyMode{"none": "no", "on-failure": "on-failure", "any": "always"}[rp.Condition]
		return container.RestartPolicy{Name: mode, MaximumRetryCount: attempts}
	}
	return container.RestartPolicy{}
}

func toIPAM(c types.IPAMConfig) (*network.IPAM, error) {
	if c.Driver == "" && len(c.Config) == 0 {
		return nil, nil
	}
	out := &network.IPAM{Driver: c.Driver, Options: c.Options}
	for _, pool := range c.Config {
		var cfg network.IPAMConfig
		if pool.Subnet != "" {
			pfx, err := netip.ParsePrefix(pool.Subnet)
			if err != nil {
				return nil, err
			}
			cfg.Subnet = pfx
		}
		if pool.Gateway != "" {
			a, err := netip.ParseAddr(pool.Gateway)
			if err != nil {
				return nil, err
			}
			cfg.Gateway = a
		}
		if pool.IPRange != "" {
			pfx, err := netip.ParsePrefix(pool.IPRange)
			if err != nil {
				return nil, err
			}
			cfg.IPRange = pfx
		}
		out.Config = append(out.Config, cfg)
	}
	return out, nil
}

func merge(base map[string]string, over map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}
