//go:build e2e

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Volumes and networks through the front door with the real CLI: each lives
// on one host, shown as its Node, and the containers that use it are placed
// on that host.

// cleanupVolumes removes volumes on every engine at the end of a test (the
// containers registered with cleanup afterwards go first).
func cleanupVolumes(t *testing.T, names ...string) {
	t.Cleanup(func() { removeOnEngines(t, "volume", names) })
}

func cleanupNetworks(t *testing.T, names ...string) {
	t.Cleanup(func() { removeOnEngines(t, "network", names) })
}

func removeOnEngines(t *testing.T, kind string, names []string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, e := range fleet.Engines {
		args := append([]string{kind, "rm"}, names...)
		_, _ = fleet.Docker(ctx, e.Name, args...) // some are not there: fine
	}
}

// enginesHaving lists the engines on which `docker KIND ls` shows name.
func enginesHaving(t *testing.T, kind, name string) []string {
	t.Helper()
	var out []string
	for i, e := range fleet.Engines {
		ls := engineDocker(t, i, kind, "ls", "--format", "{{.Name}}")
		if slices.Contains(strings.Fields(ls), name) {
			out = append(out, e.Name)
		}
	}
	return out
}

// labelHost is the host of a volume or per-host network as Clocker shows
// it: its Node, read from the raw answer (the CLI decodes volumes into its
// own type, without Node); "" for an object of no one host.
func labelHost(t *testing.T, kind, name string) string {
	t.Helper()
	status, body := apiCall(t, "GET", "/"+kind+"s/"+name, "", nil)
	var obj struct{ Node *struct{ Name string } }
	if err := json.Unmarshal([]byte(body), &obj); status != 200 || err != nil {
		t.Fatalf("GET /%ss/%s: %d %s", kind, name, status, body)
	}
	if obj.Node == nil {
		return ""
	}
	return obj.Node.Name
}

// otherEngine is an engine other than the named ones.
func otherEngine(t *testing.T, not ...string) string {
	t.Helper()
	for _, e := range fleet.Engines {
		if !slices.Contains(not, e.Name) {
			return e.Name
		}
	}
	t.Fatalf("no engine besides %v", not)
	return ""
}

