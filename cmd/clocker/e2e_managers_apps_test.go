//go:build e2e

package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clocker/clocker/internal/labels"
)

// managersAppPlan is a one-container blueprint.
const managersAppPlan = `name: etmgapp
services:
- type: docker:busybox
  id: one
  commands: "exec sleep 600"
`

// appThroughReplica deploys a blueprint through a replica: the client
// follows the replica's 307 to the leader (as br does), the leader runs
// it, and every manager lists it. It answers the application's id.
func appThroughReplica(t *testing.T, mgrs []*ownServer, lead *ownServer) string {
	t.Helper()
	var replica *ownServer
	for _, m := range mgrs {
		if m != lead {
			replica = m
			break
		}
	}
	code, body := httpPost(replica, "/v1/applications", managersAppPlan)
	if code != http.StatusCreated {
		t.Fatalf("deploy through the replica %s: %d %s", replica.url, code, body)
	}
	var task struct{ EntityID string }
	if err := json.Unmarshal([]byte(body), &task); err != nil || task.EntityID == "" {
		t.Fatalf("deploy answer: %s", body)
	}
	app := task.EntityID
	t.Cleanup(func() {
		for i := range fleet.Engines {
			if ids := strings.Fields(engineDocker(t, i, "ps", "-aq", "--filter", "label="+labels.BlueprintApplication+"="+app)); len(ids) > 0 {
				engineDocker(t, i, append([]string{"rm", "-f"}, ids...)...)
			}
		}
	})
	waitUntil(t, time.Minute, "etmgapp up, as every manager shows it", func() bool {
		for _, m := range mgrs {
			if code, body := httpGet(m, "/v1/applications/"+app+"/entities/one/sensors/service.isUp"); code != http.StatusOK || strings.TrimSpace(body) != "true" {
				return false
			}
		}
		return true
	})
	return app
}

// appSurvivesFailover: after the leader that ran it was killed, the
// application is the new leader's (resumed from etcd), listed through
// both survivors, its one container made once and still running.
func appSurvivesFailover(t *testing.T, survivors []*ownServer, app string) {
	t.Helper()
	for _, m := range survivors {
		waitUntil(t, 30*time.Second, "etmgapp listed through "+m.url, func() bool {
			code, body := httpGet(m, "/v1/applications")
			return code == http.StatusOK && strings.Contains(body, `"id":"`+app+`"`)
		})
	}
	waitUntil(t, 30*time.Second, "etmgapp up on the new leader", func() bool {
		code, body := httpGet(survivors[0], "/v1/applications/"+app+"/entities/one/sensors/service.isUp")
		return code == http.StatusOK && strings.TrimSpace(body) == "true"
	})
	var made []string
	for i := range fleet.Engines {
		made = append(made, strings.Fields(engineDocker(t, i, "ps", "-a", "--filter", "label="+labels.BlueprintApplication+"="+app, "--format", "{{.State}}"))...)
	}
	if len(made) != 1 || made[0] != "running" {
		t.Errorf("etmgapp's containers on the engines after the failover: %v, want one running", made)
	}
}
