package provision

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/clocker/clocker/hosts"
)

// sshLab is a "remote machine" for the ssh provisioner's test: a network
// namespace of the test's own on a bridge of its own (a free 10.215.X.0/24),
// with an sshd on port 22 of its address. It shares this machine's
// filesystem, so the engine the driver starts there runs beside this
// machine's own engine.
type sshLab struct {
	t          *testing.T
	id         string
	ns, br, vt string // namespace, bridge, outer veth
	prefix     string // 10.215.X
	addr       string // prefix.1, the namespace's address
	dir        string // sshd's files
	hostKey    ssh.PublicKey
	log        *lockedBuffer // sshd's, written by the process, read by the test
}

func newSSHLab(t *testing.T) *sshLab {
	t.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(b)
	l := &sshLab{t: t, id: id, ns: "clkssh" + id, br: "clksshb" + id, vt: "clksshv" + id, dir: t.TempDir(), log: &lockedBuffer{}}
	sshSweep(t)
	// Who owns the lab, for the sweep of a later run if this one is
	// killed before its cleanups run.
	if err := os.MkdirAll(sshLabRuns, 0o755); err != nil {
		t.Fatal(err)
	}
	owner := filepath.Join(sshLabRuns, id)
	if err := os.WriteFile(owner, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Remove(owner)
		os.Remove(sshLabRuns) // when no other lab is left
	})

	// The subnet is chosen and taken (the bridge holds it) under the lock
	// fleet.sh allocates its subnets under, so that neither two runs of
	// this test nor a test fleet starting meanwhile pick the same one.
	if err := os.MkdirAll("/run/lock/testfleet", 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile("/run/lock/testfleet/alloc.lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	l.prefix = sshFreeSubnet(t)
	l.addr = l.prefix + ".1"
	t.Cleanup(func() { sshRun(t, "ip", "link", "del", l.br) })
	sshMust(t, "ip", "link", "add", l.br, "type", "bridge")
	sshMust(t, "ip", "addr", "add", l.prefix+".254/24", "dev", l.br)
	sshMust(t, "ip", "link", "set", l.br, "up")
	lock.Close() // releases the lock

	t.Cleanup(func() { sshRemoveNetns(t, l.ns) })
	sshMust(t, "ip", "netns", "add", l.ns)
	sshMust(t, "ip", "link", "add", l.vt, "type", "veth", "peer", "name", "eth0", "netns", l.ns)
	sshMust(t, "ip", "link", "set", l.vt, "master", l.br, "up")
	sshMust(t, "ip", "-n", l.ns, "link", "set", "lo", "up")
	sshMust(t, "ip", "-n", l.ns, "addr", "add", l.addr+"/24", "dev", "eth0")
	sshMust(t, "ip", "-n", l.ns, "link", "set", "eth0", "up")
	sshMust(t, "ip", "-n", l.ns, "route", "add", "default", "via", l.prefix+".254")

	l.startSSHD()
	return l
}

// sshFreeSubnet picks a 10.215.X (/24; 10.216.X and up when test fleets
// claimed all of 10.215 for their engines' docker0 networks) that overlaps
// nothing the root namespace routes or holds, nor what test fleets claimed.
func sshFreeSubnet(t *testing.T) string {
	t.Helper()
	var used []*net.IPNet
	cidr := regexp.MustCompile(`\b\d+\.\d+\.\d+\.\d+(/\d+)?\b`)
	for _, args := range [][]string{{"-4", "-o", "route", "show", "table", "all"}, {"-4", "-o", "addr", "show"}} {
		out, err := exec.Command("ip", args...).Output()
		if err != nil {
			t.Fatalf("ip %v: %v", args, err)
		}
		for _, m := range cidr.FindAllString(string(out), -1) {
			used = append(used, sshParseNet(m))
		}
	}
	claims, _ := filepath.Glob("/run/*/fleet.env")
	for _, f := range claims {
		b, _ := os.ReadFile(f)
		for _, m := range cidr.FindAllString(string(b), -1) {
			used = append(used, sshParseNet(m))
		}
	}
	start := os.Getpid() % 200
	for b := 215; b <= 250; b++ {
		for i := range 250 {
			x := (start+i)%250 + 1
			cand := sshParseNet(fmt.Sprintf("10.%d.%d.0/24", b, x))
			if !slices.ContainsFunc(used, func(u *net.IPNet) bool {
				return u != nil && !u.IP.IsUnspecified() && (u.Contains(cand.IP) || cand.Contains(u.IP))
			}) {
				return fmt.Sprintf("10.%d.%d", b, x)
			}
		}
	}
	t.Fatal("no free 10.215-250.X.0/24")
	return ""
}

func sshParseNet(s string) *net.IPNet {
	if !strings.Contains(s, "/") {
		s += "/32"
	}
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		return nil
	}
	return n
}

