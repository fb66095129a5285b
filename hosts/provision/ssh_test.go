package provision

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
)

func TestSSHParseTarget(t *testing.T) {
	tests := []struct {
		name, raw string
		want      sshTarget
		err       bool
	}{
		{name: "address", raw: "10.0.0.1", want: sshTarget{"root", "10.0.0.1", 22}},
		{name: "user and port", raw: "ops@h1.example.com:2222", want: sshTarget{"ops", "h1.example.com", 2222}},
		{name: "ipv6", raw: "[fd00::1]:22", want: sshTarget{"root", "fd00::1", 22}},
		{name: "bare ipv6", raw: "fd00::1", want: sshTarget{"root", "fd00::1", 22}},
		{name: "empty", raw: "", err: true},
		{name: "no address", raw: "root@", err: true},
		{name: "bad port", raw: "h:0", err: true},
		{name: "port not a number", raw: "h:ssh", err: true},
		{name: "shell characters", raw: "h;rm -rf /", err: true},
		{name: "bad user", raw: "a b@h", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTarget(tt.raw, "root")
			if tt.err {
				if !errors.Is(err, errdefs.ErrInvalid) {
					t.Fatalf("parseTarget(%q) = %v, %v; want ErrInvalid", tt.raw, got, err)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.raw)) {
					t.Errorf("error %q does not name the target", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseTarget(%q) = %v, %v; want %v", tt.raw, got, err, tt.want)
			}
		})
	}
}

