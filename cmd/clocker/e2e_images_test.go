//go:build e2e

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The image routes of the fleet with the real docker CLI: lists merged,
// pulls and loads fanned out, builds placed where their base image is.

// engineImageID is the ID of ref on engine i, "" when it has none.
func engineImageID(t testing.TB, i int, ref string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := fleet.Docker(ctx, fleet.Engines[i].Name, "image", "inspect", "-f", "{{.Id}}", ref)
	if err != nil {
		if strings.Contains(out, "No such image") || strings.Contains(out, "no such image") {
			return ""
		}
		t.Fatalf("inspect %s on %s: %v", ref, fleet.Engines[i].Name, err)
	}
	return strings.TrimSpace(out)
}

// enginesWith lists the engines (by index) that hold ref.
func enginesWith(t testing.TB, ref string) []int {
	t.Helper()
	var out []int
	for i := range fleet.Engines {
		if engineImageID(t, i, ref) != "" {
			out = append(out, i)
		}
	}
	return out
}

// engineImageCounts counts every image (with intermediates) per engine.
func engineImageCounts(t testing.TB) []int {
	t.Helper()
	out := make([]int, len(fleet.Engines))
	for i := range fleet.Engines {
		if s := engineDocker(t, i, "images", "-aq", "--no-trunc"); s != "" {
			out[i] = len(strings.Split(s, "\n"))
		}
	}
	return out
}

// removeImageEverywhere removes refs on every engine, directly, at the end
// of a test.
func removeImageEverywhere(t testing.TB, refs ...string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for i := range fleet.Engines {
			for _, ref := range refs {
				_, _ = fleet.Docker(ctx, fleet.Engines[i].Name, "rmi", "-f", ref)
			}
		}
	})
}

