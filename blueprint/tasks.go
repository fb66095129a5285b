package blueprint

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/clocker/clocker/internal/store"
)

// Task is one unit of work on an entity (start, stop, an effector, a
// delete), shown as Brooklyn's TaskSummary. A task started inside
// another (an entity's start inside its application's) is its child.
type Task struct {
	ID          string
	DisplayName string
	Description string
	EntityID    string
	EntityName  string
	// Owner is the tenant whose application the task acts on ("": the
	// admins'); another tenant does not see it.
	Owner     string
	Submitted time.Time
	// Parent is the task it was started in (nil: none).
	Parent *Task
	// streams: a start or restart; an entity with a container has its
	// output and environment as the task's streams (activities.go).
	streams bool

	mu      sync.Mutex
	started time.Time
	ended   time.Time
	err     error
	result  any
	kids    []*Task
	done    chan struct{}
}

// Done is closed when the task has ended.
func (t *Task) Done() <-chan struct{} { return t.done }

// Result is the task's result and error once it has ended.
func (t *Task) Result() (any, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.result, t.err
}

func (t *Task) times() (started, ended time.Time, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.started, t.ended, t.err
}

// Children are the tasks started inside t.
func (t *Task) Children() []*Task {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]*Task(nil), t.kids...)
}

// taskRecord is what the store keeps of an ended task.
type taskRecord struct {
	ID, DisplayName, Description, EntityID, EntityName string
	Submitted, Started, Ended                          time.Time
	Error                                              string   `json:",omitempty"`
	Result                                             any      `json:",omitempty"`
	Parent                                             string   `json:",omitempty"`
	Owner                                              string   `json:",omitempty"`
	Children                                           []string `json:",omitempty"`
	Streams                                            bool     `json:",omitempty"`
}

// taskLog keeps the latest tasks (bounded) by id; ended ones are stored
// so that the history outlives a restart.
type taskLog struct {
	mu    sync.Mutex
	max   int
	st    store.Store
	log   *slog.Logger
	byID  map[string]*Task
	order []string
}

func newTaskLog(max int) taskLog { return taskLog{max: max, byID: map[string]*Task{}} }

// attach stores ended tasks in st from now on and brings back the
// stored history.
func (l *taskLog) attach(st store.Store, log *slog.Logger) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st, l.log = st, log
	l.load()
}

// load brings back the stored history, oldest first; what is over the
// bound goes. Needs l.mu.
func (l *taskLog) load() {
	if l.st == nil {
		return
	}
	var recs []taskRecord
	err := l.st.ForEach(store.BucketTasks, func(key string, value []byte) error {
		var r taskRecord
		if err := json.Unmarshal(value, &r); err != nil {
			l.log.Warn("blueprint: unreadable stored task", "id", key, "err", err)
			return nil
		}
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		l.log.Warn("blueprint: reading the task history", "err", err)
		return
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Submitted.Before(recs[j].Submitted) })
	for _, r := range recs {
		t := &Task{ID: r.ID, DisplayName: r.DisplayName, Description: r.Description, EntityID: r.EntityID, EntityName: r.EntityName, Owner: r.Owner,
			Submitted: r.Submitted, started: r.Started, ended: r.Ended, result: r.Result, streams: r.Streams, done: make(chan struct{})}
		if r.Error != "" {
			t.err = errors.New(r.Error)
		}
		close(t.done)
		l.byID[t.ID] = t
		l.order = append(l.order, t.ID)
	}
	for _, r := range recs {
		t := l.byID[r.ID]
		if p := l.byID[r.Parent]; p != nil {
			t.Parent = p
		}
		for _, c := range r.Children {
			if k := l.byID[c]; k != nil {
				t.kids = append(t.kids, k)
			}
		}
	}
	l.trim()
}

func (l *taskLog) add(t *Task) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byID[t.ID] = t
	l.order = append(l.order, t.ID)
	l.trim()
}

// trim drops the oldest tasks over the bound; needs l.mu (or no sharing).
func (l *taskLog) trim() {
	for len(l.order) > l.max {
		id := l.order[0]
		delete(l.byID, id)
		l.order = l.order[1:]
		if l.st != nil {
			if err := l.st.Delete(store.BucketTasks, id); err != nil {
				l.log.Warn("blueprint: dropping a stored task", "id", id, "err", err)
			}
		}
	}
}

