//go:build e2e

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/clocker/clocker/internal/testfleet"
)

// BenchmarkCycle: `docker run --rm busybox true` as its user sees it,
// through Clocker over the fleet's three engines and against one engine of
// its own, on the same machine. That engine is a private one-engine fleet
// Clocker does not manage, as a user without Clocker has it: the fleet's
// engines also serve Clocker's reads of what happens on them, and a cycle
// on one of them costs that too.
//
// Sub-benchmarks:
//
//	api  the CLI's requests in the CLI's order, from Go: HEAD /_ping,
//	     create (AutoRemove, stdout and stderr attached), attach
//	     (hijacked), wait?condition=removed, start, the output to its end,
//	     the wait's answer; on connections of its own each time, as a new
//	     CLI process has
//	cli  the docker CLI itself, `docker -H ADDR run --rm busybox true`
//
// Each iteration runs one cycle each way, in alternating order, so that
// both see the same machine. Reported: clocker-p50-ms, clocker-p99-ms,
// engine-p50-ms, engine-p99-ms, ratio-p50 and ratio-p99 (clocker/engine),
// engine-calls/op (the calls Clocker sent to the fleet's engines per
// cycle, from clocker_host_requests_total; the CLI's cycle is five) and
// proxy-cpu-ms/op. ns/op is the time of both cycles.
func BenchmarkCycle(b *testing.B) {
	if fleet == nil {
		b.Skip("needs the e2e fleet: CLOCKER_E2E=1, root")
	}
	one := oneEngine(b)
	_, engines := benchClients(b)
	b.Cleanup(func() { removeBenchContainers(b, engines) })
	clocker := strings.TrimPrefix(clockerURL, "tcp://")
	engine := strings.TrimPrefix(one.TCP, "tcp://")
	b.Run("api", func(b *testing.B) {
		measureCycles(b, func(addr string) error { return cliRequests(addr) }, clocker, engine)
	})
	b.Run("cli", func(b *testing.B) {
		measureCycles(b, func(addr string) error { return cliRun("tcp://" + addr) }, clocker, engine)
	})
}

// oneEngine starts a private one-engine fleet for the benchmark, stopped
// when it ends.
func oneEngine(b *testing.B) testfleet.Engine {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	prefix := "cone"
	if p := fleet.Prefix; len(p) <= 7 {
		prefix = p + "one" // a private fleet per test run
	}
	tf, err := testfleet.Start(ctx, prefix, 1)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_ = tf.Stop(ctx)
	})
	return tf.Engines[0]
}

// measureCycles runs cycle b.N times against Clocker and against the
// engine, alternating which goes first, and reports both sides.
func measureCycles(b *testing.B, cycle func(addr string) error, clocker, engine string) {
	// One of each first: images in the page cache, connections warm.
	for _, addr := range []string{clocker, engine} {
		if err := cycle(addr); err != nil {
			b.Fatalf("%s: %v", addr, err)
		}
	}
	var cl, en latencies
	calls0 := engineRequests(b)
	cpu0 := serverCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		order := []string{clocker, engine}
		if i%2 == 1 {
			order = []string{engine, clocker}
		}
		for _, addr := range order {
			t0 := time.Now()
			if err := cycle(addr); err != nil {
				b.Fatalf("%s: %v", addr, err)
			}
			if addr == clocker {
				cl = append(cl, time.Since(t0))
			} else {
				en = append(en, time.Since(t0))
			}
		}
	}
	b.StopTimer()
	reportProxyCPU(b, cpu0, b.N)
	b.ReportMetric((engineRequests(b)-calls0)/float64(b.N), "engine-calls/op")
	cp50, cp99 := cl.percentiles()
	ep50, ep99 := en.percentiles()
	b.ReportMetric(ms(cp50), "clocker-p50-ms")
	b.ReportMetric(ms(cp99), "clocker-p99-ms")
	b.ReportMetric(ms(ep50), "engine-p50-ms")
	b.ReportMetric(ms(ep99), "engine-p99-ms")
	b.ReportMetric(float64(cp50)/float64(ep50), "ratio-p50")
	b.ReportMetric(float64(cp99)/float64(ep99), "ratio-p99")
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// engineRequests is the calls Clocker has sent to the fleet's engines so
// far: the sum of clocker_host_requests_total over the hosts.
func engineRequests(b *testing.B) float64 {
	b.Helper()
	resp, err := http.Get(httpURL("/metrics"))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var n float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "clocker_host_requests_total{") {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			n += v
		}
	}
	return n
}

// cycleCreateBody is what the docker CLI sends to create `docker run --rm
// busybox true` (the fields it sets; the engine fills in the rest), with
// the bench label for the cleanup.
var cycleCreateBody = []byte(`{"AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,` +
	`"OpenStdin":false,"StdinOnce":false,"Cmd":["true"],"Image":"busybox","Labels":{"` + benchLabel + `":"1"},` +
	`"HostConfig":{"NetworkMode":"default","RestartPolicy":{"Name":"no"},"AutoRemove":true,"LogConfig":{"Type":"","Config":{}}},` +
	`"NetworkingConfig":{"EndpointsConfig":{"default":{}}}}`)

// cliRequests is one `docker run --rm busybox true` as the CLI sends it,
// on connections of its own.
func cliRequests(addr string) error {
	hc := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer hc.CloseIdleConnections()
	call := func(method, path string, body []byte, want int) ([]byte, error) {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequest(method, "http://"+addr+path, rd)
		if err != nil {
			return nil, err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != want {
			err = fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(out))
		}
		return out, err
	}
	if _, err := call("HEAD", "/_ping", nil, http.StatusOK); err != nil {
		return err
	}
	out, err := call("POST", "/v1.41/containers/create", cycleCreateBody, http.StatusCreated)
	if err != nil {
		return err
	}
	var created struct {
		ID string `json:"Id"`
	}
	if err := json.Unmarshal(out, &created); err != nil {
		return err
	}
	conn, output, err := dialAttach(addr, created.ID)
	if err != nil {
		return err
	}
	defer conn.Close()
	waited := make(chan error, 1)
	go func() {
		_, err := call("POST", "/v1.41/containers/"+created.ID+"/wait?condition=removed", nil, http.StatusOK)
		waited <- err
	}()
	if _, err := call("POST", "/v1.41/containers/"+created.ID+"/start", nil, http.StatusNoContent); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, output); err != nil {
		return err
	}
	return <-waited
}

// dialAttach opens the hijacked attach of stdout and stderr the CLI opens
// before it starts the container.
func dialAttach(addr, id string) (net.Conn, *bufio.Reader, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, nil, err
	}
	req, _ := http.NewRequest("POST", "http://"+addr+"/v1.41/containers/"+id+"/attach?stderr=1&stdout=1&stream=1", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, nil, err
	}
	rd := bufio.NewReader(conn)
	resp, err := http.ReadResponse(rd, req)
	if err == nil && resp.StatusCode != http.StatusSwitchingProtocols {
		out, _ := io.ReadAll(resp.Body)
		err = fmt.Errorf("attach: %d %s", resp.StatusCode, bytes.TrimSpace(out))
	}
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, rd, nil
}

// cliRun is `docker -H host run --rm busybox true` with the real CLI.
func cliRun(host string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "-H", host, "run", "--rm", "--label", benchLabel+"=1", "busybox", "true")
	cmd.Env = []string{"DOCKER_CLI_HINTS=false"}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "DOCKER_HOST" && k != "DOCKER_CONTEXT" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("docker run: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}