func TestE2EVolumesLifecycle(t *testing.T) {
	cleanupVolumes(t, "cvv1", "cvv2", "cvv3")
	cleanup(t, "cvwriter", "cvreader")

	if out := mustDocker(t, "volume", "create", "cvv1"); out != "cvv1" {
		t.Fatalf("volume create: %q", out)
	}
	home := labelHost(t, "volume", "cvv1")
	if got := enginesHaving(t, "volume", "cvv1"); !slices.Equal(got, []string{home}) {
		t.Fatalf("cvv1 is on %v, its label says %s", got, home)
	}
	// Created again: the engine's answer, the same volume, nothing new.
	if out := mustDocker(t, "volume", "create", "cvv1"); out != "cvv1" {
		t.Fatalf("second create: %q", out)
	}
	if got := enginesHaving(t, "volume", "cvv1"); !slices.Equal(got, []string{home}) {
		t.Fatalf("after a second create cvv1 is on %v", got)
	}

	t.Run("ls", func(t *testing.T) {
		names := strings.Fields(mustDocker(t, "volume", "ls", "-q"))
		if n := countOf(names, "cvv1"); n != 1 {
			t.Errorf("volume ls shows cvv1 %d times: %v", n, names)
		}
		byHost := strings.Fields(mustDocker(t, "volume", "ls", "-q", "--filter", "label=io.clocker.host="+home))
		if !slices.Contains(byHost, "cvv1") {
			t.Errorf("volume ls --filter label=io.clocker.host=%s: %v", home, byHost)
		}
		other := otherEngine(t, home)
		if byOther := strings.Fields(mustDocker(t, "volume", "ls", "-q", "--filter", "label=io.clocker.host="+other)); slices.Contains(byOther, "cvv1") {
			t.Errorf("cvv1 listed on %s: %v", other, byOther)
		}
		if got := mustDocker(t, "volume", "ls", "-q", "--filter", "name=cvv1", "--filter", "driver=local"); got != "cvv1" {
			t.Errorf("name and driver filters: %q", got)
		}
	})
	t.Run("inspect", func(t *testing.T) {
		out := mustDocker(t, "volume", "inspect", "cvv1")
		var vols []struct{ Name, Driver, Mountpoint string }
		if err := json.Unmarshal([]byte(out), &vols); err != nil || len(vols) != 1 || vols[0].Name != "cvv1" || vols[0].Driver != "local" || vols[0].Mountpoint == "" {
			t.Fatalf("volume inspect: %s", out)
		}
		r := docker(t, nil, "volume", "inspect", "cvnope")
		if r.Code == 0 || !strings.Contains(r.Stderr, "no such volume") {
			t.Fatalf("inspect unknown: %+v", r)
		}
	})
	t.Run("used by two containers in turn", func(t *testing.T) {
		mustDocker(t, "run", "--name", "cvwriter", "-v", "cvv1:/data", "busybox", "sh", "-c", "echo written-by-the-first > /data/f")
		if h := hostOf(t, "cvwriter"); h != home {
			t.Fatalf("the writer ran on %s, the volume is on %s", h, home)
		}
		out := mustDocker(t, "run", "--name", "cvreader", "-v", "cvv1:/data", "busybox", "cat", "/data/f")
		if out != "written-by-the-first" {
			t.Fatalf("the reader read %q", out)
		}
		if h := hostOf(t, "cvreader"); h != home {
			t.Fatalf("the reader ran on %s, the volume is on %s", h, home)
		}
	})
	t.Run("rm", func(t *testing.T) {
		r := docker(t, nil, "volume", "rm", "cvv1")
		if r.Code == 0 || !strings.Contains(r.Stderr, "volume is in use") {
			t.Fatalf("rm of a volume in use: %+v", r)
		}
		mustDocker(t, "rm", "cvwriter", "cvreader")
		if out := mustDocker(t, "volume", "rm", "cvv1"); out != "cvv1" {
			t.Fatalf("volume rm: %q", out)
		}
		if got := enginesHaving(t, "volume", "cvv1"); len(got) != 0 {
			t.Fatalf("cvv1 still on %v", got)
		}
	})
	t.Run("placed where asked", func(t *testing.T) {
		e2, e3 := fleet.Engines[1].Name, fleet.Engines[2].Name
		mustDocker(t, "volume", "create", "--label", "io.clocker.host="+e2, "cvv2")
		if got := enginesHaving(t, "volume", "cvv2"); !slices.Equal(got, []string{e2}) {
			t.Errorf("cvv2 (label) on %v, want %s", got, e2)
		}
		if out := mustDocker(t, "volume", "create", e3+"/cvv3"); out != "cvv3" {
			t.Errorf("create HOST/NAME printed %q", out)
		}
		if got := enginesHaving(t, "volume", "cvv3"); !slices.Equal(got, []string{e3}) {
			t.Errorf("cvv3 (HOST/NAME) on %v, want %s", got, e3)
		}
		if h := labelHost(t, "volume", "cvv3"); h != e3 {
			t.Errorf("cvv3's label says %s", h)
		}
	})
}

func TestE2EVolumesSameNameOnTwoHosts(t *testing.T) {
	cleanupVolumes(t, "cvdup")
	e1, e2 := fleet.Engines[0].Name, fleet.Engines[1].Name
	// Made behind Clocker's back, on two engines.
	engineDocker(t, 0, "volume", "create", "cvdup")
	engineDocker(t, 1, "volume", "create", "cvdup")
	out := mustDocker(t, "volume", "ls", "--format", `{{.Name}} {{.Label "io.clocker.host"}}`, "--filter", "name=cvdup", "--filter", "label=io.clocker.host")
	if lines := sortStrings(strings.Split(out, "\n")); !slices.Equal(lines, sortStrings([]string{"cvdup " + e1, "cvdup " + e2})) {
		t.Fatalf("volume ls: %q", lines)
	}
	r := docker(t, nil, "volume", "rm", "cvdup")
	if r.Code == 0 || !strings.Contains(r.Stderr, "volume cvdup is ambiguous") || !strings.Contains(r.Stderr, e2+"/cvdup") && !strings.Contains(r.Stderr, e1+"/cvdup") {
		t.Fatalf("rm of an ambiguous name: %+v", r)
	}
	if got := enginesHaving(t, "volume", "cvdup"); len(got) != 2 {
		t.Fatalf("an ambiguous rm removed something: %v", got)
	}
	mustDocker(t, "volume", "rm", e2+"/cvdup")
	if got := enginesHaving(t, "volume", "cvdup"); !slices.Equal(got, []string{e1}) {
		t.Fatalf("after rm %s/cvdup: %v", e2, got)
	}
	if h := labelHost(t, "volume", "cvdup"); h != e1 {
		t.Fatalf("inspect cvdup: host %s", h)
	}
}

