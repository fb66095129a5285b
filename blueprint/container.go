package blueprint

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/clocker/clocker/blueprint/camp"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/labels"
)

// Config keys of the container entity: Clocker 1.x's flag names first,
// then the docker.* key names.
var (
	keyOpenPorts    = []string{"openPorts", "docker.container.openPorts"}
	keyPortBindings = []string{"portBindings", "docker.container.portBindings"}
	keyEnv          = []string{"env", "docker.container.environment"}
	keyVolumes      = []string{"volumes", "docker.container.volumes"}
	keyVolumeMaps   = []string{"volumeMappings", "docker.container.volumeMappings"}
	keyEntrypoint   = []string{"entrypoint", "docker.container.entrypoint"}
	keyCommands     = []string{"commands", "docker.container.commands"}
	keyCPUShares    = []string{"docker.cpuShares", "cpuShares"}
	keyMemory       = []string{"docker.memory", "memory"}
)

func lookup(cfg map[string]any, keys []string) (any, bool) {
	for _, k := range keys {
		if v, ok := cfg[k]; ok && v != nil {
			return v, true
		}
	}
	return nil, false
}

var slugRE = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

func slug(s string) string {
	s = strings.Trim(slugRE.ReplaceAllString(s, "-"), "-._")
	if s == "" {
		return "entity"
	}
	return strings.ToLower(s)
}

// containerName is unique across the fleet: the entity's label and id.
func containerName(e *Entity) string { return slug(e.Node.Label()) + "-" + e.ID }

// namedVolumes are the volumes NAME:/path of e's config.
func namedVolumes(e *Entity) []string { return nodeVolumes(e.Node) }

// appVolumes are the named volumes of every entity app's plan may make,
// expunged ones and cluster members included.
func appVolumes(app *App) []string {
	var out []string
	for _, n := range app.plan.Nodes {
		out = append(out, nodeVolumes(n)...)
		if n.MemberSpec != nil {
			out = append(out, nodeVolumes(n.MemberSpec)...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func nodeVolumes(n *camp.Node) []string {
	v, _ := lookup(n.Config, keyVolumes)
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			continue
		}
		if name, _, ok := strings.Cut(s, ":"); ok && !strings.HasPrefix(name, "/") && name != "" {
			out = append(out, name)
		}
	}
	return out
}

// startContainer runs e's container: adopted when one with e's label
// exists (after a restart, or a second start), else made from its
// resolved config. Then its sensors are published.
func (m *Manager) startContainer(ctx context.Context, e *Entity) error {
	if e.App.Project != "" {
		return m.startProjectContainer(ctx, e)
	}
	f := make(client.Filters).Add("label", labels.BlueprintEntity+"="+e.ID)
	list, err := m.engOf(e.App).ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return err
	}
	var id string
	if len(list.Items) > 0 {
		id = list.Items[0].ID
		if list.Items[0].State == container.StatePaused { // start after pause: as resume
			if _, err := m.engOf(e.App).ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{}); err != nil {
				return engineErr("unpause "+e.Node.Label(), err)
			}
		}
	} else {
		cfg := map[string]any{}
		for k := range e.Node.Config {
			v, err := m.Config(ctx, e, k)
			if err != nil {
				return err
			}
			cfg[k] = v
		}
		opts, err := m.createOptions(ctx, e, cfg)
		if err != nil {
			return err
		}
		if isProcess(e) {
			if err := processOptions(e, cfg, &opts); err != nil {
				return err
			}
		}
		m.mu.Lock()
		e.resolved = cfg
		m.mu.Unlock()
		res, err := m.engOf(e.App).ContainerCreate(ctx, opts)
		if err != nil {
			return fmt.Errorf("create %s: %w", opts.Name, err)
		}
		id = res.ID
		if err := m.joinNetworks(ctx, e, id); err != nil {
			return err
		}
	}
	m.mu.Lock()
	e.containerID = id
	m.mu.Unlock()
	m.setSensors(e, map[string]any{"docker.container.id": id})
	m.save(e.App)
	if _, err := m.engOf(e.App).ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil && !isNotModified(err) {
		return fmt.Errorf("start %s: %w", id, err)
	}
	if err := m.refresh(ctx, e); err != nil {
		return err
	}
	if isProcess(e) {
		return m.awaitProcess(ctx, e)
	}
	return nil
}

