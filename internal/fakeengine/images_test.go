package fakeengine

import (
	"encoding/json"
	"strings"
	"testing"
)

// A commit and a build make images of their own and move the tags they
// name; the image a tag leaves goes unless a container uses it.
func TestCommitAndBuildMoveTags(t *testing.T) {
	s, _ := start(t, Options{Name: "h1", Images: []string{"busybox"}})
	if _, err := s.Create(Spec{Name: "src", Image: "busybox"}); err != nil {
		t.Fatal(err)
	}
	code, body := do(t, s, "POST", "/v1.41/commit?container=src&repo=app&tag=1", "")
	var committed struct {
		ID string `json:"Id"`
	}
	if code != 201 || json.Unmarshal([]byte(body), &committed) != nil || !strings.HasPrefix(committed.ID, "sha256:") {
		t.Fatalf("commit = %d %s", code, body)
	}
	if id, _ := s.ImageID("app:1"); id != committed.ID {
		t.Fatalf("app:1 = %s, want the commit's %s", id, committed.ID)
	}
	code, body = do(t, s, "POST", "/v1.41/build?t=app:1&t=app:latest", "context")
	if code != 200 || !strings.Contains(body, "Successfully tagged app:1") || !strings.Contains(body, "Successfully tagged app:latest") {
		t.Fatalf("build = %d %s", code, body)
	}
	built, _ := s.ImageID("app:1")
	if built == committed.ID || built == "" {
		t.Fatalf("app:1 = %s after the build, want a new image", built)
	}
	if latest, _ := s.ImageID("app"); latest != built {
		t.Fatalf("app:latest = %s, want %s", latest, built)
	}
	if _, ok := s.ImageID(committed.ID); ok {
		t.Error("the committed image, no longer tagged and unused, is still there")
	}
	if code, body := do(t, s, "POST", "/v1.41/commit?container=nope&repo=x", ""); code != 404 {
		t.Errorf("commit of a missing container = %d %s", code, body)
	}
}

// DELETE /images/{tag} as dockerd: a container's image keeps its last tag
// unless forced; forced, a running container's image stays untagged and
// a stopped one's goes; an image with other tags loses just the one.
func TestRemoveImageInUse(t *testing.T) {
	tests := []struct {
		name      string
		running   bool
		otherTag  bool
		force     bool
		wantCode  int
		wantTag   bool // app:1 still there
		wantImage bool // the image still there
	}{
		{name: "stopped user, not forced", wantCode: 409, wantTag: true, wantImage: true},
		{name: "running user, not forced", running: true, wantCode: 409, wantTag: true, wantImage: true},
		{name: "running user, forced", running: true, force: true, wantCode: 200, wantImage: true},
		{name: "stopped user, forced", force: true, wantCode: 200},
		{name: "other tag, not forced", otherTag: true, wantCode: 200, wantImage: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := start(t, Options{Name: "h1", Images: []string{"app:1"}})
			id, _ := s.ImageID("app:1")
			if tt.otherTag {
				if code, body := do(t, s, "POST", "/v1.41/images/app:1/tag?repo=other&tag=2", ""); code != 201 {
					t.Fatalf("tag = %d %s", code, body)
				}
			}
			ctr, err := s.Create(Spec{Name: "user", Image: "app:1", Running: tt.running})
			if err != nil {
				t.Fatal(err)
			}
			path := "/v1.41/images/app:1?noprune=1"
			if tt.force {
				path += "&force=1"
			}
			code, body := do(t, s, "DELETE", path, "")
			if code != tt.wantCode {
				t.Fatalf("DELETE = %d %s, want %d", code, body, tt.wantCode)
			}
			if _, ok := s.ImageID("app:1"); ok != tt.wantTag {
				t.Errorf("app:1 there = %v, want %v", ok, tt.wantTag)
			}
			if _, ok := s.ImageID(id); ok != tt.wantImage {
				t.Errorf("image there = %v, want %v", ok, tt.wantImage)
			}
			if c, _ := s.Container(ctr); c.ID != ctr {
				t.Fatal("the container went")
			}
			if _, body := get(t, s, "/v1.41/containers/"+ctr+"/json"); !strings.Contains(body, `"Image":"`+id+`"`) {
				t.Errorf("the container's image is not %s: %s", id, body)
			}
			if tt.wantImage && !tt.wantTag && !tt.otherTag {
				if _, body := get(t, s, "/v1.41/images/json"); !strings.Contains(body, `"RepoTags":["\u003cnone\u003e:\u003cnone\u003e"]`) {
					t.Errorf("the untagged image is not listed as <none>: %s", body)
				}
			}
		})
	}
}
