package proxy_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/clocker/clocker/internal/fakeengine"
)

// idStale is the image app:1 names on h1 before a test sets it elsewhere.
var idStale = "sha256:" + strings.Repeat("a", 64)

// createOn creates a container of image through the proxy and returns the
// host it was placed on.
func (e *imgEnv) createOn(image string) string {
	e.t.Helper()
	host, _ := e.createdOn(image)
	return host
}

// createdOn is createOn that also returns the container's ID.
func (e *imgEnv) createdOn(image string) (host, id string) {
	e.t.Helper()
	status, body := e.do("POST", "/v1.41/containers/create", "", []byte(`{"Image":"`+image+`"}`))
	var created struct {
		ID string `json:"Id"`
	}
	if status != 201 || json.Unmarshal([]byte(body), &created) != nil {
		e.t.Fatalf("create of %s = %d %s", image, status, body)
	}
	for name, s := range e.engines {
		if _, ok := s.Container(created.ID); ok {
			return name, created.ID
		}
	}
	e.t.Fatalf("container %s on no engine", created.ID)
	return "", ""
}

// listedTag counts the rows of the proxy's image list that carry tag.
func (e *imgEnv) listedTag(tag string) int {
	e.t.Helper()
	status, body := e.do("GET", "/v1.41/images/json", "", nil)
	var rows []struct{ RepoTags []string }
	if status != 200 || json.Unmarshal([]byte(body), &rows) != nil {
		e.t.Fatalf("images = %d %s", status, body)
	}
	n := 0
	for _, r := range rows {
		for _, t := range r.RepoTags {
			if t == tag {
				n++
			}
		}
	}
	return n
}

// A commit, build, tag, load or pull that sets app:1 on h2 untags h1's
// older app:1 before it answers: the list shows app:1 once, a container
// of app:1 is placed on h2, and h3 (which never had it) is asked nothing.
func TestImageOperationMovesTagAcrossFleet(t *testing.T) {
	tests := []struct {
		name string
		set  func(e *imgEnv) (int, string)
		want int // the operation's status
	}{
		{"commit", func(e *imgEnv) (int, string) {
			id, err := e.engines["h2"].Create(fakeengine.Spec{Name: "src", Image: "busybox"})
			if err != nil {
				t.Fatal(err)
			}
			h2, _ := e.fleet.Host("h2")
			waitFor(t, "the container cached", func() bool { _, ok := h2.Container(id); return ok })
			return e.do("POST", "/v1.41/commit?container=src&repo=app&tag=1", "", []byte("{}"))
		}, 201},
		{"build", func(e *imgEnv) (int, string) {
			return e.do("POST", "/v1.41/build?t=app:1", "h2", []byte("a build context"))
		}, 200},
		{"tag", func(e *imgEnv) (int, string) {
			e.engines["h2"].PutImage(fakeengine.Image{ID: "sha256:" + strings.Repeat("b", 64), RepoTags: []string{"base:1"}})
			h2, _ := e.fleet.Host("h2")
			waitFor(t, "base:1 indexed", func() bool { ok, _ := h2.HasImage("base:1"); return ok })
			return e.do("POST", "/v1.41/images/base:1/tag?repo=app&tag=1", "", nil)
		}, 201},
		{"load", func(e *imgEnv) (int, string) {
			return e.do("POST", "/v1.41/images/load", "h2", fakeengine.ImageArchive("app:1"))
		}, 200},
		{"pull", func(e *imgEnv) (int, string) {
			return e.do("POST", "/v1.41/images/create?fromImage=app&tag=1", "h2", nil)
		}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newImgEnv(t, 3)
			e.engines["h1"].PutImage(fakeengine.Image{ID: idStale, RepoTags: []string{"app:1"}})
			h1, _ := e.fleet.Host("h1")
			waitFor(t, "h1's app:1 indexed", func() bool { ok, _ := h1.HasImage("app:1"); return ok })
			if status, body := tt.set(e); status != tt.want {
				t.Fatalf("%s = %d %s", tt.name, status, body)
			}
			if _, ok := e.engines["h1"].ImageID("app:1"); ok {
				t.Error("h1's engine still has its app:1")
			}
			if e.has("h1", "app:1") {
				t.Error("h1's index still has app:1 after the answer")
			}
			if !e.has("h2", "app:1") {
				t.Fatal("h2's index lacks the app:1 it was given")
			}
			if n := e.listedTag("app:1"); n != 1 {
				t.Errorf("app:1 listed %d times, want once", n)
			}
			if host := e.createOn("app:1"); host != "h2" {
				t.Errorf("a container of app:1 placed on %s, want h2", host)
			}
			for call, n := range e.engines["h3"].Requests() {
				if strings.Contains(call, "app:1") || call == "GET /images/json" && n > 1 {
					t.Errorf("h3 served %s %d times", call, n)
				}
			}
		})
	}
}

// The case: docker commit on one host, docker build of the same
// tag placed on another, docker run: the run starts the build.
func TestCommitThenBuildRunsTheBuild(t *testing.T) {
	e := newImgEnv(t, 3)
	id, err := e.engines["h1"].Create(fakeengine.Spec{Name: "src", Image: "busybox", Running: true})
	if err != nil {
		t.Fatal(err)
	}
	h1, _ := e.fleet.Host("h1")
	waitFor(t, "the container cached", func() bool { _, ok := h1.Container(id); return ok })
	if status, body := e.do("POST", "/v1.41/commit?container=src&repo=app&tag=1", "", []byte("{}")); status != 201 {
		t.Fatalf("commit = %d %s", status, body)
	}
	host, user := e.createdOn("app:1")
	if host != "h1" {
		t.Fatalf("a container of the commit placed on %s, want h1", host)
	}
	if err := e.engines["h1"].Start(user); err != nil {
		t.Fatal(err)
	}
	committed, _ := e.engines["h1"].ImageID("app:1")
	if status, body := e.do("POST", "/v1.41/build?t=app:1", "h2", []byte("a build context")); status != 200 || !strings.Contains(body, "Successfully tagged app:1") {
		t.Fatalf("build = %d %s", status, body)
	}
	built, _ := e.engines["h2"].ImageID("app:1")
	for range 4 { // spread would use every host that had the image
		if host := e.createOn("app:1"); host != "h2" {
			t.Fatalf("a container of app:1 placed on %s, want h2 (the build)", host)
		}
	}
	if n := e.listedTag("app:1"); n != 1 {
		t.Errorf("app:1 listed %d times, want once", n)
	}
	// The committed image stays on h1, untagged, for its running container.
	if got, ok := e.engines["h1"].ImageID(committed); !ok || got == built {
		t.Errorf("h1 lost the committed image its container uses")
	}
}
