//go:build e2e

package main

// Speed of the front door: the same calls through Clocker and straight to
// one of the fleet's engines, on the real engines of the e2e fleet (see
// TestMain). Run with
//
//	cd cmd/clocker && CLOCKER_E2E=1 CLOCKER_E2E_PREFIX=cbench \
//	  go test -tags e2e -run '^$' -bench . -benchtime 200x -timeout 30m .
//
// Each benchmark has a "clocker" and a "direct" sub-benchmark; the direct
// line also carries the ratios clocker/direct (ratio-p50, ratio-p99 for
// latencies, ratio-MB/s for throughput); BenchmarkCycle instead runs both
// sides interleaved and reports both on each line (e2e_cycle_bench_test.go).
// These report numbers; they pass or fail on nothing but errors. Every container they make carries the label
// clocker.bench=1 and is removed at the end.
//
// Calls go through a pooled net/http client, as the docker CLI's; attach
// is hijacked by hand (Upgrade: tcp) and its multiplexed frames counted.
// The throughput benchmarks read at most $CLOCKER_BENCH_STREAMS (default
// 10) streams of 200 MiB whatever -benchtime says (see streamRuns).

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const benchLabel = "clocker.bench"

// apiClient speaks the Engine API over a pooled net/http client, as the
// docker CLI's Go client does.
type apiClient struct {
	name string // "clocker" or the engine's name
	addr string // host:port
	hc   *http.Client
}

func newAPIClient(name, tcpURL string) *apiClient {
	addr := strings.TrimPrefix(tcpURL, "tcp://")
	return &apiClient{name: name, addr: addr, hc: &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}}
}

