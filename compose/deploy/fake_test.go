package deploy

import (
	"context"
	"fmt"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// fakeEngine is an in-memory engine for unit tests: it records what is
// made and removed; states scripts what inspect answers per container
// name (one entry per call, the last repeated).
type fakeEngine struct {
	mu         sync.Mutex
	images     map[string]bool
	containers map[string]string // id → name
	networks   map[string]bool
	volumes    map[string]bool
	states     map[string][]container.State
	calls      []string
	failCreate string // a container name whose create fails
	info       [][2]string
	seq        int
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{images: map[string]bool{"busybox": true}, containers: map[string]string{}, networks: map[string]bool{}, volumes: map[string]bool{}, states: map[string][]container.State{}}
}

func (f *fakeEngine) log(format string, a ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, a...))
}

func notFound(what string) error { return cerrdefs.ErrNotFound.WithMessage("No such " + what) }

func (f *fakeEngine) ContainerCreate(_ context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o.NetworkingConfig != nil && len(o.NetworkingConfig.EndpointsConfig) > 1 {
		return client.ContainerCreateResult{}, fmt.Errorf("Container cannot be connected to network endpoints (API 1.41)")
	}
	if o.Name == f.failCreate {
		return client.ContainerCreateResult{}, fmt.Errorf("no host fits")
	}
	f.seq++
	id := fmt.Sprintf("id%d", f.seq)
	f.containers[id] = o.Name
	f.log("create %s", o.Name)
	return client.ContainerCreateResult{ID: id}, nil
}

func (f *fakeEngine) ContainerStart(_ context.Context, id string, _ client.ContainerStartOptions) (client.ContainerStartResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log("start %s", f.containers[id])
	return client.ContainerStartResult{}, nil
}

func (f *fakeEngine) ContainerInspect(_ context.Context, ref string, _ client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name, ok := f.containers[ref] // by id, else by name
	for _, n := range f.containers {
		if !ok && n == ref {
			name, ok = n, true
		}
	}
	if !ok {
		return client.ContainerInspectResult{}, notFound("container: " + ref)
	}
	st := container.State{Status: container.StateRunning, Running: true}
	if s := f.states[name]; len(s) > 0 {
		st = s[0]
		if len(s) > 1 {
			f.states[name] = s[1:]
		}
	}
	return client.ContainerInspectResult{Container: container.InspectResponse{Name: "/" + name, State: &st}}, nil
}

func (f *fakeEngine) ContainerList(context.Context, client.ContainerListOptions) (client.ContainerListResult, error) {
	return client.ContainerListResult{}, nil
}

func (f *fakeEngine) ContainerRemove(_ context.Context, id string, _ client.ContainerRemoveOptions) (client.ContainerRemoveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log("remove %s", f.containers[id])
	delete(f.containers, id)
	return client.ContainerRemoveResult{}, nil
}

func (f *fakeEngine) NetworkCreate(_ context.Context, name string, _ client.NetworkCreateOptions) (client.NetworkCreateResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.networks[name] = true
	f.log("network create %s", name)
	return client.NetworkCreateResult{ID: name}, nil
}

func (f *fakeEngine) NetworkInspect(_ context.Context, id string, _ client.NetworkInspectOptions) (client.NetworkInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.networks[id] {
		return client.NetworkInspectResult{}, notFound("network " + id)
	}
	return client.NetworkInspectResult{}, nil
}

func (f *fakeEngine) NetworkConnect(_ context.Context, id string, o client.NetworkConnectOptions) (client.NetworkConnectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log("connect %s %s", f.containers[o.Container], id)
	return client.NetworkConnectResult{}, nil
}

func (f *fakeEngine) NetworkRemove(_ context.Context, id string, _ client.NetworkRemoveOptions) (client.NetworkRemoveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.networks, id)
	f.log("network rm %s", id)
	return client.NetworkRemoveResult{}, nil
}

func (f *fakeEngine) VolumeCreate(_ context.Context, o client.VolumeCreateOptions) (client.VolumeCreateResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.volumes[o.Name] = true
	f.log("volume create %s", o.Name)
	return client.VolumeCreateResult{}, nil
}

func (f *fakeEngine) VolumeInspect(_ context.Context, id string, _ client.VolumeInspectOptions) (client.VolumeInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.volumes[id] {
		return client.VolumeInspectResult{}, notFound("volume " + id)
	}
	return client.VolumeInspectResult{}, nil
}

func (f *fakeEngine) VolumeRemove(_ context.Context, id string, _ client.VolumeRemoveOptions) (client.VolumeRemoveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.volumes, id)
	f.log("volume rm %s", id)
	return client.VolumeRemoveResult{}, nil
}

func (f *fakeEngine) ImageInspect(_ context.Context, image string, _ ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	if !f.images[image] {
		return client.ImageInspectResult{}, notFound("image: " + image)
	}
	return client.ImageInspectResult{}, nil
}

func (f *fakeEngine) Info(context.Context, client.InfoOptions) (client.SystemInfoResult, error) {
	var r client.SystemInfoResult
	r.Info.SystemStatus = f.info
	return r, nil
}

// made lists what exists now: containers by name, networks, volumes.
func (f *fakeEngine) made() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, n := range f.containers {
		out = append(out, "container "+n)
	}
	for n := range f.networks {
		out = append(out, "network "+n)
	}
	for n := range f.volumes {
		out = append(out, "volume "+n)
	}
	return out
}

var _ Engine = (*fakeEngine)(nil)
