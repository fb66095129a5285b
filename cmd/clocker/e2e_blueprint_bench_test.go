//go:build e2e

package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkBlueprintDeploy measures issue 13's target: deploy-to-RUNNING
// of a 10-entity blueprint (a chain: each container waits for the
// previous one's fleet address, so they start in dependency order)
// against the same 10 containers made with `docker run -d` through
// Clocker, one after the other, on a network of their own. Target:
// ratio ≤ 1.3. Run with
//
//	CLOCKER_E2E=1 CLOCKER_E2E_PREFIX=… go test -tags e2e -run '^$' -bench BlueprintDeploy -benchtime 3x ./cmd/clocker
func BenchmarkBlueprintDeploy(b *testing.B) {
	const n = 10
	var plan strings.Builder
	plan.WriteString("name: bench10\nservices:\n")
	for i := range n {
		fmt.Fprintf(&plan, "- type: docker:busybox\n  id: e%d\n  commands: sleep 3600\n", i)
		if i > 0 {
			fmt.Fprintf(&plan, "  env:\n    PREV: $brooklyn:component(\"e%d\").attributeWhenReady(\"host.subnet.address\")\n", i-1)
		}
	}
	var bp, dr time.Duration
	for i := range b.N {
		// The blueprint: POST, then poll the start task until it ends.
		start := time.Now()
		code, body := brDo(b, "POST", "/v1/applications", plan.String())
		if code != 201 {
			b.Fatalf("deploy: %d %s", code, body)
		}
		var task struct{ ID, EntityID string }
		_ = json.Unmarshal([]byte(body), &task)
		for {
			code, body := brDo(b, "GET", "/v1/activities/"+task.ID, "")
			if code == 200 {
				if !strings.Contains(body, `"isError":false`) {
					b.Fatalf("start failed: %s", body)
				}
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		bp += time.Since(start)
		b.StopTimer()
		if code, body := brDo(b, "DELETE", "/v1/applications/"+task.EntityID, ""); code == 202 {
			var del struct{ ID string }
			_ = json.Unmarshal([]byte(body), &del)
			brWaitTask(b, del.ID)
		}
		b.StartTimer()
		// docker run: the network, then the containers in order.
		net := fmt.Sprintf("bench10-%d-%d", time.Now().UnixNano()%1e6, i)
		start = time.Now()
		mustDocker(b, "network", "create", net)
		var names []string
		for j := range n {
			name := fmt.Sprintf("%s-e%d", net, j)
			mustDocker(b, "run", "-d", "--name", name, "--network", net, "busybox", "sleep", "3600")
			names = append(names, name)
		}
		dr += time.Since(start)
		b.StopTimer()
		mustDocker(b, append([]string{"rm", "-f"}, names...)...)
		mustDocker(b, "network", "rm", net)
		b.StartTimer()
	}
	b.ReportMetric(float64(bp.Milliseconds())/float64(b.N), "blueprint-ms")
	b.ReportMetric(float64(dr.Milliseconds())/float64(b.N), "docker-run-ms")
	b.ReportMetric(float64(bp)/float64(dr), "ratio")
}
