package proxy

// Scale of the front door on a simulated fleet: N fake engines
// (internal/fakeengine, served by a helper process) holding 30 containers
// each, a hosts.Fleet synced on them and a Server in front. Run with
//
//	go test -run '^$' -bench Scale -benchtime 1x ./proxy/
//	go test -race -short -run '^$' -bench Scale -benchtime 1x ./proxy/
//
// For each fleet size (10, 100, 1000 hosts; -short: 10 and 100;
// CLOCKER_SCALE_HOSTS=10,100,… overrides) it reports:
//
//	sync    sync-s (fleet joined, 100 hosts at a time, to every cache
//	        filled; CLOCKER_SCALE_BATCH changes the batch), heap-MB (the
//	        manager's live heap after GC, with the fleet minus without it),
//	        heap-total-MB, goroutines, open-files
//	decide  p50-ms, p99-ms of Server.place for an image-less request: the
//	        in-memory decision (snapshot as the proxy builds it + strategy)
//	place   p50-ms, p99-ms of Server.place for busybox: the decision as a
//	        create makes it, with whatever I/O place does to find the image
//	create  creates/s, p50-ms, p99-ms, errors: POST /containers/create
//	        through the whole handler (HTTP server, name reservation,
//	        placement, forwarding, cache refresh) with 32 concurrent
//	        clients; heap-MB again once they are done
//
// CLOCKER_SCALE_HEAPPROFILE=PATH writes the manager's live heap after the
// sync to PATH.N (N hosts).
//
//	idle    cpu-%-of-core: the manager's CPU time (this process: the
//	        engines run in the helper) over an idle window of
//	        CLOCKER_SCALE_IDLE (default 10s) with the default health
//	        interval (CLOCKER_SCALE_HEALTH overrides); the target
//	        is < 5% at 1,000 hosts. pings/s, infos/s, engine-req/s:
//	        what the engines served meanwhile (the checks paid for).
//
// CLOCKER_SCALE_IDLEPROFILE=PATH writes a CPU profile of the idle window
// alone to PATH.N (go tool pprof -top PATH.N): -cpuprofile would be
// dominated by the sync.
//
// The fixed-work bodies run at least their minimum sample count (and b.N
// when larger), so -benchtime 1x gives the figures in one pass. Every
// benchmark reports numbers; none passes or fails on them.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/fakeengine"
	"github.com/clocker/clocker/placement"
	"github.com/clocker/clocker/scheduler"
)

const (
	scaleContainersPerHost = 30
	scaleClients           = 32
)

func scaleSizes(b *testing.B) []int {
	if env := os.Getenv("CLOCKER_SCALE_HOSTS"); env != "" {
		var out []int
		for _, f := range strings.Split(env, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				b.Fatalf("CLOCKER_SCALE_HOSTS=%q: want a comma-separated list of host counts", env)
			}
			out = append(out, n)
		}
		return out
	}
	if testing.Short() {
		return []int{10, 100}
	}
	return []int{10, 100, 1000}
}

// scaleFleet is one simulated fleet and the server in front of it.
type scaleFleet struct {
	stopEngines func()
	helper      *scaleHelper
	fleet       *hosts.Fleet
	srv         *Server
	http        *httptest.Server
}

