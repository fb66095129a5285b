package provision

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Through the Manager, as `clocker host add --ssh` does: a machine behind
// SSH becomes a host of the fleet reached only over TLS, holding the
// fleet's images, and leaves it again with its engine stopped.
func TestSSHManagerJoinsOverTLS(t *testing.T) {
	if os.Getenv("CLOCKER_E2E") != "1" || os.Geteuid() != 0 {
		t.Skip("needs root and CLOCKER_E2E=1")
	}
	if exec.Command("docker", "-H", "unix:///var/run/docker.sock", "image", "inspect", "busybox:latest").Run() != nil {
		t.Skip("the machine's engine has no busybox:latest (run .ci/setup)")
	}
	lab := newSSHLab(t)
	remoteDir := "/var/lib/clocker-sshmgr-" + lab.id
	lab.cleanEngine(remoteDir)
	p, err := New("ssh", Config{DataDir: t.TempDir(), Options: map[string]string{"dir": remoteDir}, Log: sshTestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	lab.authorize(p.(*SSH).PublicKey())
	r := newRig(t, t.TempDir(), newFakeDriver(t))
	r.m.Use(p)
	r.m.ImageSource = "unix:///var/run/docker.sock"
	r.m.EngineWait = 90 * time.Second

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	h, err := r.m.Provision(ctx, "ssh", Request{Target: "root@" + lab.addr, Labels: map[string]string{"zone": "z9"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ssh host provisioned in %s: %s", time.Since(start).Round(time.Millisecond), h.URL)
	if h.Name != "ssh1" || !h.Healthy() || h.Provisioner != "ssh" || !strings.HasPrefix(h.URL, "tcp://"+lab.addr+":") {
		t.Fatalf("host %s (%s) healthy %v at %s", h.Name, h.Provisioner, h.Healthy(), h.URL)
	}
	if h.TLS.CACert == "" || h.TLS.Cert == "" {
		t.Fatalf("the host is not reached over TLS: %+v", h.TLS)
	}
	if has, _ := h.HasImage("busybox:latest"); !has {
		t.Fatal("busybox was not copied from the machine's engine")
	}
	if !strings.Contains(strings.Join(h.Facts().Labels, ","), "zone=z9") {
		t.Fatalf("engine labels: %v", h.Facts().Labels)
	}
	if err := r.m.Remove(ctx, h.Name); err != nil {
		t.Fatal(err)
	}
	sshWaitFor(t, 30*time.Second, "the engine stopped", func() bool { return lab.enginePid(remoteDir) == 0 })
	if _, ok := r.fleet.Host(h.Name); ok {
		t.Fatal("host still in the fleet")
	}
}
