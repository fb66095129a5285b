//go:build e2e

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// composeStreams is a project for the compose commands that stream: a
// talker counting on stdout, a service built here (its image named by
// compose, so `down --rmi local` removes it), and, under a profile, a
// quitter that exits 3, and under another one a service to push.
const composeStreams = `services:
  talker:
    image: busybox
    command: ["sh", "-c", "i=0; while true; do echo tick $$i; i=$$((i+1)); sleep 0.2; done"]
    stop_signal: SIGKILL
  built:
    build: ./built
    command: ["sleep", "3600"]
  quitter:
    image: busybox
    command: ["sh", "-c", "echo bye; sleep 1; exit 3"]
    profiles: ["quit"]
  pushme:
    build: ./built
    image: %s-pushme:1
    profiles: ["push"]
`

// started is a compose command running in the background.
type started struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan error // its Wait's answer, once
}

// start runs compose with args in the background.
func (p *composeProject) start(t *testing.T, args ...string) *started {
	t.Helper()
	cmd := p.command(context.Background(), nil, args...)
	s := &started{cmd: cmd, out: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-s.done
	})
	return s
}

// wait waits for the command to end by itself: its Wait's answer.
func (s *started) wait(t *testing.T, limit time.Duration) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		return err
	case <-time.After(limit):
		t.Fatalf("%s did not end within %s; its output:\n%s", strings.Join(s.cmd.Args, " "), limit, s.out.String())
		return nil
	}
}

var tickRE = regexp.MustCompile(`tick (\d+)`)

// lastTick is the highest count the talker's lines in s show (-1: none).
func lastTick(s string) int {
	last := -1
	for _, m := range tickRE.FindAllStringSubmatch(s, -1) {
		if n, _ := strconv.Atoi(m[1]); n > last {
			last = n
		}
	}
	return last
}