func TestE2EVolumesPrune(t *testing.T) {
	cleanupVolumes(t, "cvp1", "cvp2", "cvkeep")
	cleanup(t, "cvkeeper")
	mustDocker(t, "volume", "create", "--label", "io.clocker.host="+fleet.Engines[0].Name, "cvp1")
	mustDocker(t, "volume", "create", "--label", "io.clocker.host="+fleet.Engines[2].Name, "cvp2")
	mustDocker(t, "run", "-d", "--name", "cvkeeper", "-v", "cvkeep:/k", "busybox", "sleep", "300")
	out := mustDocker(t, "volume", "prune", "-f")
	if !strings.Contains(out, "cvp1") || !strings.Contains(out, "cvp2") || !strings.Contains(out, "Total reclaimed space") {
		t.Fatalf("volume prune -f: %s", out)
	}
	if strings.Contains(out, "cvkeep") {
		t.Fatalf("a volume in use was pruned: %s", out)
	}
	for _, v := range []string{"cvp1", "cvp2"} {
		if got := enginesHaving(t, "volume", v); len(got) != 0 {
			t.Errorf("%s still on %v", v, got)
		}
	}
	if got := enginesHaving(t, "volume", "cvkeep"); len(got) != 1 {
		t.Errorf("cvkeep on %v", got)
	}
}

