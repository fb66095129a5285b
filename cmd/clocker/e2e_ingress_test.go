//go:build e2e

package main

// Ingress end to end: published ports reached at Clocker's own address
// (127.0.0.1 here, the address of its --listen) whichever host runs the
// container. The hosts' own addresses (10.213.x.y) are reachable from
// here too, which the benchmarks use to compare with the direct path.
//
// Benchmarks (connection set-up and TCP throughput, ingress in the kernel
// and in userland against direct):
//
//	cd cmd/clocker && CLOCKER_E2E=1 CLOCKER_E2E_PREFIX=ing \
//	  go test -tags e2e -run '^$' -bench Ingress -benchtime 500x -timeout 15m .

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// ingressToolSource is a static helper served from a FROM-scratch image:
// a TCP sink on :80 (reads to EOF, answers the count, closes) and a UDP
// echo on :5353. busybox's nc here has no UDP.
const ingressToolSource = `package main

import (
	"fmt"
	"net"
)

func main() {
	go func() {
		pc, err := net.ListenPacket("udp", ":5353")
		if err != nil {
			panic(err)
		}
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	ln, err := net.Listen("tcp", ":80")
	if err != nil {
		panic(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			var n int64
			buf := make([]byte, 1<<20)
			for {
				k, err := c.Read(buf)
				n += int64(k)
				if err != nil {
					break
				}
			}
			fmt.Fprintf(c, "%d\n", n)
		}()
	}
}
`

const ingressToolImage = "clocker-ingresstool:latest"

var (
	ingressToolOnce sync.Once
	ingressToolErr  error
)

// ingressTool builds the helper and imports it on every engine, once.
func ingressTool(t testing.TB) {
	t.Helper()
	ingressToolOnce.Do(func() { ingressToolErr = buildIngressTool() })
	if ingressToolErr != nil {
		t.Fatal(ingressToolErr)
	}
}

func buildIngressTool() error {
	dir, err := os.MkdirTemp("", "clocker-ingresstool-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(ingressToolSource), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module ingresstool\n\ngo 1.22\n"), 0o644); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", "ingresstool", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build the ingress tool: %v\n%s", err, out)
	}
	bin, err := os.ReadFile(filepath.Join(dir, "ingresstool"))
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "ingresstool", Mode: 0o755, Size: int64(len(bin))}); err != nil {
		return err
	}
	if _, err := tw.Write(bin); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	tarPath := filepath.Join(dir, "image.tar")
	if err := os.WriteFile(tarPath, buf.Bytes(), 0o644); err != nil {
		return err
	}
	for _, e := range fleet.Engines {
		if out, err := fleet.Docker(ctx, e.Name, "import", "-c", `ENTRYPOINT ["/ingresstool"]`, tarPath, ingressToolImage); err != nil {
			return fmt.Errorf("import on %s: %v\n%s", e.Name, err, out)
		}
	}
	return nil
}

// frontDoor is host:port of a published port at Clocker's address.
func frontDoor(port int) string {
	host, _, _ := net.SplitHostPort(strings.TrimPrefix(clockerURL, "tcp://"))
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// httpGetRetry GETs url until it answers 200 or 20 seconds pass.
func httpGetRetry(t testing.TB, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 3 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return string(body)
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, last)
	return ""
}

// refused reports whether nothing listens at addr.
func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

// httpdArgs runs a busybox httpd serving text on :80.
func httpdArgs(text string) []string {
	return []string{"busybox", "sh", "-c", "mkdir -p /www && echo " + text + " > /www/index.html && exec httpd -f -p 80 -h /www"}
}

