package blueprint

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clocker/clocker/internal/store"
)

const webBOM = `brooklyn.catalog:
  version: "1.0"
  items:
  - id: clocker-test-web
    name: Test web server
    description: a busybox web server
    item:
      type: docker:busybox
      openPorts: [ 80 ]
      env: { GREETING: hello, COLOUR: blue }
      brooklyn.config:
        web.port: 80
  - id: clocker-test-web-tier
    itemType: template
    name: Test web tier
    item:
      name: Web tier
      services:
      - type: clocker-test-web:1.0
        id: front
      - type: clocker-test-web
        id: back
        env: { COLOUR: red }
  - id: clocker-test-restarter
    itemType: policy
    item:
      type: org.apache.brooklyn.policy.ha.ServiceRestarter
      brooklyn.config:
        failOnRecurringFailuresInThisDuration: 10m
  - id: clocker-test-missing
    item: { type: "docker:missing-image" }
  - id: clocker-test-loc
    itemType: location
    item:
      type: localhost
`

// catalogSummary is br's models.CatalogItemSummary (IdentityDetails and
// the typed fields it decodes).
type catalogSummary struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	SymbolicName string `json:"symbolicName"`
	Version      string `json:"version"`
	Description  string `json:"description"`
	JavaType     string `json:"javaType"`
	PlanYaml     string `json:"planYaml"`
	Deprecated   bool   `json:"deprecated"`
	Config       []struct {
		Reconfigurable bool                `json:"reconfigurable"`
		PossibleValues []map[string]string `json:"possibleValues"`
		Name           string              `json:"name"`
		Priority       float64             `json:"priority"`
		Pinned         bool                `json:"pinned"`
	} `json:"config"`
	Tags  []any          `json:"tags"`
	Links map[string]any `json:"links"`
	Type  string         `json:"type"`
}

func (e *env) catalogList(kind string) []catalogSummary {
	e.t.Helper()
	code, body := e.do("GET", "/v1/catalog/"+kind, "", "")
	if code != 200 {
		e.t.Fatalf("list %s: %d %s", kind, code, body)
	}
	var out []catalogSummary
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		e.t.Fatalf("list %s: %v in %s", kind, err, body)
	}
	return out
}

func ids(list []catalogSummary) []string {
	var out []string
	for _, s := range list {
		out = append(out, s.ID)
	}
	return out
}

