package blueprint

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"
)

// Issue 13's speed targets for the API, measured over HTTP against the
// manager with 100 applications deployed on the fake engine: these reads
// touch no engine (sensors and the list are the manager's memory), so
// the fake is an honest stand-in; the HTTP stack, routing, JSON and
// locking are real. Run with
//
//	go test ./blueprint -run '^$' -bench 'SensorRead|ListApplications' -benchtime 2000x
//
// Targets: a sensor read's p99 under 5 ms; listing 100 applications
// under 50 ms.

const benchApps = 100

// benchServer deploys benchApps two-container applications and serves
// the API; get sends a GET as br does.
func benchServer(b *testing.B) (get func(path string) (int, string), apps []string) {
	m := New(Options{Engine: newFake(), Version: "bench", WaitTimeout: time.Minute, PollInterval: -1})
	srv := httptest.NewServer(m.Handler())
	b.Cleanup(func() { srv.Close(); m.Close() })
	for i := range benchApps {
		app, task, err := m.Deploy(context.Background(), []byte(fmt.Sprintf("name: bench-%d\n", i)+strings.TrimPrefix(twoTier, "name: Visitors\n")))
		if err != nil {
			b.Fatal(err)
		}
		<-task.Done()
		if m.Status(app) != "RUNNING" {
			b.Fatalf("application %d: %s", i, m.Status(app))
		}
		apps = append(apps, app.ID)
	}
	get = func(path string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.SetBasicAuth("any", "thing")
		req.Header.Set("Accept", "application/json, text/plain")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	return get, apps
}

// BenchmarkSensorRead: GET …/entities/{e}/sensors/{name} as br sends it,
// across the 100 applications; reports p50 and p99.
func BenchmarkSensorRead(b *testing.B) {
	get, apps := benchServer(b)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		app := apps[i%len(apps)]
		start := time.Now()
		code, body := get("/v1/applications/" + app + "/entities/Web/sensors/host.subnet.address")
		lat = append(lat, time.Since(start))
		if code != http.StatusOK || body == "" {
			b.Fatalf("sensor read: %d %s", code, body)
		}
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkListApplications: GET /v1/applications with 100 deployed.
func BenchmarkListApplications(b *testing.B) {
	get, _ := benchServer(b)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		code, body := get("/v1/applications")
		lat = append(lat, time.Since(start))
		if code != http.StatusOK || len(body) < benchApps*20 {
			b.Fatalf("list: %d %d bytes", code, len(body))
		}
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	at := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(at(0.5), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}