func TestIngressHTTPOnEveryHost(t *testing.T) {
	for i, e := range fleet.Engines {
		name := fmt.Sprintf("ingr-web%d", i)
		port := 18181 + i
		cleanup(t, name)
		mustDocker(t, append([]string{"run", "-d", "--name", name, "-e", "constraint:node==" + e.Name,
			"-p", fmt.Sprintf("%d:80", port)}, httpdArgs("hello-from-"+e.Name)...)...)
		if h := hostOf(t, name); h != e.Name {
			t.Fatalf("%s placed on %s", name, h)
		}
		if got := httpGetRetry(t, "http://"+frontDoor(port)+"/"); strings.TrimSpace(got) != "hello-from-"+e.Name {
			t.Fatalf("front door :%d answered %q", port, got)
		}
		// docker port, inspect and ps show the front door's address.
		if out := mustDocker(t, "port", name, "80"); out != frontDoor(port) {
			t.Fatalf("docker port: %q", out)
		}
		if out := mustDocker(t, "ps", "--filter", "name="+name, "--format", "{{.Ports}}"); out != frontDoor(port)+"->80/tcp" {
			t.Fatalf("docker ps ports: %q", out)
		}
	}
	// curl, as a user would, when it is installed.
	if curl, err := exec.LookPath("curl"); err == nil {
		out, err := exec.Command(curl, "-sS", "--max-time", "5", "http://"+frontDoor(18181)+"/").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "hello-from-") {
			t.Fatalf("curl: %v %s", err, out)
		}
	}
}

func TestIngressUDPEcho(t *testing.T) {
	ingressTool(t)
	cleanup(t, "ingr-udp")
	mustDocker(t, "run", "-d", "--name", "ingr-udp", "-e", "constraint:node=="+fleet.Engines[1].Name,
		"-p", "18253:5353/udp", ingressToolImage)
	c, err := net.Dial("udp", frontDoor(18253))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	waitFor(t, 20*time.Second, "a UDP echo through the front door", func() bool {
		if _, err := c.Write([]byte("ping-udp")); err != nil {
			return false
		}
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := c.Read(buf)
		return err == nil && string(buf[:n]) == "ping-udp"
	})
	if out := mustDocker(t, "port", "ingr-udp"); out != "5353/udp -> "+frontDoor(18253) {
		t.Fatalf("docker port: %q", out)
	}
}

func TestIngressPublishAll(t *testing.T) {
	cleanup(t, "ingr-all", "ingr-p80")
	mustDocker(t, append([]string{"run", "-d", "--name", "ingr-all", "-P", "--expose", "80"}, httpdArgs("published-all")...)...)
	mustDocker(t, append([]string{"run", "-d", "--name", "ingr-p80", "-p", "80"}, httpdArgs("published-80")...)...)
	for name, text := range map[string]string{"ingr-all": "published-all", "ingr-p80": "published-80"} {
		out := mustDocker(t, "port", name, "80")
		host, p, err := net.SplitHostPort(out)
		port, _ := strconv.Atoi(p)
		if err != nil || host != "127.0.0.1" || port < 20000 || port > 29999 {
			t.Fatalf("%s: docker port %q, want 127.0.0.1 and a port from the ingress range", name, out)
		}
		if got := httpGetRetry(t, "http://"+out+"/"); strings.TrimSpace(got) != text {
			t.Fatalf("%s through the front door: %q", name, got)
		}
	}
}

func TestIngressConflictAndRemove(t *testing.T) {
	cleanup(t, "ingr-held", "ingr-second")
	mustDocker(t, append([]string{"run", "-d", "--name", "ingr-held", "-p", "18190:80"}, httpdArgs("held")...)...)
	httpGetRetry(t, "http://"+frontDoor(18190)+"/")
	before := engineContainerCount(t)
	r := docker(t, nil, "run", "-d", "--name", "ingr-second", "-p", "18190:80", "busybox", "sleep", "60")
	if r.Code == 0 || !strings.Contains(r.Stderr, "Bind for 0.0.0.0:18190 failed: port is already allocated") ||
		!strings.Contains(r.Stderr, `"ingr-held"`) {
		t.Fatalf("second container on a held port: %+v", r)
	}
	if after := engineContainerCount(t); after != before {
		t.Fatalf("the refused create left %d containers", after-before)
	}
	// Stopped: the forward goes; started again: it comes back.
	mustDocker(t, "stop", "-t", "1", "ingr-held")
	waitFor(t, 10*time.Second, "the forward to close on stop", func() bool { return refused(frontDoor(18190)) })
	mustDocker(t, "start", "ingr-held")
	httpGetRetry(t, "http://"+frontDoor(18190)+"/")
	// Removed: the forward goes and the port is free for another.
	mustDocker(t, "rm", "-f", "ingr-held")
	waitFor(t, 10*time.Second, "the forward to close on rm", func() bool { return refused(frontDoor(18190)) })
	mustDocker(t, append([]string{"run", "-d", "--name", "ingr-second", "-p", "18190:80"}, httpdArgs("second")...)...)
	if got := httpGetRetry(t, "http://"+frontDoor(18190)+"/"); strings.TrimSpace(got) != "second" {
		t.Fatalf("after rm the port serves %q", got)
	}
	// Metrics: the open forwards and their traffic.
	status, body := apiCall(t, "GET", "/metrics", "", nil)
	if status != 200 || !strings.Contains(body, `clocker_ingress_connections_total{port="18190",proto="tcp"}`) ||
		!strings.Contains(body, `clocker_ingress_forwards_open{proto="tcp"}`) {
		t.Fatalf("metrics:\n%s", body)
	}
}