func TestE2ENetworksLifecycle(t *testing.T) {
	cleanupNetworks(t, "cvn1", "cvn2")
	cleanupVolumes(t, "cvnvol-other", "cvnvol-home")
	cleanup(t, "cvnc1", "cvnc2", "cvnc3")

	// A per-host network (fleet networks: e2e_fleetnet_test.go).
	id := mustDocker(t, "network", "create", "-o", "clocker.scope=local", "cvn1")
	home := labelHost(t, "network", "cvn1")
	if got := enginesHaving(t, "network", "cvn1"); !slices.Equal(got, []string{home}) {
		t.Fatalf("cvn1 is on %v, its label says %s", got, home)
	}
	t.Run("duplicate name", func(t *testing.T) {
		r := docker(t, nil, "network", "create", "cvn1") // as a fleet network
		if r.Code == 0 || !strings.Contains(r.Stderr, "network with name cvn1 already exists") {
			t.Fatalf("second create: %+v", r)
		}
		if got := enginesHaving(t, "network", "cvn1"); len(got) != 1 {
			t.Fatalf("cvn1 now on %v", got)
		}
	})
	t.Run("ls shows the built-ins once", func(t *testing.T) {
		names := strings.Fields(mustDocker(t, "network", "ls", "--format", "{{.Name}}"))
		for _, n := range []string{"bridge", "host", "none", "cvn1"} {
			if c := countOf(names, n); c != 1 {
				t.Errorf("network ls shows %s %d times: %v", n, c, names)
			}
		}
		if got := mustDocker(t, "network", "ls", "-q", "--no-trunc", "--filter", "name=cvn1"); got != id {
			t.Errorf("ls --filter name=cvn1: %q, want %s", got, id)
		}
		if got := mustDocker(t, "network", "ls", "--format", "{{.Name}}", "--filter", "label=io.clocker.host="+home, "--filter", "name=cvn"); got != "cvn1" {
			t.Errorf("ls --filter label=io.clocker.host=%s: %q", home, got)
		}
	})
	t.Run("inspect", func(t *testing.T) {
		if got := mustDocker(t, "network", "inspect", "-f", "{{.Id}} {{.Driver}}", "cvn1"); got != id+" bridge" {
			t.Errorf("inspect by name: %q", got)
		}
		if got := mustDocker(t, "network", "inspect", "-f", "{{.Name}}", id[:12]); got != "cvn1" {
			t.Errorf("inspect by short ID: %q", got)
		}
		if got := mustDocker(t, "network", "inspect", "-f", "{{.Name}} {{.Driver}}", "bridge"); got != "bridge bridge" {
			t.Errorf("inspect bridge: %q", got)
		}
		r := docker(t, nil, "network", "inspect", "cvnope")
		if r.Code == 0 || !strings.Contains(r.Stderr, "network cvnope not found") {
			t.Errorf("inspect unknown: %+v", r)
		}
	})
	t.Run("run --network lands on the network's host", func(t *testing.T) {
		mustDocker(t, "run", "-d", "--name", "cvnc1", "--network", "cvn1", "busybox", "sleep", "300")
		if h := hostOf(t, "cvnc1"); h != home {
			t.Fatalf("cvnc1 on %s, cvn1 on %s", h, home)
		}
	})
	other := otherEngine(t, home)
	t.Run("connect and disconnect", func(t *testing.T) {
		// A container on the network's host, placed there by a volume.
		mustDocker(t, "volume", "create", "--label", "io.clocker.host="+home, "cvnvol-home")
		mustDocker(t, "run", "-d", "--name", "cvnc3", "-v", "cvnvol-home:/x", "busybox", "sleep", "300")
		mustDocker(t, "network", "connect", "--alias", "three", "cvn1", "cvnc3")
		nets := mustDocker(t, "inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", "cvnc3")
		if !strings.Contains(nets, "cvn1") {
			t.Fatalf("cvnc3 networks after connect: %q", nets)
		}
		// By name from the other container on the network.
		if out := mustDocker(t, "exec", "cvnc1", "ping", "-c", "1", "-W", "5", "three"); !strings.Contains(out, "1 packets received") {
			t.Errorf("ping over cvn1: %s", out)
		}
		mustDocker(t, "network", "disconnect", "cvn1", "cvnc3")
		nets = mustDocker(t, "inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", "cvnc3")
		if strings.Contains(nets, "cvn1") {
			t.Fatalf("cvnc3 networks after disconnect: %q", nets)
		}
	})
	t.Run("a container of another host cannot join", func(t *testing.T) {
		mustDocker(t, "volume", "create", "--label", "io.clocker.host="+other, "cvnvol-other")
		mustDocker(t, "run", "-d", "--name", "cvnc2", "-v", "cvnvol-other:/x", "busybox", "sleep", "300")
		if h := hostOf(t, "cvnc2"); h != other {
			t.Fatalf("cvnc2 on %s, want %s", h, other)
		}
		r := docker(t, nil, "network", "connect", "cvn1", "cvnc2")
		want := fmt.Sprintf("container cvnc2 is on host %s but network cvn1 is on host %s", other, home)
		if r.Code == 0 || !strings.Contains(r.Stderr, want) {
			t.Fatalf("connect across hosts: %+v, want %q", r, want)
		}
		nets := mustDocker(t, "inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", "cvnc2")
		if strings.Contains(nets, "cvn1") {
			t.Fatalf("cvnc2 joined cvn1: %q", nets)
		}
		// A network and a volume of different hosts cannot share a container.
		r = docker(t, nil, "run", "--rm", "--network", "cvn1", "-v", "cvnvol-other:/x", "busybox", "true")
		if r.Code == 0 || !strings.Contains(r.Stderr, "no host fits") {
			t.Fatalf("run with a network and a volume of different hosts: %+v", r)
		}
	})
	t.Run("rm", func(t *testing.T) {
		r := docker(t, nil, "network", "rm", "cvn1")
		if r.Code == 0 || !strings.Contains(r.Stderr, "has active endpoints") {
			t.Fatalf("rm of a network in use: %+v", r)
		}
		mustDocker(t, "rm", "-f", "cvnc1")
		mustDocker(t, "network", "rm", "cvn1")
		if got := enginesHaving(t, "network", "cvn1"); len(got) != 0 {
			t.Fatalf("cvn1 still on %v", got)
		}
		r = docker(t, nil, "network", "rm", "bridge")
		if r.Code == 0 || !strings.Contains(r.Stderr, "pre-defined network") {
			t.Fatalf("rm bridge: %+v", r)
		}
	})
	t.Run("placed where asked", func(t *testing.T) {
		e3 := fleet.Engines[2].Name
		mustDocker(t, "network", "create", "--label", "io.clocker.host="+e3, "cvn2")
		if got := enginesHaving(t, "network", "cvn2"); !slices.Equal(got, []string{e3}) {
			t.Fatalf("cvn2 on %v, want %s", got, e3)
		}
		// compose v2 reads 409 on create as "exists".
		code, body := apiCall(t, "POST", "/v1.41/networks/create", "application/json", strings.NewReader(`{"Name":"cvn2","CheckDuplicate":true}`))
		if code != 409 || !strings.Contains(body, "network with name cvn2 already exists") {
			t.Fatalf("duplicate create: %d %s", code, body)
		}
	})
}

