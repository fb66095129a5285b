package hosts

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/clocker/clocker/internal/fanout"
)

// Usage is a host's measured use, summed over its running containers from
// one-shot stats (never a stream per container).
type Usage struct {
	// CPU is the share of the whole host's CPUs in use (0..1), from the
	// change since the previous sample of each container.
	CPU float64
	// Memory is the bytes the containers use, without page cache.
	Memory int64
	// Sampled is when the sample was taken.
	Sampled time.Time
}

// MinUsageInterval bounds how often a host is sampled.
const MinUsageInterval = time.Second

// usageState is one host's sampling state. It lives beside the Host (in
// usages) so that sampling stays out of the cache's lock.
type usageState struct {
	mu   sync.Mutex
	prev map[string]cpuSample // by container ID
	cur  atomic.Pointer[Usage]
}

type cpuSample struct{ total, system uint64 }

var usages sync.Map // *Host → *usageState

func (h *Host) usageState() *usageState {
	if u, ok := usages.Load(h); ok {
		return u.(*usageState)
	}
	u, _ := usages.LoadOrStore(h, &usageState{prev: map[string]cpuSample{}})
	return u.(*usageState)
}

// Usage returns the host's last usage sample; false until one was taken
// (see Fleet.SampleUsage).
func (h *Host) Usage() (Usage, bool) {
	u, ok := usages.Load(h)
	if !ok {
		return Usage{}, false
	}
	if p := u.(*usageState).cur.Load(); p != nil {
		return *p, true
	}
	return Usage{}, false
}

// SampleUsage samples every healthy host every interval (at least
// MinUsageInterval) until ctx ends; hosts that join later are sampled too.
// Only placement strategies that read usage need it.
func (f *Fleet) SampleUsage(ctx context.Context, every time.Duration) {
	every = max(every, MinUsageInterval)
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			var healthy []*Host
			for _, h := range f.Hosts() {
				if h.Healthy() {
					healthy = append(healthy, h)
				}
			}
			fanout.Limit(healthy, 32, func(h *Host) (struct{}, error) { // 32 hosts sampled at once
				sctx, cancel := context.WithTimeout(ctx, every)
				defer cancel()
				if err := h.SampleUsage(sctx); err != nil {
					h.log.Debug("usage sample", "err", err)
				}
				return struct{}{}, nil
			})
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// SampleUsage takes one sample of the host: one-shot stats of each running
// container, a few at a time.
func (h *Host) SampleUsage(ctx context.Context) error {
	st := h.usageState()
	st.mu.Lock() // one sample of a host at a time
	defer st.mu.Unlock()
	var ids []string
	for _, c := range h.Containers() {
		if c.Summary.State == container.StateRunning {
			ids = append(ids, c.Summary.ID)
		}
	}
	type one struct {
		cpu    cpuSample
		mem    int64
		ok     bool
		hasCPU bool
	}
	got := make([]one, len(ids))
	err := parallel(ctx, 4, len(ids), func(i int) error {
		s, err := h.containerStats(ctx, ids[i])
		if err != nil {
			return nil // gone or slow: left out of this sample
		}
		got[i] = one{cpu: cpuSample{s.CPUStats.CPUUsage.TotalUsage, s.CPUStats.SystemUsage}, mem: s.memory(), ok: true,
			hasCPU: s.CPUStats.SystemUsage > 0}
		return nil
	})
	if err != nil {
		return err
	}
	u := Usage{Sampled: time.Now()}
	next := make(map[string]cpuSample, len(ids))
	for i, id := range ids {
		g := got[i]
		if !g.ok {
			continue
		}
		u.Memory += g.mem
		if !g.hasCPU {
			continue
		}
		next[id] = g.cpu
		if p, seen := st.prev[id]; seen && g.cpu.system > p.system && g.cpu.total >= p.total {
			u.CPU += float64(g.cpu.total-p.total) / float64(g.cpu.system-p.system)
		}
	}
	st.prev = next
	u.CPU = min(u.CPU, 1)
	st.cur.Store(&u)
	return nil
}

// statsAnswer is the part of GET /containers/{id}/stats usage needs.
type statsAnswer struct {
	CPUStats struct {
		CPUUsage struct {
			TotalUsage uint64 `json:"total_usage"`
		} `json:"cpu_usage"`
		SystemUsage uint64 `json:"system_cpu_usage"`
	} `json:"cpu_stats"`
	MemoryStats struct {
		Usage uint64            `json:"usage"`
		Stats map[string]uint64 `json:"stats"`
	} `json:"memory_stats"`
}

// memory is the usage without page cache, as docker stats shows it.
func (s *statsAnswer) memory() int64 {
	m := s.MemoryStats.Usage
	for _, k := range []string{"inactive_file", "total_inactive_file"} { // cgroup v2, v1
		if v, ok := s.MemoryStats.Stats[k]; ok && v < m {
			return int64(m - v)
		}
	}
	return int64(m)
}

func (h *Host) containerStats(ctx context.Context, id string) (*statsAnswer, error) {
	body, status, err := h.getJSON(ctx, "/containers/"+url.PathEscape(id)+"/stats", url.Values{"stream": {"false"}, "one-shot": {"true"}})
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("stats %s: status %d", id, status)
	}
	var s statsAnswer
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, fmt.Errorf("stats %s: %w", id, err)
	}
	return &s, nil
}
