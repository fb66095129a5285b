//go:build e2e

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestE2EInfoListsEveryHost(t *testing.T) {
	out := mustDocker(t, "info")
	if !strings.Contains(out, "Nodes: 3") {
		t.Fatalf("docker info lacks 'Nodes: 3':\n%s", out)
	}
	for _, e := range fleet.Engines {
		if !strings.Contains(out, e.Name+": "+e.Addr+":2375") {
			t.Errorf("docker info does not list host %s at %s:2375", e.Name, e.Addr)
		}
	}
	if n := strings.Count(out, "Status: Healthy"); n != 3 {
		t.Errorf("%d healthy hosts in docker info, want 3:\n%s", n, out)
	}
	v := mustDocker(t, "version", "-f", "{{.Server.APIVersion}}")
	if v != "1.41" {
		t.Errorf("server API version %q, want the engines' 1.41", v)
	}
}

func TestE2ERunForegroundExitCodesAndStdin(t *testing.T) {
	if r := docker(t, nil, "run", "--rm", "busybox", "echo", "hello"); r.Code != 0 || r.Stdout != "hello\n" {
		t.Fatalf("run echo: %+v", r)
	}
	if r := docker(t, nil, "run", "--rm", "busybox", "sh", "-c", "exit 3"); r.Code != 3 {
		t.Fatalf("run exit 3: code %d, %+v", r.Code, r)
	}
	in := strings.Repeat("stdin line\n", 1000)
	if r := docker(t, strings.NewReader(in), "run", "--rm", "-i", "busybox", "cat"); r.Code != 0 || r.Stdout != in {
		t.Fatalf("run -i cat: code %d, %d bytes back of %d, stderr %q", r.Code, len(r.Stdout), len(in), r.Stderr)
	}
	// The output of a container that keeps writing after stdin ends.
	if r := docker(t, strings.NewReader("x\n"), "run", "--rm", "-i", "busybox", "sh", "-c", "cat; sleep 1; echo after"); r.Stdout != "x\nafter\n" {
		t.Fatalf("half-close: got %q", r.Stdout)
	}
	if r := docker(t, nil, "run", "--rm", "-t", "busybox", "sh", "-c", "tty"); r.Code != 0 || !strings.HasPrefix(r.Stdout, "/dev/pts/") {
		t.Fatalf("run -t: %+v", r)
	}
}

func TestE2ERunFiftyMegabytesIntact(t *testing.T) {
	// seq 1 7000000 writes about 54 MB; both sides hash it.
	cmd := exec.Command("docker", "run", "--rm", "busybox", "seq", "1", "7000000")
	cmd.Env = append(cmd.Environ(), "DOCKER_HOST="+clockerURL)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for i := 1; i <= 7000000; i++ {
		h.Write(strconv.AppendInt(nil, int64(i), 10))
		h.Write([]byte{'\n'})
	}
	want := hex.EncodeToString(h.Sum(nil))
	got := sha256.Sum256(out)
	if hex.EncodeToString(got[:]) != want || len(out) < 50_000_000 {
		t.Fatalf("output of %d bytes differs from seq's", len(out))
	}
}

func TestE2EContainersSpreadOverHosts(t *testing.T) {
	var names []string
	for i := 0; i < 6; i++ {
		names = append(names, fmt.Sprintf("spread%d", i))
	}
	cleanup(t, names...)
	hosts := map[string]int{}
	for _, n := range names {
		mustDocker(t, "run", "-d", "--name", n, "busybox", "sleep", "300")
		hosts[hostOf(t, n)]++
	}
	if len(hosts) < 2 {
		t.Fatalf("6 containers all on %v", hosts)
	}
	// The label names the engine that really runs it.
	for _, n := range names {
		h := hostOf(t, n)
		if node := mustDocker(t, "inspect", "-f", "{{.Node.Name}}", n); node != h {
			t.Errorf("%s: Node.Name %q, label %q", n, node, h)
		}
		idx := engineIndex(t, h)
		if got := engineDocker(t, idx, "ps", "-q", "--filter", "name=^/"+n+"$"); got == "" {
			t.Errorf("%s is not on engine %s", n, h)
		}
	}
}

func engineIndex(t testing.TB, name string) int {
	for i, e := range fleet.Engines {
		if e.Name == name {
			return i
		}
	}
	t.Fatalf("no engine %q", name)
	return -1
}