func TestE2ENetworksPrune(t *testing.T) {
	cleanupNetworks(t, "cvnp1", "cvnp2", "cvnkeep")
	cleanup(t, "cvnkeeper")
	mustDocker(t, "network", "create", "--label", "io.clocker.host="+fleet.Engines[0].Name, "cvnp1")
	mustDocker(t, "network", "create", "--label", "io.clocker.host="+fleet.Engines[1].Name, "cvnp2")
	mustDocker(t, "network", "create", "cvnkeep")
	mustDocker(t, "run", "-d", "--name", "cvnkeeper", "--network", "cvnkeep", "busybox", "sleep", "300")
	out := mustDocker(t, "network", "prune", "-f")
	if !strings.Contains(out, "cvnp1") || !strings.Contains(out, "cvnp2") || strings.Contains(out, "cvnkeep") {
		t.Fatalf("network prune -f: %s", out)
	}
	for _, n := range []string{"cvnp1", "cvnp2"} {
		if got := enginesHaving(t, "network", n); len(got) != 0 {
			t.Errorf("%s still on %v", n, got)
		}
	}
	for _, n := range []string{"bridge", "host", "none"} {
		if got := enginesHaving(t, "network", n); len(got) != len(fleet.Engines) {
			t.Errorf("%s on %v only", n, got)
		}
	}
}

