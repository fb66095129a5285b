package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/clocker/clocker/internal/errdefs"
)

// requireRoot skips tests that make namespaces and engines unless the
// end-to-end tests are asked for, as root.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Getenv("CLOCKER_E2E") != "1" || os.Geteuid() != 0 {
		t.Skip("needs root and CLOCKER_E2E=1 (real engines)")
	}
}

// freeSubnet finds a /24 no route of this machine overlaps.
func freeSubnet(t testing.TB) netip.Prefix {
	t.Helper()
	for x := 0; x < 256; x++ {
		p := netip.MustParsePrefix("10.219." + strconv.Itoa(x) + ".0/24")
		l := &Local{subnet: p}
		if l.checkSubnetFree() == nil {
			return p
		}
	}
	t.Fatal("no free subnet in 10.219.0.0/16")
	return netip.Prefix{}
}

func newTestLocal(t testing.TB) *Local {
	t.Helper()
	bridge := "clkt" + strconv.Itoa(os.Getpid()%100000)
	p, err := New("local", Config{DataDir: t.TempDir(), Options: map[string]string{
		"subnet": freeSubnet(t).String(), "bridge": bridge, "run-dir": "/run/clkt-" + strconv.Itoa(os.Getpid())}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if br, err := netlink.LinkByName(bridge); err == nil {
			_ = netlink.LinkDel(br)
		}
		_ = exec.Command("iptables", "-w", "-D", "FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT", "-m", "comment", "--comment", "clocker-local").Run()
		_ = os.RemoveAll("/run/clkt-" + strconv.Itoa(os.Getpid()))
	})
	return p.(*Local)
}

func pingEngine(ctx context.Context, m Machine) error {
	e, err := engineAt(m.Record.URL)
	if err != nil {
		return err
	}
	resp, err := e.do(ctx, http.MethodGet, "/_ping", nil, nil)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

func TestLocalCreateAdoptDestroy(t *testing.T) {
	requireRoot(t)
	l := newTestLocal(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	m, err := l.Create(ctx, Request{Name: "lt1", Labels: map[string]string{"zone": "z1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("created in %s: %s", time.Since(start).Round(time.Millisecond), m.Record.URL)
	destroyed := false
	t.Cleanup(func() {
		if !destroyed {
			_ = l.Destroy(context.Background(), m)
		}
	})
	if err := pingEngine(ctx, m); err != nil {
		t.Fatalf("engine over TCP: %v", err)
	}
	var st localState
	_ = json.Unmarshal(m.State, &st)
	pid := l.enginePID("lt1")
	if pid == 0 {
		t.Fatal("no engine pid")
	}

	// Adopting a running machine starts nothing.
	if _, err := l.Adopt(ctx, m); err != nil || l.enginePID("lt1") != pid {
		t.Fatalf("adopt while running: %v, pid %d → %d", err, pid, l.enginePID("lt1"))
	}
	// The engine dies: adopting starts it again, once.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(pid, 10*time.Second)
	if _, err := l.Adopt(ctx, m); err != nil {
		t.Fatal(err)
	}
	if np := l.enginePID("lt1"); np == 0 || np == pid {
		t.Fatalf("adopt after a crash: pid %d", np)
	}
	if err := pingEngine(ctx, m); err != nil {
		t.Fatalf("engine after adopt: %v", err)
	}

	// A second machine takes the next address.
	if _, err := l.allocate("lt2"); err != nil {
		t.Fatal(err)
	}

	if err := l.Destroy(ctx, m); err != nil {
		t.Fatal(err)
	}
	destroyed = true
	if _, err := netlink.LinkByName(st.Veth); err == nil {
		t.Fatal("veth left after destroy")
	}
	if _, err := os.Stat("/run/netns/" + st.Netns); err == nil {
		t.Fatal("namespace left after destroy")
	}
	if err := l.Destroy(ctx, m); err != nil {
		t.Fatalf("destroy again: %v", err)
	}
}

func TestLocalBadOptions(t *testing.T) {
	for _, opts := range []map[string]string{
		{"subnet": "10.0.0.0/33"},
		{"subnet": "nonsense"},
		{"subnet": "10.0.0.0/30"},
		{"bridge": "a-very-long-bridge-name"},
		{"colour": "blue"},
	} {
		_, err := New("local", Config{DataDir: t.TempDir(), Options: opts})
		if !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%v: %v", opts, err)
		}
	}
	if _, err := New("cloud", Config{}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("unknown provisioner: %v", err)
	}
}

func TestLocalSubnetTaken(t *testing.T) {
	requireRoot(t)
	routes, _ := netlink.RouteList(nil, netlink.FAMILY_V4)
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		p, ok := netipPrefix(r.Dst)
		if !ok || p.Bits() < 16 || p.Bits() > 29 {
			continue
		}
		l := &Local{subnet: p}
		err := l.checkSubnetFree()
		if !errors.Is(err, errdefs.ErrConflict) {
			t.Fatalf("%s is routed here: %v", p, err)
		}
		return
	}
	t.Skip(fmt.Sprintf("no route to test with: %v", routes))
}

// An engine that died but is not reaped yet (a zombie child of this
// process) runs no more: Adopt must start it again. Its /proc name is
// still dockerd, which enginePID took for a running engine.
func TestEnginePIDOfZombie(t *testing.T) {
	dir := t.TempDir()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep")
	}
	bin := filepath.Join(dir, "dockerd")
	raw, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	l := &Local{runDir: dir}
	if err := os.MkdirAll(filepath.Join(dir, "z1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "z1", "docker.pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := l.enginePID("z1"); got != cmd.Process.Pid {
		t.Fatalf("running: enginePID %d, want %d", got, cmd.Process.Pid)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Not reaped (no Wait yet): a zombie.
	deadline := time.Now().Add(5 * time.Second)
	for !zombie(cmd.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatal("the killed process never became a zombie")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := l.enginePID("z1"); got != 0 {
		t.Errorf("a zombie engine: enginePID %d, want 0", got)
	}
}