func TestE2EInspectByNameAndShortID(t *testing.T) {
	cleanup(t, "insp")
	id := mustDocker(t, "run", "-d", "--name", "insp", "busybox", "sleep", "300")
	if got := mustDocker(t, "inspect", "-f", "{{.Id}}", "insp"); got != id {
		t.Fatalf("inspect by name: %s, want %s", got, id)
	}
	if got := mustDocker(t, "inspect", "-f", "{{.Name}}", id[:12]); got != "/insp" {
		t.Fatalf("inspect by short ID: %s", got)
	}
	r := docker(t, nil, "inspect", "no-such-container-x")
	if r.Code == 0 || !strings.Contains(r.Stderr, "No such") {
		t.Fatalf("inspect unknown: %+v", r)
	}
}

func TestE2EPsFilters(t *testing.T) {
	cleanup(t, "fa", "fb", "fc", "fd")
	mustDocker(t, "run", "-d", "--name", "fa", "--label", "tier=web", "busybox", "sleep", "300")
	mustDocker(t, "run", "-d", "--name", "fb", "--label", "tier=db", "-v", "fbdata:/data", "busybox", "sleep", "300")
	docker(t, nil, "run", "--name", "fc", "busybox", "sh", "-c", "exit 3")
	mustDocker(t, "run", "-d", "--name", "fd", "--health-cmd", "true", "--health-interval", "1s", "busybox", "sleep", "300")
	defer docker(t, nil, "volume", "rm", "fbdata")

	names := func(args ...string) string {
		out := mustDocker(t, append([]string{"ps", "--format", "{{.Names}}"}, args...)...)
		f := strings.Fields(out)
		return strings.Join(sortStrings(filterPrefix(f, "f")), ",")
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"running only by default", nil, "fa,fb,fd"},
		{"all", []string{"-a"}, "fa,fb,fc,fd"},
		{"label key=value", []string{"--filter", "label=tier=web"}, "fa"},
		{"label key", []string{"-a", "--filter", "label=tier"}, "fa,fb"},
		{"name", []string{"-a", "--filter", "name=fc"}, "fc"},
		{"status exited", []string{"-a", "--filter", "status=exited"}, "fc"},
		{"exited code", []string{"-a", "--filter", "exited=3"}, "fc"},
		{"ancestor", []string{"--filter", "ancestor=busybox"}, "fa,fb,fd"},
		{"volume", []string{"--filter", "volume=fbdata"}, "fb"},
		{"network", []string{"--filter", "network=bridge"}, "fa,fb,fd"},
		{"since", []string{"-a", "--filter", "since=fb"}, "fc,fd"},
		{"before", []string{"-a", "--filter", "before=fb"}, "fa"},
		{"node", []string{"-a", "--filter", "node=" + hostOf(t, "fa")}, ""},
	}
	// node: whatever runs on fa's host.
	faHost := hostOf(t, "fa")
	var onHost []string
	for _, n := range []string{"fa", "fb", "fc", "fd"} {
		if hostOf(t, n) == faHost {
			onHost = append(onHost, n)
		}
	}
	tests[len(tests)-1].want = strings.Join(onHost, ",")

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := names(tt.args...); got != tt.want {
				t.Fatalf("docker ps %v: %q, want %q", tt.args, got, tt.want)
			}
		})
	}
	t.Run("health", func(t *testing.T) {
		deadline := time.Now().Add(20 * time.Second)
		for {
			got := names("--filter", "health=healthy")
			if got == "fd" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("health=healthy: %q, want fd", got)
			}
			time.Sleep(300 * time.Millisecond)
		}
	})
	t.Run("last and quiet", func(t *testing.T) {
		out := mustDocker(t, "ps", "-a", "-n", "1", "-q")
		if id := mustDocker(t, "inspect", "-f", "{{.Id}}", "fd"); !strings.HasPrefix(id, out) || out == "" {
			t.Fatalf("ps -n 1 -q: %q, want fd's ID", out)
		}
	})
	t.Run("bad filter", func(t *testing.T) {
		r := docker(t, nil, "ps", "--filter", "nonsense=1")
		if r.Code == 0 || !strings.Contains(r.Stderr, "nonsense") {
			t.Fatalf("ps with unknown filter: %+v", r)
		}
	})
}