// TestCatalogAddListShowDelete: a BOM added as br sends it (x-yaml,
// ?detail=true) is listed per kind, shown, versioned and deleted; adding
// it again changes nothing.
func TestCatalogAddListShowDelete(t *testing.T) {
	e := newEnv(t, nil, newFake())
	code, body := e.do("POST", "/v1/catalog?detail=true", "application/x-yaml", webBOM)
	if code != http.StatusCreated {
		t.Fatalf("add: %d %s", code, body)
	}
	var res struct {
		Message, Bundle, Code string
		Types                 map[string]catalogSummary
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil || res.Code == "" || len(res.Types) != 5 {
		t.Fatalf("add result %v: %s", err, body)
	}
	if code, body := e.do("POST", "/v1/catalog", "application/json", webBOM); code != http.StatusOK || !strings.Contains(body, `"clocker-test-web:1.0":{`) {
		t.Errorf("add again: %d %s", code, body)
	}
	apps := ids(e.catalogList("applications?allVersions=true"))
	if !slices.Equal(apps, []string{"clocker-test-web-tier:1.0"}) {
		t.Errorf("applications %v", apps)
	}
	ents := ids(e.catalogList("entities?fragment=clocker-test-web"))
	if !slices.Equal(ents, []string{"clocker-test-web:1.0", "clocker-test-web-tier:1.0"}) {
		t.Errorf("entities %v", ents)
	}
	if got := ids(e.catalogList("policies?allVersions")); !slices.Equal(got, []string{"clocker-test-restarter:1.0"}) {
		t.Errorf("policies %v", got)
	}
	if got := ids(e.catalogList("locations?allVersions=true")); !slices.Equal(got, []string{"clocker-test-loc:1.0"}) {
		t.Errorf("locations %v", got)
	}
	// The built-in types are listed beside them.
	if got := ids(e.catalogList("entities?regex=MySqlNode")); !slices.Equal(got, []string{"org.apache.brooklyn.entity.database.mysql.MySqlNode:1.0.0-SNAPSHOT"}) {
		t.Errorf("built-in MySqlNode %v", got)
	}
	// A newer version: the newest is listed and shown, both with allVersions.
	v2 := strings.Replace(strings.Replace(webBOM, `version: "1.0"`, `version: "1.10"`, 1), "COLOUR: blue", "COLOUR: green", 1)
	if code, body := e.do("POST", "/v1/catalog", "text/plain", v2); code != http.StatusCreated {
		t.Fatalf("add 1.10: %d %s", code, body)
	}
	if got := ids(e.catalogList("entities?fragment=test-web&allVersions=true")); !slices.Equal(got, []string{"clocker-test-web:1.10", "clocker-test-web:1.0", "clocker-test-web-tier:1.10", "clocker-test-web-tier:1.0"}) {
		t.Errorf("all versions %v", got)
	}
	code, body = e.do("GET", "/v1/catalog/entities/clocker-test-web", "", "")
	var one catalogSummary
	if err := json.Unmarshal([]byte(body), &one); code != 200 || err != nil || one.Version != "1.10" || !strings.Contains(one.PlanYaml, "green") {
		t.Errorf("show newest: %d %v %s", code, err, body)
	}
	if code, body := e.do("GET", "/v1/catalog/clocker-test-web/1.0", "", ""); code != 200 || !strings.Contains(body, "blue") {
		t.Errorf("show 1.0: %d %s", code, body)
	}
	if code, _ := e.do("GET", "/v1/catalog/policies/clocker-test-web", "", ""); code != 404 {
		t.Errorf("an entity as a policy: %d", code)
	}
	// Changing a released version is refused; deleting needs the version
	// when there are several.
	if code, body := e.do("POST", "/v1/catalog", "", v2+"\n  description: changed\n"); code != http.StatusConflict {
		t.Errorf("change 1.10: %d %s", code, body)
	}
	if code, body := e.do("DELETE", "/v1/catalog/entities/clocker-test-web", "", ""); code != 400 {
		t.Errorf("delete without version: %d %s", code, body)
	}
	if code, body := e.do("DELETE", "/v1/catalog/entities/clocker-test-web/1.10", "", ""); code != 204 {
		t.Errorf("delete: %d %s", code, body)
	}
	if code, _ := e.do("GET", "/v1/catalog/entities/clocker-test-web/1.10", "", ""); code != 404 {
		t.Errorf("deleted: %d", code)
	}
}

// TestCatalogBadBOM: every wrong BOM is a 400 naming the problem, and
// adds nothing (not even its sound items).
func TestCatalogBadBOM(t *testing.T) {
	e := newEnv(t, nil, newFake())
	before := len(e.catalogList("entities"))
	for _, c := range []struct{ bom, want string }{
		{"brooklyn.catalog: [", "malformed YAML"},
		{"services: [{type: docker:x}]", "no brooklyn.catalog"},
		{"brooklyn.catalog:\n  item: {type: docker:x}", "no id"},
		{"brooklyn.catalog:\n  id: a\n  itemType: widget\n  item: {type: docker:x}", `itemType "widget"`},
		{"brooklyn.catalog:\n  id: a:1.0\n  version: 2.0\n  item: {type: docker:x}", "names version 1.0 but version is 2.0"},
		{"brooklyn.catalog:\n  items:\n  - id: good\n    item: {type: docker:x}\n  - id: bad\n    item: {type: NoSuchThing}", `catalog item bad:0.0.0-SNAPSHOT: services[0] (): unknown type "NoSuchThing"`},
		{"brooklyn.catalog:\n  id: p\n  itemType: policy\n  item: {type: NoSuchPolicy}", "NoSuchPolicy"},
		{"brooklyn.catalog:\n  id: has space\n  item: {type: docker:x}", "letters, digits"},
	} {
		code, body := e.do("POST", "/v1/catalog", "application/x-yaml", c.bom)
		var ae struct{ Message string }
		if err := json.Unmarshal([]byte(body), &ae); code != 400 || err != nil || !strings.Contains(ae.Message, c.want) {
			t.Errorf("%q: %d %s, want 400 with %q", c.bom, code, body, c.want)
		}
	}
	if after := len(e.catalogList("entities")); after != before {
		t.Errorf("%d entities after bad BOMs, %d before", after, before)
	}
}

// TestDeployByCatalogType: a service naming a catalog item (with or
// without a version) is the item's blueprint with the service's config
// over it; a template deploys as its services; a policy item is a policy.
func TestDeployByCatalogType(t *testing.T) {
	e := newEnv(t, nil, newFake())
	if code, body := e.do("POST", "/v1/catalog", "application/x-yaml", webBOM); code != 201 {
		t.Fatalf("add: %d %s", code, body)
	}
	app := e.deploy(`name: By type
services:
- type: clocker-test-web:1.0
  id: w
  name: My web
  env: { COLOUR: yellow }
  brooklyn.policies:
  - type: clocker-test-restarter
`)
	code, body := e.do("GET", "/v1/applications/"+app+"/entities/w", "", "")
	if code != 200 || !strings.Contains(body, `"catalogItemId":"clocker-test-web:1.0"`) || !strings.Contains(body, `"name":"My web"`) || !strings.Contains(body, `"type":"docker:busybox"`) {
		t.Errorf("entity: %d %s", code, body)
	}
	id := strings.Trim(e.sensor(app, "w", "docker.container.id"), `"`)
	e.eng.mu.Lock()
	env := e.eng.ctrs[id].opts.Config.Env
	ports := e.eng.ctrs[id].opts.Config.ExposedPorts
	e.eng.mu.Unlock()
	slices.Sort(env)
	if !slices.Equal(env, []string{"COLOUR=yellow", "GREETING=hello"}) || len(ports) != 1 {
		t.Errorf("env %v ports %v, want the item's env with COLOUR overridden and its port", env, ports)
	}
	code, body = e.do("GET", "/v1/applications/"+app+"/entities/w/policies", "", "")
	if code != 200 || !strings.Contains(body, "ServiceRestarter") {
		t.Errorf("policies: %d %s", code, body)
	}
	if code, body := e.do("GET", "/v1/applications/"+app+"/entities/w/config/web.port", "", ""); code != 200 || body != "80\n" {
		t.Errorf("item config: %d %q", code, body)
	}
	if code, body := e.do("GET", "/v1/applications/"+app+"/entities/w/config/current-state", "", ""); code != 200 || strings.Contains(body, catalogItemKey) {
		t.Errorf("config shows the catalog marker: %s", body)
	}

	// A template: its services under the application, its name.
	tier := e.deploy("services: [ { type: clocker-test-web-tier } ]")
	code, body = e.do("GET", "/v1/applications/"+tier, "", "")
	if code != 200 || !strings.Contains(body, `"name":"Web tier"`) {
		t.Errorf("template app: %d %s", code, body)
	}
	back := strings.Trim(e.sensor(tier, "back", "docker.container.id"), `"`)
	e.eng.mu.Lock()
	env = e.eng.ctrs[back].opts.Config.Env
	e.eng.mu.Unlock()
	if !slices.Contains(env, "COLOUR=red") {
		t.Errorf("back env %v", env)
	}
	if code, body := e.do("GET", "/v1/applications/"+tier+"/entities/"+tier, "", ""); !strings.Contains(body, `"catalogItemId":"clocker-test-web-tier:1.0"`) {
		t.Errorf("template root: %d %s", code, body)
	}

	// Unknown versions and missing images are refused at submit.
	for _, c := range []struct{ plan, want string }{
		{"services: [ { type: clocker-test-web:9.9 } ]", `unknown type "clocker-test-web:9.9"`},
		{"services: [ { type: clocker-test-missing } ]", "image missing-image:latest is on no host"},
	} {
		code, body := e.do("POST", "/v1/applications", "application/json", c.plan)
		var ae struct{ Message string }
		if err := json.Unmarshal([]byte(body), &ae); code != 400 || err != nil || !strings.Contains(ae.Message, c.want) {
			t.Errorf("%s: %d %s", c.plan, code, body)
		}
	}
}

// TestBuiltinMySqlNode: the built-in MySqlNode is mysql:8.0 with its
// password from mysql.password and a datastore.url.
func TestBuiltinMySqlNode(t *testing.T) {
	e := newEnv(t, nil, newFake())
	app := e.deploy("services:\n- type: MySqlNode\n  id: db\n  brooklyn.config: { mysql.password: s3cret }\n")
	id := strings.Trim(e.sensor(app, "db", "docker.container.id"), `"`)
	e.eng.mu.Lock()
	cfg := e.eng.ctrs[id].opts.Config
	e.eng.mu.Unlock()
	if cfg.Image != "mysql:8.0" || !slices.Contains(cfg.Env, "MYSQL_ROOT_PASSWORD=s3cret") {
		t.Errorf("image %s env %v", cfg.Image, cfg.Env)
	}
	ip := strings.Trim(e.sensor(app, "db", "host.subnet.address"), `"`)
	// A StaticSensor that waits resolves in the background, after the
	// start task may have ended: wait for it to be published (204 until).
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _ := e.do("GET", "/v1/applications/"+app+"/entities/db/sensors/datastore.url", "", "")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("datastore.url not published in 30s: %d", code)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := e.sensor(app, "db", "datastore.url"); got != `"mysql://`+ip+`:3306/"` {
		t.Errorf("datastore.url %s", got)
	}
}

// TestCatalogPersists: items added and built-ins deleted stay so after a
// restart.
func TestCatalogPersists(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, st, newFake())
	if code, body := e.do("POST", "/v1/catalog", "application/x-yaml", webBOM); code != 201 {
		t.Fatalf("add: %d %s", code, body)
	}
	if code, body := e.do("DELETE", "/v1/catalog/entities/org.apache.brooklyn.entity.database.mysql.MySqlNode/1.0.0-SNAPSHOT", "", ""); code != 204 {
		t.Fatalf("delete built-in: %d %s", code, body)
	}
	e.srv.Close()
	e.m.Close()
	e2 := newEnv(t, st, newFake())
	if got := ids(e2.catalogList("entities?fragment=clocker-test-web")); len(got) != 2 {
		t.Errorf("after restart: %v", got)
	}
	if got := e2.catalogList("entities?regex=MySqlNode"); len(got) != 0 {
		t.Errorf("deleted built-in back after restart: %v", ids(got))
	}
	if got := e2.catalogList("entities?regex=RedisStore"); len(got) != 1 {
		t.Errorf("built-in RedisStore after restart: %v", ids(got))
	}
	_ = st.Close()
}