// do sends one call and returns the status and the body (read whole).
func (c *apiClient) do(method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+c.addr+"/v1.41"+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// must is do that fails the benchmark on an error or a status ≥ 300.
func (c *apiClient) must(b testing.TB, method, path string, body any) []byte {
	b.Helper()
	status, out, err := c.do(method, path, body)
	if err != nil || status >= 300 {
		b.Fatalf("%s: %s %s: %d %v %s", c.name, method, path, status, err, bytes.TrimSpace(out))
	}
	return out
}

// stream sends a GET and counts the body's bytes.
func (c *apiClient) stream(b testing.TB, path string) int64 {
	b.Helper()
	resp, err := c.hc.Get("http://" + c.addr + "/v1.41" + path)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		out, _ := io.ReadAll(resp.Body)
		b.Fatalf("%s: GET %s: %d %s", c.name, path, resp.StatusCode, out)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

func (c *apiClient) create(b testing.TB, name string, config map[string]any) string {
	b.Helper()
	if config["Labels"] == nil {
		config["Labels"] = map[string]string{benchLabel: "1"}
	}
	path := "/containers/create"
	if name != "" {
		path += "?name=" + name
	}
	var out struct {
		ID string `json:"Id"`
	}
	if err := json.Unmarshal(c.must(b, "POST", path, config), &out); err != nil {
		b.Fatal(err)
	}
	return out.ID
}

// benchClients are Clocker and each engine, straight.
func benchClients(b *testing.B) (*apiClient, []*apiClient) {
	b.Helper()
	if fleet == nil {
		b.Skip("needs the e2e fleet: CLOCKER_E2E=1, root")
	}
	engines := make([]*apiClient, len(fleet.Engines))
	for i, e := range fleet.Engines {
		engines[i] = newAPIClient(e.Name, e.TCP)
	}
	return newAPIClient("clocker", clockerURL), engines
}

// removeBenchContainers removes every container with the bench label from
// every engine.
func removeBenchContainers(b testing.TB, engines []*apiClient) {
	filter := `{"label":{"` + benchLabel + `=1":true}}`
	for _, e := range engines {
		out := e.must(b, "GET", "/containers/json?all=1&filters="+url.QueryEscape(filter), nil)
		var list []struct {
			ID string `json:"Id"`
		}
		_ = json.Unmarshal(out, &list)
		parallelDo(8, len(list), func(i int) {
			_, _, _ = e.do("DELETE", "/containers/"+list[i].ID+"?force=1&v=1", nil)
		})
		var left []json.RawMessage
		_ = json.Unmarshal(e.must(b, "GET", "/containers/json?all=1&filters="+url.QueryEscape(filter), nil), &left)
		if len(left) > 0 {
			b.Errorf("%s: %d bench containers left after cleanup", e.name, len(left))
		}
	}
}

// parallelDo runs fn(0..n-1) on at most workers goroutines.
func parallelDo(workers, n int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

// createMany creates n stopped `busybox true` containers on an engine.
func createMany(b *testing.B, e *apiClient, n int) {
	b.Helper()
	var mu sync.Mutex
	var firstErr error
	parallelDo(8, n, func(int) {
		body := map[string]any{"Image": "busybox", "Cmd": []string{"true"}, "Labels": map[string]string{benchLabel: "1"}}
		status, out, err := e.do("POST", "/containers/create", body)
		if err == nil && status != 201 {
			err = fmt.Errorf("%d %s", status, out)
		}
		if err != nil {
			mu.Lock()
			firstErr = err
			mu.Unlock()
		}
	})
	if firstErr != nil {
		b.Fatalf("create on %s: %v", e.name, firstErr)
	}
}

// countList is how many containers GET /containers/json?all=1 returns.
func countList(b *testing.B, c *apiClient) int {
	var list []json.RawMessage
	if err := json.Unmarshal(c.must(b, "GET", "/containers/json?all=1", nil), &list); err != nil {
		b.Fatal(err)
	}
	return len(list)
}

// serverCPU is the CPU time the clocker process has used so far (user and
// system, all threads; 0 when unknown). Per op it shows the proxy's own
// cost, which wall-clock figures on a busy machine blur.
func serverCPU() time.Duration {
	if server == nil || server.Process == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", server.Process.Pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// reportProxyCPU reports the clocker process's CPU time per op since cpu0.
func reportProxyCPU(b *testing.B, cpu0 time.Duration, ops int) {
	if ops > 0 {
		b.ReportMetric(float64(serverCPU()-cpu0)/1e6/float64(ops), "proxy-cpu-ms/op")
	}
}

// --- latency -----------------------------------------------------------------

// latencies collects one sample per iteration and reports p50 and p99.
type latencies []time.Duration

func (l latencies) report(b *testing.B) (p50, p99 time.Duration) {
	p50, p99 = l.percentiles()
	b.ReportMetric(float64(p50)/1e6, "p50-ms")
	b.ReportMetric(float64(p99)/1e6, "p99-ms")
	return p50, p99
}

// percentiles are the p50 and p99 of the samples (0 without any).
func (l latencies) percentiles() (p50, p99 time.Duration) {
	if len(l) == 0 {
		return 0, 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	return s[len(s)*50/100], s[min(len(s)-1, len(s)*99/100)]
}

// comparison keeps the "clocker" sub-benchmark's figures so that the
// "direct" one, run after it, can report the ratios clocker/direct.
type comparison map[string][2]float64

// reportRatios adds ratio-p50 and ratio-p99 (clocker/direct) to the direct
// sub-benchmark's line.
func (c comparison) reportRatios(b *testing.B) {
	cl, okc := c["clocker"]
	di, okd := c["direct"]
	if okc && okd && di[0] > 0 && di[1] > 0 {
		b.ReportMetric(cl[0]/di[0], "ratio-p50")
		b.ReportMetric(cl[1]/di[1], "ratio-p99")
	}
}

// measure runs call b.N times, timing each, and reports the percentiles.
func measure(b *testing.B, cmp comparison, key string, call func()) {
	lat := make(latencies, 0, b.N)
	cpu0 := serverCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		call()
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	if key == "clocker" {
		reportProxyCPU(b, cpu0, b.N)
	}
	p50, p99 := lat.report(b)
	cmp[key] = [2]float64{float64(p50) / 1e6, float64(p99) / 1e6}
	if key == "direct" {
		cmp.reportRatios(b)
	}
}

// BenchmarkList: GET /containers/json?all=1. "clocker" lists a fleet of 300
// containers, 100 made straight on each engine (Clocker answers from its
// caches); "direct" lists engine 0 after 200 more were made there, so that
// it holds 300 itself. Both answers carry 300 containers.
func BenchmarkList(b *testing.B) {
	clocker, engines := benchClients(b)
	b.Cleanup(func() { removeBenchContainers(b, engines) })
	base := countList(b, clocker)
	for _, e := range engines {
		createMany(b, e, 100)
	}
	want := base + 100*len(engines)
	for deadline := time.Now().Add(time.Minute); countList(b, clocker) < want; {
		if time.Now().After(deadline) {
			b.Fatalf("Clocker lists %d containers, want %d", countList(b, clocker), want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmp := comparison{}
	b.Run("clocker", func(b *testing.B) {
		measure(b, cmp, "clocker", func() { clocker.must(b, "GET", "/containers/json?all=1", nil) })
		b.ReportMetric(float64(countList(b, clocker)), "containers")
	})
	createMany(b, engines[0], 200)
	b.Run("direct", func(b *testing.B) {
		measure(b, cmp, "direct", func() { engines[0].must(b, "GET", "/containers/json?all=1", nil) })
		b.ReportMetric(float64(countList(b, engines[0])), "containers")
	})
}

// BenchmarkInspect: GET /containers/{id}/json of one container, through
// Clocker and straight to its engine.
func BenchmarkInspect(b *testing.B) {
	clocker, engines := benchClients(b)
	b.Cleanup(func() { removeBenchContainers(b, engines) })
	id := clocker.create(b, "cbench-inspect", map[string]any{"Image": "busybox", "Cmd": []string{"true"}})
	var in struct {
		Node struct{ Name string }
	}
	_ = json.Unmarshal(clocker.must(b, "GET", "/containers/"+id+"/json", nil), &in)
	var direct *apiClient
	for _, e := range engines {
		if e.name == in.Node.Name {
			direct = e
		}
	}
	if direct == nil {
		b.Fatalf("container %s on unknown host %q", id, in.Node.Name)
	}
	cmp := comparison{}
	b.Run("clocker", func(b *testing.B) {
		measure(b, cmp, "clocker", func() { clocker.must(b, "GET", "/containers/"+id+"/json", nil) })
	})
	b.Run("direct", func(b *testing.B) {
		measure(b, cmp, "direct", func() { direct.must(b, "GET", "/containers/"+id+"/json", nil) })
	})
}

// BenchmarkCycle: see e2e_cycle_bench_test.go.

// --- throughput ----------------------------------------------------------------

const streamBytes = 200 << 20 // 209715200

// streamRuns is how many 200 MiB streams a throughput sub-benchmark reads:
// b.N, at most $CLOCKER_BENCH_STREAMS (default 10). One stream takes 2–6 s
// on the test engines, so -benchtime 200x would otherwise need hours; ns/op
// and MB/s are reported over the streams actually read.
func streamRuns(b *testing.B) int {
	limit := 10
	if v, err := strconv.Atoi(os.Getenv("CLOCKER_BENCH_STREAMS")); err == nil && v > 0 {
		limit = v
	}
	return min(b.N, limit)
}

// throughput reports MB/s (10^6 bytes a second, as Go's own MB/s) of the
// bytes read over the time spent reading them, ns per stream, and, on the
// direct line, ratio-MB/s (clocker/direct).
func throughput(b *testing.B, cmp comparison, key string, runs int, n int64, spent time.Duration) {
	mbs := float64(n) / 1e6 / spent.Seconds()
	b.ReportMetric(float64(spent.Nanoseconds())/float64(runs), "ns/op")
	b.ReportMetric(mbs, "MB/s")
	b.ReportMetric(float64(runs), "streams")
	cmp[key] = [2]float64{mbs, mbs}
	if cl, ok := cmp["clocker"]; ok && key == "direct" && mbs > 0 {
		b.ReportMetric(cl[0]/mbs, "ratio-MB/s")
	}
}

// BenchmarkLogs: GET /containers/{id}/logs?stdout=1&stderr=1 of a container
// that wrote 200 MiB (lines of 1000 bytes, json-file driver), read whole,
// through Clocker and straight to its engine.
func BenchmarkLogs(b *testing.B) {
	clocker, engines := benchClients(b)
	b.Cleanup(func() { removeBenchContainers(b, engines) })
	script := fmt.Sprintf("yes %s | head -c %d", strings.Repeat("x", 999), streamBytes)
	id := clocker.create(b, "cbench-logs", map[string]any{"Image": "busybox", "Cmd": []string{"sh", "-c", script}})
	clocker.must(b, "POST", "/containers/"+id+"/start", nil)
	clocker.must(b, "POST", "/containers/"+id+"/wait", nil)
	var in struct {
		Node struct{ Name string }
	}
	_ = json.Unmarshal(clocker.must(b, "GET", "/containers/"+id+"/json", nil), &in)
	var direct *apiClient
	for _, e := range engines {
		if e.name == in.Node.Name {
			direct = e
		}
	}
	if direct == nil {
		b.Fatalf("container %s on unknown host %q", id, in.Node.Name)
	}
	cmp := comparison{}
	run := func(c *apiClient, key string) func(b *testing.B) {
		return func(b *testing.B) {
			var total int64
			runs := streamRuns(b)
			cpu0 := serverCPU()
			b.ResetTimer()
			t0 := time.Now()
			for i := 0; i < runs; i++ {
				n := c.stream(b, "/containers/"+id+"/logs?stdout=1&stderr=1")
				if n < streamBytes {
					b.Fatalf("%s: %d bytes of logs, want ≥ %d", c.name, n, streamBytes)
				}
				total += n
			}
			spent := time.Since(t0)
			b.StopTimer()
			if key == "clocker" {
				reportProxyCPU(b, cpu0, runs)
			}
			throughput(b, cmp, key, runs, total, spent)
		}
	}
	b.Run("clocker", run(clocker, "clocker"))
	b.Run("direct", run(direct, "direct"))
}

// BenchmarkAttach: a container running `head -c 209715200 /dev/zero` with
// its output read over a hijacked attach (POST /containers/{id}/attach with
// Upgrade: tcp, as the CLI does), attached before start. Log driver none,
// so only the attach path carries the bytes. Throughput is the payload
// over the time from start to the end of the stream; the create, wait and
// remove around it are not counted.
func BenchmarkAttach(b *testing.B) {
	clocker, engines := benchClients(b)
	b.Cleanup(func() { removeBenchContainers(b, engines) })
	cmp := comparison{}
	run := func(c *apiClient, key string) func(b *testing.B) {
		return func(b *testing.B) {
			var total int64
			var spent, cpu time.Duration
			runs := streamRuns(b)
			b.ResetTimer()
			for i := 0; i < runs; i++ {
				b.StopTimer()
				id := c.create(b, "", map[string]any{
					"Image": "busybox", "Cmd": []string{"head", "-c", fmt.Sprint(streamBytes), "/dev/zero"},
					"AttachStdout": true, "AttachStderr": true,
					"HostConfig": map[string]any{"LogConfig": map[string]any{"Type": "none"}},
				})
				conn, rd := attach(b, c, id)
				b.StartTimer()
				cpu0 := serverCPU()
				t0 := time.Now()
				c.must(b, "POST", "/containers/"+id+"/start", nil)
				n, err := readFrames(rd)
				spent += time.Since(t0)
				cpu += serverCPU() - cpu0
				b.StopTimer()
				conn.Close()
				if err != nil || n != streamBytes {
					b.Fatalf("%s: attach read %d bytes (%v), want %d", c.name, n, err, streamBytes)
				}
				total += n
				c.must(b, "POST", "/containers/"+id+"/wait", nil)
				c.must(b, "DELETE", "/containers/"+id, nil)
				b.StartTimer()
			}
			b.StopTimer()
			if key == "clocker" {
				b.ReportMetric(float64(cpu)/1e6/float64(runs), "proxy-cpu-ms/op")
			}
			throughput(b, cmp, key, runs, total, spent)
		}
	}
	b.Run("clocker", run(clocker, "clocker"))
	b.Run("direct", run(engines[0], "direct"))
}

// attach opens a hijacked attach stream: the request by hand, the 101
// answer read, then the raw connection.
func attach(b *testing.B, c *apiClient, id string) (net.Conn, *bufio.Reader) {
	b.Helper()
	conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	req, _ := http.NewRequest("POST", "http://"+c.addr+"/v1.41/containers/"+id+"/attach?stream=1&stdout=1&stderr=1", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	if err := req.Write(conn); err != nil {
		b.Fatal(err)
	}
	rd := bufio.NewReaderSize(conn, 64<<10)
	resp, err := http.ReadResponse(rd, req)
	if err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		out, _ := io.ReadAll(resp.Body)
		b.Fatalf("%s: attach: %d %s", c.name, resp.StatusCode, out)
	}
	return conn, rd
}

// readFrames reads a multiplexed stream (8-byte headers: stream, 0, 0, 0,
// big-endian length) to its end and returns the payload bytes.
func readFrames(rd *bufio.Reader) (int64, error) {
	var hdr [8]byte
	var n int64
	for {
		if _, err := io.ReadFull(rd, hdr[:]); err != nil {
			if err == io.EOF {
				return n, nil
			}
			return n, err
		}
		size := int64(binary.BigEndian.Uint32(hdr[4:]))
		m, err := io.CopyN(io.Discard, rd, size)
		n += m
		if err != nil {
			return n, err
		}
	}
}
