package hosts_test

import (
	"encoding/json"
	"testing"

	"github.com/clocker/clocker/internal/fakeengine"
)

// The image index answers by name, tag, digest, ID and ID prefix, and
// follows image events.
func TestHasImage(t *testing.T) {
	fleet, fakes := newFleet(t, fakeOpts{name: "h1", images: []string{}})
	h1, _ := fleet.Host("h1")
	if has, known := h1.HasImage("busybox"); has || !known {
		t.Fatalf("empty engine: HasImage(busybox) = %v, %v; want false, true", has, known)
	}
	const id = "sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741"
	fakes["h1"].PutImage(fakeengine.Image{ID: id, RepoTags: []string{"busybox:latest", "registry.local:5000/team/app:1.2"},
		RepoDigests: []string{"busybox@sha256:1111111111111111111111111111111111111111111111111111111111111111"}})
	waitFor(t, "image event", func() bool { has, _ := h1.HasImage("busybox"); return has })
	for ref, want := range map[string]bool{
		"busybox":                          true,
		"busybox:latest":                   true,
		"docker.io/library/busybox":        true,
		"docker.io/library/busybox:latest": true,
		"busybox:1.36":                     false,
		"registry.local:5000/team/app:1.2": true,
		"registry.local:5000/team/app":     false, // :latest is not there
		"team/app:1.2":                     false, // another registry
		"busybox@sha256:1111111111111111111111111111111111111111111111111111111111111111": true,
		"busybox@sha256:2222222222222222222222222222222222222222222222222222222222222222": false,
		id:             true,
		"3f57d9401f8d": true,
		"3f57d9401f8e": false,
		"redis":        false,
		"":             false,
	} {
		if has, known := h1.HasImage(ref); has != want || !known {
			t.Errorf("HasImage(%q) = %v, %v; want %v, true", ref, has, known, want)
		}
	}
}

// Inspect is cached and follows the container's events.
func TestInspectCache(t *testing.T) {
	fleet, fakes := newFleet(t, fakeOpts{name: "h1"})
	f := fakes["h1"]
	id := f.add("", "web", "created", "", false)
	state := func() string {
		c, ok := cached(fleet, id)
		if !ok || c.Inspect == nil {
			return ""
		}
		var in struct{ State struct{ Status string } }
		if err := json.Unmarshal(c.Inspect, &in); err != nil {
			t.Fatal(err)
		}
		return in.State.Status
	}
	waitFor(t, "inspect cached as created", func() bool { return state() == "created" })
	h1, _ := fleet.Host("h1")
	gen := h1.Generation()
	_ = f.Start(id)
	waitFor(t, "inspect cached as running", func() bool { return state() == "running" })
	if h1.Generation() == gen {
		t.Error("generation did not move with a start")
	}
}