func filterPrefix(in []string, prefix string) []string {
	var out []string
	for _, s := range in {
		if strings.HasPrefix(s, prefix) && len(s) == 2 {
			out = append(out, s)
		}
	}
	return out
}

func sortStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

func TestE2ELogs(t *testing.T) {
	cleanup(t, "logger")
	mustDocker(t, "run", "-d", "--name", "logger", "busybox", "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; sleep 0.3; done")
	// -f follows until the container exits.
	r := docker(t, nil, "logs", "-f", "logger")
	if r.Stdout != "line1\nline2\nline3\nline4\nline5\n" {
		t.Fatalf("logs -f: %q", r.Stdout)
	}
	if got := mustDocker(t, "logs", "--tail", "2", "logger"); got != "line4\nline5" {
		t.Fatalf("logs --tail 2: %q", got)
	}
	ts := mustDocker(t, "logs", "-t", "--tail", "1", "logger")
	stamp, line, _ := strings.Cut(ts, " ")
	if _, err := time.Parse(time.RFC3339Nano, stamp); err != nil || line != "line5" {
		t.Fatalf("logs -t: %q", ts)
	}
	// stderr stays stderr.
	cleanup(t, "errlogger")
	docker(t, nil, "run", "--name", "errlogger", "busybox", "sh", "-c", "echo out; echo err >&2")
	lr := docker(t, nil, "logs", "errlogger")
	if lr.Stdout != "out\n" || lr.Stderr != "err\n" {
		t.Fatalf("logs streams: stdout %q stderr %q", lr.Stdout, lr.Stderr)
	}
}

func TestE2EExec(t *testing.T) {
	cleanup(t, "execer")
	mustDocker(t, "run", "-d", "--name", "execer", "busybox", "sleep", "300")
	if got := mustDocker(t, "exec", "-e", "FOO=bar", "-w", "/tmp", "execer", "sh", "-c", "echo $FOO $(pwd)"); got != "bar /tmp" {
		t.Fatalf("exec -e -w: %q", got)
	}
	if r := docker(t, nil, "exec", "execer", "sh", "-c", "exit 5"); r.Code != 5 {
		t.Fatalf("exec exit code %d, want 5", r.Code)
	}
	in := strings.Repeat("0123456789", 10000)
	if r := docker(t, strings.NewReader(in), "exec", "-i", "execer", "cat"); r.Stdout != in {
		t.Fatalf("exec -i: %d bytes back of %d", len(r.Stdout), len(in))
	}
	if r := docker(t, nil, "exec", "no-such-container-x", "true"); r.Code == 0 || !strings.Contains(r.Stderr, "No such container") {
		t.Fatalf("exec on unknown container: %+v", r)
	}
}

func TestE2EAttachAndWait(t *testing.T) {
	cleanup(t, "attached", "waited")
	mustDocker(t, "run", "-d", "--name", "attached", "busybox", "sh", "-c", "sleep 1; echo one; sleep 0.5; echo two; exit 4")
	r := docker(t, nil, "attach", "attached")
	if r.Stdout != "one\ntwo\n" || r.Code != 4 {
		t.Fatalf("attach: %+v", r)
	}
	mustDocker(t, "run", "-d", "--name", "waited", "busybox", "sh", "-c", "sleep 1; exit 9")
	if got := mustDocker(t, "wait", "waited"); got != "9" {
		t.Fatalf("wait: %q", got)
	}
}

func TestE2ELifecycle(t *testing.T) {
	cleanup(t, "life")
	mustDocker(t, "run", "-d", "--name", "life", "busybox", "sleep", "300")
	state := func() string { return mustDocker(t, "ps", "-a", "--filter", "name=^/life$", "--format", "{{.State}}") }
	mustDocker(t, "stop", "-t", "1", "life")
	if s := state(); s != "exited" {
		t.Fatalf("after stop: %s", s)
	}
	mustDocker(t, "start", "life")
	if s := state(); s != "running" {
		t.Fatalf("after start: %s", s)
	}
	mustDocker(t, "restart", "-t", "1", "life")
	if s := state(); s != "running" {
		t.Fatalf("after restart: %s", s)
	}
	mustDocker(t, "kill", "life")
	if s := state(); s != "exited" {
		t.Fatalf("after kill: %s", s)
	}
	if code := mustDocker(t, "inspect", "-f", "{{.State.ExitCode}}", "life"); code != "137" {
		t.Fatalf("exit code after kill: %s", code)
	}
	mustDocker(t, "rm", "life")
	if s := state(); s != "" {
		t.Fatalf("after rm, ps shows %q", s)
	}
	if r := docker(t, nil, "rm", "life"); r.Code == 0 || !strings.Contains(r.Stderr, "No such container: life") {
		t.Fatalf("rm twice: %+v", r)
	}
}

