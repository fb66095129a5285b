package blueprint

import (
	"context"
	"fmt"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// fakeExecs is the fake engine's exec and network connect: an exec
// finishes at once with the code execCode gives (0 by default); every
// command is recorded per container.
type fakeExecs struct {
	mu       sync.Mutex
	execCode func(ctr string, cmd []string) int
	execs    map[string]fakeExec
	ran      map[string][][]string
	joined   map[string][]string // container → networks connected
	nextExec int
	nets     map[string]client.NetworkCreateOptions
}

func (x *fakeExecs) created(name string, o client.NetworkCreateOptions) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.nets == nil {
		x.nets = map[string]client.NetworkCreateOptions{}
	}
	x.nets[name] = o
}

func (x *fakeExecs) inspect(name string) client.NetworkInspectResult {
	x.mu.Lock()
	defer x.mu.Unlock()
	var r client.NetworkInspectResult
	o := x.nets[name]
	r.Network.ID, r.Network.Name, r.Network.Labels = "net-"+name, name, o.Labels
	if o.IPAM != nil {
		r.Network.IPAM = *o.IPAM
	}
	return r
}

type fakeExec struct {
	ctr  string
	cmd  []string
	code int
}

func (f *fakeEngine) ExecCreate(ctx context.Context, id string, o client.ExecCreateOptions) (client.ExecCreateResult, error) {
	f.mu.Lock()
	_, err := f.get(id)
	running := err == nil && f.ctrs[id].running
	f.mu.Unlock()
	if err != nil {
		return client.ExecCreateResult{}, err
	}
	if !running {
		return client.ExecCreateResult{}, cerrdefs.ErrConflict.WithMessage("container " + id + " is not running")
	}
	x := &f.exec
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.execs == nil {
		x.execs, x.ran = map[string]fakeExec{}, map[string][][]string{}
	}
	x.nextExec++
	eid := fmt.Sprintf("x%d", x.nextExec)
	x.execs[eid] = fakeExec{ctr: id, cmd: o.Cmd}
	return client.ExecCreateResult{ID: eid}, nil
}

func (f *fakeEngine) ExecStart(ctx context.Context, eid string, o client.ExecStartOptions) (client.ExecStartResult, error) {
	x := &f.exec
	x.mu.Lock()
	ex, ok := x.execs[eid]
	fn := x.execCode
	x.mu.Unlock()
	if !ok {
		return client.ExecStartResult{}, cerrdefs.ErrNotFound.WithMessage("no such exec")
	}
	code := 0
	if fn != nil {
		code = fn(ex.ctr, ex.cmd)
	}
	x.mu.Lock()
	ex.code = code
	x.execs[eid] = ex
	x.ran[ex.ctr] = append(x.ran[ex.ctr], ex.cmd)
	x.mu.Unlock()
	return client.ExecStartResult{}, nil
}

func (f *fakeEngine) ExecInspect(ctx context.Context, eid string, o client.ExecInspectOptions) (client.ExecInspectResult, error) {
	x := &f.exec
	x.mu.Lock()
	defer x.mu.Unlock()
	ex, ok := x.execs[eid]
	if !ok {
		return client.ExecInspectResult{}, cerrdefs.ErrNotFound.WithMessage("no such exec")
	}
	return client.ExecInspectResult{ID: eid, ContainerID: ex.ctr, ExitCode: ex.code}, nil
}

func (f *fakeEngine) NetworkConnect(ctx context.Context, network string, o client.NetworkConnectOptions) (client.NetworkConnectResult, error) {
	f.mu.Lock()
	known := f.networks[network]
	_, err := f.get(o.Container)
	f.mu.Unlock()
	if !known {
		return client.NetworkConnectResult{}, cerrdefs.ErrNotFound.WithMessage("network " + network + " not found")
	}
	if err != nil {
		return client.NetworkConnectResult{}, err
	}
	x := &f.exec
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.joined == nil {
		x.joined = map[string][]string{}
	}
	x.joined[o.Container] = append(x.joined[o.Container], network)
	return client.NetworkConnectResult{}, nil
}

// execsIn are the commands run in container id.
func (f *fakeEngine) execsIn(id string) [][]string {
	f.exec.mu.Lock()
	defer f.exec.mu.Unlock()
	return append([][]string(nil), f.exec.ran[id]...)
}
