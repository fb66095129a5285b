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

// TestE2ETenantApplications: with --tenants, alice deploys a blueprint
// with her client certificate (POST /v1/applications); its containers,
// network and volume are hers (her docker ps, not bob's; the engines'
// names carry her key); bob neither lists nor reads, invokes or deletes
// her application (404), even when he sends the in-process tenant
// header naming alice; the admin sees it; alice deletes it.
func TestE2ETenantApplications(t *testing.T) {
	s := startSecureServer(t, "", "--tenants")
	for _, who := range []string{"alice", "bob"} {
		if out, err := exec.Command(clockerBin, "certs", "client", who, "--dir", s.certs).CombinedOutput(); err != nil {
			t.Fatalf("certs client %s: %v\n%s", who, err, out)
		}
	}
	certs := map[string]string{}
	clients := map[string]*http.Client{}
	for _, who := range []string{"alice", "bob", "ops"} {
		certs[who] = filepath.Join(s.certs, who)
		clients[who] = s.tlsClient(t, loadPair(t, certs[who]))
	}
	call := func(who, method, path, body string, header http.Header) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "https://"+s.addr+path, strings.NewReader(body))
		for k, v := range header {
			req.Header[k] = v
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := clients[who].Do(req)
		if err != nil {
			t.Fatalf("%s %s %s: %v", who, method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	must := func(who string, args ...string) string {
		t.Helper()
		r := s.docker(t, certs[who], nil, args...)
		if r.Code != 0 {
			t.Fatalf("%s: docker %s: exit %d\n%s%s", who, strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
		}
		return strings.TrimSpace(r.Stdout)
	}
	waitTask := func(who, id string) map[string]any {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for {
			code, body := call(who, "GET", "/v1/activities/"+id, "", nil)
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
	defer call("ops", "DELETE", "/v1/applications/"+app, "", nil)
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