// The compose commands that stream or hold a terminal, with both clients
// through Clocker: logs -f, events, attached up (ended by Ctrl-C, and by
// --abort-on-container-exit with the exit code of a service), push
// (no registry: a clear error), watch (v2), down --rmi local.
func TestE2EComposeStreams(t *testing.T) {
	for _, cli := range composeCLIs(t) {
		t.Run("compose "+cli.name, func(t *testing.T) {
			project := "ccstr" + cli.name[1:]
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(fmt.Sprintf(composeStreams, project)), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(filepath.Join(dir, "built"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "built", "Dockerfile"), []byte("FROM busybox\nRUN echo built > /built\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			p := newComposeProject(cli, project, dir, clockerURL)
			must := func(args ...string) string { t.Helper(); return p.must(t, args...) }
			builtImage := project + cli.sep + "built"
			t.Cleanup(func() {
				_, _ = p.run("--profile", "quit", "down", "-v", "-t", "0", "--remove-orphans")
				docker(t, nil, "rmi", "-f", builtImage)
			})
			must("up", "-d", "--build")

			// logs -f: lines keep coming while it runs.
			logs := p.start(t, "logs", "-f", "--tail", "1", "talker").out
			var first int
			waitFor(t, 60*time.Second, "a first tick in logs -f", func() bool { first = lastTick(logs.String()); return first >= 0 })
			waitFor(t, 60*time.Second, "logs -f to follow", func() bool { return lastTick(logs.String()) >= first+3 })

			// events: a restart of talker shows as its events. The client
			// subscribes at some point after it starts: restart until one
			// shows (each restart makes a start event).
			events := p.start(t, "events", "--json").out
			seen := func() bool {
				// One JSON object a line (v1 spaces its fields).
				for _, line := range strings.Split(events.String(), "\n") {
					var e struct{ Service, Action string }
					if json.Unmarshal([]byte(line), &e) == nil && e.Service == "talker" && e.Action == "start" {
						return true
					}
				}
				return false
			}
			for i := 0; i < 10 && !seen(); i++ {
				must("restart", "-t", "0", "talker")
				deadline := time.Now().Add(5 * time.Second)
				for !seen() && time.Now().Before(deadline) {
					time.Sleep(50 * time.Millisecond)
				}
			}
			if !seen() {
				t.Errorf("compose events shows no start of talker after ten restarts:\n%s", events.String())
			}

			// watch (v2; v1 has none): a file changed here is synced into
			// the running container.
			if cli.name == "v2" {
				if err := os.MkdirAll(filepath.Join(dir, "built", "www"), 0o755); err != nil {
					t.Fatal(err)
				}
				watchFile := "services:\n  built:\n    develop:\n      watch:\n        - action: sync\n          path: ./built/www\n          target: /www\n"
				if err := os.WriteFile(filepath.Join(dir, "watch.yml"), []byte(watchFile), 0o644); err != nil {
					t.Fatal(err)
				}
				watch := p.start(t, "-f", "docker-compose.yml", "-f", "watch.yml", "watch", "built")
				waitFor(t, 2*time.Minute, "compose watch to watch", func() bool { return strings.Contains(watch.out.String(), "Watch enabled") })
				if err := os.WriteFile(filepath.Join(dir, "built", "www", "page.txt"), []byte("synced\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				waitFor(t, time.Minute, "the changed file in the container", func() bool {
					out, err := p.run("exec", "-T", "built", "cat", "/www/page.txt")
					return err == nil && strings.TrimSpace(out) == "synced"
				})
				_ = watch.cmd.Process.Kill()
			}

			// push of a built image: no registry here, a clear error.
			must("--profile", "push", "build", "pushme")
			t.Cleanup(func() { docker(t, nil, "rmi", "-f", project+"-pushme:1") })
			if out, err := p.run("--profile", "push", "push", "pushme"); err == nil {
				t.Errorf("push with no registry succeeded:\n%s", out)
			} else if !strings.Contains(out, "docker.io") {
				t.Errorf("push with no registry: an unclear error:\n%s", out)
			}

			// Attached up, ended by Ctrl-C: the containers are stopped.
			up := p.start(t, "up", "talker")
			upOut := up.out
			waitFor(t, 60*time.Second, "attached up to show talker's lines", func() bool {
				return strings.Contains(upOut.String(), "talker") && lastTick(upOut.String()) >= 0
			})
			before := lastTick(upOut.String())
			waitFor(t, 60*time.Second, "attached up to follow", func() bool { return lastTick(upOut.String()) > before })
			if err := up.cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			_ = up.wait(t, 2*time.Minute)
			if st := mustDocker(t, "inspect", "-f", "{{.State.Status}}", p.name("talker", 1)); st != "exited" {
				t.Errorf("after Ctrl-C of attached up: talker %s, want exited\n%s", st, upOut.String())
			}

			// Attached up with --abort-on-container-exit: ends when the
			// quitter does, with its exit code, and stops the others.
			abort := p.start(t, "--profile", "quit", "up", "--abort-on-container-exit", "--exit-code-from", "quitter", "talker", "quitter")
			abortOut := abort.out
			err := abort.wait(t, 3*time.Minute)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 3 {
				t.Errorf("up --abort-on-container-exit --exit-code-from quitter: %v, want exit code 3\n%s", err, abortOut.String())
			}
			if out := abortOut.String(); !strings.Contains(out, "bye") {
				t.Errorf("attached up shows no line of quitter:\n%s", out)
			}
			if st := mustDocker(t, "inspect", "-f", "{{.State.Status}}", p.name("talker", 1)); st != "exited" {
				t.Errorf("after --abort-on-container-exit: talker %s, want exited", st)
			}

			// down --rmi local: the built image is gone from every host.
			// compose v5 with the classic builder leaves it against one
			// engine as well (its images carry no project label, and it
			// asks only for labelled ones): checked with v1 only.
			downOut := must("--profile", "quit", "down", "-v", "-t", "0", "--rmi", "local")
			if cli.name != "v1" {
				return
			}
			if r := docker(t, nil, "image", "inspect", builtImage); r.Code == 0 {
				t.Errorf("after down --rmi local, %s is still there; down said:\n%s", builtImage, downOut)
			}
			for i := range fleet.Engines {
				if out := engineDocker(t, i, "images", "-q", builtImage); out != "" {
					t.Errorf("after down --rmi local, %s on %s", builtImage, fleet.Engines[i].Name)
				}
			}
		})
	}
}