// TestPutApplication: PUT deploys under the id given; a second PUT of it
// is a conflict and changes nothing.
func TestPutApplication(t *testing.T) {
	e := newEnv(t, nil, newFake())
	code, body := e.do("PUT", "/v1/applications/myapp1", "application/json", "services: [ { type: docker:busybox } ]")
	var task struct{ ID, EntityID string }
	if err := json.Unmarshal([]byte(body), &task); code != 201 || err != nil || task.EntityID != "myapp1" {
		t.Fatalf("put: %d %s", code, body)
	}
	e.waitTask(task.ID)
	if code, body := e.do("PUT", "/v1/applications/myapp1", "application/json", "services: [ { type: docker:busybox } ]"); code != http.StatusConflict {
		t.Errorf("second put: %d %s", code, body)
	}
	if code, body := e.do("PUT", "/v1/applications/bad%20id", "application/json", "services: [ { type: docker:busybox } ]"); code != 400 {
		t.Errorf("bad id: %d %s", code, body)
	}
	if c, _, _ := e.eng.snapshot(); c != 1 {
		t.Errorf("%d containers, want 1", c)
	}
}

// TestCatalogNesting: an item whose blueprint names another item, a
// cluster whose memberSpec names one, an item named as the built-in type
// it wraps, a policy item with config, and an item's parameters shown as
// config.
func TestCatalogNesting(t *testing.T) {
	e := newEnv(t, nil, newFake())
	bom := `brooklyn.catalog:
  version: 2.0
  items:
  - id: inner-web
    item:
      type: docker:busybox
      env: { A: inner, B: inner }
  - id: outer-web
    item:
      type: inner-web
      name: Outer
      env: { B: outer }
      brooklyn.parameters:
      - name: greeting
        type: string
        default: hi
  - id: BasicEntity
    item:
      type: BasicEntity
      brooklyn.config: { from.item: 7 }
  - id: quick-restarter
    itemType: policy
    item:
      type: ServiceRestarter
      brooklyn.config: { failOnRecurringFailuresInThisDuration: 1m }
`
	if code, body := e.do("POST", "/v1/catalog", "application/x-yaml", bom); code != 201 {
		t.Fatalf("add: %d %s", code, body)
	}
	app := e.deploy(`services:
- type: outer-web
  id: o
  env: { C: mine }
  brooklyn.policies:
  - type: quick-restarter
    failureSensorToMonitor: ha.entityFailed
- type: DynamicCluster
  id: cl
  initialSize: 2
  memberSpec:
    $brooklyn:entitySpec:
      type: inner-web:2.0
- type: BasicEntity
  id: b
`)
	code, body := e.do("GET", "/v1/applications/"+app+"/entities/o", "", "")
	if code != 200 || !strings.Contains(body, `"catalogItemId":"outer-web:2.0"`) || !strings.Contains(body, `"name":"Outer"`) {
		t.Errorf("o: %d %s", code, body)
	}
	id := strings.Trim(e.sensor(app, "o", "docker.container.id"), `"`)
	e.eng.mu.Lock()
	env := append([]string(nil), e.eng.ctrs[id].opts.Config.Env...)
	e.eng.mu.Unlock()
	slices.Sort(env)
	if !slices.Equal(env, []string{"A=inner", "B=outer", "C=mine"}) {
		t.Errorf("o env %v", env)
	}
	code, body = e.do("GET", "/v1/applications/"+app+"/entities/o/policies/ServiceRestarter/config/current-state", "", "")
	if code != 200 || !strings.Contains(body, `"failOnRecurringFailuresInThisDuration":"1m"`) || !strings.Contains(body, `"failureSensorToMonitor":"ha.entityFailed"`) {
		t.Errorf("policy config: %d %s", code, body)
	}
	if got := e.sensor(app, "cl", "group.members.count"); got != "2" {
		t.Errorf("cluster of catalog members: %s members", got)
	}
	code, body = e.do("GET", "/v1/applications/"+app+"/entities/b/config/from.item", "", "")
	if code != 200 || body != "7\n" {
		t.Errorf("item named as its built-in type: %d %q", code, body)
	}
	var show catalogSummary
	code, body = e.do("GET", "/v1/catalog/entities/outer-web/2.0", "", "")
	if err := json.Unmarshal([]byte(body), &show); code != 200 || err != nil || len(show.Config) != 1 || show.Config[0].Name != "greeting" {
		t.Errorf("outer-web config: %d %v %s", code, err, body)
	}
	code, body = e.do("POST", "/v1/applications", "application/json", "services: [ { type: outer-wob } ]")
	if code != 400 || !strings.Contains(body, "nor is it a catalog item") {
		t.Errorf("unknown type: %d %s", code, body)
	}
}
