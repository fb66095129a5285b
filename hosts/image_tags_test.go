package hosts_test

import (
	"strings"
	"testing"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/fakeengine"
)

// Image IDs and digests the tag tests put on their engines.
var (
	idOld   = "sha256:" + strings.Repeat("a", 64)
	idNew   = "sha256:" + strings.Repeat("b", 64)
	digest1 = "app@sha256:" + strings.Repeat("1", 64)
	digest2 = "app@sha256:" + strings.Repeat("2", 64)
)

// tagFleet is h1, h2 and h3, each with busybox.
func tagFleet(t *testing.T) (*hosts.Fleet, map[string]*fakeEngine) {
	t.Helper()
	return newFleet(t, fakeOpts{name: "h1"}, fakeOpts{name: "h2"}, fakeOpts{name: "h3"})
}

// put stores an image on a host and waits until its index has it.
func put(t *testing.T, fleet *hosts.Fleet, fakes map[string]*fakeEngine, host string, im fakeengine.Image) {
	t.Helper()
	fakes[host].PutImage(im)
	h, _ := fleet.Host(host)
	if err := h.RefreshImages(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

// setOn sets app:1 on host to im the way an image operation through
// Clocker would (a watch, the change, a refresh) and settles the fleet.
func setOn(t *testing.T, fleet *hosts.Fleet, fakes map[string]*fakeEngine, host string, im fakeengine.Image) {
	t.Helper()
	h, _ := fleet.Host(host)
	w := h.WatchTags()
	put(t, fleet, fakes, host, im)
	if err := fleet.UntagStale(testCtx(t), []hosts.TagWatch{w}); err != nil {
		t.Fatalf("UntagStale: %v", err)
	}
}

func has(fleet *hosts.Fleet, host, ref string) bool {
	h, _ := fleet.Host(host)
	ok, _ := h.HasImage(ref)
	return ok
}

// A tag set on one host is removed where another host holds it for
// another image, not where it is the same image or the same pull; the
// image goes with it unless other tags or a running container keep it.
func TestUntagStale(t *testing.T) {
	tests := []struct {
		name        string
		stale       fakeengine.Image // on h1, before app:1 is set on h2
		user        string           // a container on h1 from app:1: "", "running", "exited"
		set         fakeengine.Image // app:1 set on h2
		wantTag     bool             // h1 still has app:1
		wantImage   bool             // h1 still has the stale image
		wantDeletes int              // DELETE /images/app:1 on h1
	}{
		{name: "another image is untagged and goes",
			stale: fakeengine.Image{ID: idOld, RepoTags: []string{"app:1"}}, set: fakeengine.Image{ID: idNew, RepoTags: []string{"app:1"}},
			wantDeletes: 1},
		{name: "the same image stays",
			stale: fakeengine.Image{ID: idNew, RepoTags: []string{"app:1"}}, set: fakeengine.Image{ID: idNew, RepoTags: []string{"app:1"}},
			wantTag: true, wantImage: true},
		{name: "the same pull on another platform stays",
			stale:   fakeengine.Image{ID: idOld, RepoTags: []string{"app:1"}, RepoDigests: []string{digest1}},
			set:     fakeengine.Image{ID: idNew, RepoTags: []string{"app:1"}, RepoDigests: []string{digest1}},
			wantTag: true, wantImage: true},
		{name: "another pull is untagged",
			stale:       fakeengine.Image{ID: idOld, RepoTags: []string{"app:1"}, RepoDigests: []string{digest1}},
			set:         fakeengine.Image{ID: idNew, RepoTags: []string{"app:1"}, RepoDigests: []string{digest2}},
			wantDeletes: 1},
		{name: "another tag keeps the image",
			stale: fakeengine.Image{ID: idOld, RepoTags: []string{"app:1", "keep:1"}}, set: fakeengine.Image{ID: idNew, RepoTags: []string{"app:1"}},
			wantImage: true, wantDeletes: 1},
		{name: "a running container keeps the image, untagged",
			stale: fakeengine.Image{ID: idOld, RepoTags: []string{"app:1"}}, user: "running", set: fakeengine.Image{ID: idNew, RepoTags: []string{"app:1"}},
			wantImage: true, wantDeletes: 2},
		{name: "a stopped container's image goes, as with rmi -f",
			stale: fakeengine.Image{ID: idOld, RepoTags: []string{"app:1"}}, user: "exited", set: fakeengine.Image{ID: idNew, RepoTags: []string{"app:1"}},
			wantDeletes: 2},
		{name: "a digest is not a tag",
			stale: fakeengine.Image{ID: idOld, RepoTags: []string{"app:1"}}, set: fakeengine.Image{ID: idNew, RepoDigests: []string{digest2}},
			wantTag: true, wantImage: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fleet, fakes := tagFleet(t)
			put(t, fleet, fakes, "h1", tt.stale)
			var user string
			if tt.user != "" {
				var err error
				if user, err = fakes["h1"].Create(fakeengine.Spec{Name: "user", Image: "app:1", Running: true}); err != nil {
					t.Fatal(err)
				}
				if tt.user == "exited" {
					if err := fakes["h1"].Stop(user); err != nil {
						t.Fatal(err)
					}
				}
			}
			setOn(t, fleet, fakes, "h2", tt.set)
			if got := has(fleet, "h1", "app:1"); got != tt.wantTag {
				t.Errorf("h1's index has app:1 = %v, want %v", got, tt.wantTag)
			}
			if _, got := fakes["h1"].ImageID("app:1"); got != tt.wantTag {
				t.Errorf("h1's engine has app:1 = %v, want %v", got, tt.wantTag)
			}
			if _, got := fakes["h1"].ImageID(tt.stale.ID); got != tt.wantImage {
				t.Errorf("h1's engine has the stale image = %v, want %v", got, tt.wantImage)
			}
			if got := fakes["h1"].served("DELETE /images/app:1"); got != tt.wantDeletes {
				t.Errorf("h1 served %d DELETE /images/app:1, want %d", got, tt.wantDeletes)
			}
			if user != "" {
				if _, ok := fakes["h1"].Container(user); !ok {
					t.Error("the container of the stale image went")
				}
			}
			if tt.set.RepoTags != nil && !has(fleet, "h2", "app:1") {
				t.Error("h2 lost the tag it set")
			}
			for name, f := range map[string]*fakeEngine{"h2": fakes["h2"], "h3": fakes["h3"]} {
				if n := f.served("DELETE /images/app:1") + f.served("GET /images/app:1/json"); n != 0 {
					t.Errorf("%s was asked %d times about app:1, want 0", name, n)
				}
			}
		})
	}
}

// A watch over a host whose tags did not move asks no engine anything.
func TestUntagStaleNothingMoved(t *testing.T) {
	fleet, fakes := tagFleet(t)
	put(t, fleet, fakes, "h1", fakeengine.Image{ID: idOld, RepoTags: []string{"app:1"}})
	put(t, fleet, fakes, "h2", fakeengine.Image{ID: idNew, RepoTags: []string{"app:1"}})
	before := map[string]map[string]int{}
	for name, f := range fakes {
		before[name] = f.Requests()
	}
	var watches []hosts.TagWatch
	for _, h := range fleet.Hosts() {
		watches = append(watches, h.WatchTags())
	}
	if err := fleet.UntagStale(testCtx(t), watches); err != nil {
		t.Fatal(err)
	}
	for name, f := range fakes {
		for call, n := range f.Requests() {
			// The image list is the host's own refresh, which the put's
			// event may still be running; only an untag's questions count.
			if n != before[name][call] && strings.Contains(call, "/images") && call != "GET /images/json" {
				t.Errorf("%s served %s with nothing moved", name, call)
			}
		}
	}
	if !has(fleet, "h1", "app:1") || !has(fleet, "h2", "app:1") {
		t.Error("a tag went with nothing moved")
	}
}

// One operation that sets a tag on two hosts to two images (a tag of a
// name that differs between them) keeps both; of two operations that both
// set a tag before either settled, the first to settle wins.
func TestUntagStaleSetters(t *testing.T) {
	fleet, fakes := tagFleet(t)
	put(t, fleet, fakes, "h3", fakeengine.Image{ID: "sha256:" + strings.Repeat("c", 64), RepoTags: []string{"app:1"}})
	h1, _ := fleet.Host("h1")
	h2, _ := fleet.Host("h2")
	w1, w2 := h1.WatchTags(), h2.WatchTags()
	put(t, fleet, fakes, "h1", fakeengine.Image{ID: idOld, RepoTags: []string{"app:1"}})
	put(t, fleet, fakes, "h2", fakeengine.Image{ID: idNew, RepoTags: []string{"app:1"}})
	if err := fleet.UntagStale(testCtx(t), []hosts.TagWatch{w1, w2}); err != nil {
		t.Fatal(err)
	}
	if !has(fleet, "h1", "app:1") || !has(fleet, "h2", "app:1") || has(fleet, "h3", "app:1") {
		t.Fatalf("app:1 on h1 %v, h2 %v, h3 %v; want the two setters only",
			has(fleet, "h1", "app:1"), has(fleet, "h2", "app:1"), has(fleet, "h3", "app:1"))
	}

	// Two settlements: h2's then h1's, of two builds that ended together.
	w1, w2 = h1.WatchTags(), h2.WatchTags()
	put(t, fleet, fakes, "h1", fakeengine.Image{ID: "sha256:" + strings.Repeat("d", 64), RepoTags: []string{"app:2"}})
	put(t, fleet, fakes, "h2", fakeengine.Image{ID: "sha256:" + strings.Repeat("e", 64), RepoTags: []string{"app:2"}})
	if err := fleet.UntagStale(testCtx(t), []hosts.TagWatch{w2}); err != nil {
		t.Fatal(err)
	}
	if err := fleet.UntagStale(testCtx(t), []hosts.TagWatch{w1}); err != nil {
		t.Fatal(err)
	}
	if has(fleet, "h1", "app:2") || !has(fleet, "h2", "app:2") {
		t.Fatalf("app:2 on h1 %v, h2 %v; want h2's (the first settled) alone", has(fleet, "h1", "app:2"), has(fleet, "h2", "app:2"))
	}
}
