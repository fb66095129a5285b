package blueprint

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/clocker/clocker/internal/labels"
)

// Stats sensors a container entity publishes when a policy or enricher
// of its application names one.
const (
	SensorCPUPercent    = "docker.cpu.percent"
	SensorMemoryBytes   = "docker.memory.bytes"
	SensorMemoryPercent = "docker.memory.percent"
)

// watch polls the fleet for the containers of every application until
// Close: a container that died puts its entity on fire; one running
// again brings it back. A quiet manager (not the fleet's leader) does
// not poll: its applications are the leader's to watch.
func (m *Manager) watch(every time.Duration) {
	defer m.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
			if m.quiet.Load() {
				continue
			}
			ctx, cancel := context.WithTimeout(m.ctx, every*5)
			if err := m.Poll(ctx); err != nil && m.ctx.Err() == nil {
				m.log.Debug("blueprint: poll", "err", err)
			}
			cancel()
		}
	}
}

// Poll reads every blueprint container's state once (one list through
// the front door) and, where an adjunct wants them, its stats.
// Applications in the middle of a lifecycle task are left alone.
func (m *Manager) Poll(ctx context.Context) error {
	f := make(client.Filters).Add("label", labels.BlueprintApplication)
	list, err := m.eng.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return err
	}
	running := map[string]bool{}
	for _, c := range list.Items {
		running[c.ID] = c.State == container.StateRunning
	}
	if err := m.discoverProjects(ctx, running); err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, app := range m.Apps() {
		if !app.run.TryLock() {
			continue // a start, stop or delete is under way: it publishes the state
		}
		stats := m.wantsStats(app)
		for _, e := range app.all() {
			m.mu.Lock()
			id := e.containerID
			m.mu.Unlock()
			if id == "" || !e.Node.Kind.RunsContainer() {
				continue
			}
			state := m.State(e)
			alive := running[id]
			if isProcess(e) && alive && (state == StateRunning || state == StateOnFire) {
				wg.Go(func() { m.pollProcess(ctx, e, id) })
				if stats && state == StateRunning {
					wg.Go(func() { m.stats(ctx, e, id) })
				}
				continue
			}
			switch {
			case state == StateRunning && !alive:
				m.setSensors(e, map[string]any{SensorState: StateOnFire, SensorUp: false, "docker.container.running": false,
					SensorServiceProblemsKey: "container " + id + " is not running"})
			case state == StateOnFire && alive:
				_ = m.refresh(ctx, e)
				m.setSensors(e, map[string]any{SensorServiceProblemsKey: nil})
			}
			if stats && alive && state == StateRunning {
				wg.Go(func() { m.stats(ctx, e, id) })
			}
		}
		app.run.Unlock()
	}
	wg.Wait()
	m.publishProjects()
	return nil
}

// wantsStats: some adjunct of app names a stats sensor.
func (m *Manager) wantsStats(app *App) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range app.all() {
		for _, a := range e.adjuncts {
			for _, v := range a.Config {
				if s, ok := v.(string); ok && (strings.HasPrefix(s, "docker.cpu.") || strings.HasPrefix(s, "docker.memory.")) {
					return true
				}
			}
		}
	}
	return false
}

// stats publishes the container's CPU (percent of one core, as docker
// stats shows it) and memory use from one stats sample with its previous.
func (m *Manager) stats(ctx context.Context, e *Entity, id string) {
	res, err := m.eng.ContainerStats(ctx, id, client.ContainerStatsOptions{IncludePreviousSample: true})
	if err != nil {
		return
	}
	defer res.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		return
	}
	kv := map[string]any{SensorMemoryBytes: int64(s.MemoryStats.Usage)}
	if s.MemoryStats.Limit > 0 {
		kv[SensorMemoryPercent] = 100 * float64(s.MemoryStats.Usage) / float64(s.MemoryStats.Limit)
	}
	cpu := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	sys := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	if sys > 0 && cpu >= 0 {
		n := float64(s.CPUStats.OnlineCPUs)
		if n == 0 {
			n = float64(len(s.CPUStats.CPUUsage.PercpuUsage))
		}
		kv[SensorCPUPercent] = cpu / sys * n * 100
	}
	m.setSensors(e, kv)
}
