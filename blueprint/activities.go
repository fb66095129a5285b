package blueprint

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/clocker/clocker/internal/errdefs"
)

// maxStream bounds what one stream of a task shows.
const maxStream = 4 << 20

// taskRef is Brooklyn's link to a task (submittedByTask, children).
func taskRef(t *Task) map[string]any {
	return map[string]any{
		"link":     "/v1/activities/" + t.ID,
		"metadata": map[string]any{"id": t.ID, "taskName": t.DisplayName, "entityId": t.EntityID, "entityDisplayName": t.EntityName},
	}
}

func (m *Manager) taskChildren(t *Task) []any {
	out := []any{}
	for _, k := range t.Children() {
		out = append(out, taskRef(k))
	}
	return out
}

func submittedBy(t *Task) any {
	if t.Parent == nil {
		return nil
	}
	return taskRef(t.Parent)
}

// taskStreams are the streams of t with their sizes: for a container
// entity's start or restart, its container's stdout and stderr from the
// task's start until the entity's next lifecycle task (or now), and its
// environment.
func (m *Manager) taskStreams(ctx context.Context, t *Task) map[string]any {
	out := map[string]any{}
	if !t.streams {
		return out
	}
	streams, err := m.streamText(ctx, t)
	if err != nil {
		return out
	}
	for name, b := range streams {
		out[name] = map[string]any{
			"link":     "/v1/activities/" + t.ID + "/stream/" + name,
			"metadata": map[string]any{"name": name, "size": len(b), "sizeText": fmt.Sprintf("%d B", len(b))},
		}
	}
	return out
}

// streamText reads t's streams: stdout, stderr and env.
func (m *Manager) streamText(ctx context.Context, t *Task) (map[string][]byte, error) {
	m.mu.Lock()
	e := m.entities[t.EntityID]
	id := ""
	if e != nil {
		id = e.containerID
	}
	m.mu.Unlock()
	if id == "" {
		return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("entity %s of activity %s has no container now", t.EntityName, t.ID))
	}
	started, _, _ := t.times()
	opts := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Since: unixNano(started)}
	for _, later := range m.Tasks(e) {
		if later.Submitted.After(t.Submitted) && (later.streams || later.DisplayName == "stop") {
			opts.Until = unixNano(later.Submitted)
			break
		}
	}
	rc, err := m.engOf(e.App).ContainerLogs(ctx, id, opts)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, 2*maxStream))
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	var o, e2 bytes.Buffer
	if _, err := stdcopy.StdCopy(&o, &e2, bytes.NewReader(raw)); err != nil {
		out["stdout"], out["stderr"] = raw, nil // a TTY container's log is not multiplexed
	} else {
		out["stdout"], out["stderr"] = o.Bytes(), e2.Bytes()
	}
	if ins, err := m.engOf(e.App).ContainerInspect(ctx, id, client.ContainerInspectOptions{}); err == nil && ins.Container.Config != nil {
		var b bytes.Buffer
		for _, kv := range ins.Container.Config.Env {
			b.WriteString(kv + "\n")
		}
		out["env"] = b.Bytes()
	}
	return out, nil
}

func unixNano(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

func (m *Manager) activityChildren(w http.ResponseWriter, r *http.Request) error {
	t, err := m.taskOfPath(r)
	if err != nil {
		return err
	}
	out := []any{}
	for _, k := range t.Children() {
		out = append(out, m.taskSummary(k))
	}
	return writeJSON(w, http.StatusOK, out)
}

// activityStream answers one stream of a task as text.
func (m *Manager) activityStream(w http.ResponseWriter, r *http.Request) error {
	t, err := m.taskOfPath(r)
	if err != nil {
		return err
	}
	name := r.PathValue("stream")
	if !t.streams {
		return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("Activity '%s' has no stream '%s'", t.ID, name))
	}
	streams, err := m.streamText(r.Context(), t)
	if err != nil {
		return err
	}
	b, ok := streams[name]
	if !ok {
		return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("Activity '%s' has no stream '%s'", t.ID, name))
	}
	if len(b) > maxStream {
		b = b[len(b)-maxStream:]
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	return err
}

func (m *Manager) taskOfPath(r *http.Request) (*Task, error) {
	t := m.Task(r.PathValue("id"))
	if t == nil || !m.taskVisible(r.Context(), t) {
		return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("Activity '%s' not found", r.PathValue("id")))
	}
	return t, nil
}
