package blueprint

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/clocker/clocker/blueprint/camp"
	"github.com/clocker/clocker/internal/errdefs"
)

// A software process (VanillaSoftwareProcess, EmptySoftwareProcess) is a
// container of its base image whose main process is a script: a stop
// function (stop.command) run on SIGTERM, then install.command,
// customize.command and launch.command under set -e (one failing ends
// the container: the start fails), then a marker file and a wait.
// As in Brooklyn, launch.command starts the service and returns (a
// daemon, or a command with &); checkRunning.command, polled, says
// whether it is up (default: the launch commands have run).

// launchedMarker is written once launch.command has returned.
const launchedMarker = "/tmp/.clocker-launched"

// processScript is the container's main process.
func processScript(cfg map[string]any) string {
	var b strings.Builder
	b.WriteString("clocker_stop() {\n:\n")
	if s := str(cfg["stop.command"]); s != "" {
		b.WriteString(s + "\n")
	}
	b.WriteString("}\ntrap 'clocker_stop; exit 0' TERM INT\nset -e\n")
	for _, k := range []string{"install.command", "customize.command", "launch.command"} {
		if s := str(cfg[k]); s != "" {
			b.WriteString(s + "\n")
		}
	}
	b.WriteString("set +e\ntouch " + launchedMarker + "\nwhile :; do sleep 3600 & wait $!; done\n")
	return b.String()
}

// checkCommand is what decides the process's service.isUp.
func checkCommand(e *Entity, cfg map[string]any) string {
	if s := str(cfg["checkRunning.command"]); s != "" {
		return s
	}
	return "test -e " + launchedMarker
}

// processOptions makes a container create a software process: the
// script as its command, shell.env beside env.
func processOptions(e *Entity, cfg map[string]any, opts *client.ContainerCreateOptions) error {
	opts.Config.Entrypoint = []string{"sh", "-c", processScript(cfg), "clocker-process"}
	opts.Config.Cmd = nil
	if v, ok := cfg["shell.env"]; ok && v != nil {
		mp, ok := v.(map[string]any)
		if !ok {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s: shell.env: want a map of name to value", e.Node.Label()))
		}
		for k, x := range mp {
			opts.Config.Env = append(opts.Config.Env, k+"="+str(x))
		}
		sort.Strings(opts.Config.Env)
	}
	return nil
}

// execRun runs cmd in container id and answers its exit code.
func (m *Manager) execRun(ctx context.Context, id string, cmd ...string) (int, error) {
	ex, err := m.eng.ExecCreate(ctx, id, client.ExecCreateOptions{Cmd: cmd})
	if err != nil {
		return -1, err
	}
	if _, err := m.eng.ExecStart(ctx, ex.ID, client.ExecStartOptions{Detach: true}); err != nil {
		return -1, err
	}
	for wait := 5 * time.Millisecond; ; wait = min(wait*2, 200*time.Millisecond) {
		in, err := m.eng.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
		if err != nil {
			return -1, err
		}
		if !in.Running {
			return in.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// processUp runs the process's check once.
func (m *Manager) processUp(ctx context.Context, e *Entity, id string) bool {
	m.mu.Lock()
	cfg := e.resolved
	m.mu.Unlock()
	code, err := m.execRun(ctx, id, "sh", "-c", checkCommand(e, cfg))
	return err == nil && code == 0
}

// errProcessExited is a software process whose container ended before
// it was up (a command failed).
var errProcessExited = errors.New("the process's container exited")

// awaitProcess waits until the process's check passes, failing when its
// container ends or the entity's start timeout passes.
func (m *Manager) awaitProcess(ctx context.Context, e *Entity) error {
	m.mu.Lock()
	id := e.containerID
	m.mu.Unlock()
	deadline := time.Now().Add(m.waitTimeout(e))
	for wait := 20 * time.Millisecond; ; wait = min(wait*2, time.Second) {
		if m.processUp(ctx, e, id) {
			m.setState(e, StateRunning, true)
			return nil
		}
		in, err := m.engOf(e.App).ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			return err
		}
		if st := in.Container.State; st == nil || !st.Running {
			code := -1
			if st != nil {
				code = st.ExitCode
			}
			m.setSensors(e, map[string]any{"docker.container.running": false})
			return fmt.Errorf("%s: %w with code %d before checkRunning passed (see docker logs %s)", e.Node.Label(), errProcessExited, code, id)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: checkRunning.command did not pass within %s", e.Node.Label(), m.waitTimeout(e))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// pollProcess is the watch's check of a running (or on-fire) process
// whose container runs.
func (m *Manager) pollProcess(ctx context.Context, e *Entity, id string) {
	up := m.processUp(ctx, e, id)
	if ctx.Err() != nil {
		return
	}
	switch state := m.State(e); {
	case state == StateRunning && !up:
		m.setSensors(e, map[string]any{SensorState: StateOnFire, SensorUp: false,
			SensorServiceProblemsKey: "checkRunning.command failed"})
	case state == StateOnFire && up:
		m.setSensors(e, map[string]any{SensorState: StateRunning, SensorUp: true, SensorServiceProblemsKey: nil})
	}
}

// isProcess tells whether e is a software process.
func isProcess(e *Entity) bool { return e.Node.Kind == camp.KindProcess }