// refresh publishes the container's sensors from an inspect.
func (m *Manager) refresh(ctx context.Context, e *Entity) error {
	m.mu.Lock()
	id := e.containerID
	m.mu.Unlock()
	in, err := m.engOf(e.App).ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	c := in.Container
	var node struct {
		Node struct{ Name, IP, Addr string }
	}
	_ = json.Unmarshal(in.Raw, &node)
	s := map[string]any{
		"docker.container.id":      c.ID,
		"docker.container.name":    strings.TrimPrefix(c.Name, "/"),
		"docker.container.running": c.State != nil && c.State.Running,
		"host.name":                node.Node.Name,
		"host.address":             node.Node.IP,
	}
	if s["host.name"] == "" && c.Config != nil {
		s["host.name"] = c.Config.Labels[labels.Host]
	}
	if c.State != nil {
		s[SensorPaused] = c.State.Paused
	}
	if c.NetworkSettings != nil {
		if ep := c.NetworkSettings.Networks[e.App.Network]; ep != nil && ep.IPAddress.IsValid() {
			s["host.subnet.address"] = ep.IPAddress.String()
		} else if addr := projectAddress(e, c.NetworkSettings.Networks); addr != "" {
			s["host.subnet.address"] = addr
		}
		s[SensorAddresses] = addresses(c.NetworkSettings.Networks)
		var ports []int
		for p, bs := range c.NetworkSettings.Ports {
			if len(bs) == 0 || bs[0].HostPort == "" {
				continue
			}
			hp, err := strconv.Atoi(bs[0].HostPort)
			if err != nil {
				continue
			}
			s[fmt.Sprintf("mapped.port.%d", p.Num())] = hp
			ports = append(ports, int(p.Num()))
			if ip := bs[0].HostIP; ip.IsValid() && !ip.IsUnspecified() {
				s["mapped.host.address"] = ip.String()
			}
		}
		sort.Ints(ports)
		if len(ports) > 0 {
			addr, _ := s["mapped.host.address"].(string)
			if addr == "" {
				addr = node.Node.IP
			}
			s["main.uri"] = fmt.Sprintf("http://%s:%d/", addr, s[fmt.Sprintf("mapped.port.%d", ports[0])])
		}
	}
	running := c.State != nil && c.State.Running
	if running && isProcess(e) {
		// A software process is up when its check passes (awaitProcess, the watch).
	} else if running {
		s[SensorState], s[SensorUp] = StateRunning, true
	} else {
		s[SensorState], s[SensorUp] = StateStopped, false
	}
	m.setSensors(e, s)
	if !running {
		return fmt.Errorf("container %s is not running (%s)", id, c.State.Status)
	}
	return nil
}

// SensorAddresses is Clocker 1.x's docker.container.addresses: the
// container's addresses on every network it joined.
const SensorAddresses = "docker.container.addresses"

func addresses(nets map[string]*network.EndpointSettings) []any {
	var ips []string
	for _, ep := range nets {
		if ep != nil && ep.IPAddress.IsValid() && !slices.Contains(ips, ep.IPAddress.String()) {
			ips = append(ips, ep.IPAddress.String())
		}
	}
	sort.Strings(ips)
	out := make([]any, len(ips))
	for i, ip := range ips {
		out[i] = ip
	}
	return out
}

func isNotModified(err error) bool {
	return cerrdefs.IsNotModified(err) || strings.Contains(err.Error(), "already started")
}

