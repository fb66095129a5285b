//go:build e2e

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The catalog, PUT and activities as br uses them. Requests and decoding
// follow apache/brooklyn-client cli/ (net, api/catalog, api/activities,
// models): the structs below copy the models' field lists and JSON types,
// so a wrong type on the wire fails here as it fails br. Before this
// change these requests failed with br: POST /v1/catalog?detail=true
// (br catalog add), GET /v1/catalog/{applications,entities,policies,
// locations} (br catalog list), GET /v1/catalog/entities/ID/VERSION (br
// catalog show), DELETE /v1/catalog/entities/ID/VERSION (br catalog
// delete), GET /v1/activities/ID/stream/{stdout,stderr,env} (br act ID
// stdout) — all 404 — and activities had no streams or children.

// brIdentityDetails … brCatalogBundleAddResult: cli/models/catalog.go.
type brIdentityDetails struct {
	Id           string `json:"id"`
	Name         string `json:"name"`
	SymbolicName string `json:"symbolicName"`
	Version      string `json:"version"`
	Description  string `json:"description"`
}

type brConfigSummary struct {
	Reconfigurable bool                `json:"reconfigurable"`
	PossibleValues []map[string]string `json:"possibleValues"`
	DefaultValue   interface{}         `json:"defaultValue"`
	Name           string              `json:"name"`
	Description    string              `json:"description"`
	Links          map[string]string   `json:"links"`
	Label          string              `json:"label"`
	Priority       float64             `json:"priority"`
	Pinned         bool                `json:"pinned"`
	Type           string              `json:"type"`
}

type brCatalogItemSummary struct {
	brIdentityDetails
	JavaType   string                 `json:"javaType"`
	PlanYaml   string                 `json:"planYaml"`
	Deprecated bool                   `json:"deprecated"`
	Config     []brConfigSummary      `json:"config"`
	Tags       []interface{}          `json:"tags"`
	Links      map[string]interface{} `json:"links"`
	Type       string                 `json:"type"`
}

type brCatalogEntitySummary struct {
	brCatalogItemSummary
	IconUrl   string `json:"iconUrl"`
	Effectors []struct {
		Name        string            `json:"name"`
		Description string            `json:"description"`
		Links       map[string]string `json:"links"`
		ReturnType  string            `json:"returnType"`
	} `json:"effectors"`
	Sensors []struct {
		Name        string            `json:"name"`
		Description string            `json:"description"`
		Links       map[string]string `json:"links"`
		Type        string            `json:"type"`
	} `json:"sensors"`
}

type brCatalogBundleAddResult struct {
	Message string                          `json:"message"`
	Bundle  string                          `json:"bundle"`
	Code    string                          `json:"code"`
	Types   map[string]brCatalogItemSummary `json:"types"`
}

// brTaskSummary … brLinkTaskMetadata: cli/models/applications.go.
type brTaskSummary struct {
	SubmitTimeUtc     int64                               `json:"submitTimeUtc"`
	EndTimeUtc        int64                               `json:"endTimeUtc"`
	IsCancelled       bool                                `json:"isCancelled"`
	CurrentStatus     string                              `json:"currentStatus"`
	BlockingTask      brLinkTaskWithMetadata              `json:"blockingTask"`
	DisplayName       string                              `json:"displayName"`
	Streams           map[string]brLinkStreamWithMetadata `json:"streams"`
	Description       string                              `json:"description"`
	EntityId          string                              `json:"entityId"`
	EntityDisplayName string                              `json:"entityDisplayName"`
	Error             bool                                `json:"error"`
	SubmittedByTask   brLinkTaskWithMetadata              `json:"submittedByTask"`
	Result            interface{}                         `json:"result"`
	IsError           bool                                `json:"isError"`
	DetailedStatus    string                              `json:"detailedStatus"`
	Children          []brLinkTaskWithMetadata            `json:"children"`
	BlockingDetails   string                              `json:"blockingDetails"`
	Cancelled         bool                                `json:"cancelled"`
	Links             map[string]string                   `json:"links"`
	Id                string                              `json:"id"`
	StartTimeUtc      int64                               `json:"startTimeUtc"`
}

type brLinkStreamWithMetadata struct {
	Link     string `json:"link"`
	Metadata struct {
		Name     string `json:"name"`
		Size     int64  `json:"size"`
		SizeText string `json:"sizeText"`
	} `json:"metadata"`
}

type brLinkTaskWithMetadata struct {
	Link     string `json:"link"`
	Metadata struct {
		Id                string `json:"id"`
		TaskName          string `json:"taskName"`
		EntityId          string `json:"entityId"`
		EntityDisplayName string `json:"entityDisplayName"`
	} `json:"metadata"`
}

// brEntitySummary: cli/models/entities.go.
type brEntitySummary struct {
	CatalogItemId string            `json:"catalogItemId"`
	Name          string            `json:"name"`
	Links         map[string]string `json:"links"`
	Id            string            `json:"id"`
	Type          string            `json:"type"`
}