func TestSSHOptions(t *testing.T) {
	tests := []struct {
		name string
		opts map[string]string
	}{
		{name: "unknown key", opts: map[string]string{"subnet": "10.0.0.0/24"}},
		{name: "bad port", opts: map[string]string{"port": "99999"}},
		{name: "relative dir", opts: map[string]string{"dir": "engine"}},
		{name: "dir with a space", opts: map[string]string{"dir": "/var/lib/a b"}},
		{name: "missing identity", opts: map[string]string{"identity": "/nonexistent/key"}},
		{name: "bad user", opts: map[string]string{"user": "a;b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New("ssh", Config{DataDir: t.TempDir(), Options: tt.opts})
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("New(ssh, %v) = %v; want ErrInvalid", tt.opts, err)
			}
		})
	}
	// The default identity is made once and kept.
	dir := t.TempDir()
	p1, err := New("ssh", Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := New("ssh", Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := p1.(*SSH).PublicKey(), p2.(*SSH).PublicKey()
	if k1 != k2 || !strings.HasPrefix(k1, "ssh-ed25519 ") {
		t.Fatalf("identity not kept: %q then %q", k1, k2)
	}
	st, err := os.Stat(filepath.Join(dir, "ssh", "id_ed25519"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key: %v, %v", st, err)
	}
}

// The engine's command line keeps it apart from another engine of the
// machine and carries the labels.
func TestSSHEngineScript(t *testing.T) {
	st := sshState{Dir: sshDefaultDir, ExecRoot: "/run/" + engineID(sshDefaultDir), Port: 2376, Labels: map[string]string{"zone": "z1", "b": "it's"}}
	s := st.engineScript("h1")
	for _, want := range []string{
		"'--data-root' '/var/lib/clocker-engine/data'",
		"'--exec-root' '/run/clocker-engine'",
		"'--pidfile' '/var/lib/clocker-engine/docker.pid'",
		"'-H' 'unix:///var/lib/clocker-engine/docker.sock'",
		"'-H' 'tcp://0.0.0.0:2376' '--tlsverify'",
		"'--config-file' '/var/lib/clocker-engine/daemon.json'",
		"'--containerd-namespace' 'clocker-engine' '--containerd-plugins-namespace' 'clocker-engine-plugins'",
		"'--cgroup-parent' '/clocker-engine'",
		"'--label' 'io.clocker.provisioner=ssh' '--label' 'b=it'\\''s' '--label' 'zone=z1'",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("engine.sh lacks %s:\n%s", want, s)
		}
	}
	if a, b := engineID("/srv/a"), engineID("/srv/b"); a == b || len("/run/"+a) > 24 {
		t.Errorf("engine IDs %q, %q: want distinct and short", a, b)
	}
}

// TestSSHProvisioner makes a host of a machine reached over SSH: an sshd
// in a network namespace of the test's own (the "remote" shares this
// machine's filesystem and so coexists with its engine), then Adopt,
// Destroy and the errors.
func TestSSHProvisioner(t *testing.T) {
	if os.Getenv("CLOCKER_E2E") != "1" {
		t.Skip("CLOCKER_E2E=1 not set")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, c := range []string{"/usr/sbin/sshd", "ip", "nsenter", "docker", "dockerd"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Fatalf("%s: %v (run .ci/setup: it installs openssh-server)", c, err)
		}
	}
	lab := newSSHLab(t)
	remoteDir := "/var/lib/clocker-sshtest-" + lab.id
	lab.cleanEngine(remoteDir) // after the lab's own cleanups: t.Cleanup runs it before them

	// The install path is taken for a dockerd of another name that the
	// install command provides (a link to the real one), so the machine's
	// Docker stays as it is.
	fakeDockerd := "clocker-test-dockerd-" + lab.id
	t.Cleanup(func() { os.Remove("/usr/local/sbin/" + fakeDockerd) })
	installMark := filepath.Join(t.TempDir(), "installed")
	install := fmt.Sprintf(`touch %s && mkdir -p /usr/local/sbin && ln -sf "$(command -v dockerd)" /usr/local/sbin/%s`, installMark, fakeDockerd)

	dataDir := t.TempDir()
	p, err := New("ssh", Config{DataDir: dataDir, Options: map[string]string{"dir": remoteDir, "install": install}, Log: sshTestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	drv := p.(*SSH)
	drv.dockerd = fakeDockerd
	lab.authorize(drv.PublicKey())
	target := "root@" + lab.addr

	t.Run("unreachable", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// An address of the test's subnet that nothing holds.
		nowhere := lab.prefix + ".77"
		start := time.Now()
		_, err := drv.Create(ctx, Request{Name: "nowhere", Target: nowhere})
		if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), nowhere) {
			t.Fatalf("Create(%s) = %v; want ErrUnavailable naming it", nowhere, err)
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("took %s to report an unreachable target", d)
		}
		t.Logf("unreachable: %v (%s)", err, time.Since(start).Round(time.Millisecond))
	})
	t.Run("bad target", func(t *testing.T) {
		_, err := drv.Create(context.Background(), Request{Name: "bad", Target: "root@"})
		if !errors.Is(err, errdefs.ErrInvalid) {
			t.Fatalf("Create(root@) = %v; want ErrInvalid", err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		other, err := New("ssh", Config{DataDir: t.TempDir(), Options: map[string]string{"dir": remoteDir}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err = other.Create(ctx, Request{Name: "wrongkey", Target: target})
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), lab.addr) {
			t.Fatalf("Create with an unauthorised key = %v; want ErrInvalid, permission denied, naming the target", err)
		}
		t.Logf("wrong key: %v", err)
	})
	t.Run("host key changed", func(t *testing.T) {
		// A known_hosts file that recorded another key for the address.
		kh := filepath.Join(t.TempDir(), "known_hosts")
		_, other := sshNewHostKey(t)
		if err := os.WriteFile(kh, []byte(lab.addr+" "+string(ssh.MarshalAuthorizedKey(other))), 0o600); err != nil {
			t.Fatal(err)
		}
		d, err := New("ssh", Config{DataDir: dataDir, Options: map[string]string{"dir": remoteDir, "known-hosts": kh}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err = d.Create(ctx, Request{Name: "mitm", Target: target})
		if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "host key changed") {
			t.Fatalf("Create with a changed host key = %v; want ErrConflict", err)
		}
		if _, err := os.Stat(remoteDir); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the remote dir was made despite the refused host key: %v", err)
		}
	})
	t.Run("install fails", func(t *testing.T) {
		for _, tc := range []struct{ name, install, want string }{
			{"command fails", "echo apt says no >&2; exit 100", "apt says no"},
			{"no dockerd after it", "true", "still not on the PATH"},
			{"no install command", "", "install option is empty"},
		} {
			d, err := New("ssh", Config{DataDir: dataDir, Options: map[string]string{"dir": remoteDir, "install": tc.install}})
			if err != nil {
				t.Fatal(err)
			}
			d.(*SSH).dockerd = "clocker-no-such-dockerd"
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, err = d.Create(ctx, Request{Name: "noinstall", Target: target})
			cancel()
			if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), lab.addr) {
				t.Errorf("%s: Create = %v; want ErrUnavailable with %q naming the target", tc.name, err, tc.want)
			}
		}
		if _, err := os.Stat(remoteDir); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the remote dir was made although Docker could not be installed: %v", err)
		}
	})
	t.Run("engine fails to start", func(t *testing.T) {
		// Port 22 is sshd's: dockerd cannot listen there and exits.
		badDir := remoteDir + "-bad"
		lab.cleanEngine(badDir)
		d, err := New("ssh", Config{DataDir: dataDir, Options: map[string]string{"dir": badDir, "port": "22"}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		start := time.Now()
		_, err = d.Create(ctx, Request{Name: "badport", Target: target})
		if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "dockerd.log") || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("Create of an engine that cannot listen = %v; want ErrUnavailable with the log's tail", err)
		}
		t.Logf("engine failing to start reported in %s: %v", time.Since(start).Round(time.Millisecond), err)
		if got := lab.enginePids(badDir); len(got) != 0 {
			t.Fatalf("engines left running: %v", got)
		}
	})
	if t.Failed() {
		return
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	m, err := drv.Create(ctx, Request{Name: "sshhost1", Target: target, Labels: map[string]string{"zone": "z9"}})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Logf("Create took %s", time.Since(start).Round(time.Millisecond))
	if _, err := os.Stat(installMark); err != nil {
		t.Errorf("the install command did not run: %v", err)
	}

	var st sshState
	if err := json.Unmarshal(m.State, &st); err != nil {
		t.Fatal(err)
	}
	wantURL := "tcp://" + lab.addr + ":2376"
	if m.Name != "sshhost1" || m.Provisioner != "ssh" || m.Record.URL != wantURL || m.Record.Provisioner != "ssh" || m.Record.TLS.IsZero() {
		t.Fatalf("machine = %+v; want sshhost1 at %s with TLS", m, wantURL)
	}
	if st.HostKey != ssh.FingerprintSHA256(lab.hostKey) || st.Dir != remoteDir || st.Target != target+":22" {
		t.Fatalf("state = %+v; want host key %s", st, ssh.FingerprintSHA256(lab.hostKey))
	}
	if kh, err := os.ReadFile(filepath.Join(dataDir, "ssh", "known_hosts")); err != nil || !strings.Contains(string(kh), lab.addr+" ssh-ed25519 ") {
		t.Fatalf("known_hosts = %q, %v; want the host key recorded", kh, err)
	}
	if fi, err := os.Stat(remoteDir + "/tls/server-key.pem"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("remote server key: %v, %v; want mode 0600", fi, err)
	}

	info := sshEngineInfo(t, m.Record)
	if !sshHasLabel(info.Labels, "io.clocker.provisioner=ssh") || !sshHasLabel(info.Labels, "zone=z9") {
		t.Errorf("engine labels %v; want io.clocker.provisioner=ssh and zone=z9", info.Labels)
	}
	if !strings.HasPrefix(info.DockerRootDir, remoteDir) {
		t.Errorf("engine data root %s; want under %s", info.DockerRootDir, remoteDir)
	}
	t.Run("TLS required", func(t *testing.T) {
		// The engine refuses plain HTTP and TLS without a client certificate.
		c := &http.Client{Timeout: 10 * time.Second}
		if resp, err := c.Get("http://" + lab.addr + ":2376/_ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Fatal("plain HTTP _ping answered 200")
			}
		}
		caPEM, err := os.ReadFile(m.Record.TLS.CACert)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		c.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
		if resp, err := c.Get("https://" + lab.addr + ":2376/_ping"); err == nil {
			resp.Body.Close()
			t.Fatalf("_ping without a client certificate: %s; want refused", resp.Status)
		}
	})
	t.Run("runs busybox", func(t *testing.T) {
		sshLoadBusybox(t, m.Record)
		out, err := sshDocker(m.Record, "run", "--rm", "busybox:latest", "echo", "hello from ssh").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "hello from ssh" {
			t.Fatalf("docker run: %v\n%s", err, out)
		}
	})

	pid := lab.enginePid(remoteDir)
	if pid == 0 {
		t.Fatal("no engine pid")
	}
	t.Run("dir in use", func(t *testing.T) {
		// This driver knows the machine is a host already.
		_, err := drv.Create(ctx, Request{Name: "sshhost2", Target: target})
		if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "already a host") {
			t.Fatalf("second Create on the same machine = %v; want ErrConflict", err)
		}
		// Another manager's driver finds the engine running in the dir.
		other, err := New("ssh", Config{DataDir: t.TempDir(), Options: map[string]string{"dir": remoteDir}})
		if err != nil {
			t.Fatal(err)
		}
		lab.authorize(other.(*SSH).PublicKey())
		_, err = other.Create(ctx, Request{Name: "sshhost2", Target: target})
		lab.authorize(drv.PublicKey())
		if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), remoteDir) {
			t.Fatalf("Create on a machine whose dir has an engine = %v; want ErrConflict", err)
		}
		if got := lab.enginePids(remoteDir); len(got) != 1 || got[0] != pid {
			t.Fatalf("engines after a refused Create: %v; want only %d", got, pid)
		}
		if _, err := os.Stat(filepath.Join(dataDir, "pki", "machines", "sshhost2")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a refused Create left its server certificate: %v", err)
		}
	})
	t.Run("adopt with another host key", func(t *testing.T) {
		var other sshState
		_ = json.Unmarshal(m.State, &other)
		other.HostKey = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		m2 := m
		m2.State, _ = json.Marshal(other)
		_, err := drv.Adopt(ctx, m2)
		if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "host key changed") {
			t.Fatalf("Adopt with another recorded host key = %v; want ErrConflict", err)
		}
	})
	t.Run("adopt running", func(t *testing.T) {
		if _, err := drv.Adopt(ctx, m); err != nil {
			t.Fatal(err)
		}
		if got := lab.enginePids(remoteDir); len(got) != 1 || got[0] != pid {
			t.Fatalf("engines after Adopt of a running one: %v; want only %d", got, pid)
		}
	})
	t.Run("adopt after kill", func(t *testing.T) {
		if err := sshKill(pid); err != nil {
			t.Fatal(err)
		}
		sshWaitFor(t, 30*time.Second, "the killed dockerd to be gone", func() bool { return !sshAlive(pid) })
		start := time.Now()
		if _, err := drv.Adopt(ctx, m); err != nil {
			t.Fatal(err)
		}
		t.Logf("Adopt restarted the engine in %s", time.Since(start).Round(time.Millisecond))
		got := lab.enginePids(remoteDir)
		if len(got) != 1 || got[0] == pid {
			t.Fatalf("engines after Adopt: %v; want one new one (old %d)", got, pid)
		}
		sshEngineInfo(t, m.Record)
		if _, err := drv.Adopt(ctx, m); err != nil {
			t.Fatal(err)
		}
		if again := lab.enginePids(remoteDir); len(again) != 1 || again[0] != got[0] {
			t.Fatalf("engines after a second Adopt: %v; want %v", again, got)
		}
	})
	t.Run("destroy", func(t *testing.T) {
		if err := drv.Destroy(ctx, m); err != nil {
			t.Fatal(err)
		}
		if got := lab.enginePids(remoteDir); len(got) != 0 {
			t.Fatalf("engines after Destroy: %v", got)
		}
		if err := drv.Destroy(ctx, m); err != nil {
			t.Fatalf("second Destroy: %v", err)
		}
		if _, err := os.Stat(remoteDir + "/data"); err != nil {
			t.Fatalf("Destroy removed the data dir: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dataDir, "pki", "machines", "sshhost1")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Destroy left the machine's server certificate: %v", err)
		}
		if _, err := os.Stat(m.Record.TLS.Cert); err != nil {
			t.Errorf("Destroy removed the fleet's client certificate: %v", err)
		}
	})
}

type sshEngineFacts struct {
	Name, DockerRootDir string
	Labels              []string
}

// engineInfo asks the engine for /info over TLS with the machine's record,
// as the fleet does.
func sshEngineInfo(t *testing.T, rec hosts.Record) sshEngineFacts {
	t.Helper()
	ep, err := hosts.ParseEndpoint(rec.URL)
	if err != nil {
		t.Fatal(err)
	}
	if ep, err = ep.WithTLS(rec.TLS); err != nil {
		t.Fatal(err)
	}
	tr := ep.Transport()
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get(ep.Base.String() + "/info")
	if err != nil {
		t.Fatalf("GET %s/info over TLS: %v", rec.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /info: %s %s", resp.Status, b)
	}
	var f sshEngineFacts
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

func sshHasLabel(labels []string, l string) bool {
	for _, x := range labels {
		if x == l {
			return true
		}
	}
	return false
}