// createOptions builds the container from e's resolved config.
func (m *Manager) createOptions(ctx context.Context, e *Entity, cfg map[string]any) (client.ContainerCreateOptions, error) {
	bad := func(key, format string, a ...any) error {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s: %s: %s", e.Node.Label(), key, fmt.Sprintf(format, a...)))
	}
	cc := &container.Config{
		Image:        e.Node.Image,
		ExposedPorts: network.PortSet{},
		Labels: map[string]string{
			labels.BlueprintApplication: e.App.ID,
			labels.BlueprintEntity:      e.ID,
			labels.Application:          e.App.ID,
		},
	}
	// Clocker 1.x's strategies and affinity rules, as Clocker's labels.
	if e.Node.Strategy != "" {
		cc.Labels[labels.Strategy] = e.Node.Strategy
	}
	if e.Node.Affinity != "" {
		cc.Labels[labels.Affinity] = e.Node.Affinity
	}
	hc := &container.HostConfig{NetworkMode: container.NetworkMode(e.App.Network), PortBindings: network.PortMap{}}
	if v, ok := lookup(cfg, keyOpenPorts); ok {
		list, ok := v.([]any)
		if !ok {
			list = []any{v}
		}
		for _, x := range list {
			p, err := network.ParsePort(str(x))
			if err != nil {
				return client.ContainerCreateOptions{}, bad("openPorts", "%v", err)
			}
			cc.ExposedPorts[p] = struct{}{}
			hc.PortBindings[p] = []network.PortBinding{{}}
		}
	}
	if v, ok := lookup(cfg, keyPortBindings); ok {
		mp, ok := v.(map[string]any)
		if !ok {
			return client.ContainerCreateOptions{}, bad("portBindings", "want a map of host port to container port")
		}
		for host, ctr := range mp {
			p, err := network.ParsePort(str(ctr))
			if err != nil {
				return client.ContainerCreateOptions{}, bad("portBindings", "%v", err)
			}
			cc.ExposedPorts[p] = struct{}{}
			hc.PortBindings[p] = []network.PortBinding{{HostPort: host}}
		}
	}
	if v, ok := lookup(cfg, keyEnv); ok {
		mp, ok := v.(map[string]any)
		if !ok {
			return client.ContainerCreateOptions{}, bad("env", "want a map of name to value")
		}
		for k, x := range mp {
			cc.Env = append(cc.Env, k+"="+str(x))
		}
	}
	links, err := m.linkEnv(ctx, e)
	if err != nil {
		return client.ContainerCreateOptions{}, err
	}
	cc.Env = append(cc.Env, links...)
	sort.Strings(cc.Env)
	if v, ok := lookup(cfg, keyVolumes); ok {
		list, ok := v.([]any)
		if !ok {
			return client.ContainerCreateOptions{}, bad("volumes", "want a list of /path or NAME:/path")
		}
		for _, x := range list {
			s := str(x)
			if strings.Contains(s, ":") {
				hc.Binds = append(hc.Binds, s)
				continue
			}
			if cc.Volumes == nil {
				cc.Volumes = map[string]struct{}{}
			}
			cc.Volumes[s] = struct{}{}
		}
	}
	if v, ok := lookup(cfg, keyVolumeMaps); ok {
		mp, ok := v.(map[string]any)
		if !ok {
			return client.ContainerCreateOptions{}, bad("volumeMappings", "want a map of host path to container path")
		}
		for host, ctr := range mp {
			hc.Binds = append(hc.Binds, host+":"+str(ctr))
		}
	}
	words := func(key string, v any) ([]string, error) {
		switch t := v.(type) {
		case string:
			return []string{"sh", "-c", t}, nil
		case []any:
			out := make([]string, len(t))
			for i, x := range t {
				out[i] = str(x)
			}
			return out, nil
		}
		return nil, bad(key, "want a string or a list")
	}
	if v, ok := lookup(cfg, keyEntrypoint); ok {
		if cc.Entrypoint, err = words("entrypoint", v); err != nil {
			return client.ContainerCreateOptions{}, err
		}
	}
	if v, ok := lookup(cfg, keyCommands); ok {
		if cc.Cmd, err = words("commands", v); err != nil {
			return client.ContainerCreateOptions{}, err
		}
	}
	if v, ok := lookup(cfg, keyCPUShares); ok {
		n, err := strconv.ParseInt(str(v), 10, 64)
		if err != nil {
			return client.ContainerCreateOptions{}, bad("docker.cpuShares", "%q is not an integer", str(v))
		}
		hc.CPUShares = n
	}
	if v, ok := lookup(cfg, keyMemory); ok {
		// A number is megabytes, as Clocker 1.x; a string may carry a unit.
		if n, err := strconv.ParseInt(str(v), 10, 64); err == nil {
			hc.Memory = n << 20
		} else if b, err := units.RAMInBytes(str(v)); err == nil {
			hc.Memory = b
		} else {
			return client.ContainerCreateOptions{}, bad("docker.memory", "%q is not megabytes or a size such as 512m", str(v))
		}
	}
	aliases := []string{slug(e.Node.Name)}
	if e.Node.PlanID != "" && slug(e.Node.PlanID) != aliases[0] {
		aliases = append([]string{slug(e.Node.PlanID)}, aliases...)
	}
	return client.ContainerCreateOptions{
		Name:       containerName(e),
		Config:     cc,
		HostConfig: hc,
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			e.App.Network: {Aliases: aliases},
		}},
	}, nil
}

// linkEnv gives Docker-link style variables for each links entry
// (ALIAS_NAME, ALIAS_PORT, ALIAS_PORT_P_TCP[_ADDR|_PORT|_PROTO]) from the
// linked entity's fleet-network address and ports.
func (m *Manager) linkEnv(ctx context.Context, e *Entity) ([]string, error) {
	var env []string
	for _, k := range camp.LinkKeys {
		links, ok := e.Node.Config[k].(map[string]any)
		if !ok {
			continue
		}
		for alias, v := range links {
			c, _ := v.(*camp.Call)
			t, err := m.ref(e, c)
			if err != nil {
				return nil, err
			}
			addrV, err := m.waitSensor(ctx, e, t, "host.subnet.address")
			if err != nil {
				return nil, err
			}
			addr := str(addrV)
			up := strings.ToUpper(slugRE.ReplaceAllString(alias, "_"))
			env = append(env, up+"_NAME=/"+containerName(e)+"/"+alias)
			pv, _ := lookup(t.Node.Config, keyOpenPorts)
			ports, _ := pv.([]any)
			for i, p := range ports {
				n := str(p)
				if _, err := netip.ParseAddrPort("0.0.0.0:" + n); err != nil {
					continue
				}
				pre := fmt.Sprintf("%s_PORT_%s_TCP", up, n)
				env = append(env, pre+"=tcp://"+addr+":"+n, pre+"_ADDR="+addr, pre+"_PORT="+n, pre+"_PROTO=tcp")
				if i == 0 {
					env = append(env, up+"_PORT=tcp://"+addr+":"+n)
				}
			}
		}
	}
	return env, nil
}