func (l *sshLab) startSSHD() {
	t := l.t
	t.Helper()
	priv, pub := sshNewHostKey(t)
	l.hostKey = pub
	block, err := ssh.MarshalPrivateKey(priv, "sshtest host")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(l.dir, "host_key")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.authorizedKeys(), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(l.dir, "sshd_config")
	conf := strings.Join([]string{
		"Port 22",
		"ListenAddress " + l.addr,
		"HostKey " + keyFile,
		"PidFile " + filepath.Join(l.dir, "sshd.pid"),
		"AuthorizedKeysFile " + l.authorizedKeys(),
		"PermitRootLogin yes",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"StrictModes no",
		"LogLevel VERBOSE",
	}, "\n") + "\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	// sshd's privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	// nsenter, not `ip netns exec` (which remounts /sys): the engine that
	// sshd's sessions start needs the machine's cgroup mounts.
	cmd := exec.Command("nsenter", "--net=/var/run/netns/"+l.ns, "/usr/sbin/sshd", "-D", "-e", "-f", cfg)
	cmd.Stdout, cmd.Stderr = l.log, l.log
	// Session children of sshd inherit its stderr; do not wait on them.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("sshd log:\n%s", string(l.log.Bytes()))
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(l.addr, "22"), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			t.Fatalf("sshd exited: %s", string(l.log.Bytes()))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd does not answer on %s:22: %v\n%s", l.addr, err, string(l.log.Bytes()))
		}
		time.Sleep(100 * time.Millisecond) // polling a condition, bounded above
	}
}

func (l *sshLab) authorizedKeys() string { return filepath.Join(l.dir, "authorized_keys") }

func (l *sshLab) authorize(pubKey string) {
	if err := os.WriteFile(l.authorizedKeys(), []byte(pubKey+"\n"), 0o600); err != nil {
		l.t.Fatal(err)
	}
}

// enginePids are the dockerd processes of the remote dir's pid file.
func (l *sshLab) enginePids(dir string) []int {
	return sshProcs("dockerd", " "+dir+"/docker.pid ")
}

func (l *sshLab) enginePid(dir string) int {
	if p := l.enginePids(dir); len(p) == 1 {
		return p[0]
	}
	return 0
}

// cleanEngine registers the removal of everything the driver made on the
// "remote": engine, containerd, containers, mounts, directories, cgroups,
// also when the test failed half-way. Registered after newSSHLab, it runs
// before the namespace and sshd go.
func (l *sshLab) cleanEngine(dir string) {
	l.t.Cleanup(func() { sshRemoveEngine(l.t, dir) })
}

// sshLabRuns holds one file per lab (named by its id) with the pid of the
// test process that made it.
const sshLabRuns = "/run/clocker-sshtest"

