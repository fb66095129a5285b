//go:build e2e

package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestE2EContainerRoutes(t *testing.T) {
	cleanup(t, "routes", "routes-renamed", "otherhost", "fromcommit")
	mustDocker(t, "run", "-d", "--name", "routes", "-p", "18080:80", "busybox", "sh", "-c", "echo hi > /made; sleep 300")

	t.Run("top", func(t *testing.T) {
		if out := mustDocker(t, "top", "routes"); !strings.Contains(out, "sleep 300") {
			t.Fatalf("top: %s", out)
		}
	})
	t.Run("stats one-shot", func(t *testing.T) {
		out := mustDocker(t, "stats", "--no-stream", "--format", "{{.Name}}", "routes")
		if out != "routes" {
			t.Fatalf("stats: %q", out)
		}
	})
	t.Run("stats stream", func(t *testing.T) {
		code, body := apiCall(t, "GET", "/v1.41/containers/routes/stats?stream=0", "", nil)
		var st struct{ Name string }
		if code != 200 || json.Unmarshal([]byte(body), &st) != nil || st.Name != "/routes" {
			t.Fatalf("stats: %d %s", code, trunc(body))
		}
	})
	t.Run("diff", func(t *testing.T) {
		if out := mustDocker(t, "diff", "routes"); !strings.Contains(out, "A /made") {
			t.Fatalf("diff: %s", out)
		}
	})
	t.Run("port", func(t *testing.T) {
		if out := mustDocker(t, "port", "routes", "80"); !strings.Contains(out, ":18080") {
			t.Fatalf("port: %s", out)
		}
	})
	t.Run("cp both ways", func(t *testing.T) {
		dir := t.TempDir()
		src := filepath.Join(dir, "in.txt")
		if err := os.WriteFile(src, []byte("copied in\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		mustDocker(t, "cp", src, "routes:/tmp/in.txt")
		if out := mustDocker(t, "exec", "routes", "cat", "/tmp/in.txt"); out != "copied in" {
			t.Fatalf("cp in: %q", out)
		}
		dst := filepath.Join(dir, "out.txt")
		mustDocker(t, "cp", "routes:/made", dst)
		if b, _ := os.ReadFile(dst); string(b) != "hi\n" {
			t.Fatalf("cp out: %q", b)
		}
	})
	t.Run("export", func(t *testing.T) {
		r := docker(t, nil, "export", "routes")
		found := false
		tr := tar.NewReader(bytes.NewReader([]byte(r.Stdout)))
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if h.Name == "made" {
				b, _ := io.ReadAll(tr)
				found = string(b) == "hi\n"
			}
		}
		if r.Code != 0 || !found {
			t.Fatalf("export: code %d, /made found %v", r.Code, found)
		}
	})
	t.Run("pause unpause", func(t *testing.T) {
		mustDocker(t, "pause", "routes")
		if st := mustDocker(t, "ps", "--filter", "name=^/routes$", "--format", "{{.State}}"); st != "paused" {
			t.Fatalf("after pause: %s", st)
		}
		mustDocker(t, "unpause", "routes")
		if st := mustDocker(t, "ps", "--filter", "name=^/routes$", "--format", "{{.State}}"); st != "running" {
			t.Fatalf("after unpause: %s", st)
		}
	})
	t.Run("update", func(t *testing.T) {
		mustDocker(t, "update", "--memory", "64m", "--memory-swap", "128m", "routes")
		if m := mustDocker(t, "inspect", "-f", "{{.HostConfig.Memory}}", "routes"); m != "67108864" {
			t.Fatalf("memory after update: %s", m)
		}
	})
	t.Run("commit lands where its image is", func(t *testing.T) {
		mustDocker(t, "commit", "routes", "e2e-committed:1")
		t.Cleanup(func() {
			docker(t, nil, "rm", "-f", "fromcommit")
			engineDocker(t, engineIndex(t, hostOf(t, "routes")), "rmi", "-f", "e2e-committed:1")
		})
		mustDocker(t, "run", "-d", "--name", "fromcommit", "e2e-committed:1", "sleep", "300")
		if a, b := hostOf(t, "fromcommit"), hostOf(t, "routes"); a != b {
			t.Fatalf("container of the committed image on %s, image on %s", a, b)
		}
		if out := mustDocker(t, "exec", "fromcommit", "cat", "/made"); out != "hi" {
			t.Fatalf("committed file: %q", out)
		}
	})
	t.Run("rename is fleet-unique", func(t *testing.T) {
		mustDocker(t, "run", "-d", "--name", "otherhost", "busybox", "sleep", "300")
		r := docker(t, nil, "rename", "routes", "otherhost")
		if r.Code == 0 || !strings.Contains(r.Stderr, "already in use") {
			t.Fatalf("rename onto a taken name: %+v", r)
		}
		if r := docker(t, nil, "rename", "routes", "bad name"); r.Code == 0 || !strings.Contains(r.Stderr, "Invalid container name") {
			t.Fatalf("rename to an invalid name: %+v", r)
		}
		mustDocker(t, "rename", "routes", "routes-renamed")
		if out := mustDocker(t, "ps", "--filter", "name=routes", "--format", "{{.Names}}"); out != "routes-renamed" {
			t.Fatalf("ps after rename: %q", out)
		}
	})
	t.Run("prune", func(t *testing.T) {
		docker(t, nil, "run", "--name", "prunable1", "busybox", "true")
		docker(t, nil, "run", "--name", "prunable2", "busybox", "true")
		out := mustDocker(t, "container", "prune", "-f")
		if strings.Count(out, "\n") < 2 {
			t.Fatalf("prune: %s", out)
		}
		if out := mustDocker(t, "ps", "-a", "--filter", "name=prunable", "--format", "{{.Names}}"); out != "" {
			t.Fatalf("after prune: %q", out)
		}
	})
}
