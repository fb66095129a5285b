package fakeengine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// start serves one engine on loopback TCP and returns it with a moby
// client (API version negotiated, as the fleet's).
func start(t *testing.T, opts Options) (*Server, *client.Client) {
	t.Helper()
	s, err := Listen(New(opts), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	cli, err := client.New(client.WithHost(s.URL), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return s, cli
}

// get does a raw GET and returns status and body.
func get(t *testing.T, s *Server, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + strings.TrimPrefix(s.URL, "tcp://") + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestInfoAndVersion(t *testing.T) {
	s, cli := start(t, Options{Name: "h1", Labels: []string{"zone=a"}, NCPU: 8, MemTotal: 16 << 30, Images: []string{"busybox"}})
	ctx := context.Background()
	if _, err := s.Create(Spec{Image: "busybox", Running: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(Spec{Image: "busybox"}); err != nil {
		t.Fatal(err)
	}
	info, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in := info.Info
	if in.Name != "h1" || in.NCPU != 8 || in.MemTotal != 16<<30 || len(in.Labels) != 1 || in.Labels[0] != "zone=a" ||
		in.Containers != 2 || in.ContainersRunning != 1 || in.ContainersStopped != 1 || in.Images != 1 {
		t.Errorf("info = %+v", in)
	}
	v, err := cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v.APIVersion != "1.41" || v.MinAPIVersion != "1.12" || v.Version != "20.10.24" {
		t.Errorf("version = %+v", v)
	}
}

func TestVersionPrefix(t *testing.T) {
	s, _ := start(t, Options{MaxAPI: "1.43", MinAPI: "1.24"})
	for _, tc := range []struct {
		name, path string
		status     int
		body       string
	}{
		{"unversioned", "/_ping", 200, "OK"},
		{"supported", "/v1.43/_ping", 200, "OK"},
		{"older supported", "/v1.24/containers/json", 200, "[]"},
		{"too new", "/v1.44/_ping", 400, "client version 1.44 is too new. Maximum supported API version is 1.43"},
		{"too old", "/v1.23/_ping", 400, "client version 1.23 is too old"},
		{"unknown route", "/v1.41/nothing", 404, "page not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := get(t, s, tc.path)
			if status != tc.status || !strings.Contains(body, tc.body) {
				t.Errorf("GET %s = %d %q, want %d containing %q", tc.path, status, body, tc.status, tc.body)
			}
		})
	}
}

func TestContainerLifecycle(t *testing.T) {
	s, cli := start(t, Options{Name: "h1", Images: []string{"busybox"}})
	ctx := context.Background()
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       "web",
		Config:     &container.Config{Image: "busybox", Labels: map[string]string{"app": "shop"}, Cmd: []string{"top"}},
		HostConfig: &container.HostConfig{Resources: container.Resources{Memory: 64 << 20, NanoCPUs: 500_000_000}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := created.ID
	if len(id) != 64 {
		t.Fatalf("id %q", id)
	}

	_, err = cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: "web", Config: &container.Config{Image: "busybox"}})
	if err == nil || !strings.Contains(err.Error(), `Conflict. The container name "/web" is already in use by container "`+id+`"`) {
		t.Errorf("second create with the name: %v", err)
	}
	resp, err := http.Post("http://"+strings.TrimPrefix(s.URL, "tcp://")+"/v1.41/containers/create?name=web",
		"application/json", strings.NewReader(`{"Image":"busybox"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("name conflict answered %d, want 409", resp.StatusCode)
	}
	_, err = cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: "nginx"}})
	if err == nil || !strings.Contains(err.Error(), "No such image: nginx") {
		t.Errorf("create with a missing image: %v", err)
	}

	in, err := cli.ContainerInspect(ctx, "web", client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := in.Container
	if c.ID != id || c.Name != "/web" || c.HostConfig.Memory != 64<<20 || c.HostConfig.NanoCPUs != 500_000_000 ||
		c.Config.Labels["app"] != "shop" || c.State.Status != "created" || c.Created == "" {
		t.Errorf("inspect = %+v", c)
	}

	list := func(opts client.ContainerListOptions) []container.Summary {
		t.Helper()
		res, err := cli.ContainerList(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		return res.Items
	}
	if got := list(client.ContainerListOptions{}); len(got) != 0 {
		t.Errorf("running containers: %d, want 0", len(got))
	}
	if got := list(client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("id", id)}); len(got) != 1 ||
		got[0].Names[0] != "/web" || got[0].Labels["app"] != "shop" || got[0].Image != "busybox" {
		t.Errorf("list by id = %+v", got)
	}

	if _, err := cli.ContainerStart(ctx, id[:12], client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := list(client.ContainerListOptions{}); len(got) != 1 || got[0].State != "running" {
		t.Errorf("running after start = %+v", got)
	}
	wait := cli.ContainerWait(ctx, id, client.ContainerWaitOptions{})
	waitRegistered(t, s.Engine, id, "not-running")
	if _, err := cli.ContainerStop(ctx, "web", client.ContainerStopOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-wait.Result:
		if res.StatusCode != 143 {
			t.Errorf("wait status %d, want 143", res.StatusCode)
		}
	case err := <-wait.Error:
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		t.Fatal("wait did not answer")
	}

	if _, err := cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{}); err == nil || !strings.Contains(err.Error(), "No such container: "+id) {
		t.Errorf("inspect after remove: %v", err)
	}
	// The name is free again.
	if _, err := s.Create(Spec{Name: "web", Image: "busybox"}); err != nil {
		t.Errorf("create with a freed name: %v", err)
	}
}

func TestRemoveRunningNeedsForce(t *testing.T) {
	s, _ := start(t, Options{Images: []string{"busybox"}})
	id, err := s.Create(Spec{Name: "aa", Image: "busybox", Running: true})
	if err != nil {
		t.Fatal(err)
	}
	var fe *Error
	if err := s.Remove(id, false); err == nil || !asError(err, &fe) || fe.Status != 409 {
		t.Errorf("remove running: %v", err)
	}
	if err := s.Remove("aa", true); err != nil {
		t.Errorf("force remove: %v", err)
	}
	if s.Len() != 0 {
		t.Errorf("Len = %d", s.Len())
	}
}

func asError(err error, fe **Error) bool {
	e, ok := err.(*Error)
	*fe = e
	return ok
}

func TestEventsFilteredByType(t *testing.T) {
	s, cli := start(t, Options{Name: "h1", Images: []string{"busybox"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream := cli.Events(ctx, client.EventsListOptions{Filters: make(client.Filters).Add("type", "container")})
	all := cli.Events(ctx, client.EventsListOptions{})
	waitSubscribers(t, s.Engine, 2)

	s.AddImage("alpine") // an image event: not for the container stream
	id, err := s.Create(Spec{Name: "xx", Image: "busybox", Labels: map[string]string{"k": "v"}, Running: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(id, true); err != nil {
		t.Fatal(err)
	}
	want := []events.Action{"create", "start", "kill", "die", "destroy"}
	for i, action := range want {
		select {
		case m := <-stream.Messages:
			if m.Type != events.ContainerEventType || m.Action != action || m.Actor.ID != id ||
				m.Actor.Attributes["name"] != "xx" || m.Actor.Attributes["k"] != "v" || m.TimeNano == 0 {
				t.Errorf("event %d = %+v, want container %s of %s", i, m, action, id)
			}
		case err := <-stream.Err:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatalf("event %d (%s) did not come", i, action)
		}
	}
	select {
	case m := <-all.Messages:
		if m.Type != events.ImageEventType || m.Action != "pull" {
			t.Errorf("first unfiltered event = %+v, want the image pull", m)
		}
	case <-ctx.Done():
		t.Fatal("unfiltered stream got nothing")
	}
}

// waitRegistered waits until a wait with the given condition is parked on
// the container ref ("removed" or one waiting for the next exit), so a test
// stops or removes it only once the wait is there to see it.
func waitRegistered(t *testing.T, e *Engine, ref, cond string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.mu.Lock()
		c, err := e.resolveLocked(ref)
		parked := err == nil && (cond == "removed" && c.removed != nil || cond != "removed" && c.exited != nil)
		e.mu.Unlock()
		if parked {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s wait on %s after 10s (err %v)", cond, ref, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitSubscribers(t *testing.T, e *Engine, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		e.mu.Lock()
		got := len(e.subs)
		e.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d event streams after 30s, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEventsUntilEndsStream(t *testing.T) {
	s, _ := start(t, Options{})
	until := time.Now().Add(100 * time.Millisecond)
	status, _ := get(t, s, fmt.Sprintf("/events?until=%d.%09d", until.Unix(), until.Nanosecond()))
	if status != 200 {
		t.Errorf("status %d", status)
	}
}

func TestImages(t *testing.T) {
	s, _ := start(t, Options{Images: []string{"busybox", "docker.io/library/alpine:3.20"}})
	status, body := get(t, s, "/v1.41/images/json")
	var list []struct {
		ID       string `json:"Id"`
		RepoTags []string
	}
	if status != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list) != 2 {
		t.Fatalf("images = %d %s", status, body)
	}
	for _, path := range []string{"/images/busybox/json", "/images/busybox:latest/json", "/images/library/alpine:3.20/json",
		"/images/" + strings.TrimPrefix(list[0].ID, "sha256:")[:12] + "/json"} {
		if status, body := get(t, s, path); status != 200 {
			t.Errorf("GET %s = %d %s", path, status, body)
		}
	}
	if status, body := get(t, s, "/images/nginx/json"); status != 404 || !strings.Contains(body, "No such image: nginx") {
		t.Errorf("missing image = %d %s", status, body)
	}
	resp, err := http.Post("http://"+strings.TrimPrefix(s.URL, "tcp://")+"/v1.41/images/create?fromImage=nginx&tag=1.27", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if status, _ := get(t, s, "/images/nginx:1.27/json"); status != 200 {
		t.Errorf("pulled image not there: %d", status)
	}
}

func TestUnixSocketsAndStartMany(t *testing.T) {
	servers, err := StartMany(3, t.TempDir(), func(i int) Options {
		return Options{Name: fmt.Sprintf("h%d", i+1), Images: []string{"busybox"}}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer CloseAll(servers)
	for i, s := range servers {
		if !strings.HasPrefix(s.URL, "unix:///") || !strings.HasSuffix(s.URL, fmt.Sprintf("/h%d.sock", i+1)) {
			t.Errorf("URL %q", s.URL)
		}
		cli, err := client.New(client.WithHost(s.URL), client.WithAPIVersionNegotiation())
		if err != nil {
			t.Fatal(err)
		}
		info, err := cli.Info(context.Background(), client.InfoOptions{})
		cli.Close()
		if err != nil || info.Info.Name != s.Name() {
			t.Errorf("info over %s: %v %q", s.URL, err, info.Info.Name)
		}
	}
}

// Concurrent creates, lists and event streams: run with -race.
func TestConcurrentUse(t *testing.T) {
	s, cli := start(t, Options{Images: []string{"busybox"}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream := cli.Events(ctx, client.EventsListOptions{})
	go func() {
		for range stream.Messages {
		}
	}()
	s.CountRequests()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
					Name: fmt.Sprintf("c%d_%d", g, i), Config: &container.Config{Image: "busybox"}})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true,
					Filters: make(client.Filters).Add("id", res.ID)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if s.Len() != 160 {
		t.Errorf("Len = %d, want 160", s.Len())
	}
	if n := s.Requests()["POST /containers/create"]; n != 160 {
		t.Errorf("creates counted %d, want 160", n)
	}
}

func TestSplitVersion(t *testing.T) {
	for _, tc := range []struct{ in, ver, rest string }{
		{"/v1.41/containers/json", "1.41", "/containers/json"},
		{"/v1/x", "1", "/x"},
		{"/volumes", "", "/volumes"},
		{"/v1.41", "1.41", ""},
		{"/vx/y", "", "/vx/y"},
	} {
		if v, r := splitVersion(tc.in); v != tc.ver || r != tc.rest {
			t.Errorf("splitVersion(%q) = %q %q", tc.in, v, r)
		}
	}
}

func TestLoad(t *testing.T) {
	s, cli := start(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream := cli.Events(ctx, client.EventsListOptions{Filters: make(client.Filters).Add("type", "image")})
	waitSubscribers(t, s.Engine, 1)
	refs := []string{"busybox", "team/app:1.2", "registry.local:5000/x:y"}
	resp, err := http.Post("http://"+strings.TrimPrefix(s.URL, "tcp://")+"/v1.41/images/load", "application/x-tar",
		strings.NewReader(string(ImageArchive(refs...))))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Count(string(body), "Loaded image: ") != len(refs) {
		t.Fatalf("load = %d %s", resp.StatusCode, body)
	}
	for _, ref := range refs {
		if status, body := get(t, s, "/images/"+ref+"/json"); status != 200 {
			t.Errorf("loaded %s: %d %s", ref, status, body)
		}
		select {
		case m := <-stream.Messages:
			if m.Type != events.ImageEventType || m.Action != "load" {
				t.Errorf("event = %+v, want an image load", m)
			}
		case <-ctx.Done():
			t.Fatalf("no load event for %s", ref)
		}
	}
	resp, err = http.Post("http://"+strings.TrimPrefix(s.URL, "tcp://")+"/images/load", "application/x-tar", strings.NewReader("not a tar"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Errorf("load of garbage = %d, want an error", resp.StatusCode)
	}
}
