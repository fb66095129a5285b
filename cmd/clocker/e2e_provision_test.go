//go:build e2e

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/clocker/clocker/hosts/provision"
	"github.com/clocker/clocker/internal/store"
)

// ownServer is a clocker serve of a test's own (flags of its own),
// beside the suite's. It is stopped (SIGINT) when the test ends, and its
// log shown if the test failed.
type ownServer struct {
	t       testing.TB
	url     string
	dataDir string
	args    []string
	cmd     *exec.Cmd
	exited  chan struct{}
	log     *syncBuffer
}

// syncBuffer is a server's output, written by exec while a test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fleetEngineArgs are --engine flags for the suite's engines.
func fleetEngineArgs() []string {
	var out []string
	for _, e := range fleet.Engines {
		out = append(out, "--engine", e.TCP)
	}
	return out
}

// startOwnServer starts clocker serve with args and waits until it answers.
func startOwnServer(t testing.TB, dataDir string, args ...string) *ownServer {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &ownServer{t: t, url: fmt.Sprintf("tcp://127.0.0.1:%d", port), dataDir: dataDir, args: args}
	s.start()
	t.Cleanup(func() {
		s.stop(os.Interrupt)
		if t.Failed() {
			t.Logf("clocker %s log:\n%s", strings.Join(args, " "), tail(s.log.String(), 60))
		}
	})
	return s
}