// sshSweep removes what labs of test processes that are gone left behind
// (a run killed by a signal or -timeout runs no cleanups). Labs of live
// processes, such as another engineer's run, are left alone.
func sshSweep(t *testing.T) {
	ents, _ := os.ReadDir(sshLabRuns)
	for _, e := range ents {
		id := e.Name()
		b, err := os.ReadFile(filepath.Join(sshLabRuns, id))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err == nil && sshAlive(pid) {
			continue
		}
		t.Logf("removing the leftovers of ssh lab %s (test process %s is gone)", id, b)
		for _, dir := range []string{"/var/lib/clocker-sshtest-" + id, "/var/lib/clocker-sshtest-" + id + "-bad"} {
			sshRemoveEngine(t, dir)
		}
		os.Remove("/usr/local/sbin/clocker-test-dockerd-" + id) // see TestSSHProvisioner's install command
		if sshExists("/var/run/netns/clkssh" + id) {
			sshRemoveNetns(t, "clkssh"+id)
		}
		if sshExists("/sys/class/net/clksshb" + id) {
			sshRun(t, "ip", "link", "del", "clksshb"+id)
		}
		os.Remove(filepath.Join(sshLabRuns, id))
	}
}

func sshRemoveNetns(t *testing.T, ns string) {
	// Whatever still runs in the namespace (sshd, its sessions) first.
	if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	sshRun(t, "ip", "netns", "del", ns)
}

// sshRemoveEngine stops the engine of the remote dir and removes all it
// left: processes, containers (by cgroup), mounts, directories, cgroups.
func sshRemoveEngine(t *testing.T, dir string) {
	id := engineID(dir)
	execRoot := "/run/" + id
	pids := sshProcs("dockerd", " "+dir+"/docker.pid ")
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGTERM)
	}
	deadline := time.Now().Add(40 * time.Second)
	for slices.ContainsFunc(pids, sshAlive) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond) // polling a condition, bounded above
	}
	cgroups, _ := filepath.Glob("/sys/fs/cgroup/*/" + id)
	if d := "/sys/fs/cgroup/" + id; sshExists(d) {
		cgroups = append(cgroups, d)
	}
	for range 5 {
		left := slices.Concat(sshProcs("dockerd", " "+dir+"/docker.pid "), sshProcs("", execRoot+"/"), sshProcs("", dir+"/"))
		for _, cg := range cgroups {
			_ = filepath.WalkDir(cg, func(p string, _ os.DirEntry, _ error) error {
				if filepath.Base(p) == "cgroup.procs" {
					b, _ := os.ReadFile(p)
					for _, f := range strings.Fields(string(b)) {
						if pid, err := strconv.Atoi(f); err == nil {
							left = append(left, pid)
						}
					}
				}
				return nil
			})
		}
		if len(left) == 0 {
			break
		}
		for _, p := range left {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		end := time.Now().Add(5 * time.Second)
		for slices.ContainsFunc(left, sshAlive) && time.Now().Before(end) {
			time.Sleep(100 * time.Millisecond) // polling a condition, bounded above
		}
	}
	for _, base := range []string{execRoot, dir} {
		sshUnmountUnder(t, base)
		if err := os.RemoveAll(base); err != nil {
			t.Errorf("removing %s: %v", base, err)
		}
	}
	for _, cg := range cgroups {
		var dirs []string
		_ = filepath.WalkDir(cg, func(p string, d os.DirEntry, _ error) error {
			if d != nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		slices.Reverse(dirs) // deepest first
		for _, d := range dirs {
			_ = syscall.Rmdir(d)
		}
	}
}

// sshUnmountUnder unmounts every mount at or below base, deepest first
// (lazily if busy).
func sshUnmountUnder(t *testing.T, base string) {
	for range 3 {
		f, err := os.Open("/proc/self/mountinfo")
		if err != nil {
			return
		}
		var mounts []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 5 {
				continue
			}
			m := strings.ReplaceAll(fs[4], `\040`, " ")
			if m == base || strings.HasPrefix(m, base+"/") {
				mounts = append(mounts, m)
			}
		}
		f.Close()
		if len(mounts) == 0 {
			return
		}
		slices.SortFunc(mounts, func(a, b string) int { return len(b) - len(a) })
		for _, m := range mounts {
			if err := syscall.Unmount(m, 0); err != nil {
				if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
					t.Logf("unmount %s: %v", m, err)
				}
			}
		}
	}
}

