//go:build e2e

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clocker/clocker/internal/testfleet"
)

// The end-to-end suite: three real dockerd engines in network namespaces,
// the clocker binary in front of them, and the real docker CLI.

var (
	fleet      *testfleet.Fleet
	clockerURL string // tcp://127.0.0.1:PORT
	clockerBin string
	server     *exec.Cmd
	serverLog  *bytes.Buffer
	dataDir    string
)

func TestMain(m *testing.M) {
	if os.Getenv("CLOCKER_E2E") != "1" || os.Geteuid() != 0 {
		fmt.Println("e2e: skipped (needs root and CLOCKER_E2E=1)")
		os.Exit(m.Run())
	}
	os.Exit(runE2E(m))
}

func runE2E(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tmp, err := os.MkdirTemp("", "clocker-e2e-")
	if err != nil {
		fmt.Println("e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	clockerBin = filepath.Join(tmp, "clocker")
	build := exec.CommandContext(ctx, "go", "build", "-o", clockerBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // static: the hosts' agents run it FROM scratch
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Printf("e2e: build clocker: %v\n%s", err, out)
		return 1
	}
	start := time.Now()
	prefix := os.Getenv("CLOCKER_E2E_PREFIX")
	if prefix == "" {
		prefix = "ce2e"
	}
	fleet, err = testfleet.Start(ctx, prefix, 3)
	if err != nil {
		fmt.Println("e2e: start fleet:", err)
		return 1
	}
	fmt.Printf("e2e: 3 engines up in %s\n", time.Since(start).Round(time.Millisecond))
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer scancel()
		if err := fleet.Stop(sctx); err != nil {
			fmt.Println("e2e: stop fleet:", err)
		}
	}()
	dataDir = filepath.Join(tmp, "data")
	if err := startServer(ctx, true); err != nil {
		fmt.Println("e2e:", err)
		return 1
	}
	code := m.Run()
	stopServer()
	stopReferenceEngine()
	if path := os.Getenv("CLOCKER_E2E_LOG"); path != "" {
		// The whole log of the last serve, for a look after a green run.
		_ = os.WriteFile(path, serverLog.Bytes(), 0o644)
	}
	if code != 0 {
		fmt.Printf("e2e: clocker log:\n%s\n", tail(serverLog.String(), 60))
	}
	return code
}

// startServer runs clocker serve in front of the fleet's engines, given
// with --engine flags or (withEngines false) only from its stored state.
// A restart keeps the address.
func startServer(ctx context.Context, withEngines bool) error {
	if clockerURL == "" {
		port, err := freePort()
		if err != nil {
			return err
		}
		clockerURL = fmt.Sprintf("tcp://127.0.0.1:%d", port)
	}
	args := []string{"serve", "--listen", clockerURL, "--data", dataDir, "--log-level", "debug"}
	if withEngines {
		for _, e := range fleet.Engines {
			args = append(args, "--engine", e.TCP)
		}
	}
	server = exec.Command(clockerBin, args...)
	serverLog = &bytes.Buffer{}
	server.Stdout, server.Stderr = serverLog, serverLog
	if err := server.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(httpURL("/_ping"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 && fleetHealthy() {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("clocker did not come up:\n%s", serverLog.String())
}

func fleetHealthy() bool {
	resp, err := http.Get(httpURL("/info"))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var info struct{ SystemStatus [][2]string }
	if json.NewDecoder(resp.Body).Decode(&info) != nil {
		return false
	}
	healthy := 0
	for _, kv := range info.SystemStatus {
		if strings.TrimSpace(kv[0]) == "└ Status" && kv[1] == "Healthy" {
			healthy++
		}
	}
	return healthy == len(fleet.Engines)
}

// killServer ends clocker at once, as a crash would.
func killServer() {
	if server != nil && server.Process != nil {
		_ = server.Process.Kill()
		_ = server.Wait()
	}
}

func stopServer() {
	if server != nil && server.Process != nil {
		_ = server.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = server.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = server.Process.Kill()
			<-done
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func httpURL(path string) string {
	return "http://" + strings.TrimPrefix(clockerURL, "tcp://") + path
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// result is what one docker CLI run gave.
type result struct {
	Stdout, Stderr string
	Code           int
}

// docker runs the real docker CLI against Clocker.
func docker(t testing.TB, stdin io.Reader, args ...string) result {
	t.Helper()
	return runDocker(t, stdin, nil, args...)
}

// dockerEnv runs the docker CLI with extra environment.
func dockerEnv(t testing.TB, env []string, args ...string) result {
	t.Helper()
	return runDocker(t, nil, env, args...)
}

func runDocker(t testing.TB, stdin io.Reader, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(append(os.Environ(), "DOCKER_HOST="+clockerURL, "DOCKER_CLI_HINTS=false"), env...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
	}
	return result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// mustDocker runs docker and fails the test unless it exits 0.
func mustDocker(t testing.TB, args ...string) string {
	t.Helper()
	r := docker(t, nil, args...)
	if r.Code != 0 {
		t.Fatalf("docker %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return strings.TrimSpace(r.Stdout)
}

// engineDocker runs the docker CLI directly against one engine.
func engineDocker(t testing.TB, engine int, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := fleet.Docker(ctx, fleet.Engines[engine].Name, args...)
	if err != nil {
		t.Fatalf("docker -H %s %s: %v\n%s", fleet.Engines[engine].Name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

// engineContainerCount counts containers on every engine, asked directly.
func engineContainerCount(t testing.TB) int {
	t.Helper()
	n := 0
	for i := range fleet.Engines {
		out := engineDocker(t, i, "ps", "-aq")
		if out != "" {
			n += len(strings.Split(out, "\n"))
		}
	}
	return n
}

// cleanup removes the named containers at the end of a test.
func cleanup(t testing.TB, names ...string) {
	t.Cleanup(func() {
		for _, n := range names {
			docker(t, nil, "rm", "-f", n)
		}
	})
}

// apiCall sends a raw request to Clocker.
func apiCall(t testing.TB, method, path, contentType string, body io.Reader) (int, string) {
	t.Helper()
	h := http.Header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	return apiCallHeader(t, method, path, h, body)
}

// apiCallHeader sends a raw request with these headers to Clocker.
func apiCallHeader(t testing.TB, method, path string, h http.Header, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, httpURL(path), body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// hostOf is the fleet host a container runs on, from inspect's Node.
func hostOf(t testing.TB, name string) string {
	t.Helper()
	return mustDocker(t, "inspect", "-f", `{{.Node.Name}}`, name)
}