func (s *ownServer) start() {
	s.t.Helper()
	args := append([]string{"serve", "--listen", s.url, "--data", s.dataDir, "--log-level", "debug"}, s.args...)
	cmd := exec.Command(clockerBin, args...)
	s.cmd, s.exited, s.log = cmd, make(chan struct{}), &syncBuffer{}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	exited := s.exited
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(s.httpURL("/_ping"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-exited:
			s.t.Fatalf("clocker serve exited:\n%s", tail(s.log.String(), 40))
		default:
		}
		if time.Now().After(deadline) {
			s.kill()
			s.t.Fatalf("clocker serve did not come up:\n%s", tail(s.log.String(), 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *ownServer) httpURL(path string) string {
	return "http://" + strings.TrimPrefix(s.url, "tcp://") + path
}

// stop signals the server and waits for its exit (a no-op once exited).
func (s *ownServer) stop(sig os.Signal) {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(sig)
		<-s.exited
	}
}

// kill is kill -9 of the server.
func (s *ownServer) kill() { s.stop(syscall.SIGKILL) }

// waitHealthy waits until docker info shows every engine of the suite's
// fleet healthy.
func (s *ownServer) waitHealthy() {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(s.httpURL("/info")); err == nil {
			var info struct{ SystemStatus [][2]string }
			_ = json.NewDecoder(resp.Body).Decode(&info)
			resp.Body.Close()
			healthy := 0
			for _, kv := range info.SystemStatus {
				if strings.TrimSpace(kv[0]) == "└ Status" && kv[1] == "Healthy" {
					healthy++
				}
			}
			if healthy == len(fleet.Engines) {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("clocker %v: not every host healthy:\n%s", s.args, tail(s.log.String(), 40))
}

func (s *ownServer) docker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+s.url, "DOCKER_CLI_HINTS=false")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (s *ownServer) must(args ...string) string {
	s.t.Helper()
	out, err := s.docker(args...)
	if err != nil {
		s.t.Fatalf("docker %s: %v\n%s\nserver log:\n%s", strings.Join(args, " "), err, out, tail(s.log.String(), 30))
	}
	return out
}

func (s *ownServer) host(args ...string) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, clockerBin, append([]string{"host", "--host", s.url}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err == nil
}

type e2eFleetHost struct {
	Name, Address, Provisioner, State string
	Containers                        int
}

func (s *ownServer) hosts() map[string]e2eFleetHost {
	s.t.Helper()
	resp, err := http.Get(s.httpURL("/v1/fleet/hosts"))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []e2eFleetHost
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		s.t.Fatal(err)
	}
	out := map[string]e2eFleetHost{}
	for _, h := range list {
		out[h.Name] = h
	}
	return out
}

// freeLocalSubnet is a /24 no route of this machine touches.
func freeLocalSubnet(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "-4", "route", "show", "table", "all").CombinedOutput()
	if err != nil {
		t.Fatalf("ip route: %v\n%s", err, out)
	}
	for x := 10; x < 250; x++ {
		p := "10.218." + strconv.Itoa(x) + "."
		if !strings.Contains(string(out), p) {
			return p + "0/24"
		}
	}
	t.Fatal("no free /24 in 10.218.0.0/16")
	return ""
}

// machineHasBusybox puts busybox:latest on the machine's engine (where
// local hosts take their first images from) when it lacks it.
func machineHasBusybox(t *testing.T) {
	t.Helper()
	if exec.Command("docker", "-H", "unix:///var/run/docker.sock", "image", "inspect", "busybox:latest").Run() == nil {
		return
	}
	save := exec.Command("docker", "-H", fleet.Engines[0].TCP, "save", "busybox:latest")
	load := exec.Command("docker", "-H", "unix:///var/run/docker.sock", "load")
	pipe, _ := save.StdoutPipe()
	load.Stdin = pipe
	if err := save.Start(); err != nil {
		t.Fatal(err)
	}
	if out, err := load.CombinedOutput(); err != nil {
		t.Fatalf("load busybox on the machine's engine: %v\n%s", err, out)
	}
	_ = save.Wait()
}

// destroyLocalMachines removes what a killed server's local provisioner
// made, from its store: nothing is left on the machine after the test.
func destroyLocalMachines(t *testing.T, dataDir string, opts map[string]string) {
	st, err := store.Open(dataDir)
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer st.Close()
	p, err := provision.New("local", provision.Config{DataDir: filepath.Join(dataDir, "provision"), Options: opts})
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	_ = st.ForEach(store.BucketMachines, func(_ string, v []byte) error {
		var m provision.Machine
		if json.Unmarshal(v, &m) == nil && m.Provisioner == "local" {
			if err := p.Destroy(context.Background(), m); err != nil {
				t.Logf("cleanup %s: %v", m.Name, err)
			}
		}
		return nil
	})
	_ = exec.Command("ip", "link", "del", opts["bridge"]).Run()
	_ = exec.Command("iptables", "-w", "-D", "FORWARD", "-i", opts["bridge"], "-o", opts["bridge"], "-j", "ACCEPT", "-m", "comment", "--comment", "clocker-local").Run()
}

// The fleet grows and heals itself with the local provisioner: one host
// and a headroom of one slot; filling it makes a second host that takes
// the next container; a host's engine dies and its reschedulable container
// comes back elsewhere (a third host made for the lost room); kill -9 and
// restart: the same hosts (re-adopted, the dead engine started again, the
// stale copy removed) and containers; drain and remove; bad input.
func TestE2ELocalProvisionerHeadroom(t *testing.T) {
	machineHasBusybox(t)
	dataDir := t.TempDir()
	opts := map[string]string{"subnet": freeLocalSubnet(t), "bridge": "clke2e"}
	args := []string{"--local-hosts", "1", "--local-subnet", opts["subnet"], "--local-bridge", opts["bridge"],
		"--max-containers-per-host", "3", "--headroom", "1", "--max-hosts", "3", "--reschedule-after", "3s",
		"--heal-after", "0"} // the dead engine is left for the restart to adopt
	s := startOwnServer(t, dataDir, args...)
	defer func() {
		s.kill()
		destroyLocalMachines(t, dataDir, opts)
	}()

	hs := s.hosts()
	if len(hs) != 1 || hs["local1"].State != "healthy" || hs["local1"].Provisioner != "local" {
		t.Fatalf("at start: %+v", hs)
	}
	// 3 slots, headroom 1: two containers leave one free, the third none.
	s.must("run", "-d", "--name", "p1", "busybox", "sleep", "600")
	s.must("run", "-d", "--name", "p2", "busybox", "sleep", "600")
	if len(s.hosts()) != 1 {
		t.Fatalf("provisioned with headroom left: %+v", s.hosts())
	}
	s.must("run", "-d", "--name", "p3", "busybox", "sleep", "600")
	full := time.Now()
	waitFor(t, 90*time.Second, "a second host", func() bool { return s.hosts()["local2"].State == "healthy" })
	s.must("run", "-d", "--name", "p4", "-e", "reschedule:on-node-failure", "busybox", "sleep", "600")
	t.Logf("headroom gone to a new local host taking containers: %s", time.Since(full).Round(100*time.Millisecond))
	if h := s.must("inspect", "-f", `{{.Node.Name}}`, "p4"); h != "local2" {
		t.Fatalf("p4 on %s, want the new host local2", h)
	}
	for _, n := range []string{"p1", "p2", "p3"} {
		if h := s.must("inspect", "-f", `{{.Node.Name}}`, n); h != "local1" {
			t.Fatalf("%s on %s", n, h)
		}
	}
	// 6 slots, 4 taken: two free, no third host yet.
	if _, ok := s.hosts()["local3"]; ok {
		t.Fatalf("a third host with headroom left: %+v", s.hosts())
	}

	// local2's engine dies: p4 comes back on a healthy host. local1 is
	// full, so the lost room makes a third host, which takes it.
	pid, err := os.ReadFile("/run/clocker-local/local2/docker.pid")
	if err != nil {
		t.Fatal(err)
	}
	enginePID, _ := strconv.Atoi(strings.TrimSpace(string(pid)))
	died := time.Now()
	if err := syscall.Kill(enginePID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var last string
	waitFor(t, 90*time.Second, "p4 running on another host", func() bool {
		out, _ := s.docker("ps", "--filter", "name=p4", "--filter", "label=io.clocker.host", "--format", `{{.Label "io.clocker.host"}} {{.State}}`)
		last = out
		f := strings.Fields(out)
		return len(f) == 2 && f[0] != "local2" && f[1] == "running"
	})
	t.Logf("host death to its container running elsewhere: %s (--reschedule-after 3s, including a new host); now %q", time.Since(died).Round(100*time.Millisecond), last)

	// kill -9 and restart: the same three hosts, local2's engine started
	// again, its stale p4 removed; one copy of each container.
	s.kill()
	s.start()
	waitFor(t, 90*time.Second, "three healthy hosts after the restart", func() bool {
		hs := s.hosts()
		return len(hs) == 3 && hs["local1"].State == "healthy" && hs["local2"].State == "healthy" && hs["local3"].State == "healthy"
	})
	waitFor(t, 30*time.Second, "one copy of each container", func() bool {
		out, _ := s.docker("ps", "-a", "--format", "{{.Names}}")
		names := strings.Fields(out)
		return len(names) == 4 && strings.Count(out, "p4") == 1
	})
	waitFor(t, 30*time.Second, "the stale p4 removed from local2", func() bool {
		out, err := exec.Command("docker", "-H", "unix:///run/clocker-local/local2/docker.sock", "ps", "-aq", "--filter", "name=p4").CombinedOutput()
		return err == nil && strings.TrimSpace(string(out)) == ""
	})
	if n := len(s.hosts()); n != 3 {
		t.Fatalf("%d hosts after the restart, want 3 (re-adopted, not made again)", n)
	}

	// Drain: nothing new there. Remove: refused while busy.
	if out, ok := s.host("drain", "local1"); !ok {
		t.Fatal(out)
	}
	s.must("run", "-d", "--name", "p5", "busybox", "sleep", "600")
	if h := s.must("inspect", "-f", `{{.Node.Name}}`, "p5"); h == "local1" {
		t.Fatal("p5 placed on a draining host")
	}
	if out, ok := s.host("drain", "--undo", "local1"); !ok {
		t.Fatal(out)
	}
	if out, ok := s.host("rm", "local3"); ok || !strings.Contains(out, "containers") {
		t.Fatalf("rm of a busy host: %v %s", ok, out)
	}
	// Bad input changes nothing.
	for _, bad := range [][]string{{"rm", "nope"}, {"add", "not-a-url"}, {"add", "tcp://127.0.0.1:1"}, {"add", "--ssh", "root@127.0.0.1:1"}} {
		if out, ok := s.host(bad...); ok {
			t.Errorf("clocker host %v succeeded: %s", bad, out)
		}
	}
	if n := len(s.hosts()); n != 3 {
		t.Fatalf("%d hosts after bad input", n)
	}
	// An empty local host is removed with its machine.
	s.must("rm", "-f", "p5")
	if h := s.hosts()["local2"]; h.Containers != 0 {
		t.Fatalf("local2 not empty: %+v", h)
	}
	// Names and namespaces need not share a number (a host made again
	// after a death takes the lowest free name, and the namespace of the
	// lowest free slot): count the namespaces instead.
	before := localNamespaces(t, "clke2e-")
	if out, ok := s.host("rm", "local2"); !ok {
		t.Fatal(out)
	}
	if after := localNamespaces(t, "clke2e-"); len(after) != len(before)-1 {
		t.Errorf("namespaces %v before rm local2, %v after: want one fewer", before, after)
	}
	s.must("rm", "-f", "p1", "p2", "p3", "p4")
}

// Scale in and out with local hosts: two hosts and no container are a
// host's worth of slots too many, so after --scale-in-after the newest
// empty one is drained and destroyed (never the last); filling the one
// left makes a host again. A host whose engine dies is healed.
func TestE2ELocalProvisionerScaleIn(t *testing.T) {
	machineHasBusybox(t)
	dataDir := t.TempDir()
	opts := map[string]string{"subnet": freeLocalSubnet(t), "bridge": "clke2es"}
	s := startOwnServer(t, dataDir, "--local-hosts", "2", "--local-subnet", opts["subnet"], "--local-bridge", opts["bridge"],
		"--max-containers-per-host", "2", "--headroom", "1", "--scale-in", "--scale-in-after", "2s", "--heal-after", "1s")
	defer func() {
		s.kill()
		destroyLocalMachines(t, dataDir, opts)
	}()
	waitFor(t, 60*time.Second, "local2 removed as idle", func() bool {
		hs := s.hosts()
		_, has2 := hs["local2"]
		return len(hs) == 1 && !has2 && hs["local1"].State == "healthy"
	})
	// The host leaves the fleet first, then its machine is destroyed.
	waitFor(t, 30*time.Second, "local2's namespace removed after scale-in", func() bool {
		_, err := os.Stat("/run/netns/clke2es-2")
		return os.IsNotExist(err)
	})
	// 2 slots, headroom 1: the second container leaves none free.
	s.must("run", "-d", "--name", "si1", "busybox", "sleep", "600")
	s.must("run", "-d", "--name", "si2", "busybox", "sleep", "600")
	waitFor(t, 90*time.Second, "a host made again", func() bool { return len(s.hosts()) == 2 })
	// Busy hosts are never scaled in, whatever the wait.
	time.Sleep(3 * time.Second) // longer than --scale-in-after: nothing may go
	if hs := s.hosts(); len(hs) != 2 || hs["local1"].Containers != 2 {
		t.Fatalf("after the wait: %+v", hs)
	}
	// local1's engine dies: it is healed, with its containers.
	pid, err := os.ReadFile("/run/clocker-local/local1/docker.pid")
	if err != nil {
		t.Fatal(err)
	}
	enginePID, _ := strconv.Atoi(strings.TrimSpace(string(pid)))
	if err := syscall.Kill(enginePID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "local1 down", func() bool { return s.hosts()["local1"].State == "unhealthy" })
	died := time.Now()
	waitFor(t, 60*time.Second, "local1 healed", func() bool { return s.hosts()["local1"].State == "healthy" })
	t.Logf("local1 healed %s after it was seen down (--heal-after 1s)", time.Since(died).Round(100*time.Millisecond))
	if out := s.must("ps", "-a", "--filter", "name=si", "--format", "{{.Names}}"); strings.Count(out, "si") != 2 {
		t.Fatalf("containers after the heal: %q", out)
	}
	s.must("rm", "-f", "si1", "si2")
}

// localNamespaces lists the network namespaces whose names start with
// prefix (the local provisioner's hosts of one bridge).
func localNamespaces(t *testing.T, prefix string) []string {
	t.Helper()
	entries, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}