// sshProcs are the processes named comm (any, if empty) whose command line
// contains s.
func sshProcs(comm, s string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if comm != "" {
			c, err := os.ReadFile("/proc/" + e.Name() + "/comm")
			if err != nil || strings.TrimSpace(string(c)) != comm {
				continue
			}
		}
		cl, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(cl) == 0 {
			continue
		}
		if strings.Contains(" "+string(bytes.ReplaceAll(cl, []byte{0}, []byte{' '})), s) && sshAlive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// sshAlive: the process exists and is not a zombie.
func sshAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z'
}

func sshKill(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

func sshExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func sshWaitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond) // polling a condition, bounded above
	}
}

func sshNewHostKey(t *testing.T) (ed25519.PrivateKey, ssh.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return priv, sp
}

func sshMust(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func sshRun(t *testing.T, name string, args ...string) {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Logf("cleanup: %s %s: %v %s", name, strings.Join(args, " "), err, out)
	}
}

// sshDocker is the docker CLI talking to the machine's engine over TLS.
func sshDocker(rec hosts.Record, args ...string) *exec.Cmd {
	return exec.Command("docker", append([]string{
		"--tlsverify", "--tlscacert", rec.TLS.CACert, "--tlscert", rec.TLS.Cert, "--tlskey", rec.TLS.Key,
		"-H", rec.URL}, args...)...)
}

// sshLoadBusybox puts busybox:latest on the engine: from this machine's
// engine when it has it (nothing can be pulled), else made from Debian's
// busybox-static as ENVIRONMENT.md describes.
func sshLoadBusybox(t *testing.T, rec hosts.Record) {
	t.Helper()
	var src, dst *exec.Cmd
	machine := "unix:///var/run/docker.sock" // not DOCKER_HOST: it may name Clocker
	if exec.Command("docker", "-H", machine, "image", "inspect", "busybox:latest").Run() == nil {
		t.Log("busybox:latest: docker save from this machine's engine, load into the new one")
		src, dst = exec.Command("docker", "-H", machine, "save", "busybox:latest"), sshDocker(rec, "load", "-q")
	} else {
		t.Log("busybox:latest: made from busybox-static (this machine's engine has none)")
		root := sshBusyboxRoot(t)
		src = exec.Command("tar", "--numeric-owner", "-C", root, "-c", ".")
		dst = sshDocker(rec, "import", "-c", `CMD ["sh"]`, "-", "busybox:latest")
	}
	pipe, err := src.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var srcErr, dstOut bytes.Buffer
	src.Stderr = &srcErr
	dst.Stdin, dst.Stdout, dst.Stderr = pipe, &dstOut, &dstOut
	if err := src.Start(); err != nil {
		t.Fatal(err)
	}
	dstErr := dst.Run()
	if err := src.Wait(); err != nil {
		t.Fatalf("%v: %v\n%s", src.Args, err, srcErr.String())
	}
	if dstErr != nil {
		t.Fatalf("%v: %v\n%s", dst.Args, dstErr, dstOut.String())
	}
}

func sshBusyboxRoot(t *testing.T) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox: %v (apt-get install busybox-static)", err)
	}
	root := t.TempDir()
	for _, d := range []string{"bin", "etc", "tmp", "root"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_ = os.Chmod(filepath.Join(root, "tmp"), 0o1777)
	b, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range strings.Fields(string(list)) {
		if a != "busybox" {
			if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil && !errors.Is(err, os.ErrExist) {
				t.Fatal(err)
			}
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for p, c := range files {
		if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func sshTestLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(sshTestWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type sshTestWriter struct{ t *testing.T }

func (w sshTestWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
