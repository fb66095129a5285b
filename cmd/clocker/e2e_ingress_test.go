//go:build e2e

package main

// Ingress end to end: published ports reached at Clocker's own address
// (127.0.0.1 here, the address of its --listen) whichever host runs the
// container. The hosts' own addresses (10.213.x.y) are reachable from
// here too, which the benchmarks use to compare with the direct path.
//
// Benchmarks (connection set-up and TCP throughput, ingress against
// direct):
//
//	cd cmd/clocker && CLOCKER_E2E=1 CLOCKER_E2E_PREFIX=cbench \
//	  go test -tags e2e -run '^$' -bench Ingress -benchtime 500x -timeout 15m .

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
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

func waitUntil(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
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
	waitUntil(t, "a UDP echo through the front door", 20*time.Second, func() bool {
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
	waitUntil(t, "the forward to close on stop", 10*time.Second, func() bool { return refused(frontDoor(18190)) })
	mustDocker(t, "start", "ingr-held")
	httpGetRetry(t, "http://"+frontDoor(18190)+"/")
	// Removed: the forward goes and the port is free for another.
	mustDocker(t, "rm", "-f", "ingr-held")
	waitUntil(t, "the forward to close on rm", 10*time.Second, func() bool { return refused(frontDoor(18190)) })
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
	killServer()
	if !refused(frontDoor(18195)) {
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

// --- benchmarks ---------------------------------------------------------------

// benchSink runs the ingress tool on engine 1 publishing port and returns
// the front door's and the host's own address of it.
func benchSink(b *testing.B, port int) (ingressAddr, directAddr string) {
	ingressTool(b)
	name := fmt.Sprintf("ingr-bench%d", port)
	docker(b, nil, "rm", "-f", name)
	mustDocker(b, "run", "-d", "--name", name, "-e", "constraint:node=="+fleet.Engines[1].Name,
		"-p", fmt.Sprintf("%d:80", port), ingressToolImage)
	b.Cleanup(func() { docker(b, nil, "rm", "-f", name) })
	ingressAddr = frontDoor(port)
	directAddr = net.JoinHostPort(fleet.Engines[1].Addr, strconv.Itoa(port))
	for _, a := range []string{ingressAddr, directAddr} {
		waitUntil(b, "the sink at "+a, 20*time.Second, func() bool { _, err := sinkOnce(a, 1); return err == nil })
	}
	return ingressAddr, directAddr
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
// through the front door (which dials the host for each connection) and
// straight to the host's published port, alternately, so that both see the
// same load on the machine. Reports p50/p99 of each and the p50 difference.
func BenchmarkIngressConnect(b *testing.B) {
	ingress, direct := benchSink(b, 18301)
	var viaIngress, viaDirect latencies
	b.ResetTimer()
	for range b.N {
		for _, k := range []struct {
			addr string
			into *latencies
		}{{ingress, &viaIngress}, {direct, &viaDirect}} {
			d, err := sinkOnce(k.addr, 1)
			if err != nil {
				b.Fatal(err)
			}
			*k.into = append(*k.into, d)
		}
	}
	b.StopTimer()
	pi, qi := percentiles(viaIngress)
	pd, qd := percentiles(viaDirect)
	b.ReportMetric(float64(pi)/1e6, "ingress-p50-ms")
	b.ReportMetric(float64(qi)/1e6, "ingress-p99-ms")
	b.ReportMetric(float64(pd)/1e6, "direct-p50-ms")
	b.ReportMetric(float64(qd)/1e6, "direct-p99-ms")
	b.ReportMetric(float64(pi-pd)/1e6, "added-p50-ms")
}

func percentiles(l latencies) (p50, p99 time.Duration) {
	s := slices.Clone(l)
	slices.Sort(s)
	return s[len(s)*50/100], s[min(len(s)-1, len(s)*99/100)]
}

// BenchmarkIngressThroughput: 200 MB sent to the container's port through
// the front door and straight to the host, alternately, at most 5 streams
// each whatever -benchtime says.
func BenchmarkIngressThroughput(b *testing.B) {
	ingress, direct := benchSink(b, 18302)
	const size = 200 << 20
	runs := min(b.N, 5)
	var viaIngress, viaDirect time.Duration
	b.ResetTimer()
	for range runs {
		for _, k := range []struct {
			addr  string
			spent *time.Duration
		}{{ingress, &viaIngress}, {direct, &viaDirect}} {
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
	b.ReportMetric(float64(runs), "streams")
}