func (f *scaleFleet) close() {
	if f.http != nil {
		f.http.Close()
	}
	if f.fleet != nil {
		f.fleet.Close()
	}
	if f.stopEngines != nil {
		f.stopEngines()
	}
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// scaleEngine is one engine of the helper process.
type scaleEngine struct{ name, url string }

// scaleHelper talks to the helper process: a line "requests" on its
// stdin is answered "requests PINGS INFOS ALL" (served so far, all
// engines).
type scaleHelper struct {
	mu  sync.Mutex
	in  io.Writer
	out *bufio.Scanner
}

// requests returns the GET /_ping, GET /info and all requests the
// engines have served.
func (h *scaleHelper) requests() (pings, infos, all int, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := io.WriteString(h.in, "requests\n"); err != nil {
		return 0, 0, 0, err
	}
	for h.out.Scan() {
		if _, err := fmt.Sscanf(h.out.Text(), "requests %d %d %d", &pings, &infos, &all); err == nil {
			return pings, infos, all, nil
		}
	}
	return 0, 0, 0, fmt.Errorf("helper: no answer: %v", h.out.Err())
}

// startScaleEngines runs n engines with scaleContainersPerHost containers
// each in a helper process (this test binary, see
// TestScaleEnginesHelper): the manager's heap and file descriptors are
// then its own. Both ends of a thousand hosts' connections in one process
// would pass the sandbox's open-file limit during the first sync.
func startScaleEngines(b *testing.B, n int) ([]scaleEngine, *scaleHelper, func()) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestScaleEnginesHelper$", "-test.timeout=0")
	cmd.Env = append(os.Environ(), scaleHelperEnv+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stop := func() {
		stdin.Close() // the helper ends at EOF
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	var out []scaleEngine
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "engine" {
			out = append(out, scaleEngine{name: f[1], url: f[2]})
		}
		if len(f) == 1 && f[0] == "ready" {
			break
		}
	}
	if len(out) != n {
		stop()
		b.Fatalf("helper process started %d engines, want %d", len(out), n)
	}
	return out, &scaleHelper{in: stdin, out: sc}, stop
}

const scaleHelperEnv = "CLOCKER_SCALE_HELPER_ENGINES"

// TestScaleEnginesHelper is not a test: it is the process that serves the
// fake engines of BenchmarkScale, until its stdin closes.
func TestScaleEnginesHelper(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv(scaleHelperEnv))
	if err != nil {
		t.Skip("the engines of BenchmarkScale, run by it")
	}
	engines, err := fakeengine.StartMany(n, "", func(i int) fakeengine.Options {
		return fakeengine.Options{Name: fmt.Sprintf("cfleet-h%04d", i+1), Images: []string{"busybox"},
			Labels: []string{"zone=z" + strconv.Itoa(i%3)}, NCPU: 8, MemTotal: 32 << 30}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer fakeengine.CloseAll(engines)
	w := bufio.NewWriter(os.Stdout)
	for _, e := range engines {
		e.CountRequests()
		for j := 0; j < scaleContainersPerHost; j++ {
			_, err := e.Create(fakeengine.Spec{
				Name:  fmt.Sprintf("%s-app%02d", e.Name(), j),
				Image: "busybox", Cmd: []string{"sleep", "infinity"},
				Labels: map[string]string{HostLabel: e.Name(), "com.docker.compose.project": "shop",
					"com.docker.compose.service": "svc" + strconv.Itoa(j%5)},
				HostConfig: json.RawMessage(`{"Memory":67108864,"NanoCpus":250000000,"NetworkMode":"default"}`),
				Running:    j%3 != 0,
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		fmt.Fprintf(w, "engine %s %s\n", e.Name(), e.URL)
	}
	fmt.Fprintln(w, "ready")
	w.Flush()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() != "requests" {
			continue
		}
		var pings, infos, all int
		for _, e := range engines {
			for k, v := range e.Requests() {
				all += v
				switch k {
				case "GET /_ping":
					pings += v
				case "GET /info":
					infos += v
				}
			}
		}
		fmt.Fprintf(w, "requests %d %d %d\n", pings, infos, all)
		w.Flush()
	}
}

// writeHeapProfile writes the live heap (go tool pprof -sample_index=inuse_space).
func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

func openFiles() int {
	fds, _ := os.ReadDir("/proc/self/fd")
	return len(fds)
}

// cpuTime is the CPU this process (the manager: the engines run in a
// helper process) has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// joinScaleFleet adds every engine to a new fleet, as serve does, and
// waits for every cache.
func joinScaleFleet(b *testing.B, engines []scaleEngine) (*hosts.Fleet, time.Duration) {
	reg := prometheus.NewRegistry()
	log := slog.New(slog.DiscardHandler)
	fleet := hosts.NewFleet(nil, log, hosts.NewMetrics(reg))
	if d, err := time.ParseDuration(os.Getenv("CLOCKER_SCALE_HEALTH")); err == nil {
		fleet.HealthInterval = d
	}
	// Hosts join in batches, each synced before the next joins: a cold
	// start of 1,000 at once opens up to 16 connections per host for the
	// inspects of its first sync (hosts/host.go resync), ~19,000 sockets
	// at each end, past the sandbox's limit of 20,000 open files.
	batch := len(engines)
	if v, err := strconv.Atoi(os.Getenv("CLOCKER_SCALE_BATCH")); err == nil && v > 0 {
		batch = v
	} else if batch > 100 {
		batch = 100
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	var joined []*hosts.Host
	for i, e := range engines {
		h, err := fleet.Add(context.Background(), hosts.Record{Name: e.name, URL: e.url}, false)
		if err != nil {
			b.Fatal(err)
		}
		joined = append(joined, h)
		if (i+1)%batch == 0 || i == len(engines)-1 {
			if err := fleet.WaitSynced(ctx); err != nil {
				b.Fatalf("fleet of %d hosts not synced: %v", i+1, err)
			}
			// What the Transport's 90 s IdleConnTimeout would do: the
			// figures are those of a fleet past its first sync.
			for _, h := range joined {
				h.CloseIdleConnections()
			}
			joined = joined[:0]
		}
	}
	took := time.Since(start)
	want := len(engines) * scaleContainersPerHost
	if got := len(fleet.Containers()); got != want {
		b.Fatalf("fleet caches %d containers, want %d", got, want)
	}
	return fleet, took
}

func BenchmarkScale(b *testing.B) {
	for _, n := range scaleSizes(b) {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) { benchScaleFleet(b, n) })
	}
}

func benchScaleFleet(b *testing.B, n int) {
	sf := &scaleFleet{}
	defer sf.close()
	var (
		syncTook   time.Duration
		heapBefore uint64
		heapAfter  uint64
		fdsAfter   int
	)
	b.Run("sync", func(b *testing.B) {
		if sf.fleet == nil {
			var engines []scaleEngine
			engines, sf.helper, sf.stopEngines = startScaleEngines(b, n)
			heapBefore = liveHeap()
			sf.fleet, syncTook = joinScaleFleet(b, engines)
			heapAfter = liveHeap()
			fdsAfter = openFiles()
			if path := os.Getenv("CLOCKER_SCALE_HEAPPROFILE"); path != "" {
				writeHeapProfile(b, fmt.Sprintf("%s.%d", path, n))
			}
			strategy, err := scheduler.New("spread")
			if err != nil {
				b.Fatal(err)
			}
			sf.srv = NewServer(sf.fleet, strategy, slog.New(slog.DiscardHandler), 10<<20, prometheus.NewRegistry())
			sf.srv.WarmPlacement() // as serve does once the caches are filled
			sf.http = httptest.NewServer(sf.srv.Handler())
		}
		b.ReportMetric(syncTook.Seconds(), "sync-s")
		b.ReportMetric(float64(int64(heapAfter)-int64(heapBefore))/(1<<20), "heap-MB")
		b.ReportMetric(float64(heapAfter)/(1<<20), "heap-total-MB")
		b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
		b.ReportMetric(float64(fdsAfter), "open-files")
		b.ReportMetric(0, "ns/op")
	})
	if sf.srv == nil {
		return // sync failed
	}

	b.Run("idle", func(b *testing.B) {
		// What following the fleet costs with no request: health checks
		// every HealthInterval per host, idle event streams.
		window := 10 * time.Second
		if d, err := time.ParseDuration(os.Getenv("CLOCKER_SCALE_IDLE")); err == nil {
			window = d
		}
		if path := os.Getenv("CLOCKER_SCALE_IDLEPROFILE"); path != "" {
			f, err := os.Create(fmt.Sprintf("%s.%d", path, n))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				b.Fatal(err)
			}
			defer pprof.StopCPUProfile()
		}
		p0, i0, a0, err := sf.helper.requests()
		if err != nil {
			b.Fatal(err)
		}
		before, start := cpuTime(), time.Now()
		time.Sleep(window)
		used, took := cpuTime()-before, time.Since(start)
		p1, i1, a1, err := sf.helper.requests()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(100*used.Seconds()/took.Seconds(), "cpu-%-of-core")
		// What the figure pays for: checks the engines answered (the
		// helper's own CPU is not counted).
		b.ReportMetric(float64(p1-p0)/took.Seconds(), "pings/s")
		b.ReportMetric(float64(i1-i0)/took.Seconds(), "infos/s")
		b.ReportMetric(float64(a1-a0)/took.Seconds(), "engine-req/s")
		b.ReportMetric(0, "ns/op")
	})
	b.Run("decide", func(b *testing.B) {
		benchPlace(b, sf.srv, "", max(b.N, 2000))
	})
	b.Run("place", func(b *testing.B) {
		// Each call may cost I/O per host: fewer samples on big fleets.
		benchPlace(b, sf.srv, "busybox", max(b.N, min(500, 100_000/n)))
	})
	b.Run("create", func(b *testing.B) {
		benchCreate(b, sf, max(b.N, min(2000, 10*n)))
		// With the placement snapshots and the new containers.
		b.ReportMetric(float64(int64(liveHeap())-int64(heapBefore))/(1<<20), "heap-MB")
	})
}

// benchPlace times one placement for one image (empty: none) samples
// times: the request read from the spec, its pins, the decision and its
// reservation, given back at once.
func benchPlace(b *testing.B, s *Server, image string, samples int) {
	ctx := context.Background()
	spec := &container.CreateRequest{Config: &container.Config{Image: image}, HostConfig: &container.HostConfig{}}
	place := func() (*hosts.Host, error) {
		req, _, _, err := placement.ParseRequest("", spec)
		if err != nil {
			return nil, err
		}
		if req.Pins, err = placement.Pins(ctx, s.Fleet, spec); err != nil {
			return nil, err
		}
		_, h, release, err := s.placer.Decide(ctx, &req)
		if err != nil {
			return nil, err
		}
		release()
		return h, nil
	}
	lat := make([]time.Duration, 0, samples)
	b.ResetTimer()
	for i := 0; i < samples; i++ {
		t0 := time.Now()
		h, err := place()
		lat = append(lat, time.Since(t0))
		if err != nil || h == nil {
			b.Fatalf("place: %v", err)
		}
	}
	b.StopTimer()
	reportLatencies(b, lat)
	b.ReportMetric(float64(len(s.Fleet.Containers())), "containers")
}

func reportLatencies(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(0, "ns/op")
}

var scaleRun atomic.Int64 // distinct names across repeated runs

// benchCreate sends total creates through the server with scaleClients
// concurrent clients.
func benchCreate(b *testing.B, sf *scaleFleet, total int) {
	run := scaleRun.Add(1)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: scaleClients, DisableCompression: true},
		Timeout: 2 * time.Minute}
	defer client.CloseIdleConnections()
	body := []byte(`{"Image":"busybox","Cmd":["sleep","infinity"],"Labels":{"clocker.bench":"scale"},"HostConfig":{"Memory":67108864}}`)
	var (
		next   atomic.Int64
		errs   atomic.Int64
		mu     sync.Mutex
		lat    = make([]time.Duration, 0, total)
		first  sync.Once
		sample string
	)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < scaleClients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, total/scaleClients+1)
			for {
				i := next.Add(1)
				if i > int64(total) {
					break
				}
				url := fmt.Sprintf("%s/v1.41/containers/create?name=scale-%d-%d", sf.http.URL, run, i)
				t0 := time.Now()
				resp, err := client.Post(url, "application/json", bytes.NewReader(body))
				var status int
				var out []byte
				if err == nil {
					status = resp.StatusCode
					out, _ = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				mine = append(mine, time.Since(t0))
				if err != nil || status != http.StatusCreated {
					errs.Add(1)
					first.Do(func() { sample = fmt.Sprintf("status %d %s %v", status, bytes.TrimSpace(out), err) })
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	took := time.Since(start)
	b.StopTimer()
	if sample != "" {
		b.Logf("%d of %d creates failed; first: %s", errs.Load(), total, sample)
	}
	reportLatencies(b, lat)
	b.ReportMetric(float64(total-int(errs.Load()))/took.Seconds(), "creates/s")
	b.ReportMetric(float64(errs.Load()), "errors")
	b.ReportMetric(float64(len(sf.fleet.Containers())), "containers")
}
