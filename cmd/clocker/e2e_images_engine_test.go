//go:build e2e

package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Image routes compared with one engine (the reference engine): the same
// requests sent to it directly and to Clocker must answer alike.

// postTar posts a tar to url as the Python SDK does (the parameters in
// the query) and returns the status, the content type and the body.
func postTar(t testing.TB, url, ctype string, tar []byte) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(tar))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// rawLoad is POST /images/load (no quiet parameter unless url has one).
func rawLoad(t testing.TB, url string, tar []byte) (int, string, string) {
	t.Helper()
	return postTar(t, url, "application/x-tar", tar)
}

// sdkLoaded is what docker-py's images.load() reads from a load answer:
// the names of "Loaded image: …" and "Loaded image ID: …" messages, and
// the error message if any.
func sdkLoaded(t testing.TB, body string) (names []string, errMsg string) {
	t.Helper()
	re := regexp.MustCompile(`(^Loaded image ID: |^Loaded image: )(.+)$`)
	dec := json.NewDecoder(strings.NewReader(body))
	for dec.More() {
		var m struct {
			Stream      string
			ErrorDetail *struct{ Message string }
		}
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("load answer is not a JSON stream: %v\n%s", err, body)
		}
		if g := re.FindStringSubmatch(strings.TrimSuffix(m.Stream, "\n")); g != nil {
			names = append(names, g[2])
		}
		if m.ErrorDetail != nil {
			errMsg = m.ErrorDetail.Message
		}
	}
	return names, errMsg
}

// progressIDs are the layer IDs of a load answer's progress messages, and
// its other messages in order.
func progressIDs(t testing.TB, body string) (ids []string, rest []string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		var m struct{ ID string }
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("load answer line %q: %v", line, err)
		}
		if m.ID == "" {
			rest = append(rest, line)
		} else if !slices.Contains(ids, m.ID) {
			ids = append(ids, m.ID)
		}
	}
	slices.Sort(ids)
	return ids, rest
}

func TestE2EImagesLoadAnswersAsAnEngine(t *testing.T) {
	referenceEngine(t)
	dir := t.TempDir()
	removeImageEverywhere(t, "e2eimg-repo:1", "e2eimg-repo:2", "e2eimg-fresh:1")
	t.Cleanup(func() {
		for _, ref := range []string{"e2eimg-repo:1", "e2eimg-repo:2", "e2eimg-fresh:1"} {
			_, _ = refFleet.Docker(t.Context(), refFleet.Engines[0].Name, "rmi", "-f", ref)
		}
	})
	// load runs docker load of file through Clocker and on the reference
	// engine: the CLI prints the same.
	load := func(name, file string) {
		t.Helper()
		got := mustDocker(t, "load", "-i", file)
		want := strings.TrimSpace(refDocker(t, "load", "-i", file))
		if got != want {
			t.Errorf("%s: docker load through Clocker:\n%s\none engine:\n%s", name, got, want)
		}
	}

	// A tagged image, saved by its name.
	tagged := filepath.Join(dir, "busybox.tar")
	mustDocker(t, "save", "-o", tagged, "busybox")
	load("tagged image", tagged)

	// A repository: every tag, from a tar Clocker saved; the tags gone
	// from the fleet first, as they are not on the reference engine.
	mustDocker(t, "tag", "busybox", "e2eimg-repo:1")
	mustDocker(t, "tag", "busybox", "e2eimg-repo:2")
	repo := filepath.Join(dir, "repo.tar")
	mustDocker(t, "save", "-o", repo, "e2eimg-repo")
	mustDocker(t, "rmi", "e2eimg-repo:1", "e2eimg-repo:2")
	load("repository", repo)
	for i := range fleet.Engines {
		if engineImageID(t, i, "e2eimg-repo:2") == "" {
			t.Errorf("engine %d lacks e2eimg-repo:2 after the load", i)
		}
	}

	// An image one host has, saved by ID and by name: new layers to every
	// other host (their progress when not quiet), "Loaded image ID".
	id := makeImageOn(t, 1, "e2eimg-fresh:1", "fresh")
	byID := filepath.Join(dir, "byid.tar")
	mustDocker(t, "save", "-o", byID, id)
	load("image by ID", byID)
	for i := range fleet.Engines {
		if got := engineImageID(t, i, id); got != id {
			t.Errorf("engine %d: image %s is %q after the load", i, id, got)
		}
	}

	// Raw HTTP as the Python SDK sends it: images.load() reads every name
	// once; quiet=0 shows each layer's progress once, the rest as one
	// engine's.
	byName := filepath.Join(dir, "byname.tar")
	mustDocker(t, "save", "-o", byName, "e2eimg-fresh:1")
	tar, err := os.ReadFile(byName)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1.41/images/load", "/v1.41/images/load?quiet=1", "/v1.41/images/load?quiet=True"} {
		code, ctype, body := rawLoad(t, httpURL(path), tar)
		rcode, rctype, rbody := rawLoad(t, refURL(t, path), tar)
		if code != rcode || ctype != rctype || body != rbody {
			t.Errorf("POST %s: Clocker %d %s\n%s\none engine %d %s\n%s", path, code, ctype, body, rcode, rctype, rbody)
		}
		if names, msg := sdkLoaded(t, body); !slices.Equal(names, []string{"e2eimg-fresh:1"}) || msg != "" {
			t.Errorf("POST %s: the SDK reads %q (error %q)", path, names, msg)
		}
	}
	// Not quiet, with layers new to the hosts: gone from all but one host,
	// and from the reference engine.
	for i := range fleet.Engines {
		if i != 1 {
			engineDocker(t, i, "rmi", "e2eimg-fresh:1")
		}
	}
	refDocker(t, "rmi", "e2eimg-fresh:1")
	code, _, body := rawLoad(t, httpURL("/v1.41/images/load?quiet=0"), tar)
	_, _, rbody := rawLoad(t, refURL(t, "/v1.41/images/load?quiet=0"), tar)
	ids, rest := progressIDs(t, body)
	rids, rrest := progressIDs(t, rbody)
	if code != 200 || !slices.Equal(ids, rids) || !slices.Equal(rest, rrest) || len(rids) == 0 {
		t.Errorf("load quiet=0: Clocker\n%s\none engine\n%s", body, rbody)
	}

	// A broken archive: the engine's error once, nothing loaded.
	before := engineImageCounts(t)
	code, _, body = rawLoad(t, httpURL("/v1.41/images/load"), []byte("this is not a tar archive"))
	_, _, rbody = rawLoad(t, refURL(t, "/v1.41/images/load"), []byte("this is not a tar archive"))
	if code != 200 || body != rbody {
		t.Errorf("load of garbage: Clocker %d\n%s\none engine\n%s", code, body, rbody)
	}
	if after := engineImageCounts(t); !slices.Equal(before, after) {
		t.Errorf("a failed load changed the engines: %v → %v", before, after)
	}
}

