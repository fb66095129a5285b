package blueprint

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// fakeEngine is the front door as blueprints see it: containers on a
// network get addresses 10.0.0.N, every image but "missing" exists.
type fakeEngine struct {
	mu       sync.Mutex
	next     int
	ctrs     map[string]*fakeCtr
	networks map[string]bool
	volumes  map[string]bool
	creates  int
	exec     fakeExecs
	// objLabels are the labels of networks ("net/NAME") and volumes
	// ("vol/NAME") a test made.
	objLabels map[string]map[string]string
	// events is what Events streams (a test sends); history what a
	// query with until answers.
	events  chan events.Message
	history []events.Message
}

type fakeCtr struct {
	opts    client.ContainerCreateOptions
	running bool
	paused  bool
	ip      string
	cpu     float64
}

func newFake() *fakeEngine {
	return &fakeEngine{ctrs: map[string]*fakeCtr{}, networks: map[string]bool{}, volumes: map[string]bool{}, events: make(chan events.Message)}
}

func (f *fakeEngine) ContainerCreate(ctx context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.networks[string(o.HostConfig.NetworkMode)] {
		return client.ContainerCreateResult{}, cerrdefs.ErrNotFound.WithMessage("network not found")
	}
	f.next++
	f.creates++
	id := fmt.Sprintf("c%02d", f.next)
	f.ctrs[id] = &fakeCtr{opts: o, ip: fmt.Sprintf("10.0.0.%d", f.next)}
	for _, b := range o.HostConfig.Binds {
		if name, _, _ := strings.Cut(b, ":"); !strings.HasPrefix(name, "/") {
			f.volumes[name] = true
		}
	}
	return client.ContainerCreateResult{ID: id}, nil
}

func (f *fakeEngine) get(id string) (*fakeCtr, error) {
	c, ok := f.ctrs[id]
	if !ok {
		return nil, cerrdefs.ErrNotFound.WithMessage("No such container: " + id)
	}
	return c, nil
}

func (f *fakeEngine) ContainerStart(ctx context.Context, id string, o client.ContainerStartOptions) (client.ContainerStartResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(id)
	if err == nil && c.paused {
		err = cerrdefs.ErrConflict.WithMessage("cannot start a paused container, try unpause instead")
	}
	if err == nil {
		c.running = true
	}
	return client.ContainerStartResult{}, err
}

func (f *fakeEngine) ContainerStop(ctx context.Context, id string, o client.ContainerStopOptions) (client.ContainerStopResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(id)
	if err == nil {
		c.running, c.paused = false, false
	}
	return client.ContainerStopResult{}, err
}

func (c *fakeCtr) state() container.ContainerState {
	switch {
	case c.paused:
		return container.StatePaused
	case c.running:
		return container.StateRunning
	}
	return container.StateExited
}

// ContainerPause and ContainerUnpause refuse a container not running, or
// not paused, as dockerd does.
func (f *fakeEngine) ContainerPause(ctx context.Context, id string, o client.ContainerPauseOptions) (client.ContainerPauseResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(id)
	if err == nil && (!c.running || c.paused) {
		err = cerrdefs.ErrConflict.WithMessage("container " + id + " is not running")
	}
	if err == nil {
		c.paused = true
	}
	return client.ContainerPauseResult{}, err
}

func (f *fakeEngine) ContainerUnpause(ctx context.Context, id string, o client.ContainerUnpauseOptions) (client.ContainerUnpauseResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(id)
	if err == nil && !c.paused {
		err = cerrdefs.ErrConflict.WithMessage("container " + id + " is not paused")
	}
	if err == nil {
		c.paused = false
	}
	return client.ContainerUnpauseResult{}, err
}

func (f *fakeEngine) ContainerRestart(ctx context.Context, id string, o client.ContainerRestartOptions) (client.ContainerRestartResult, error) {
	_, err := f.ContainerStart(ctx, id, client.ContainerStartOptions{})
	return client.ContainerRestartResult{}, err
}

func (f *fakeEngine) ContainerRemove(ctx context.Context, id string, o client.ContainerRemoveOptions) (client.ContainerRemoveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.get(id)
	delete(f.ctrs, id)
	return client.ContainerRemoveResult{}, err
}