func TestIngressCannotBind(t *testing.T) {
	// Another process holds the port at the front door's address.
	ln, err := net.Listen("tcp", frontDoor(18199))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cleanup(t, "ingr-nobind")
	before := engineContainerCount(t)
	r := docker(t, nil, "run", "-d", "--name", "ingr-nobind", "-p", "18199:80", "busybox", "sleep", "60")
	if r.Code == 0 || !strings.Contains(r.Stderr, "cannot listen on "+frontDoor(18199)) {
		t.Fatalf("create on a port Clocker cannot bind: %+v", r)
	}
	if after := engineContainerCount(t); after != before {
		t.Fatalf("the failed create left %d containers", after-before)
	}
}

func TestIngressManagerRestart(t *testing.T) {
	cleanup(t, "ingr-restart")
	mustDocker(t, append([]string{"run", "-d", "--name", "ingr-restart", "-e", "constraint:node==" + fleet.Engines[2].Name,
		"-p", "18195:80"}, httpdArgs("survives")...)...)
	httpGetRetry(t, "http://"+frontDoor(18195)+"/")
	kernel := metricValue(t, metricsBody(t, ""), `clocker_ingress_kernel_forwards{proto="tcp"}`) > 0
	killServer()
	// A userland forward dies with the manager; a kernel one is rules,
	// left in place by a killed manager and rebuilt by the next.
	if !kernel && !refused(frontDoor(18195)) {
		t.Fatal("the forward outlived the manager")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := startServer(ctx, false); err != nil {
		t.Fatal(err)
	}
	if got := httpGetRetry(t, "http://"+frontDoor(18195)+"/"); strings.TrimSpace(got) != "survives" {
		t.Fatalf("after a restart: %q", got)
	}
	if kernel {
		waitFor(t, 10*time.Second, "the forward to be rebuilt in the kernel", func() bool {
			return metricValue(t, metricsBody(t, ""), `clocker_ingress_kernel_forwards{proto="tcp"}`) > 0
		})
		// Rebuilt, not doubled: one DNAT rule for the port.
		out, err := exec.Command("iptables-save", "-t", "nat").Output()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for line := range strings.Lines(string(out)) {
			if strings.Contains(line, ` 18195/tcp"`) && strings.Contains(line, "-j DNAT") {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d DNAT rules for 18195 after a restart:\n%s", n, out)
		}
	}
}

// metricsBody is GET /metrics of the main server (base "") or another.
func metricsBody(t testing.TB, base string) string {
	t.Helper()
	if base == "" {
		status, body := apiCall(t, "GET", "/metrics", "", nil)
		if status != 200 {
			t.Fatalf("metrics: %d", status)
		}
		return body
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// metricValue is the value of one series in a metrics body (-1: absent).
func metricValue(t testing.TB, body, series string) float64 {
	t.Helper()
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	return -1
}

// TestIngressKernelCounters: on this machine (root, iptables) the default
// mode forwards in the kernel, and its rules count connections and bytes.
func TestIngressKernelCounters(t *testing.T) {
	cleanup(t, "ingr-count")
	mustDocker(t, append([]string{"run", "-d", "--name", "ingr-count", "-e", "constraint:node==" + fleet.Engines[0].Name,
		"-p", "18197:80"}, httpdArgs("counted")...)...)
	httpGetRetry(t, "http://"+frontDoor(18197)+"/")
	body := metricsBody(t, "")
	if n := metricValue(t, body, `clocker_ingress_kernel_forwards{proto="tcp"}`); n < 1 {
		t.Fatalf("no kernel forward (%v): is iptables missing?\n%s", n, body)
	}
	conns := metricValue(t, body, `clocker_ingress_connections_total{port="18197",proto="tcp"}`)
	in := metricValue(t, body, `clocker_ingress_bytes_total{direction="in",port="18197",proto="tcp"}`)
	out := metricValue(t, body, `clocker_ingress_bytes_total{direction="out",port="18197",proto="tcp"}`)
	if conns < 1 || in <= 0 || out <= 0 {
		t.Fatalf("counters: connections %v, in %v, out %v", conns, in, out)
	}
	for range 3 { // three connections (an HTTP client might reuse one)
		c, err := net.DialTimeout("tcp", frontDoor(18197), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	body = metricsBody(t, "")
	if got := metricValue(t, body, `clocker_ingress_connections_total{port="18197",proto="tcp"}`); got != conns+3 {
		t.Fatalf("connections: %v after %v and three more", got, conns)
	}
	if got := metricValue(t, body, `clocker_ingress_bytes_total{direction="out",port="18197",proto="tcp"}`); got <= out {
		t.Fatalf("bytes out did not grow: %v then %v", out, got)
	}
}

// TestIngressUserlandMode: --ingress-mode=userland keeps the proxy in
// Clocker (the fallback where iptables cannot be used).
func TestIngressUserlandMode(t *testing.T) {
	srv := placementServer(t, "--ingress-mode=userland")
	name := "ingr-userland"
	t.Cleanup(func() { dockerOn(t, srv, "rm", "-f", name) })
	mustDockerOn(t, srv, append([]string{"run", "-d", "--name", name, "-e", "constraint:node==" + fleet.Engines[1].Name,
		"-p", "18198:80"}, httpdArgs("userland")...)...)
	if got := httpGetRetry(t, "http://"+frontDoor(18198)+"/"); strings.TrimSpace(got) != "userland" {
		t.Fatalf("through the userland forward: %q", got)
	}
	body := metricsBody(t, "http://"+strings.TrimPrefix(srv, "tcp://"))
	if metricValue(t, body, `clocker_ingress_kernel_forwards{proto="tcp"}`) != 0 ||
		metricValue(t, body, `clocker_ingress_connections_active{port="18198",proto="tcp"}`) < 0 {
		t.Fatalf("userland metrics:\n%s", body)
	}
}

func TestIngressOffShowsTheHostAddress(t *testing.T) {
	off := placementServer(t, "--ingress=false")
	name := "ingr-off"
	t.Cleanup(func() { dockerOn(t, off, "rm", "-f", name) })
	mustDockerOn(t, off, append([]string{"run", "-d", "--name", name, "-e", "constraint:node==" + fleet.Engines[0].Name,
		"-p", "18196:80"}, httpdArgs("off")...)...)
	want := net.JoinHostPort(fleet.Engines[0].Addr, "18196")
	if out := mustDockerOn(t, off, "port", name, "80"); out != want {
		t.Fatalf("docker port without ingress: %q, want %s", out, want)
	}
	if got := httpGetRetry(t, "http://"+want+"/"); strings.TrimSpace(got) != "off" {
		t.Fatalf("at the host's address: %q", got)
	}
}

// TestIngressTestcontainers: testcontainers-go as its users run it, with
// DOCKER_HOST at Clocker and nothing else set (its reaper image cannot be
// pulled here, so Ryuk is off).
func TestIngressTestcontainers(t *testing.T) {
	t.Setenv("DOCKER_HOST", clockerURL)
	t.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	if v, set := os.LookupEnv("TESTCONTAINERS_HOST_OVERRIDE"); set { // no host override
		os.Unsetenv("TESTCONTAINERS_HOST_OVERRIDE")
		t.Cleanup(func() { os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", v) })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:        "busybox:latest",
			ExposedPorts: []string{"80/tcp"},
			Cmd:          []string{"sh", "-c", "mkdir -p /www && echo from-testcontainers > /www/index.html && exec httpd -f -p 80 -h /www"},
			WaitingFor:   wait.ForHTTP("/").WithPort("80/tcp").WithStartupTimeout(time.Minute),
		},
		Started: true,
	})
	if ctr != nil {
		t.Cleanup(func() { _ = ctr.Terminate(context.Background(), testcontainers.StopTimeout(0)) })
	}
	if err != nil {
		t.Fatal(err)
	}
	host, err := ctr.Host(ctx)
	if err != nil {
		t.Fatal(err)
	}
	port, err := ctr.MappedPort(ctx, "80/tcp")
	if err != nil {
		t.Fatal(err)
	}
	if host != "127.0.0.1" && host != "localhost" {
		t.Fatalf("testcontainers dials %s", host)
	}
	got := httpGetRetry(t, "http://"+net.JoinHostPort(host, port.Port())+"/")
	if strings.TrimSpace(got) != "from-testcontainers" {
		t.Fatalf("through the mapped port: %q", got)
	}
}

// TestIngressStopRemovesRules: a Clocker that is stopped (SIGINT) takes
// its kernel forwards with it; one that is killed leaves them, and the
// next start of any Clocker on the machine removes them.
func TestIngressStopRemovesRules(t *testing.T) {
	for _, how := range []os.Signal{os.Interrupt, os.Kill} {
		port := map[os.Signal]int{os.Interrupt: 18193, os.Kill: 18192}[how]
		srv, stop := ingressServer(t)
		// Its own rules only: the main Clocker sees the container too.
		sum := sha256.Sum256([]byte("listen=" + srv))
		tag := fmt.Sprintf(`clocker-ingress:%x %d/tcp"`, sum[:3], port)
		name := fmt.Sprintf("ingr-stop%d", port)
		t.Cleanup(func() { docker(t, nil, "rm", "-f", name) })
		mustDockerOn(t, srv, append([]string{"run", "-d", "--name", name, "-p", fmt.Sprintf("%d:80", port)}, httpdArgs("stop")...)...)
		httpGetRetry(t, "http://"+frontDoor(port)+"/")
		if n := dnatRules(t, tag); n != 1 {
			t.Fatalf("%d DNAT rules %s (is the mode kernel?)", n, tag)
		}
		stop(how)
		if how == os.Interrupt {
			if n := dnatRules(t, tag); n != 0 {
				t.Fatalf("%d DNAT rules %s after a stop", n, tag)
			}
			continue
		}
		if n := dnatRules(t, tag); n != 1 {
			t.Fatalf("%d DNAT rules %s after a kill", n, tag)
		}
		ingressServer(t) // another Clocker sweeps the dead one's chains
		if n := dnatRules(t, tag); n != 0 {
			t.Fatalf("%d DNAT rules %s after another Clocker started", n, tag)
		}
	}
}

// dnatRules counts the nat table's DNAT rules whose comment ends in tag.
func dnatRules(t testing.TB, tag string) int {
	t.Helper()
	out, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, tag) && strings.Contains(line, "-j DNAT") {
			n++
		}
	}
	return n
}

// ingressServer starts a Clocker of its own on the fleet and waits until
// it answers with every host healthy; stop signals it and waits for its
// exit (done with the test otherwise).
func ingressServer(t testing.TB, args ...string) (addr string, stop func(os.Signal)) {
	t.Helper()
	s := startOwnServer(t, t.TempDir(), append(fleetEngineArgs(), args...)...)
	s.waitHealthy()
	return s.url, s.stop
}

// --- benchmarks ---------------------------------------------------------------

// benchSink runs the ingress tool on engine 1 publishing port and returns
// the front door's address of it (kernel mode, as this machine allows),
// that of a second Clocker forwarding in userland (at 127.0.0.2) and the
// host's own address.
func benchSink(b *testing.B, port int) (ingressAddr, userlandAddr, directAddr string) {
	ingressTool(b)
	name := fmt.Sprintf("ingr-bench%d", port)
	docker(b, nil, "rm", "-f", name)
	mustDocker(b, "run", "-d", "--name", name, "-e", "constraint:node=="+fleet.Engines[1].Name,
		"-p", fmt.Sprintf("%d:80", port), ingressToolImage)
	b.Cleanup(func() { docker(b, nil, "rm", "-f", name) })
	ingressServer(b, "--ingress-address", "127.0.0.2", "--ingress-mode", "userland")
	ingressAddr = frontDoor(port)
	userlandAddr = net.JoinHostPort("127.0.0.2", strconv.Itoa(port))
	directAddr = net.JoinHostPort(fleet.Engines[1].Addr, strconv.Itoa(port))
	for _, a := range []string{ingressAddr, userlandAddr, directAddr} {
		waitFor(b, 20*time.Second, "the sink at "+a, func() bool { _, err := sinkOnce(a, 1); return err == nil })
	}
	return ingressAddr, userlandAddr, directAddr
}

// sinkOnce connects, sends n bytes, half-closes and reads the sink's
// count: one connection set-up and an answer.
func sinkOnce(addr string, n int64) (time.Duration, error) {
	t0 := time.Now()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
	buf := zeros[:min(n, int64(len(zeros)))]
	for left := n; left > 0; {
		k, err := c.Write(buf[:min(left, int64(len(buf)))])
		if err != nil {
			return 0, err
		}
		left -= int64(k)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, err
	}
	if strings.TrimSpace(line) != strconv.FormatInt(n, 10) {
		return 0, fmt.Errorf("sink counted %q, sent %d", line, n)
	}
	return time.Since(t0), nil
}

// zeros is what the benchmarks send, in writes of 1 MiB.
var zeros = make([]byte, 1<<20)

// BenchmarkIngressConnect: a new TCP connection, one byte, the answer —
// through the front door (kernel mode), through a userland front door, and
// straight to the host's published port, in turn, so that all see the same
// load on the machine. Reports p50/p99 of each and the p50 differences.
func BenchmarkIngressConnect(b *testing.B) {
	ingress, userland, direct := benchSink(b, 18301)
	var viaIngress, viaUserland, viaDirect latencies
	b.ResetTimer()
	for range b.N {
		for _, k := range []struct {
			addr string
			into *latencies
		}{{ingress, &viaIngress}, {userland, &viaUserland}, {direct, &viaDirect}} {
			d, err := sinkOnce(k.addr, 1)
			if err != nil {
				b.Fatal(err)
			}
			*k.into = append(*k.into, d)
		}
	}
	b.StopTimer()
	pi, qi := percentiles(viaIngress)
	pu, _ := percentiles(viaUserland)
	pd, qd := percentiles(viaDirect)
	b.ReportMetric(float64(pi)/1e6, "ingress-p50-ms")
	b.ReportMetric(float64(qi)/1e6, "ingress-p99-ms")
	b.ReportMetric(float64(pd)/1e6, "direct-p50-ms")
	b.ReportMetric(float64(qd)/1e6, "direct-p99-ms")
	b.ReportMetric(float64(pi-pd)/1e6, "added-p50-ms")
	b.ReportMetric(float64(pu-pd)/1e6, "userland-added-p50-ms")
}

func percentiles(l latencies) (p50, p99 time.Duration) {
	s := slices.Clone(l)
	slices.Sort(s)
	return s[len(s)*50/100], s[min(len(s)-1, len(s)*99/100)]
}

// BenchmarkIngressThroughput: 200 MB sent to the container's port through
// the front door (kernel mode), a userland front door and straight to the
// host, in turn, at most 5 streams each whatever -benchtime says.
func BenchmarkIngressThroughput(b *testing.B) {
	ingress, userland, direct := benchSink(b, 18302)
	const size = 200 << 20
	runs := min(b.N, 5)
	var viaIngress, viaUserland, viaDirect time.Duration
	b.ResetTimer()
	for range runs {
		for _, k := range []struct {
			addr  string
			spent *time.Duration
		}{{ingress, &viaIngress}, {userland, &viaUserland}, {direct, &viaDirect}} {
			d, err := sinkOnce(k.addr, size)
			if err != nil {
				b.Fatal(err)
			}
			*k.spent += d
		}
	}
	b.StopTimer()
	mbs := func(d time.Duration) float64 { return float64(runs) * size / 1e6 / d.Seconds() }
	b.ReportMetric(float64((viaIngress+viaDirect).Nanoseconds())/float64(runs), "ns/op")
	b.ReportMetric(mbs(viaIngress), "ingress-MB/s")
	b.ReportMetric(mbs(viaDirect), "direct-MB/s")
	b.ReportMetric(mbs(viaIngress)/mbs(viaDirect), "ratio-MB/s")
	b.ReportMetric(mbs(viaUserland)/mbs(viaDirect), "userland-ratio-MB/s")
	b.ReportMetric(float64(runs), "streams")
}