// Bad input gets a Docker-style answer and changes nothing on any host.
func TestE2EVolumesNetworksBadInput(t *testing.T) {
	snapshot := func() string {
		var b strings.Builder
		for i, e := range fleet.Engines {
			fmt.Fprintf(&b, "%s: %s | %s\n", e.Name,
				strings.Join(strings.Fields(engineDocker(t, i, "volume", "ls", "-q")), " "),
				strings.Join(strings.Fields(engineDocker(t, i, "network", "ls", "-q")), " "))
		}
		return b.String()
	}
	before := snapshot()
	tests := []struct {
		name, method, path, ctype, body string
		status                          int
		message                         string // a part of the message
	}{
		{"volume: malformed JSON", "POST", "/v1.41/volumes/create", "application/json", `{"Name":`, 400, "invalid JSON"},
		{"volume: wrong types", "POST", "/v1.41/volumes/create", "application/json", `{"Name":5}`, 400, "invalid JSON"},
		{"volume: empty body", "POST", "/v1.41/volumes/create", "application/json", ``, 400, "got EOF while reading request body"},
		{"volume: not JSON", "POST", "/v1.41/volumes/create", "text/plain", `{"Name":"cvbad"}`, 400, "must be 'application/json'"},
		{"volume: bad name", "POST", "/v1.41/volumes/create", "application/json", `{"Name":"a b"}`, 400, "includes invalid characters for a local volume name"},
		{"volume: unknown host", "POST", "/v1.41/volumes/create", "application/json", `{"Name":"cvbad","Labels":{"io.clocker.host":"nowhere"}}`, 400, `no host "nowhere" in the fleet`},
		{"volume: unknown", "GET", "/v1.41/volumes/cvnope", "", "", 404, "get cvnope: no such volume"},
		{"volume: rm unknown", "DELETE", "/v1.41/volumes/cvnope", "", "", 404, "get cvnope: no such volume"},
		{"volume: bad list filter", "GET", "/v1.41/volumes?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D", "", "", 400, "Invalid filter 'bogus'"},
		{"volume: unparsable list filter", "GET", "/v1.41/volumes?filters=%7Bnope", "", "", 400, ""},
		{"volume: bad prune filter", "POST", "/v1.41/volumes/prune?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D", "", "", 400, "Invalid filter 'bogus'"},
		{"network: malformed JSON", "POST", "/v1.41/networks/create", "application/json", `{"Name":`, 400, "invalid JSON"},
		{"network: empty body", "POST", "/v1.41/networks/create", "application/json", ``, 400, "got EOF while reading request body"},
		{"network: empty name", "POST", "/v1.41/networks/create", "application/json", `{"Name":""}`, 400, "invalid name"},
		{"network: built-in name", "POST", "/v1.41/networks/create", "application/json", `{"Name":"bridge"}`, 403, "operation is not permitted on predefined bridge network"},
		{"network: unknown", "GET", "/v1.41/networks/cvnope", "", "", 404, "network cvnope not found"},
		{"network: rm unknown", "DELETE", "/v1.41/networks/cvnope", "", "", 404, "network cvnope not found"},
		{"network: connect unknown container", "POST", "/v1.41/networks/bridge/connect", "application/json", `{"Container":"cvnope"}`, 404, "No such container: cvnope"},
		{"network: connect malformed", "POST", "/v1.41/networks/bridge/connect", "application/json", `{"Container":`, 400, "invalid JSON"},
		{"network: bad list filter", "GET", "/v1.41/networks?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D", "", "", 400, "Invalid filter 'bogus'"},
		{"network: bad prune filter", "POST", "/v1.41/networks/prune?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D", "", "", 400, "Invalid filter 'bogus'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := apiCall(t, tt.method, tt.path, tt.ctype, strings.NewReader(tt.body))
			if code != tt.status {
				t.Fatalf("status %d, want %d (%s)", code, tt.status, trunc(out))
			}
			var e struct{ Message string }
			if err := json.Unmarshal([]byte(out), &e); err != nil || e.Message == "" {
				t.Fatalf("body is not Docker's {\"message\": …}: %s", trunc(out))
			}
			if !strings.Contains(e.Message, tt.message) {
				t.Fatalf("message %q lacks %q", e.Message, tt.message)
			}
		})
	}
	if after := snapshot(); after != before {
		t.Fatalf("bad input changed the engines:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// A compose v1 project (docker-py) with two networks, a volume and two
// services comes up: its networks are fleet networks (they tie the project
// to no host), its volume is on one host and the containers that mount it
// follow it; the services find each other by service name.
func TestE2ENetworksComposeProjectOnOneHost(t *testing.T) {
	composeBin, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skip("docker-compose (v1) is not installed")
	}
	dir := t.TempDir()
	file := `version: "3.7"
services:
  web:
    image: busybox
    command: sleep 300
    networks: [front, back]
    volumes: [data:/data]
  db:
    image: busybox
    command: sh -c "echo from-db > /data/f; sleep 300"
    networks: [back]
    volumes: [data:/data]
volumes:
  data: {}
networks:
  front: {}
  back: {}
`
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	compose := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, composeBin, append([]string{"-p", "cvcompose"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+clockerURL)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	cleanupNetworks(t, "cvcompose_front", "cvcompose_back")
	cleanupVolumes(t, "cvcompose_data")
	cleanup(t, "cvcompose_web_1", "cvcompose_db_1")
	t.Cleanup(func() { _, _ = compose("down", "-v", "-t", "1") })
	// Something elsewhere, so that spread alone would scatter the project.
	cleanup(t, "cvfiller")
	mustDocker(t, "run", "-d", "--name", "cvfiller", "busybox", "sleep", "300")

	if out, err := compose("up", "-d"); err != nil {
		t.Fatalf("docker-compose up: %v\n%s", err, out)
	}
	home := labelHost(t, "volume", "cvcompose_data")
	for _, n := range []string{"cvcompose_front", "cvcompose_back"} {
		// A fleet network: no one host's Node; bridge, so scope local.
		if scope, h := mustDocker(t, "network", "inspect", "-f", "{{.Scope}}", n), labelHost(t, "network", n); scope != "local" || h != "" {
			t.Errorf("network %s: scope %s, Node %q, want a fleet network", n, scope, h)
		}
	}
	for _, c := range []string{"cvcompose_web_1", "cvcompose_db_1"} {
		if h := hostOf(t, c); h != home {
			t.Errorf("%s on %s, want %s (its volume's host)", c, h, home)
		}
	}
	if out := mustDocker(t, "exec", "cvcompose_web_1", "ping", "-c", "1", "-W", "5", "db"); !strings.Contains(out, "1 packets received") {
		t.Errorf("web pings db: %s", out)
	}
	if out, err := compose("down", "-v", "-t", "1"); err != nil {
		t.Fatalf("docker-compose down: %v\n%s", err, out)
	}
	for kind, n := range map[string]string{"network": "cvcompose_back", "volume": "cvcompose_data"} {
		if got := enginesHaving(t, kind, n); len(got) != 0 {
			t.Errorf("after down -v, %s %s is still on %v", kind, n, got)
		}
	}
}

func countOf(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}
