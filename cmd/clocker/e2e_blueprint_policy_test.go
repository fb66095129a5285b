//go:build e2e

package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// brDeploy posts a blueprint and waits for its start task.
func brDeploy(t *testing.T, plan string) string {
	t.Helper()
	app, start := brSubmit(t, plan)
	brWaitTask(t, start)
	return app
}

func brEventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// killOnEngine kills a container on whichever engine holds it, as a crash.
func killOnEngine(t *testing.T, id string) {
	t.Helper()
	for i := range fleet.Engines {
		if strings.TrimSpace(engineDocker(t, i, "ps", "-q", "--no-trunc", "--filter", "id="+id)) != "" {
			engineDocker(t, i, "kill", id)
			return
		}
	}
	t.Fatalf("container %s on no engine", id)
}

// TestE2EBlueprintRestarter: a container killed through its engine
// directly goes on fire and the ServiceRestarter brings the same
// container back.
func TestE2EBlueprintRestarter(t *testing.T) {
	app := brDeploy(t, `name: healed
services:
- type: docker:busybox
  id: db
  commands: sleep 3600
  brooklyn.enrichers:
  - type: org.apache.brooklyn.policy.ha.ServiceFailureDetector
  brooklyn.policies:
  - type: org.apache.brooklyn.policy.ha.ServiceRestarter
`)
	id := fmt.Sprint(brSensor(t, app, "db", "docker.container.id"))
	killOnEngine(t, id)
	brEventually(t, "ha.entityFailed", func() bool {
		code, _ := brDo(t, "GET", "/v1/applications/"+app+"/entities/db/sensors/ha.entityFailed", "")
		return code == 200
	})
	brEventually(t, "db running again", func() bool {
		return brSensor(t, app, "db", "service.state") == "running" && brSensor(t, app, "db", "docker.container.running") == true
	})
	if got := fmt.Sprint(brSensor(t, app, "db", "docker.container.id")); got != id {
		t.Errorf("restarted as another container %s (was %s)", got, id)
	}
	code, body := brDo(t, "GET", "/v1/applications/"+app+"/entities/db/policies", "")
	if code != 200 || !strings.Contains(body, `"name":"ServiceRestarter"`) || !strings.Contains(body, `"state":"RUNNING"`) {
		t.Errorf("policies: %d %s", code, body)
	}
}

// TestE2EBlueprintClusterResize: a DynamicCluster of initialSize 2 grows
// to 3 and shrinks to 1 by effector, with a container per member.
func TestE2EBlueprintClusterResize(t *testing.T) {
	app := brDeploy(t, `name: cluster
services:
- type: org.apache.brooklyn.entity.group.DynamicCluster
  id: web
  initialSize: 2
  memberSpec:
    $brooklyn:entitySpec:
      type: docker:busybox
      commands: sleep 3600
`)
	count := func() int {
		n := 0
		for i := range fleet.Engines {
			n += len(strings.Fields(engineDocker(t, i, "ps", "-q", "--filter", "label=io.clocker.blueprint.application="+app)))
		}
		return n
	}
	if got := brSensor(t, app, "web", "group.members.count"); got != float64(2) || count() != 2 {
		t.Fatalf("initial: count sensor %v, %d containers", got, count())
	}
	code, body := apiCallHeader(t, "POST", "/v1/applications/"+app+"/entities/web/effectors/resize", brForm(), strings.NewReader("desiredSize=3"))
	if code != 200 || strings.TrimSpace(body) != "3" {
		t.Fatalf("resize: %d %s", code, body)
	}
	if n := count(); n != 3 {
		t.Errorf("%d running containers after resize 3", n)
	}
	code, body = apiCallHeader(t, "POST", "/v1/applications/"+app+"/entities/web/effectors/resizeByDelta", brForm(), strings.NewReader("delta=-2"))
	if code != 200 || strings.TrimSpace(body) != "1" {
		t.Fatalf("resizeByDelta: %d %s", code, body)
	}
	if n := count(); n != 1 {
		t.Errorf("%d containers after shrinking to 1", n)
	}
	if got := brSensor(t, app, "web", "service.isUp"); got != true {
		t.Errorf("cluster isUp %v", got)
	}
}

// brForm is how br sends effector parameters.
func brForm() http.Header {
	h := http.Header{}
	h.Set("Authorization", "Basic YWRtaW46cGFzc3dvcmQ=")
	h.Set("Accept", "application/json, text/plain")
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	return h
}