// brSend sends a request as br's net package does: Authorization on
// every request, Accept on GETs, Content-Type only where br sets one.
func brSend(t testing.TB, method, path, contentType, body string) (int, string) {
	t.Helper()
	h := http.Header{}
	h.Set("Authorization", "Basic YWRtaW46cGFzc3dvcmQ=")
	if method == http.MethodGet {
		h.Set("Accept", "application/json, text/plain")
	}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	return apiCallHeader(t, method, path, h, r)
}

// brGet GETs path and decodes it into v as br does (2xx and JSON of v's
// shape, or the test fails).
func brGet(t testing.TB, path string, v any) {
	t.Helper()
	code, body := brSend(t, "GET", path, "", "")
	if code/100 != 2 {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: br cannot decode %s: %v", path, body, err)
	}
}

// TestE2EBlueprintBrCatalog: br catalog add of a BOM (an entity, a
// template of two of it, a policy, a location), br catalog list of every
// kind, br catalog show; a template deployed by type serves each member's
// merged config from its container; the start activity has children and
// a container entity's start its stdout; PUT deploys under an id and a
// second PUT is a conflict; the catalog and the activity history survive
// a restart of clocker serve; br catalog delete; br app APP delete leaves
// nothing.
func TestE2EBlueprintBrCatalog(t *testing.T) {
	run := fmt.Sprint(time.Now().UnixNano() % 1e6)
	bom := strings.ReplaceAll(`brooklyn.catalog:
  version: "1.0"
  items:
  - id: bc-web-RUN
    name: Greeting web
    description: busybox httpd serving $GREETING
    item:
      type: docker:busybox
      openPorts: [ 80 ]
      env: { GREETING: hello }
      commands: "mkdir -p /www && echo $GREETING > /www/index.html && echo serving-$GREETING && exec httpd -f -p 80 -h /www"
  - id: bc-pair-RUN
    name: Two greetings
    itemType: template
    item:
      services:
      - type: bc-web-RUN
        id: w1
      - type: bc-web-RUN:1.0
        id: w2
        env: { GREETING: bonjour-RUN }
  - id: bc-restarter-RUN
    itemType: policy
    item:
      type: org.apache.brooklyn.policy.ha.ServiceRestarter
  - id: bc-loc-RUN
    itemType: location
    item: { type: clocker }
`, "RUN", run)
	// br catalog add bom.yaml: POST /v1/catalog?detail=true, application/x-yaml.
	code, body := brSend(t, "POST", "/v1/catalog?detail=true", "application/x-yaml", bom)
	var added brCatalogBundleAddResult
	if err := json.Unmarshal([]byte(body), &added); code/100 != 2 || err != nil || added.Code == "" || len(added.Types) != 4 {
		t.Fatalf("catalog add: %d %v %s", code, err, body)
	}
	t.Cleanup(func() {
		for _, p := range []string{"entities/bc-web-", "applications/bc-pair-", "policies/bc-restarter-", "locations/bc-loc-"} {
			brSend(t, "DELETE", "/v1/catalog/"+p+run+"/1.0", "", "")
		}
	})
	// br catalog list application|entity|policy|location.
	for _, c := range []struct{ path, want string }{
		{"/v1/catalog/applications?allVersions=true", "bc-pair-" + run + ":1.0"},
		{"/v1/catalog/entities?allVersions=true", "bc-web-" + run + ":1.0"},
		{"/v1/catalog/policies?allVersions", "bc-restarter-" + run + ":1.0"},
		{"/v1/catalog/locations?allVersions=true", "bc-loc-" + run + ":1.0"},
	} {
		var list []brCatalogItemSummary
		brGet(t, c.path, &list)
		found := false
		for _, it := range list {
			found = found || it.Id == c.want
		}
		if !found {
			t.Errorf("%s lacks %s: %v", c.path, c.want, list)
		}
	}
	// The built-in types are in the catalog too.
	var builtin []brCatalogItemSummary
	brGet(t, "/v1/catalog/entities?allVersions=true&fragment=MySqlNode", &builtin)
	if len(builtin) != 1 || builtin[0].SymbolicName != "org.apache.brooklyn.entity.database.mysql.MySqlNode" {
		t.Errorf("built-in MySqlNode: %v", builtin)
	}
	// br catalog show entity ID:VERSION.
	var shown brCatalogEntitySummary
	brGet(t, "/v1/catalog/entities/bc-web-"+run+"/1.0", &shown)
	if shown.Name != "Greeting web" || shown.JavaType != "docker:busybox" || !strings.Contains(shown.PlanYaml, "httpd") {
		t.Errorf("catalog show: %+v", shown)
	}

	// Deploy by type (br deploy: YAML under application/json).
	code, body = brSend(t, "POST", "/v1/applications", "application/json", "name: Pair "+run+"\nservices:\n- type: bc-pair-"+run+"\n")
	var task brTaskSummary
	if err := json.Unmarshal([]byte(body), &task); code != 201 || err != nil || task.EntityId == "" {
		t.Fatalf("deploy by type: %d %v %s", code, err, body)
	}
	app := task.EntityId
	if tk := brWaitTask(t, task.Id); tk["isError"] != false {
		t.Fatalf("start failed: %v", tk)
	}
	var ents []brEntitySummary
	brGet(t, "/v1/applications/"+app+"/entities", &ents)
	if len(ents) != 2 || ents[0].CatalogItemId != "bc-web-"+run+":1.0" || ents[0].Type != "docker:busybox" {
		t.Fatalf("entities of the template: %+v", ents)
	}
	for id, want := range map[string]string{"w1": "hello", "w2": "bonjour-" + run} {
		uri, _ := brSensor(t, app, id, "main.uri").(string)
		got := ""
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) && got != want {
			if resp, err := http.Get(uri); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				got = strings.TrimSpace(string(b))
			}
			time.Sleep(200 * time.Millisecond)
		}
		if got != want {
			t.Errorf("%s at %s served %q, want %q", id, uri, got, want)
		}
	}
	// br app APP activity; br activity ID; br act ID stdout.
	var acts []brTaskSummary
	brGet(t, "/v1/applications/"+app+"/entities/"+app+"/activities", &acts)
	if len(acts) == 0 || acts[0].DisplayName != "start" || len(acts[0].Children) != 2 {
		t.Fatalf("application activities: %+v", acts)
	}
	var kids []brTaskSummary
	brGet(t, "/v1/activities/"+acts[0].Id+"/children", &kids)
	if len(kids) != 2 || kids[0].SubmittedByTask.Metadata.Id != acts[0].Id {
		t.Fatalf("children of the start: %+v", kids)
	}
	var w2Acts []brTaskSummary
	brGet(t, "/v1/applications/"+app+"/entities/w2/activities", &w2Acts)
	if len(w2Acts) == 0 {
		t.Fatal("w2 has no activity")
	}
	w2Start := w2Acts[0].Id
	var one brTaskSummary
	want := "serving-bonjour-" + run + "\n"
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		brGet(t, "/v1/activities/"+w2Start, &one)
		if one.Streams["stdout"].Metadata.Size == int64(len(want)) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, body := brSend(t, "GET", "/v1/activities/"+w2Start+"/stream/stdout", "", ""); code != 200 || body != want {
		t.Errorf("stdout of w2's start: %d %q (size %d), want %q", code, body, one.Streams["stdout"].Metadata.Size, want)
	}
	if code, body := brSend(t, "GET", "/v1/activities/"+w2Start+"/stream/env", "", ""); code != 200 || !strings.Contains(body, "GREETING=bonjour-"+run+"\n") {
		t.Errorf("env of w2's start: %d %q", code, body)
	}

	// PUT /v1/applications/{id}: deployed under the id; again: 409.
	putID := "bcput" + run
	plan := "services: [ { type: bc-web-" + run + " } ]"
	code, body = brSend(t, "PUT", "/v1/applications/"+putID, "application/json", plan)
	if err := json.Unmarshal([]byte(body), &task); code != 201 || err != nil || task.EntityId != putID {
		t.Fatalf("PUT: %d %v %s", code, err, body)
	}
	brWaitTask(t, task.Id)
	code, body = brSend(t, "PUT", "/v1/applications/"+putID, "application/json", plan)
	var ae struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(body), &ae); code != 409 || err != nil || !strings.Contains(ae.Message, putID) {
		t.Errorf("second PUT: %d %s", code, body)
	}

	// A restart of clocker serve: the catalog and the history are back.
	stopServer()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := startServer(ctx, false); err != nil {
		t.Fatal(err)
	}
	brGet(t, "/v1/catalog/applications/bc-pair-"+run+"/1.0", &shown)
	brGet(t, "/v1/activities/"+w2Start, &one)
	if one.DisplayName != "start" || one.EntityDisplayName != "Greeting web" || one.SubmittedByTask.Metadata.Id != acts[0].Id {
		t.Errorf("w2's start after restart: %+v", one)
	}

	// br catalog delete entity ID:VERSION; then deploying by it is a 400.
	if code, body := brSend(t, "DELETE", "/v1/catalog/entities/bc-web-"+run+"/1.0", "", ""); code/100 != 2 {
		t.Errorf("catalog delete: %d %s", code, body)
	}
	if code, body := brSend(t, "POST", "/v1/applications", "application/json", plan); code != 400 || !strings.Contains(body, "bc-web-"+run) {
		t.Errorf("deploy of a deleted type: %d %s", code, body)
	}
	// br app APP delete, for both: nothing is left.
	for _, a := range []string{app, putID} {
		code, body := brSend(t, "DELETE", "/v1/applications/"+a, "", "")
		var del brTaskSummary
		if err := json.Unmarshal([]byte(body), &del); code != 202 || err != nil {
			t.Fatalf("delete %s: %d %s", a, code, body)
		}
		if tk := brWaitTask(t, del.Id); tk["isError"] != false {
			t.Fatalf("delete %s failed: %v", a, tk)
		}
		if left := engineObjects(t, a); len(left) > 0 {
			t.Errorf("left after DELETE of %s: %v", a, left)
		}
	}
}
