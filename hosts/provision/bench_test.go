package provision

import (
	"context"
	"log/slog"
	"os/exec"
	"testing"
	"time"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/store"
)

// BenchmarkProvisionLocal measures what the fleet issue's target names:
// the time from asking for a local host to that host taking containers
// (namespace, engine started, the fleet's images copied, joined and its
// cache in sync). Root and CLOCKER_E2E=1; the machine's engine must hold
// busybox (.ci/setup). Each iteration's host is destroyed untimed.
//
//	CLOCKER_E2E=1 go test -run '^$' -bench ProvisionLocal -benchtime 5x ./hosts/provision/
func BenchmarkProvisionLocal(b *testing.B) {
	requireRoot(b)
	if exec.Command("docker", "-H", "unix:///var/run/docker.sock", "image", "inspect", "busybox:latest").Run() != nil {
		b.Skip("the machine's engine has no busybox:latest (run .ci/setup)")
	}
	l := newTestLocal(b)
	st, err := store.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	fleet := hosts.NewFleet(st, slog.New(slog.DiscardHandler), nil)
	defer fleet.Close()
	m := NewManager(fleet, st, nil, nil)
	m.Use(l)
	m.ImageSource = "unix:///var/run/docker.sock"
	ctx := context.Background()
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		h, err := m.Provision(ctx, "local", Request{})
		if err != nil {
			b.Fatal(err)
		}
		if has, _ := h.HasImage("busybox:latest"); !has || !h.Healthy() {
			b.Fatalf("%s: healthy %v, busybox %v", h.Name, h.Healthy(), has)
		}
		total += time.Since(start)
		b.StopTimer()
		if err := m.Remove(ctx, h.Name); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/host")
}