// imageRows lists GET /images/json at url (all, for -a) as IDs with their
// tags.
func imageRows(t testing.TB, url string) map[string][]string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rows []struct {
		ID       string `json:"Id"`
		RepoTags []string
	}
	if err := json.NewDecoder(resp.Body).Decode(&rows); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	out := map[string][]string{}
	for _, r := range rows {
		if _, dup := out[r.ID]; dup {
			t.Errorf("GET %s lists %s twice", url, r.ID)
		}
		tags := slices.DeleteFunc(r.RepoTags, func(s string) bool { return s == "<none>:<none>" })
		slices.Sort(tags)
		out[r.ID] = tags
	}
	return out
}

// newRows are the rows of after that before lacks: how many, and their
// tags (sorted, "" for an untagged row).
func newRows(before, after map[string][]string) []string {
	var out []string
	for id, tags := range after {
		if _, ok := before[id]; !ok {
			out = append(out, strings.Join(tags, ","))
		}
	}
	slices.Sort(out)
	return out
}

// buildTar is a build context holding one Dockerfile.
func buildTar(t testing.TB, dockerfile string) []byte {
	t.Helper()
	dir := imgBuildDir(t, map[string]string{"Dockerfile": dockerfile})
	out, err := exec.Command("tar", "-C", dir, "-c", "Dockerfile").Output()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rawBuild is POST /build with the classic builder; it returns the
// status and the stream.
func rawBuild(t testing.TB, url string, tar []byte) (int, string) {
	t.Helper()
	code, _, body := postTar(t, url, "application/tar", tar)
	return code, body
}

// The same builds on one engine and through Clocker leave the same rows
// in GET /images/json?all=1: intermediate images, images left dangling
// when their tag moved to a rebuild, cached rebuilds adding nothing.
func TestE2EImagesListAllAsAnEngine(t *testing.T) {
	referenceEngine(t)
	builds := []struct{ tag, dockerfile string }{
		{"e2eimg-la:1", "FROM busybox\nRUN echo a > /a\nRUN echo a2 > /a2\n"},
		{"e2eimg-lb:1", "FROM busybox\nENV X=1\nRUN echo b > /b\n"},
		{"e2eimg-la:1", "FROM busybox\nRUN echo moved > /a\n"}, // the tag moves: the old image dangles
		{"e2eimg-lc:1", "FROM e2eimg-lb:1\nRUN echo c > /c\n"},
		{"e2eimg-la:1", "FROM busybox\nRUN echo a > /a\nRUN echo a2 > /a2\n"}, // the first again: cached
		{"e2eimg-ld:1", "FROM busybox\nRUN echo d > /d\nRUN exit 3\n"},        // fails: its first step stays
	}
	refBefore := imageRows(t, refURL(t, "/v1.41/images/json?all=1"))
	before := imageRows(t, httpURL("/v1.41/images/json?all=1"))
	t.Cleanup(func() {
		after := imageRows(t, httpURL("/v1.41/images/json?all=1"))
		refAfter := imageRows(t, refURL(t, "/v1.41/images/json?all=1"))
		ctx := t.Context()
		for id := range after {
			if _, ok := before[id]; !ok {
				for i := range fleet.Engines {
					_, _ = fleet.Docker(ctx, fleet.Engines[i].Name, "rmi", "-f", id)
				}
			}
		}
		for id := range refAfter {
			if _, ok := refBefore[id]; !ok {
				_, _ = refFleet.Docker(ctx, refFleet.Engines[0].Name, "rmi", "-f", id)
			}
		}
	})
	for _, b := range builds {
		tar := buildTar(t, b.dockerfile)
		path := "/v1.41/build?t=" + b.tag + "&rm=1"
		code, out := rawBuild(t, httpURL(path), tar)
		rcode, rout := rawBuild(t, refURL(t, path), tar)
		if code != rcode || strings.Count(out, "Using cache") != strings.Count(rout, "Using cache") ||
			strings.Contains(out, "errorDetail") != strings.Contains(rout, "errorDetail") {
			t.Errorf("build %s:\nClocker %d\n%s\none engine %d\n%s", b.tag, code, out, rcode, rout)
		}
	}
	for _, q := range []string{"?all=1", "", "?filters=%7B%22dangling%22%3A%5B%22true%22%5D%7D"} {
		got := newRows(before, imageRows(t, httpURL("/v1.41/images/json"+q)))
		want := newRows(refBefore, imageRows(t, refURL(t, "/v1.41/images/json"+q)))
		if !slices.Equal(got, want) {
			t.Errorf("GET /images/json%s: new rows through Clocker %q, on one engine %q", q, got, want)
		}
	}
}

// A build with cachefrom goes where its cache sources are, and the engine
// reports the cache as one engine does; a build whose steps join a
// network (networkmode) leaves an image inspect finds.
func TestE2EImagesBuildCacheFromAndNetworkMode(t *testing.T) {
	refs := []string{"e2eimg-cf1", "e2eimg-cf2", "e2eimg-cf3", "e2eimg-nethost", "e2eimg-netnamed", "e2eimg-netid", "e2eimg-netnone"}
	removeImageEverywhere(t, refs...)
	t.Cleanup(func() {
		if refFleet != nil {
			for _, ref := range refs {
				_, _ = refFleet.Docker(t.Context(), refFleet.Engines[0].Name, "rmi", "-f", ref)
			}
		}
	})
	// As docker-py's test_build_with_cache_from.
	tar := buildTar(t, "FROM busybox\nENV FOO=bar\nRUN touch baz\nRUN touch bax\n")
	if code, out := rawBuild(t, httpURL("/v1.41/build?t=e2eimg-cf1"), tar); code != 200 || strings.Contains(out, "errorDetail") {
		t.Fatalf("build e2eimg-cf1: %d %s", code, out)
	}
	on := enginesWith(t, "e2eimg-cf1")
	cached := func(out string) int { return strings.Count(out, "Using cache") }
	code, out := rawBuild(t, httpURL(`/v1.41/build?t=e2eimg-cf2&cachefrom=%5B%22e2eimg-cf1%22%5D`), tar)
	if code != 200 || cached(out) != 3 {
		t.Fatalf("build with cachefrom: %d, %d steps from the cache, want 3:\n%s", code, cached(out), out)
	}
	if hs := enginesWith(t, "e2eimg-cf2"); !slices.Equal(hs, on) {
		t.Errorf("build with cachefrom on engines %v, its cache source on %v", hs, on)
	}
	code, out = rawBuild(t, httpURL(`/v1.41/build?t=e2eimg-cf3&cachefrom=%5B%22e2eimg-nosuchtag%22%5D`), tar)
	if code != 200 || cached(out) != 0 || strings.Contains(out, "errorDetail") {
		t.Fatalf("build with an unknown cache source: %d, %d steps from the cache, want 0:\n%s", code, cached(out), out)
	}
	// The docker CLI's --cache-from.
	dir := imgBuildDir(t, map[string]string{"Dockerfile": "FROM busybox\nENV FOO=bar\nRUN touch baz\nRUN touch bax\n"})
	r := dockerEnv(t, []string{"DOCKER_BUILDKIT=0"}, "build", "--cache-from", "e2eimg-cf1", "-t", "e2eimg-cf2", dir)
	if r.Code != 0 || cached(r.Stdout) != 3 {
		t.Fatalf("docker build --cache-from: %+v", r)
	}

	// networkmode: host, a network by name and by ID (a container on it
	// answers to an alias), none (the step fails, no image).
	ping := buildTar(t, "FROM busybox\nRUN ping -c1 -W5 pingtarget.docker\n")
	cleanup(t, "e2eimg-pingtarget")
	t.Cleanup(func() { docker(t, nil, "network", "rm", "e2eimg-bnet") })
	netID := mustDocker(t, "network", "create", "e2eimg-bnet")
	mustDocker(t, "run", "-d", "--name", "e2eimg-pingtarget", "busybox", "sleep", "300")
	mustDocker(t, "network", "connect", "--alias", "pingtarget.docker", "e2eimg-bnet", "e2eimg-pingtarget")
	tests := []struct {
		name, tag, mode string
		tar             []byte
		wantImage       bool
	}{
		{"host", "e2eimg-nethost", "host", buildTar(t, "FROM busybox\nRUN echo host > /h\n"), true},
		{"network by name", "e2eimg-netnamed", "e2eimg-bnet", ping, true},
		{"network by ID", "e2eimg-netid", netID, ping, true},
		{"none", "e2eimg-netnone", "none", ping, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := rawBuild(t, httpURL("/v1.41/build?nocache=1&t="+tt.tag+"&networkmode="+tt.mode), tt.tar)
			if code != 200 || strings.Contains(out, "errorDetail") == tt.wantImage {
				t.Fatalf("build: %d\n%s", code, out)
			}
			code, body := apiCall(t, "GET", "/v1.41/images/"+tt.tag+"/json", "", nil)
			if tt.wantImage && code != 200 {
				t.Fatalf("inspect %s after the build: %d %s", tt.tag, code, body)
			}
			if !tt.wantImage {
				if code != 404 || !strings.Contains(out, `"code":1`) {
					t.Fatalf("a failed build: inspect %d %s; stream\n%s", code, body, out)
				}
			}
		})
	}
}