func (f *fakeEngine) ContainerInspect(ctx context.Context, id string, o client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(id)
	if err != nil {
		return client.ContainerInspectResult{}, err
	}
	net := string(c.opts.HostConfig.NetworkMode)
	ports := network.PortMap{}
	i := 0
	for p := range c.opts.HostConfig.PortBindings {
		i++
		ports[p] = []network.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: fmt.Sprint(20000 + i)}}
	}
	in := container.InspectResponse{
		ID: id, Name: "/" + c.opts.Name, Config: c.opts.Config, HostConfig: c.opts.HostConfig,
		State: &container.State{Running: c.running, Paused: c.paused, Status: c.state()},
		NetworkSettings: &container.NetworkSettings{
			Networks: map[string]*network.EndpointSettings{net: {IPAddress: netip.MustParseAddr(c.ip)}},
			Ports:    ports,
		},
	}
	raw, _ := json.Marshal(map[string]any{"Node": map[string]string{"Name": "h1", "IP": "192.168.1.1", "Addr": "192.168.1.1:2375"}})
	return client.ContainerInspectResult{Container: in, Raw: raw}, nil
}

func (f *fakeEngine) ContainerList(ctx context.Context, o client.ContainerListOptions) (client.ContainerListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out client.ContainerListResult
	for id, c := range f.ctrs {
		match := true
		for l := range o.Filters["label"] {
			k, v, hasV := strings.Cut(l, "=")
			if lv, ok := c.opts.Config.Labels[k]; !ok || (hasV && lv != v) {
				match = false
			}
		}
		if match {
			out.Items = append(out.Items, container.Summary{ID: id, State: c.state(), Labels: c.opts.Config.Labels, Names: []string{"/" + c.opts.Name}, Image: c.opts.Config.Image})
		}
	}
	return out, nil
}

func (f *fakeEngine) NetworkCreate(ctx context.Context, name string, o client.NetworkCreateOptions) (client.NetworkCreateResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.networks[name] {
		return client.NetworkCreateResult{}, cerrdefs.ErrConflict.WithMessage("network exists")
	}
	f.networks[name] = true
	f.exec.created(name, o)
	return client.NetworkCreateResult{ID: name}, nil
}

func (f *fakeEngine) NetworkInspect(ctx context.Context, id string, o client.NetworkInspectOptions) (client.NetworkInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.networks[id] {
		return client.NetworkInspectResult{}, cerrdefs.ErrNotFound.WithMessage("network " + id + " not found")
	}
	return f.exec.inspect(id), nil
}

func (f *fakeEngine) NetworkRemove(ctx context.Context, id string, o client.NetworkRemoveOptions) (client.NetworkRemoveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.networks[id] {
		return client.NetworkRemoveResult{}, cerrdefs.ErrNotFound.WithMessage("network " + id + " not found")
	}
	delete(f.networks, id)
	return client.NetworkRemoveResult{}, nil
}

func (f *fakeEngine) VolumeRemove(ctx context.Context, id string, o client.VolumeRemoveOptions) (client.VolumeRemoveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.volumes, id)
	return client.VolumeRemoveResult{}, nil
}

func (f *fakeEngine) ImageInspect(ctx context.Context, image string, o ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	if strings.HasPrefix(image, "missing") {
		return client.ImageInspectResult{}, cerrdefs.ErrNotFound.WithMessage("No such image: " + image)
	}
	return client.ImageInspectResult{}, nil
}

func (f *fakeEngine) Info(ctx context.Context, o client.InfoOptions) (client.SystemInfoResult, error) {
	var r client.SystemInfoResult
	r.Info.SystemStatus = [][2]string{{"Nodes", "1"}, {" h1", "192.168.1.1:2375"}, {"  └ Status", "Healthy"}}
	return r, nil
}

// snapshot counts what exists.
func (f *fakeEngine) snapshot() (ctrs, nets, vols int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.ctrs), len(f.networks), len(f.volumes)
}

// ContainerStats answers the container's cpu (percent of one core, set
// by tests) as one sample with its previous.
func (f *fakeEngine) ContainerStats(ctx context.Context, id string, o client.ContainerStatsOptions) (client.ContainerStatsResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(id)
	if err != nil {
		return client.ContainerStatsResult{}, err
	}
	var s container.StatsResponse
	s.PreCPUStats.SystemUsage, s.CPUStats.SystemUsage = 1000, 2000
	s.CPUStats.OnlineCPUs = 1
	s.CPUStats.CPUUsage.TotalUsage = uint64(c.cpu * 10)
	b, _ := json.Marshal(s)
	return client.ContainerStatsResult{Body: io.NopCloser(bytes.NewReader(b))}, nil
}

// ContainerLogs gives the container's image name on stdout and "warn" on
// stderr, multiplexed as dockerd does.
func (f *fakeEngine) ContainerLogs(ctx context.Context, id string, o client.ContainerLogsOptions) (client.ContainerLogsResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(id)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	frame := func(stream byte, text string) {
		b.Write([]byte{stream, 0, 0, 0, 0, 0, 0, byte(len(text))})
		b.WriteString(text)
	}
	frame(1, c.opts.Config.Image+"\n")
	frame(2, "warn\n")
	return io.NopCloser(&b), nil
}