func TestE2EConcurrentCreatesOfOneName(t *testing.T) {
	cleanup(t, "same")
	const n = 20
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = docker(t, nil, "run", "-d", "--name", "same", "busybox", "sleep", "300")
		}(i)
	}
	wg.Wait()
	ok := 0
	for _, r := range results {
		switch {
		case r.Code == 0:
			ok++
		case !strings.Contains(r.Stderr, `Conflict. The container name "/same" is already in use`):
			t.Errorf("a losing create said: %q", r.Stderr)
		}
	}
	if ok != 1 {
		t.Fatalf("%d creates of one name succeeded, want 1", ok)
	}
	count := 0
	for i := range fleet.Engines {
		if engineDocker(t, i, "ps", "-aq", "--filter", "name=^/same$") != "" {
			count++
		}
	}
	if count != 1 {
		t.Fatalf("'same' exists on %d engines", count)
	}
}

func TestE2EPlacementFollowsWhatAContainerNeeds(t *testing.T) {
	// A volume made on the third engine pulls its users there.
	last := len(fleet.Engines) - 1
	engineDocker(t, last, "volume", "create", "pinvol")
	t.Cleanup(func() { docker(t, nil, "rm", "-f", "volu"); engineDocker(t, last, "volume", "rm", "-f", "pinvol") })
	mustDocker(t, "run", "-d", "--name", "volu", "-v", "pinvol:/data", "busybox", "sleep", "300")
	if h := hostOf(t, "volu"); h != fleet.Engines[last].Name {
		t.Fatalf("container with volume on %s, want %s", h, fleet.Engines[last].Name)
	}
	// --volumes-from, --link and --network container: follow their container.
	cleanup(t, "vfrom", "linker", "netshare")
	mustDocker(t, "run", "-d", "--name", "vfrom", "--volumes-from", "volu", "busybox", "sleep", "300")
	mustDocker(t, "run", "-d", "--name", "linker", "--link", "volu:v", "busybox", "sleep", "300")
	mustDocker(t, "run", "-d", "--name", "netshare", "--network", "container:volu", "busybox", "sleep", "300")
	for _, n := range []string{"vfrom", "linker", "netshare"} {
		if h := hostOf(t, n); h != fleet.Engines[last].Name {
			t.Errorf("%s on %s, want %s", n, h, fleet.Engines[last].Name)
		}
	}
	// A user network lives on one host until fleet networks arrive.
	engineDocker(t, 1, "network", "create", "pinnet")
	t.Cleanup(func() { docker(t, nil, "rm", "-f", "netuser"); engineDocker(t, 1, "network", "rm", "pinnet") })
	mustDocker(t, "run", "-d", "--name", "netuser", "--network", "pinnet", "busybox", "sleep", "300")
	if h := hostOf(t, "netuser"); h != fleet.Engines[1].Name {
		t.Fatalf("container on network pinnet placed on %s, want %s", h, fleet.Engines[1].Name)
	}
	// Needs on two hosts cannot be met.
	r := docker(t, nil, "run", "-d", "--name", "torn", "--network", "pinnet", "-v", "pinvol:/data", "busybox", "true")
	if r.Code == 0 || !strings.Contains(r.Stderr, "no host fits") {
		t.Fatalf("torn placement: %+v", r)
	}
}

func TestE2EMissingImageIsDockersNotFound(t *testing.T) {
	before := engineContainerCount(t)
	code, body := apiCall(t, "POST", "/v1.41/containers/create", "application/json", strings.NewReader(`{"Image":"no-such-image:1"}`))
	var e struct{ Message string }
	_ = json.Unmarshal([]byte(body), &e)
	if code != 404 || e.Message != "No such image: no-such-image:1" {
		t.Fatalf("create with missing image: %d %s", code, body)
	}
	if after := engineContainerCount(t); after != before {
		t.Fatalf("containers %d → %d", before, after)
	}
}
