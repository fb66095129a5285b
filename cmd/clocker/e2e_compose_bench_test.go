//go:build e2e

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkComposeUp: `compose up -d` of a 10-service project, then
// `down`, through Clocker over the fleet's three engines and against one
// engine of its own (a private one-engine fleet, as BenchmarkCycle uses:
// the fleet's engines also serve Clocker's reads). The target:
// through Clocker within 1.2× the engine's time. One sub-benchmark per
// installed compose client; each iteration runs both sides, in
// alternating order. Reported: clocker-up-ms and engine-up-ms (p50),
// ratio-up (clocker/engine, p50), the same for down. Run with
//
//	cd cmd/clocker && CLOCKER_E2E=1 CLOCKER_E2E_PREFIX=cbench \
//	  go test -tags e2e -run '^$' -bench ComposeUp -benchtime 10x -timeout 30m .
func BenchmarkComposeUp(b *testing.B) {
	if fleet == nil {
		b.Skip("needs the e2e fleet: CLOCKER_E2E=1, root")
	}
	one := oneEngine(b)
	var services strings.Builder
	services.WriteString("services:\n")
	for i := 1; i <= 10; i++ {
		fmt.Fprintf(&services, "  s%d:\n    image: busybox\n    command: [\"sleep\", \"3600\"]\n", i)
	}
	for _, cli := range composeCLIs(b) {
		b.Run(cli.name, func(b *testing.B) {
			dir := b.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(services.String()), 0o644); err != nil {
				b.Fatal(err)
			}
			project := "ccbench" + cli.name[1:]
			sides := []*composeProject{
				newComposeProject(cli, project, dir, clockerURL),
				newComposeProject(cli, project, dir, one.TCP),
			}
			for _, p := range sides {
				p.env = []string{"COMPOSE_HTTP_TIMEOUT=300"} // v1's 60 s is short for an engine on a busy machine
				b.Cleanup(func() { _, _ = p.run("down", "-t", "0") })
			}
			cycle := func(p *composeProject) (up, down time.Duration) {
				t0 := time.Now()
				p.must(b, "up", "-d")
				up = time.Since(t0)
				if n := strings.Count(p.must(b, "ps", "-q"), "\n"); n != 10 {
					b.Fatalf("%s: %d containers up, want 10", p.host, n)
				}
				t1 := time.Now()
				p.must(b, "down", "-t", "0")
				return up, time.Since(t1)
			}
			for _, p := range sides { // warm: images in the page cache, networks made once
				cycle(p)
			}
			var ups, downs [2]latencies
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range sides {
					k := (i + j) % 2 // alternate which side goes first
					up, down := cycle(sides[k])
					ups[k], downs[k] = append(ups[k], up), append(downs[k], down)
				}
			}
			b.StopTimer()
			cu, _ := ups[0].percentiles()
			eu, _ := ups[1].percentiles()
			cd, _ := downs[0].percentiles()
			ed, _ := downs[1].percentiles()
			b.ReportMetric(ms(cu), "clocker-up-ms")
			b.ReportMetric(ms(eu), "engine-up-ms")
			b.ReportMetric(float64(cu)/float64(eu), "ratio-up")
			b.ReportMetric(ms(cd), "clocker-down-ms")
			b.ReportMetric(ms(ed), "engine-down-ms")
			b.ReportMetric(float64(cd)/float64(ed), "ratio-down")
		})
	}
}