// A tag set on one host for a new image leaves the image it named on
// another host there, untagged, as an engine keeps an image whose tag
// moved (no container uses it: removing its last tag would delete it).
func TestE2EImagesMovedTagLeavesDangling(t *testing.T) {
	old := makeImageOn(t, 0, "e2eimg-mv:1", "old")
	removeImageEverywhere(t, old)
	tar := buildTar(t, "FROM busybox\nRUN echo new > /marker\n")
	req, err := http.NewRequest(http.MethodPost, httpURL("/v1.41/build?t=e2eimg-mv:1"), bytes.NewReader(tar))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Clocker-Node", fleet.Engines[1].Name)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(out), "Successfully tagged e2eimg-mv:1") {
		t.Fatalf("build on %s: %d %s", fleet.Engines[1].Name, resp.StatusCode, out)
	}
	if hs := enginesWith(t, "e2eimg-mv:1"); !slices.Equal(hs, []int{1}) {
		t.Fatalf("e2eimg-mv:1 on engines %v after the build, want [1]", hs)
	}
	if got := engineImageID(t, 0, old); got != old {
		t.Fatalf("the image the tag named on engine 0 is gone (%q): an engine keeps it, dangling", got)
	}
	if out := mustDocker(t, "images", "-q", "--no-trunc", "--filter", "dangling=true"); !strings.Contains(out, old) {
		t.Fatalf("docker images --filter dangling=true lacks %s:\n%s", old, out)
	}
	if n := engineDocker(t, 0, "ps", "-aq", "--filter", "ancestor="+old); n != "" {
		t.Fatalf("containers of the old image left on engine 0: %s", n)
	}
}
