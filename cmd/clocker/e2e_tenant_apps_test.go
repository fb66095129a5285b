//go:build e2e

package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clocker/clocker/internal/tenant"
)

// tenantsServer is a clocker serve with --tenants and the certificates
// of alice, bob and the admin ops, each with a docker CLI and a Go
// client over mutual TLS.
type tenantsServer struct {
	t       *testing.T
	s       *secureServer
	certs   map[string]string
	clients map[string]*http.Client
}

func startTenantsServer(t *testing.T) *tenantsServer {
	t.Helper()
	s := startSecureServer(t, "", "--tenants")
	ts := &tenantsServer{t: t, s: s, certs: map[string]string{}, clients: map[string]*http.Client{}}
	for _, who := range []string{"alice", "bob", "ops"} {
		if who != "ops" {
			if out, err := exec.Command(clockerBin, "certs", "client", who, "--dir", s.certs).CombinedOutput(); err != nil {
				t.Fatalf("certs client %s: %v\n%s", who, err, out)
			}
		}
		ts.certs[who] = filepath.Join(s.certs, who)
		ts.clients[who] = s.tlsClient(t, loadPair(t, ts.certs[who]))
	}
	return ts
}

// call sends a request as who (header: more headers).
func (ts *tenantsServer) call(who, method, path, body string, header http.Header) (int, string) {
	t := ts.t
	t.Helper()
	req, _ := http.NewRequest(method, "https://"+ts.s.addr+path, strings.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := ts.clients[who].Do(req)
	if err != nil {
		t.Fatalf("%s %s %s: %v", who, method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (ts *tenantsServer) docker(who string, args ...string) result {
	ts.t.Helper()
	return ts.s.docker(ts.t, ts.certs[who], nil, args...)
}

func (ts *tenantsServer) must(who string, args ...string) string {
	t := ts.t
	t.Helper()
	r := ts.docker(who, args...)
	if r.Code != 0 {
		t.Fatalf("%s: docker %s: exit %d\n%s%s", who, strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return strings.TrimSpace(r.Stdout)
}

// waitTask polls an activity as who until it has ended.
func (ts *tenantsServer) waitTask(who, id string) map[string]any {
	t := ts.t
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		code, body := ts.call(who, "GET", "/v1/activities/"+id, "", nil)
		if code == 200 {
			var tk map[string]any
			_ = json.Unmarshal([]byte(body), &tk)
			return tk
		}
		if code != 202 || time.Now().After(deadline) {
			t.Fatalf("%s: activity %s: %d %s", who, id, code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// deleteApp deletes who's application app and waits for the delete;
// nil when there was none.
func (ts *tenantsServer) deleteApp(who, app string) map[string]any {
	ts.t.Helper()
	code, body := ts.call(who, "DELETE", "/v1/applications/"+app, "", nil)
	if code != 202 {
		return nil
	}
	var task struct{ ID string }
	_ = json.Unmarshal([]byte(body), &task)
	return ts.waitTask(who, task.ID)
}

// TestE2ETenantApplications: with --tenants, alice deploys a blueprint
// with her client certificate (POST /v1/applications); its containers,
// network and volume are hers (her docker ps, not bob's; the engines'
// names carry her key); bob neither lists nor reads, invokes or deletes
// her application (404), even when he sends the in-process tenant
// header naming alice; the admin sees it; alice deletes it.
func TestE2ETenantApplications(t *testing.T) {
	ts := startTenantsServer(t)
	call, must, waitTask := ts.call, ts.must, ts.waitTask
	plan := `name: Shop
services:
- type: docker:busybox
  id: db
  name: Shop DB
  volumes: [ "shopdata:/www" ]
  commands: "echo stock > /www/stock.txt && exec httpd -f -p 8000 -h /www"
- type: docker:busybox
  id: web
  name: Web
  env:
    DB_URL: $brooklyn:formatString("http://%s:8000/stock.txt", $brooklyn:component("db").attributeWhenReady("host.subnet.address"))
  commands: "until wget -q -O /tmp/stock $DB_URL; do sleep 0.3; done; exec sleep 600"
`
	code, body := call("alice", "POST", "/v1/applications", plan, nil)
	if code != 201 {
		t.Fatalf("alice deploys: %d %s", code, body)
	}
	var task struct{ ID, EntityID string }
	_ = json.Unmarshal([]byte(body), &task)
	app := task.EntityID
	defer ts.deleteApp("ops", app)
	if tk := waitTask("alice", task.ID); tk["isError"] != false {
		t.Fatalf("alice's start failed: %v", tk)
	}
	// The web tier reached the db by its address on alice's application
	// network (host.subnet.address read under her names).
	code, body = call("alice", "GET", "/v1/applications/"+app+"/entities/web/sensors/docker.container.id", "", nil)
	var webID string
	if code != 200 || json.Unmarshal([]byte(body), &webID) != nil || webID == "" {
		t.Fatalf("web's container id: %d %s", code, body)
	}
	if out := must("alice", "exec", webID, "timeout", "30", "sh", "-c", "until [ -s /tmp/stock ]; do sleep 0.2; done; cat /tmp/stock"); out != "stock" {
		t.Errorf("web fetched %q from the db", out)
	}
	aliceNames := must("alice", "ps", "--format", "{{.Names}}")
	if strings.Count(aliceNames, "\n") != 1 || strings.Contains(aliceNames, "alice_") {
		t.Errorf("alice's ps: %q (want her two containers by her names)", aliceNames)
	}
	if out := must("alice", "network", "ls", "--format", "{{.Name}}", "--filter", "name=brooklyn-"+app); out != "brooklyn-"+app {
		t.Errorf("alice's networks: %q", out)
	}
	if out := must("alice", "volume", "ls", "-q"); out != "shopdata" {
		t.Errorf("alice's volumes: %q", out)
	}
	if out := must("bob", "ps", "-a", "-q"); out != "" {
		t.Errorf("bob's ps lists %q", out)
	}
	opsNames := must("ops", "ps", "--format", "{{.Names}}", "--filter", "label=io.clocker.blueprint.application="+app)
	if strings.Count(opsNames, "alice_") != 2 {
		t.Errorf("the admin's ps of the application: %q", opsNames)
	}

	forged := http.Header{tenant.Header: {"alice"}}
	for _, h := range []http.Header{nil, forged} {
		if code, body := call("bob", "GET", "/v1/applications", "", h); code != 200 || strings.Contains(body, app) {
			t.Errorf("bob lists (header %v): %d %s", h, code, body)
		}
		for _, p := range []string{"/v1/applications/" + app, "/v1/applications/Shop", "/v1/applications/" + app + "/entities/web/sensors/current-state", "/v1/activities/" + task.ID} {
			if code, body := call("bob", "GET", p, "", h); code != 404 {
				t.Errorf("bob GET %s (header %v): %d %s", p, h, code, body)
			}
		}
		if code, body := call("bob", "POST", "/v1/applications/"+app+"/entities/web/effectors/stop", "", h); code != 404 {
			t.Errorf("bob stops alice's web: %d %s", code, body)
		}
		if code, body := call("bob", "DELETE", "/v1/applications/"+app, "", h); code != 404 {
			t.Errorf("bob deletes alice's application: %d %s", code, body)
		}
		if code, body := call("bob", "GET", "/containers/json", "", h); code != 200 || strings.TrimSpace(body) != "[]" {
			t.Errorf("bob's container list (header %v): %d %s", h, code, body)
		}
	}
	for _, who := range []string{"alice", "ops"} {
		if code, body := call(who, "GET", "/v1/applications", "", nil); code != 200 || !strings.Contains(body, app) {
			t.Errorf("%s lists: %d %s", who, code, body)
		}
	}

	code, body = call("alice", "DELETE", "/v1/applications/"+app, "", nil)
	if code != 202 {
		t.Fatalf("alice deletes: %d %s", code, body)
	}
	_ = json.Unmarshal([]byte(body), &task)
	if tk := waitTask("alice", task.ID); tk["isError"] != false {
		t.Fatalf("alice's delete failed: %v", tk)
	}
	if out := must("alice", "ps", "-a", "-q"); out != "" {
		t.Errorf("alice's containers after the delete: %q", out)
	}
	if out := must("ops", "volume", "ls", "-q", "--filter", "name=alice_shopdata"); out != "" {
		t.Errorf("alice's volume after the delete: %q", out)
	}
}

// TestE2ETenantReferences: with --tenants, alice names her own
// containers by ID or ID prefix in --volumes-from, --link and
// --network/--pid container:ID; bob naming hers that way gets "No such
// container"; name filters match the names each tenant sees.
func TestE2ETenantReferences(t *testing.T) {
	ts := startTenantsServer(t)
	as, must := ts.docker, ts.must
	defer as("alice", "rm", "-f", "db", "app")
	defer as("bob", "rm", "-f", "alicefan")
	db := must("alice", "run", "-d", "--name", "db", "-v", "/data", "busybox", "sh", "-c", "echo kept > /data/f && exec sleep 300")
	must("bob", "run", "-d", "--name", "alicefan", "busybox", "sleep", "300")

	if out := must("alice", "run", "--rm", "--volumes-from", db[:12]+":ro", "busybox", "sh", "-c", "until [ -s /data/f ]; do sleep 0.2; done; cat /data/f"); out != "kept" {
		t.Errorf("--volumes-from by ID prefix: %q", out)
	}
	must("alice", "run", "-d", "--name", "app", "--link", db+":database", "busybox", "sleep", "300")
	if r := as("alice", "exec", "app", "grep", "-w", "database", "/etc/hosts"); r.Code != 0 {
		t.Errorf("--link by ID: no database in app's /etc/hosts: %s%s", r.Stdout, r.Stderr)
	}
	if out := must("alice", "run", "--rm", "--network", "container:"+db[:12], "busybox", "hostname"); out != db[:12] {
		t.Errorf("--network container:ID prefix: hostname %q, want %q", out, db[:12])
	}
	if out := must("alice", "run", "--rm", "--pid", "container:"+db, "busybox", "sh", "-c", "ps -o comm | grep -c sleep"); out != "1" {
		t.Errorf("--pid container:ID: sleeps seen %q", out)
	}
	for _, args := range [][]string{
		{"--volumes-from", db[:12]}, {"--link", db + ":x"}, {"--network", "container:" + db}, {"--pid", "container:" + db[:12]},
		{"--ipc", "container:" + db}, {"--volumes-from", "alice_db"},
	} {
		// --pull never: the CLI takes a create's 404 for a missing image
		// and pulls (as against dockerd) unless told not to.
		r := as("bob", append(append([]string{"run", "--rm", "--pull", "never"}, args...), "busybox", "true")...)
		if r.Code == 0 || !strings.Contains(r.Stderr, "No such container") {
			t.Errorf("bob: docker run %s: exit %d %s%s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
		}
	}

	for _, c := range []struct {
		who, filter, want string
	}{
		{"bob", "name=alice", "alicefan"},
		{"bob", "name=alice_", ""},
		{"alice", "name=alice", ""},
		{"alice", "name=^/db$", "db"},
		{"alice", "name=^db$", "db"},
		{"alice", "name=^/(db|app)$", "app\ndb"},
	} {
		if out := must(c.who, "ps", "-a", "--filter", c.filter, "--format", "{{.Names}}"); out != c.want {
			t.Errorf("%s: ps --filter %s: %q, want %q", c.who, c.filter, out, c.want)
		}
	}
}

// TestE2ETenantCompose: a compose file alice posts to /v1/applications
// is deployed server-side as hers: her docker ps lists its containers by
// her names, the project is her application, bob sees neither; bob's
// project of the same name is his own application; alice deletes hers.
func TestE2ETenantCompose(t *testing.T) {
	ts := startTenantsServer(t)
	file := "services:\n  web:\n    image: busybox\n    command: [\"sleep\", \"300\"]\n"
	apps := map[string]string{}
	for _, who := range []string{"alice", "bob"} {
		code, body := ts.call(who, "POST", "/v1/applications?name=shopc", file, nil)
		if code != 201 {
			t.Fatalf("%s deploys the compose file: %d %s", who, code, body)
		}
		var task struct{ ID string }
		_ = json.Unmarshal([]byte(body), &task)
		if tk := ts.waitTask(who, task.ID); tk["isError"] != false {
			t.Fatalf("%s's compose deploy failed: %v", who, tk)
		}
		defer ts.deleteApp(who, "shopc") // with its network: later servers allocate afresh
		if out := ts.must(who, "ps", "--format", "{{.Names}}"); out != "shopc-web-1" {
			t.Errorf("%s's ps: %q", who, out)
		}
	}
	// The watch finds each project as its owner's application.
	deadline := time.Now().Add(time.Minute)
	for len(apps) < 2 {
		for _, who := range []string{"alice", "bob"} {
			code, body := ts.call(who, "GET", "/v1/applications", "", nil)
			var list []struct {
				ID   string
				Spec struct{ Name string }
			}
			if code != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list) > 1 {
				t.Fatalf("%s lists: %d %s", who, code, body)
			}
			if len(list) == 1 && list[0].Spec.Name == "shopc" {
				apps[who] = list[0].ID
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("projects found as applications: %v", apps)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if apps["alice"] == apps["bob"] {
		t.Fatalf("alice's and bob's shopc are one application %s", apps["alice"])
	}
	// By name each reaches its own; by id, alice's is not bob's (its id
	// may be the project's name, which is also bob's application's).
	for _, who := range []string{"alice", "bob"} {
		if code, body := ts.call(who, "GET", "/v1/applications/shopc", "", nil); code != 200 || !strings.Contains(body, `"id":"`+apps[who]+`"`) {
			t.Errorf("%s reads shopc: %d %s, want %s", who, code, body, apps[who])
		}
	}
	if code, body := ts.call("bob", "GET", "/v1/applications/"+apps["alice"], "", nil); code == 200 && strings.Contains(body, `"id":"`+apps["alice"]+`"`) {
		t.Errorf("bob reads alice's project: %d %s", code, body)
	}
	if tk := ts.deleteApp("alice", "shopc"); tk["isError"] != false {
		t.Fatalf("alice's delete failed: %v", tk)
	}
	if out := ts.must("alice", "ps", "-aq"); out != "" {
		t.Errorf("alice's containers after the delete: %q", out)
	}
	if out := ts.must("bob", "ps", "--format", "{{.Names}}"); out != "shopc-web-1" {
		t.Errorf("bob's project after alice's delete: %q", out)
	}
}

// TestE2ETenantCatalog: with --tenants, the catalog items alice adds
// (POST /v1/catalog with her certificate) are hers: bob neither lists nor
// deploys nor deletes them, the admin's catalog does not show them, and
// alice deploys from hers; the fleet's items are everyone's to use and
// not a tenant's to delete. The console is the admins'.
func TestE2ETenantCatalog(t *testing.T) {
	ts := startTenantsServer(t)
	call := ts.call
	bom := "brooklyn.catalog:\n  id: tcweb\n  version: 1.0\n  itemType: entity\n  item:\n    type: docker:busybox\n    commands: \"exec sleep 300\"\n"
	if code, body := call("alice", "POST", "/v1/catalog", bom, nil); code != 201 {
		t.Fatalf("alice adds tcweb: %d %s", code, body)
	}
	defer call("alice", "DELETE", "/v1/catalog/entities/tcweb/1.0", "", nil)
	for who, want := range map[string]bool{"alice": true, "bob": false, "ops": false} {
		_, body := call(who, "GET", "/v1/catalog/entities?fragment=tcweb", "", nil)
		if got := strings.Contains(body, `"tcweb:1.0"`); got != want {
			t.Errorf("%s lists tcweb: %v, want %v (%s)", who, got, want, body)
		}
	}
	if code, body := call("bob", "POST", "/v1/applications", "services:\n- type: tcweb\n", nil); code != 400 {
		t.Errorf("bob deploys alice's tcweb: %d %s", code, body)
	}
	if code, body := call("bob", "DELETE", "/v1/catalog/entities/tcweb/1.0", "", nil); code != 404 {
		t.Errorf("bob deletes alice's tcweb: %d %s", code, body)
	}
	if code, body := call("alice", "DELETE", "/v1/catalog/entities/org.apache.brooklyn.entity.database.mysql.MySqlNode", "", nil); code != 403 {
		t.Errorf("alice deletes the fleet's MySqlNode: %d %s", code, body)
	}
	// The console shows the whole fleet: the admins' alone.
	for who, want := range map[string]int{"alice": 403, "ops": 200} {
		for _, p := range []string{"/ui/", "/ui/api/containers"} {
			if code, body := call(who, "GET", p, "", nil); code != want {
				t.Errorf("%s: GET %s: %d, want %d (%.200s)", who, p, code, want, body)
			}
		}
	}
	code, body := call("alice", "POST", "/v1/applications", "name: tcshop\nservices:\n- type: tcweb\n  id: web\n", nil)
	if code != 201 {
		t.Fatalf("alice deploys tcweb: %d %s", code, body)
	}
	var task struct{ ID, EntityID string }
	_ = json.Unmarshal([]byte(body), &task)
	defer ts.deleteApp("alice", task.EntityID)
	if tk := ts.waitTask("alice", task.ID); tk["isError"] != false {
		t.Fatalf("alice's tcshop start: %v", tk)
	}
	if out := ts.must("alice", "ps", "--filter", "label=io.clocker.blueprint.application="+task.EntityID, "--format", "{{.State}}"); out != "running" {
		t.Errorf("alice's tcshop container: %q", out)
	}
}
