package blueprint

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/clocker/clocker/internal/errdefs"
)

// SensorPaused is Clocker 1.x's docker.container.paused.
const SensorPaused = "docker.container.paused"

// containerEffectors are Clocker 1.x DockerContainer's effectors, on
// every entity that runs a container.
var containerEffectors = []Effector{
	{Name: "shutDown", Description: "Shut-down the Docker container (killed at once, not removed)"},
	{Name: "pause", Description: "Pause the Docker container (docker pause)"},
	{Name: "resume", Description: "Resume the paused Docker container (docker unpause)"},
}

// containerEffector is the container effector name of e (nil: none).
func (m *Manager) containerEffector(e *Entity, name string) func(ctx context.Context) (any, error) {
	if !e.Node.Kind.RunsContainer() {
		return nil
	}
	switch name {
	case "shutDown":
		return func(ctx context.Context) (any, error) { return nil, m.shutDown(ctx, e) }
	case "pause":
		return func(ctx context.Context) (any, error) { return nil, m.pause(ctx, e) }
	case "resume":
		return func(ctx context.Context) (any, error) { return nil, m.resume(ctx, e) }
	}
	return nil
}

// containerOf is e's container id; an entity not started has none.
func (m *Manager) containerOf(e *Entity) (string, error) {
	m.mu.Lock()
	id := e.containerID
	m.mu.Unlock()
	if id == "" {
		return "", errdefs.New(errdefs.ErrConflict, fmt.Sprintf("%s has no container yet: start it first", e.Node.Label()))
	}
	return id, nil
}

// engineErr names what failed; the engine's conflict (not running, not
// paused) stays a 409.
func engineErr(what string, err error) error {
	if cerrdefs.IsConflict(err) {
		return errdefs.New(errdefs.ErrConflict, what+": "+err.Error())
	}
	return fmt.Errorf("%s: %w", what, err)
}

// pause freezes e's container; e is stopped (not on fire: the watcher
// leaves stopped entities alone) until resume.
func (m *Manager) pause(ctx context.Context, e *Entity) error {
	id, err := m.containerOf(e)
	if err != nil {
		return err
	}
	if _, err := m.engOf(e.App).ContainerPause(ctx, id, client.ContainerPauseOptions{}); err != nil {
		return engineErr("pause "+e.Node.Label(), err)
	}
	m.setSensors(e, map[string]any{SensorPaused: true, SensorState: StateStopped, SensorUp: false})
	return m.save(e.App)
}

// resume unpauses e's container and publishes its state again; a software
// process is up once its check passes again.
func (m *Manager) resume(ctx context.Context, e *Entity) error {
	id, err := m.containerOf(e)
	if err != nil {
		return err
	}
	if _, err := m.engOf(e.App).ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{}); err != nil {
		return engineErr("resume "+e.Node.Label(), err)
	}
	err = m.refresh(ctx, e)
	if err == nil && isProcess(e) {
		err = m.awaitProcess(ctx, e)
	}
	if err != nil {
		m.fail(e, err)
	}
	m.save(e.App)
	return err
}

// shutDown kills e's container (Clocker 1.x: docker kill); start brings
// it back.
func (m *Manager) shutDown(ctx context.Context, e *Entity) error {
	id, err := m.containerOf(e)
	if err != nil {
		return err
	}
	now := 0
	if _, err := m.engOf(e.App).ContainerStop(ctx, id, client.ContainerStopOptions{Signal: "SIGKILL", Timeout: &now}); err != nil && !isNotModified(err) {
		return engineErr("shut down "+e.Node.Label(), err)
	}
	m.setSensors(e, map[string]any{"docker.container.running": false, SensorPaused: false, SensorState: StateStopped, SensorUp: false})
	return m.save(e.App)
}