// imgShell runs a shell pipeline with the docker CLI pointed at Clocker.
func imgShell(t testing.TB, env []string, script string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", script)
	cmd.Env = append(append(os.Environ(), "DOCKER_HOST="+clockerURL, "DOCKER_CLI_HINTS=false"), env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("sh -c %q: %v", script, err)
	}
	return result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// makeImageOn commits a new image (a file /marker holding text) on engine i
// only, directly.
func makeImageOn(t testing.TB, i int, ref, text string) string {
	t.Helper()
	ctr := "e2eimg-src-" + strings.NewReplacer(":", "-", "/", "-").Replace(ref)
	engineDocker(t, i, "run", "--name", ctr, "busybox", "sh", "-c", "echo "+text+" > /marker")
	engineDocker(t, i, "commit", ctr, ref)
	engineDocker(t, i, "rm", ctr)
	removeImageEverywhere(t, ref)
	return engineImageID(t, i, ref)
}

func TestE2EImagesListMerged(t *testing.T) {
	want := engineImageID(t, 0, "busybox")
	for i := range fleet.Engines {
		if id := engineImageID(t, i, "busybox"); id != want {
			t.Fatalf("engine %d has busybox %s, engine 0 %s: the fleet should share one ID", i, id, want)
		}
	}
	out := mustDocker(t, "images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
	if n := strings.Count(out+"\n", "busybox:latest "+want+"\n"); n != 1 {
		t.Fatalf("docker images shows busybox:latest %s %d times, want once:\n%s", want, n, out)
	}
	ids := strings.Split(mustDocker(t, "images", "-q", "--no-trunc"), "\n")
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("image %s listed twice:\n%s", id, strings.Join(ids, "\n"))
		}
		seen[id] = true
	}

	// An image on one host only, made after busybox: in the list once; the
	// before/since filters resolve it although two hosts lack it.
	only := makeImageOn(t, 1, "e2eimg-only:1", "one")
	engineDocker(t, 1, "tag", "busybox", "e2eimg-alias:1")
	removeImageEverywhere(t, "e2eimg-alias:1")
	out = mustDocker(t, "images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
	if !strings.Contains(out, "e2eimg-only:1 "+only) {
		t.Fatalf("image of one host missing from docker images:\n%s", out)
	}
	// Tags of one host join the row of the image every host has.
	if !strings.Contains(out, "e2eimg-alias:1 "+want) || strings.Count(out, want) != 2 {
		t.Fatalf("busybox should show its two tags (one from one host) as two lines of one image:\n%s", out)
	}
	raw := mustDocker(t, "images", "--format", "{{json .}}")
	if strings.Count(raw, `"Repository":"busybox"`) != 1 {
		t.Fatalf("busybox listed more than once:\n%s", raw)
	}
	tests := []struct {
		name, filter string
		has, lacks   []string
	}{
		{"reference", "reference=busybox", []string{"busybox"}, []string{"e2eimg-only"}},
		{"since", "since=busybox", []string{"e2eimg-only"}, []string{"busybox"}},
		{"before", "before=e2eimg-only:1", []string{"busybox"}, []string{"e2eimg-only"}},
		{"dangling", "dangling=true", nil, []string{"busybox", "e2eimg-only"}},
		{"label", "label=no.such.label", nil, []string{"busybox", "e2eimg-only"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := mustDocker(t, "images", "--filter", tt.filter, "--format", "{{.Repository}}")
			lines := strings.Split(out, "\n")
			for _, h := range tt.has {
				if !hasLine(lines, h) {
					t.Errorf("--filter %s lacks %s:\n%s", tt.filter, h, out)
				}
			}
			for _, l := range tt.lacks {
				if hasLine(lines, l) {
					t.Errorf("--filter %s shows %s:\n%s", tt.filter, l, out)
				}
			}
		})
	}
	if out := mustDocker(t, "images", "-a", "--digests", "busybox", "--format", "{{.Repository}}"); out != "busybox" {
		t.Fatalf("images -a --digests busybox: %q", out)
	}
}

func hasLine(list []string, s string) bool { return slices.Contains(list, s) }

func TestE2EImagesInspectAndHistory(t *testing.T) {
	id := engineImageID(t, 0, "busybox")
	if got := mustDocker(t, "image", "inspect", "-f", "{{.Id}}", "busybox"); got != id {
		t.Fatalf("image inspect busybox: %q, want %s", got, id)
	}
	if out := mustDocker(t, "history", "busybox"); !strings.Contains(out, "Imported from -") {
		t.Fatalf("history busybox:\n%s", out)
	}
	// Names with a registry port, slashes and a tag, on one host only.
	for _, name := range []string{"localhost:5000/e2eimg/ns/app:v1", "e2eimg/deep/name:2"} {
		engineDocker(t, 2, "tag", "busybox", name)
		removeImageEverywhere(t, name)
		if got := mustDocker(t, "image", "inspect", "-f", "{{.Id}}", name); got != id {
			t.Errorf("inspect %s: %q", name, got)
		}
		if out := mustDocker(t, "history", "-q", name); out == "" || !strings.Contains(id, out) {
			t.Errorf("history %s: %q", name, out)
		}
		// The tags every host gives the image show in inspect.
		if tags := mustDocker(t, "image", "inspect", "-f", "{{json .RepoTags}}", "busybox"); !strings.Contains(tags, name) || !strings.Contains(tags, "busybox:latest") {
			t.Errorf("inspect busybox RepoTags %s lacks %s", tags, name)
		}
	}
	r := docker(t, nil, "image", "inspect", "e2eimg-nope:1")
	if r.Code == 0 || !strings.Contains(r.Stderr, "No such image") {
		t.Fatalf("inspect of an unknown image: %+v", r)
	}
	code, body := apiCall(t, "GET", "/v1.41/images/e2eimg-nope:1/json", "", nil)
	if code != 404 || !strings.Contains(body, `"No such image: e2eimg-nope:1"`) {
		t.Fatalf("inspect unknown: %d %s", code, body)
	}
	code, body = apiCall(t, "GET", "/v1.41/images/e2eimg/nope/history", "", nil)
	if code != 404 || !strings.Contains(body, "No such image: e2eimg/nope") {
		t.Fatalf("history unknown: %d %s", code, body)
	}
}

func TestE2EImagesPullPassesRegistryError(t *testing.T) {
	before := engineImageCounts(t)
	// No registry here: each engine's own error comes back, exit non-zero.
	r := docker(t, nil, "pull", "busybox")
	if r.Code == 0 || !strings.Contains(r.Stderr, "registry-1.docker.io") {
		t.Fatalf("pull busybox without a registry: %+v", r)
	}
	// A refused connection says the same on every host: the engine's
	// message as it is.
	r = docker(t, nil, "pull", "localhost:1/e2eimg/nothing:1")
	if r.Code == 0 || !strings.Contains(r.Stderr, `Error response from daemon: Get "http://localhost:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused`) {
		t.Fatalf("pull from a closed port: %+v", r)
	}
	code, body := apiCall(t, "POST", "/v1.41/images/create?fromImage=E2EIMG&tag=1", "", nil)
	if code != 400 || !strings.Contains(body, "invalid reference format") {
		t.Fatalf("pull of a bad name: %d %s", code, body)
	}
	// Pulls aimed at one host by header; unknown hosts refused.
	req := func(node string) (int, string) {
		t.Helper()
		return imgNodeCall(t, "POST", "/v1.41/images/create?fromImage=localhost:1/x&tag=1", node, nil)
	}
	if code, body := req(fleet.Engines[1].Name); code != 500 || !strings.Contains(body, "connection refused") {
		t.Fatalf("pull on one host: %d %s", code, body)
	}
	if code, body := req("e2eimg-nohost"); code != 400 || !strings.Contains(body, `no host \"e2eimg-nohost\" in the fleet`) {
		t.Fatalf("pull on an unknown host: %d %s", code, body)
	}
	if after := engineImageCounts(t); !slices.Equal(before, after) {
		t.Fatalf("failed pulls changed the engines: images %v → %v", before, after)
	}
}

func TestE2EImagesSaveAndLoad(t *testing.T) {
	id := engineImageID(t, 0, "busybox")
	// Round trip through Clocker: saved from one host, loaded on all.
	r := imgShell(t, nil, "docker save busybox | docker load")
	if r.Code != 0 {
		t.Fatalf("save | load: %+v", r)
	}
	if r.Stdout != "Loaded image: busybox:latest\n" {
		t.Errorf("load output %q, want one engine's line once", r.Stdout)
	}
	for i := range fleet.Engines {
		if got := engineImageID(t, i, "busybox"); got != id {
			t.Errorf("busybox on engine %d is %s after the round trip, want %s", i, got, id)
		}
	}

	// An image only one engine has: saved from there, loaded everywhere.
	only := makeImageOn(t, 2, "e2eimg-save:1", "saved")
	if hs := enginesWith(t, "e2eimg-save:1"); len(hs) != 1 {
		t.Fatalf("e2eimg-save:1 on engines %v, want one", hs)
	}
	file := filepath.Join(t.TempDir(), "img.tar")
	mustDocker(t, "save", "-o", file, "e2eimg-save:1")
	// Gone from its engine, then back on all three.
	engineDocker(t, 2, "rmi", "e2eimg-save:1")
	out := mustDocker(t, "load", "-i", file)
	if out != "Loaded image: e2eimg-save:1" {
		t.Fatalf("load: %q, want one engine's line once", out)
	}
	for i := range fleet.Engines {
		if got := engineImageID(t, i, "e2eimg-save:1"); got != only {
			t.Errorf("engine %d: e2eimg-save:1 is %q, want %s", i, got, only)
		}
	}
	if r := docker(t, nil, "run", "--rm", "e2eimg-save:1", "cat", "/marker"); r.Code != 0 || r.Stdout != "saved\n" {
		t.Fatalf("run of the loaded image: %+v", r)
	}

	// save: every name must be on one host.
	makeImageOn(t, 0, "e2eimg-save0:1", "zero")
	makeImageOn(t, 1, "e2eimg-save1:1", "one")
	r = docker(t, nil, "save", "-o", filepath.Join(t.TempDir(), "x.tar"), "e2eimg-save0:1", "e2eimg-save1:1")
	if r.Code == 0 || !strings.Contains(r.Stderr, "No such image: e2eimg-save1:1") {
		t.Fatalf("save of images on two hosts: %+v", r)
	}
	mustDocker(t, "save", "-o", filepath.Join(t.TempDir(), "y.tar"), "e2eimg-save0:1", "busybox")
	r = docker(t, nil, "save", "-o", filepath.Join(t.TempDir(), "z.tar"), "e2eimg-nope:1")
	if r.Code == 0 || !strings.Contains(r.Stderr, "No such image: e2eimg-nope:1") {
		t.Fatalf("save of an unknown image: %+v", r)
	}
	// A broken tar: each engine's error comes back, nothing is loaded.
	before := engineImageCounts(t)
	r = docker(t, strings.NewReader("this is not a tar archive"), "load")
	if r.Code == 0 || !strings.Contains(r.Stderr, "Error processing tar file") {
		t.Fatalf("load of garbage: %+v", r)
	}
	if after := engineImageCounts(t); !slices.Equal(before, after) {
		t.Fatalf("a failed load changed the engines: %v → %v", before, after)
	}
}

func TestE2EImagesTagAndRemove(t *testing.T) {
	removeImageEverywhere(t, "e2eimg-tag:1")
	mustDocker(t, "tag", "busybox", "e2eimg-tag:1")
	if hs := enginesWith(t, "e2eimg-tag:1"); len(hs) != len(fleet.Engines) {
		t.Fatalf("tag reached engines %v, want all", hs)
	}
	if out := mustDocker(t, "images", "e2eimg-tag", "--format", "{{.Repository}}:{{.Tag}}"); out != "e2eimg-tag:1" {
		t.Fatalf("images e2eimg-tag: %q", out)
	}
	out := mustDocker(t, "rmi", "e2eimg-tag:1")
	if out != "Untagged: e2eimg-tag:1" {
		t.Fatalf("rmi report: %q, want one Untagged line", out)
	}
	if hs := enginesWith(t, "e2eimg-tag:1"); len(hs) != 0 {
		t.Fatalf("tag still on engines %v", hs)
	}
	if hs := enginesWith(t, "busybox"); len(hs) != len(fleet.Engines) {
		t.Fatalf("busybox left engines: on %v", hs)
	}
	// A tag of an image one host has goes to that host only.
	makeImageOn(t, 1, "e2eimg-one:1", "x")
	removeImageEverywhere(t, "e2eimg-one:2")
	mustDocker(t, "tag", "e2eimg-one:1", "e2eimg-one:2")
	if hs := enginesWith(t, "e2eimg-one:2"); len(hs) != 1 || hs[0] != 1 {
		t.Fatalf("e2eimg-one:2 on engines %v, want [1]", hs)
	}

	// Unknown images.
	if r := docker(t, nil, "rmi", "e2eimg-nope:1"); r.Code == 0 || !strings.Contains(r.Stderr, "No such image: e2eimg-nope:1") {
		t.Fatalf("rmi unknown: %+v", r)
	}
	if r := docker(t, nil, "tag", "e2eimg-nope:1", "e2eimg-x:1"); r.Code == 0 || !strings.Contains(r.Stderr, "No such image: e2eimg-nope:1") {
		t.Fatalf("tag unknown: %+v", r)
	}
	code, body := apiCall(t, "DELETE", "/v1.41/images/e2eimg-nope:1", "", nil)
	if code != 404 || !strings.Contains(body, "No such image: e2eimg-nope:1") {
		t.Fatalf("DELETE unknown: %d %s", code, body)
	}

	// An image every host has, used by a container on one: the engine's
	// 409 comes back and no host lost the image.
	mustDocker(t, "tag", "e2eimg-one:1", "e2eimg-used:1")
	removeImageEverywhere(t, "e2eimg-used:1")
	r := imgShell(t, nil, "docker save e2eimg-used:1 | docker load")
	if r.Code != 0 {
		t.Fatalf("spreading e2eimg-used:1: %+v", r)
	}
	cleanup(t, "e2eimg-user")
	mustDocker(t, "run", "-d", "--name", "e2eimg-user", "e2eimg-used:1", "sleep", "300")
	mustDocker(t, "rmi", "e2eimg-one:1", "e2eimg-one:2") // leaves e2eimg-used:1 the only tag
	r = docker(t, nil, "rmi", "e2eimg-used:1")
	if r.Code == 0 || !strings.Contains(r.Stderr, "conflict: unable to remove repository reference") || !strings.Contains(r.Stderr, "is using its referenced image") {
		t.Fatalf("rmi of an image in use: %+v", r)
	}
	code, body = apiCall(t, "DELETE", "/v1.41/images/e2eimg-used:1", "", nil)
	if code != 409 {
		t.Fatalf("DELETE of an image in use: %d %s", code, body)
	}
	if hs := enginesWith(t, "e2eimg-used:1"); len(hs) != len(fleet.Engines) {
		t.Fatalf("after the conflict e2eimg-used:1 is on engines %v, want all", hs)
	}
	mustDocker(t, "rm", "-f", "e2eimg-user")
	out = mustDocker(t, "rmi", "e2eimg-used:1")
	if strings.Count(out, "Untagged: e2eimg-used:1") != 1 || !strings.Contains(out, "Deleted: sha256:") {
		t.Fatalf("rmi report: %q", out)
	}
	if hs := enginesWith(t, "e2eimg-used:1"); len(hs) != 0 {
		t.Fatalf("e2eimg-used:1 still on engines %v", hs)
	}
}

// imgBuildDir writes a build context.
func imgBuildDir(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestE2EImagesBuildAndRun(t *testing.T) {
	classic := []string{"DOCKER_BUILDKIT=0"}
	removeImageEverywhere(t, "e2e-built")
	dir := imgBuildDir(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo built > /built\n"})
	r := dockerEnv(t, classic, "build", "-t", "e2e-built", dir)
	if r.Code != 0 || !strings.Contains(r.Stdout, "Successfully tagged e2e-built:latest") {
		t.Fatalf("build: %+v", r)
	}
	// Progress streamed back step by step.
	for _, step := range []string{"Step 1/2 : FROM busybox", "Step 2/2 : RUN echo built > /built", "Successfully built"} {
		if !strings.Contains(r.Stdout, step) {
			t.Errorf("build output lacks %q:\n%s", step, r.Stdout)
		}
	}
	hs := enginesWith(t, "e2e-built")
	if len(hs) != 1 {
		t.Fatalf("e2e-built on engines %v, want one", hs)
	}
	if r := docker(t, nil, "run", "--rm", "e2e-built", "cat", "/built"); r.Code != 0 || r.Stdout != "built\n" {
		t.Fatalf("run of the built image: %+v", r)
	}
	cleanup(t, "e2eimg-built-run")
	mustDocker(t, "run", "-d", "--name", "e2eimg-built-run", "e2e-built", "sleep", "300")
	if h := hostOf(t, "e2eimg-built-run"); h != fleet.Engines[hs[0]].Name {
		t.Fatalf("container of e2e-built on %s, built on %s", h, fleet.Engines[hs[0]].Name)
	}

	// A base image one host has pulls the build there, whatever the load;
	// ARGs before FROM and -f with another name are read.
	last := len(fleet.Engines) - 1
	engineDocker(t, last, "tag", "busybox", "e2eimg-base:1")
	removeImageEverywhere(t, "e2eimg-base:1", "e2eimg-onbase:1", "e2eimg-scratch:1")
	dir = imgBuildDir(t, map[string]string{
		"aaa.txt":            "context file before the Dockerfile\n",
		"sub/Dockerfile.e2e": "# a comment\nARG BASE=e2eimg-base\nFROM ${BASE}:1 AS b\nRUN echo onbase > /onbase\nFROM b\n",
	})
	r = dockerEnv(t, classic, "build", "-q", "-f", filepath.Join(dir, "sub/Dockerfile.e2e"), "-t", "e2eimg-onbase:1", dir)
	if r.Code != 0 {
		t.Fatalf("build on a base one host has: %+v", r)
	}
	if hs := enginesWith(t, "e2eimg-onbase:1"); len(hs) != 1 || hs[0] != last {
		t.Fatalf("e2eimg-onbase:1 built on engines %v, want [%d] (the one with its base)", hs, last)
	}
	// FROM scratch fits any host.
	dir = imgBuildDir(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY hello /hello\n", "hello": "hi\n"})
	if r := dockerEnv(t, classic, "build", "-q", "-t", "e2eimg-scratch:1", dir); r.Code != 0 {
		t.Fatalf("build FROM scratch: %+v", r)
	}
	if hs := enginesWith(t, "e2eimg-scratch:1"); len(hs) != 1 {
		t.Fatalf("e2eimg-scratch:1 on engines %v, want one", hs)
	}
	// A build whose base no host has: the engine's pull error, streamed.
	dir = imgBuildDir(t, map[string]string{"Dockerfile": "FROM localhost:1/e2eimg/none:1\n"})
	r = dockerEnv(t, classic, "build", "-t", "e2eimg-nobase:1", dir)
	if r.Code == 0 || !strings.Contains(r.Stderr, "connection refused") {
		t.Fatalf("build on a missing base: %+v", r)
	}
	// BuildKit's session is not carried: a deliberate error.
	code, body := apiCall(t, "POST", "/v1.41/build?version=2", "application/x-tar", strings.NewReader(""))
	if code != 501 || !strings.Contains(body, "DOCKER_BUILDKIT=0") {
		t.Fatalf("BuildKit build: %d %s", code, body)
	}
	// The build cache prune reaches every host.
	code, body = apiCall(t, "POST", "/v1.41/build/prune", "", nil)
	var rep struct{ SpaceReclaimed *uint64 }
	if code != 200 || json.Unmarshal([]byte(body), &rep) != nil || rep.SpaceReclaimed == nil {
		t.Fatalf("build prune: %d %s", code, body)
	}
}

// A tag names one image across the fleet, as on one engine: docker commit
// lands on one host, docker build of the same tag is placed on another,
// and docker run starts the build; docker images lists the tag once. The
// committed image, which a running container uses, stays on its host,
// untagged.
func TestE2EImagesTagMovesAcrossFleet(t *testing.T) {
	classic := []string{"DOCKER_BUILDKIT=0"}
	const tag, base = "e2eimg-moved:1", "e2eimg-movebase:1"
	first, other := 0, 1
	var committed string
	t.Cleanup(func() {
		docker(t, nil, "rm", "-f", "e2eimg-move-src", "e2eimg-move-user")
		for i := range fleet.Engines {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			for _, ref := range []string{tag, base, committed} {
				if ref != "" {
					_, _ = fleet.Docker(ctx, fleet.Engines[i].Name, "rmi", "-f", ref)
				}
			}
			cancel()
		}
	})
	mustDocker(t, "run", "-d", "--name", "e2eimg-move-src", "-e", "constraint:node=="+fleet.Engines[first].Name, "busybox", "sleep", "300")
	mustDocker(t, "exec", "e2eimg-move-src", "sh", "-c", "echo committed > /marker")
	mustDocker(t, "commit", "e2eimg-move-src", tag)
	if hs := enginesWith(t, tag); len(hs) != 1 || hs[0] != first {
		t.Fatalf("the commit is on engines %v, want [%d]", hs, first)
	}
	committed = engineImageID(t, first, tag)
	mustDocker(t, "run", "-d", "--name", "e2eimg-move-user", tag, "sleep", "300")
	if h := hostOf(t, "e2eimg-move-user"); h != fleet.Engines[first].Name {
		t.Fatalf("a container of the commit runs on %s, want %s", h, fleet.Engines[first].Name)
	}

	// The build's base is on the other host alone: the build goes there.
	engineDocker(t, other, "tag", "busybox", base)
	dir := imgBuildDir(t, map[string]string{"Dockerfile": "FROM " + base + "\nRUN echo built > /marker\n"})
	if r := dockerEnv(t, classic, "build", "-t", tag, dir); r.Code != 0 || !strings.Contains(r.Stdout, "Successfully tagged "+tag) {
		t.Fatalf("build: %+v", r)
	}
	if hs := enginesWith(t, tag); len(hs) != 1 || hs[0] != other {
		t.Fatalf("after the build %s is on engines %v, want [%d] (the build's)", tag, hs, other)
	}
	for range 3 {
		if r := docker(t, nil, "run", "--rm", tag, "cat", "/marker"); r.Code != 0 || r.Stdout != "built\n" {
			t.Fatalf("run of %s after the build: %+v, want the build's marker", tag, r)
		}
	}
	if out := mustDocker(t, "images", "e2eimg-moved", "--format", "{{.Repository}}:{{.Tag}}"); out != tag {
		t.Fatalf("images e2eimg-moved: %q, want %s once", out, tag)
	}
	if id := engineImageID(t, first, committed); id != committed {
		t.Fatalf("the committed image left %s (its container uses it): %q", fleet.Engines[first].Name, id)
	}
	if out := mustDocker(t, "inspect", "-f", "{{.State.Running}}", "e2eimg-move-user"); out != "true" {
		t.Fatalf("the container of the committed image: running %s", out)
	}
}

func TestE2EImagesImport(t *testing.T) {
	removeImageEverywhere(t, "e2eimg-imported:1")
	dir := imgBuildDir(t, map[string]string{"hello": "imported\n"})
	r := imgShell(t, nil, "tar -C "+dir+" -c hello | docker import - e2eimg-imported:1")
	if r.Code != 0 || !strings.HasPrefix(strings.TrimSpace(r.Stdout), "sha256:") {
		t.Fatalf("import: %+v", r)
	}
	if hs := enginesWith(t, "e2eimg-imported:1"); len(hs) != 1 {
		t.Fatalf("imported image on engines %v, want one", hs)
	}

	// X-Clocker-Node aims an import, and a load, at the hosts it names.
	removeImageEverywhere(t, "e2eimg-imported:2")
	raw, err := exec.Command("tar", "-C", dir, "-c", "hello").Output()
	if err != nil {
		t.Fatal(err)
	}
	code, body := imgNodeCall(t, "POST", "/v1.41/images/create?fromSrc=-&repo=e2eimg-imported&tag=2", fleet.Engines[2].Name, raw)
	if code != 200 {
		t.Fatalf("import aimed at %s: %d %s", fleet.Engines[2].Name, code, body)
	}
	if hs := enginesWith(t, "e2eimg-imported:2"); len(hs) != 1 || hs[0] != 2 {
		t.Fatalf("aimed import on engines %v, want [2]", hs)
	}
	file := filepath.Join(t.TempDir(), "imp.tar")
	mustDocker(t, "save", "-o", file, "e2eimg-imported:2")
	saved, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	code, body = imgNodeCall(t, "POST", "/v1.41/images/load?quiet=1", fleet.Engines[0].Name+","+fleet.Engines[2].Name, saved)
	if code != 200 || strings.TrimSpace(body) != `{"stream":"Loaded image: e2eimg-imported:2\n"}` {
		t.Fatalf("aimed load: %d %s", code, body)
	}
	if hs := enginesWith(t, "e2eimg-imported:2"); !slices.Equal(hs, []int{0, 2}) {
		t.Fatalf("aimed load on engines %v, want [0 2]", hs)
	}
	if code, body := imgNodeCall(t, "POST", "/v1.41/images/load", "e2eimg-nohost", saved); code != 400 || !strings.Contains(body, "no host") {
		t.Fatalf("load aimed at an unknown host: %d %s", code, body)
	}
}

// imgNodeCall sends a request with an X-Clocker-Node header to Clocker.
func imgNodeCall(t testing.TB, method, path, node string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, httpURL(path), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Clocker-Node", node)
	if body != nil {
		req.Header.Set("Content-Type", "application/x-tar")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestE2EImagesPrune(t *testing.T) {
	// A dangling image on one engine: an untagged commit.
	engineDocker(t, 0, "run", "--name", "e2eimg-dangle", "busybox", "sh", "-c", "echo d > /d")
	id := engineDocker(t, 0, "commit", "e2eimg-dangle")
	engineDocker(t, 0, "rm", "e2eimg-dangle")
	removeImageEverywhere(t, id)
	out := mustDocker(t, "images", "-q", "--no-trunc", "--filter", "dangling=true")
	if !strings.Contains(out, id) {
		t.Fatalf("dangling image %s not listed:\n%s", id, out)
	}
	out = mustDocker(t, "image", "prune", "-f")
	if !strings.Contains(out, "deleted: "+id) || !strings.Contains(out, "Total reclaimed space") {
		t.Fatalf("image prune:\n%s", out)
	}
	if engineImageID(t, 0, id) != "" {
		t.Fatalf("dangling image %s survived the prune", id)
	}
	if hs := enginesWith(t, "busybox"); len(hs) != len(fleet.Engines) {
		t.Fatalf("prune took busybox from engines: left on %v", hs)
	}
}

func TestE2EImagesBadInput(t *testing.T) {
	tests := []struct {
		name, method, path, ctype, body string
		status                          int
		message                         string // a part of the message
	}{
		{"inspect unknown", "GET", "/v1.41/images/e2eimg-nope/json", "", "", 404, "No such image: e2eimg-nope"},
		{"history unknown", "GET", "/v1.41/images/e2eimg-nope/history", "", "", 404, "No such image: e2eimg-nope"},
		{"rmi unknown", "DELETE", "/v1.41/images/e2eimg-nope", "", "", 404, "No such image: e2eimg-nope"},
		{"tag unknown", "POST", "/v1.41/images/e2eimg-nope/tag?repo=e2eimg-x&tag=1", "", "", 404, "No such image: e2eimg-nope"},
		{"tag with a bad repository", "POST", "/v1.41/images/busybox/tag?repo=E2EIMG-BAD&tag=1", "", "", 500, "invalid reference format"},
		{"save unknown", "GET", "/v1.41/images/get?names=e2eimg-nope", "", "", 404, "No such image: e2eimg-nope"},
		{"save one unknown", "GET", "/v1.41/images/e2eimg-nope/get", "", "", 404, "No such image: e2eimg-nope"},
		{"list: bad filter JSON", "GET", "/v1.41/images/json?filters=%7Bnope", "", "", 400, "invalid character"},
		{"list: unknown filter", "GET", "/v1.41/images/json?filters=%7B%22e2e%22%3A%5B%22x%22%5D%7D", "", "", 400, "Invalid filter 'e2e'"},
		{"list: before an unknown image", "GET", "/v1.41/images/json?filters=%7B%22before%22%3A%5B%22e2eimg-nope%22%5D%7D", "", "", 404, "No such image: e2eimg-nope"},
		{"list: bad dangling value", "GET", "/v1.41/images/json?filters=%7B%22dangling%22%3A%5B%22maybe%22%5D%7D", "", "", 400, "Invalid filter 'dangling=[maybe]'"},
		{"prune: bad filter", "POST", "/v1.41/images/prune?filters=%7B%22e2e%22%3A%5B%22x%22%5D%7D", "", "", 400, "Invalid filter 'e2e'"},
		{"pull: bad name", "POST", "/v1.41/images/create?fromImage=E2EIMG", "", "", 400, "invalid reference format"},
		{"build: not a tar", "POST", "/v1.41/build?t=e2eimg-bad", "application/x-tar", "garbage", 500, "unexpected EOF"},
		{"build: BuildKit", "POST", "/v1.41/build?version=2", "application/x-tar", "", 501, "DOCKER_BUILDKIT=0"},
		{"unserved image route", "POST", "/v1.41/images/busybox/e2e-fly", "", "", 501, "not supported by Clocker yet"},
	}
	before := engineImageCounts(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := apiCall(t, tt.method, tt.path, tt.ctype, strings.NewReader(tt.body))
			if code != tt.status {
				t.Fatalf("status %d, want %d (%s)", code, tt.status, trunc(out))
			}
			var e struct{ Message string }
			if err := json.Unmarshal([]byte(out), &e); err != nil || e.Message == "" {
				t.Fatalf("body is not Docker's {\"message\": …}: %s", trunc(out))
			}
			if !strings.Contains(e.Message, tt.message) {
				t.Fatalf("message %q lacks %q", e.Message, tt.message)
			}
		})
	}
	if after := engineImageCounts(t); !slices.Equal(before, after) {
		t.Fatalf("bad input changed the engines: images %v → %v", before, after)
	}
}