// ended stores t once it has ended (unless the bound dropped it).
func (l *taskLog) ended(t *Task) {
	if l.st == nil {
		return
	}
	t.mu.Lock()
	r := taskRecord{ID: t.ID, DisplayName: t.DisplayName, Description: t.Description, EntityID: t.EntityID, EntityName: t.EntityName,
		Submitted: t.Submitted, Started: t.started, Ended: t.ended, Result: t.result, Streams: t.streams, Owner: t.Owner}
	if t.err != nil {
		r.Error = t.err.Error()
	}
	if t.Parent != nil {
		r.Parent = t.Parent.ID
	}
	for _, k := range t.kids {
		r.Children = append(r.Children, k.ID)
	}
	t.mu.Unlock()
	if _, err := json.Marshal(r.Result); err != nil {
		r.Result = nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byID[t.ID] == nil {
		return
	}
	if err := l.st.Put(store.BucketTasks, t.ID, r); err != nil {
		l.log.Warn("blueprint: storing a task", "id", t.ID, "err", err)
	}
}

func (l *taskLog) get(id string) *Task {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byID[id]
}

// of lists the tasks of an entity, oldest first.
func (l *taskLog) of(entityID string) []*Task {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*Task
	for _, id := range l.order {
		if t := l.byID[id]; t.EntityID == entityID {
			out = append(out, t)
		}
	}
	return out
}

// Task finds a task by id.
func (m *Manager) Task(id string) *Task { return m.tasks.get(id) }

// Tasks lists an entity's tasks.
func (m *Manager) Tasks(e *Entity) []*Task { return m.tasks.of(e.ID) }

// submit runs fn as a task of e in the background.
func (m *Manager) submit(e *Entity, name string, fn func(ctx context.Context) (any, error)) *Task {
	return m.submitCtx(m.ctx, e, name, fn)
}

type taskKey struct{}

// taskOf is the task ctx runs in (nil: none).
func taskOf(ctx context.Context) *Task {
	t, _ := ctx.Value(taskKey{}).(*Task)
	return t
}

// taskVisible tells whether the request's context may see task t.
func (m *Manager) taskVisible(ctx context.Context, t *Task) bool {
	o := m.owner(ctx)
	return o == "" || t.Owner == o
}

// entityOwner is the owner of the application of the entity with that
// id ("" when unknown).
func (m *Manager) entityOwner(entityID string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.entities[entityID]; e != nil {
		return e.App.Owner
	}
	return ""
}

func (m *Manager) newTask(ctx context.Context, owner, entityID, entityName, name string) *Task {
	t := &Task{ID: NewID(), DisplayName: name, Description: name + " " + entityName, EntityID: entityID, EntityName: entityName,
		Owner: owner, Submitted: time.Now(), Parent: taskOf(ctx), done: make(chan struct{})}
	t.streams = name == "start" || name == "restart"
	if p := t.Parent; p != nil {
		p.mu.Lock()
		p.kids = append(p.kids, t)
		p.mu.Unlock()
	}
	m.tasks.add(t)
	return t
}

func (m *Manager) endTask(t *Task, res any, err error) {
	t.mu.Lock()
	t.ended, t.result, t.err = time.Now(), res, err
	t.mu.Unlock()
	close(t.done)
	m.tasks.ended(t)
}

func (m *Manager) submitCtx(ctx context.Context, e *Entity, name string, fn func(ctx context.Context) (any, error)) *Task {
	return m.runTask(ctx, e.ID, e.Node.Name, name, fn)
}

// runTask runs fn as a task of the entity with that id and name in the
// background.
func (m *Manager) runTask(ctx context.Context, entityID, entityName, name string, fn func(ctx context.Context) (any, error)) *Task {
	return m.runTaskFor(ctx, m.entityOwner(entityID), entityID, entityName, name, fn)
}

// runTaskFor is runTask for an entity not known yet (a compose project
// being made) of owner's.
func (m *Manager) runTaskFor(ctx context.Context, owner, entityID, entityName, name string, fn func(ctx context.Context) (any, error)) *Task {
	t := m.newTask(ctx, owner, entityID, entityName, name)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t.mu.Lock()
		t.started = time.Now()
		t.mu.Unlock()
		res, err := fn(context.WithValue(ctx, taskKey{}, t))
		if err != nil {
			m.log.Warn("blueprint: task failed", "task", name, "entity", entityID, "err", err)
		}
		m.endTask(t, res, err)
	}()
	return t
}

// subtask runs part of the current task as its child task named name on
// e (when the current task is not that already); call end when done.
func (m *Manager) subtask(ctx context.Context, e *Entity, name string) (context.Context, func(error)) {
	if cur := taskOf(ctx); cur == nil || (cur.EntityID == e.ID && cur.DisplayName == name) {
		return ctx, func(error) {}
	}
	t := m.newTask(ctx, e.App.Owner, e.ID, e.Node.Name, name)
	t.started = t.Submitted
	return context.WithValue(ctx, taskKey{}, t), func(err error) { m.endTask(t, nil, err) }
}
