package blueprint

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/clocker/clocker/internal/store"
)

// taskSummary is br's models.TaskSummary (the fields br reads, typed as
// br decodes them).
type taskSummary struct {
	ID                string `json:"id"`
	DisplayName       string `json:"displayName"`
	EntityID          string `json:"entityId"`
	EntityDisplayName string `json:"entityDisplayName"`
	CurrentStatus     string `json:"currentStatus"`
	SubmitTimeUtc     int64  `json:"submitTimeUtc"`
	EndTimeUtc        int64  `json:"endTimeUtc"`
	IsError           bool   `json:"isError"`
	SubmittedByTask   *struct {
		Link     string            `json:"link"`
		Metadata map[string]string `json:"metadata"`
	} `json:"submittedByTask"`
	Children []struct {
		Link     string            `json:"link"`
		Metadata map[string]string `json:"metadata"`
	} `json:"children"`
	Streams map[string]struct {
		Link     string `json:"link"`
		Metadata struct {
			Name     string `json:"name"`
			Size     int64  `json:"size"`
			SizeText string `json:"sizeText"`
		} `json:"metadata"`
	} `json:"streams"`
	Links map[string]string `json:"links"`
}

func (e *env) tasks(path string) []taskSummary {
	e.t.Helper()
	code, body := e.do("GET", path, "", "")
	var out []taskSummary
	if err := json.Unmarshal([]byte(body), &out); code != 200 || err != nil {
		e.t.Fatalf("%s: %d %v %s", path, code, err, body)
	}
	return out
}

// TestActivities: the application's start has a child per entity; a
// container entity's start has its container's stdout and stderr as
// streams; the history outlives a restart.
func TestActivities(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e := newEnv(t, st, newFake())
	app := e.deploy("name: acts\nservices:\n- { type: docker:busybox, id: a, env: { X: y } }\n- { type: docker:alpine, id: b }\n")
	starts := e.tasks("/v1/applications/" + app + "/entities/" + app + "/activities")
	if len(starts) != 1 || starts[0].DisplayName != "start" || len(starts[0].Children) != 2 {
		t.Fatalf("app activities %+v", starts)
	}
	kids := e.tasks("/v1/activities/" + starts[0].ID + "/children")
	if len(kids) != 2 || kids[0].SubmittedByTask == nil || kids[0].SubmittedByTask.Metadata["id"] != starts[0].ID {
		t.Fatalf("children %+v", kids)
	}
	a := e.tasks("/v1/applications/" + app + "/entities/a/activities")
	if len(a) != 1 || a[0].Streams["stdout"].Metadata.Size != int64(len("busybox:latest\n")) || a[0].Streams["stderr"].Metadata.Size != 5 {
		t.Fatalf("a's activities %+v", a)
	}
	if code, body := e.do("GET", a[0].Streams["stdout"].Link, "", ""); code != 200 || body != "busybox:latest\n" {
		t.Errorf("stdout: %d %q", code, body)
	}
	if code, body := e.do("GET", "/v1/activities/"+a[0].ID+"/stream/stderr", "", ""); code != 200 || body != "warn\n" {
		t.Errorf("stderr: %d %q", code, body)
	}
	if code, body := e.do("GET", "/v1/activities/"+a[0].ID+"/stream/env", "", ""); code != 200 || body != "X=y\n" || a[0].Streams["env"].Metadata.Size != 4 {
		t.Errorf("env: %d %q", code, body)
	}
	if code, _ := e.do("GET", "/v1/activities/"+a[0].ID+"/stream/stdin", "", ""); code != 404 {
		t.Errorf("stdin: %d, want 404", code)
	}
	if code, _ := e.do("GET", "/v1/activities/"+starts[0].ID+"/stream/stdout", "", ""); code != 404 {
		t.Errorf("the application's start has no stream: %d", code)
	}
	if code, _ := e.do("GET", "/v1/activities/nosuchtask/children", "", ""); code != 404 {
		t.Errorf("unknown activity: %d", code)
	}
	e.srv.Close()
	e.m.Close()

	e2 := newEnv(t, st, e.eng)
	if err := e2.m.Resume(); err != nil {
		t.Fatal(err)
	}
	code, body := e2.do("GET", "/v1/activities/"+a[0].ID, "", "")
	if code != 200 || !strings.Contains(body, `"currentStatus":"Completed"`) || !strings.Contains(body, starts[0].ID) {
		t.Errorf("after restart: %d %s", code, body)
	}
	kids = e2.tasks("/v1/activities/" + starts[0].ID + "/children")
	if len(kids) != 2 {
		t.Errorf("children after restart %+v", kids)
	}
}
