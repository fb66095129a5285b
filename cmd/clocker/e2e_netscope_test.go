//go:build e2e

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A fleet network created as a bridge network inspects as an engine's
// bridge network would (Scope local), and compose reuses existing networks
// through Clocker: an external one and, on a second `up`, the project's
// own, without finding their settings changed.
func TestE2ENetworkScopeAndComposeReuse(t *testing.T) {
	cleanupNetworks(t, "shext", "shov")
	mustDocker(t, "network", "create", "--label", "team=a", "shext")
	mustDocker(t, "network", "create", "-d", "overlay", "shov")
	for n, want := range map[string]string{"shext": "local bridge map[team:a]", "shov": "global overlay map[]"} {
		if got := mustDocker(t, "network", "inspect", "-f", "{{.Scope}} {{.Driver}} {{.Labels}}", n); got != want {
			t.Errorf("network %s: %q, want %q", n, got, want)
		}
	}
	if got := mustDocker(t, "network", "ls", "-q", "--filter", "scope=local", "--filter", "name=shext"); got == "" {
		t.Error("network ls --filter scope=local leaves out a bridge fleet network")
	}
	if got := mustDocker(t, "network", "ls", "-q", "--filter", "scope=global", "--filter", "name=shext"); got != "" {
		t.Errorf("network ls --filter scope=global lists a bridge fleet network: %s", got)
	}

	file := `version: "3.7"
services:
  web:
    image: busybox
    command: sleep 300
    networks: [ext, inner]
  db:
    image: busybox
    command: sleep 300
    networks: [inner]
networks:
  ext:
    external: true
    name: shext
  inner:
    driver: bridge
    labels:
      tier: back
`
	for _, cli := range composeCLIs(t) {
		t.Run("compose "+cli.name, func(t *testing.T) {
			project := "shc" + cli.name[1:] // shc1, shc2
			web := project + cli.sep + "web" + cli.sep + "1"
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(file), 0o644); err != nil {
				t.Fatal(err)
			}
			compose := func(args ...string) (string, error) {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				all := append(append(append([]string{}, cli.cmd[1:]...), "-p", project), args...)
				cmd := exec.CommandContext(ctx, cli.cmd[0], all...)
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), "DOCKER_HOST="+clockerURL, "DOCKER_CLI_HINTS=false")
				out, err := cmd.CombinedOutput()
				return string(out), err
			}
			cleanupNetworks(t, project+"_inner")
			t.Cleanup(func() { _, _ = compose("down", "-t", "1") })
			for round := 1; round <= 2; round++ { // the second up reuses the project's network
				out, err := compose("up", "-d")
				if err != nil {
					t.Fatalf("up #%d: %v\n%s", round, err, out)
				}
				for _, bad := range []string{"has changed", "needs to be recreated", "declared as external, but could not be found", "not created by compose"} {
					if strings.Contains(out, bad) {
						t.Errorf("up #%d: %q\n%s", round, bad, out)
					}
				}
			}
			if out := mustDocker(t, "exec", web, "ping", "-c", "1", "-W", "5", "db"); !strings.Contains(out, "1 packets received") {
				t.Errorf("web pings db: %s", out)
			}
			if got := mustDocker(t, "network", "inspect", "-f", "{{.Scope}} {{.Driver}} {{.Labels}}", project+"_inner"); !strings.HasPrefix(got, "local bridge map[") || !strings.Contains(got, "tier:back") {
				t.Errorf("the project's network: %s", got)
			}
			if out, err := compose("down", "-t", "1"); err != nil {
				t.Fatalf("down: %v\n%s", err, out)
			}
			// The external network stays; the project's is gone.
			mustDocker(t, "network", "inspect", "shext")
			if r := docker(t, nil, "network", "inspect", project+"_inner"); r.Code == 0 {
				t.Errorf("%s_inner is still there after down", project)
			}
		})
	}
}
