package placement

import (
	"sync"
	"time"

	"github.com/clocker/clocker/scheduler"
)

// decisionsKept bounds the decisions kept for created containers: the
// console shows why a recent container runs where it does; older ones
// are forgotten first.
const decisionsKept = 4096

// Record is the placement decision that put a container on its host,
// kept once the engine created it.
type Record struct {
	ID       string              `json:"ID"`
	Name     string              `json:"Name"`
	Host     string              `json:"Host"`
	Time     time.Time           `json:"Time"`
	Decision *scheduler.Decision `json:"Decision"`
}

// decisionLog is a bounded record of decisions by container ID, oldest
// evicted first.
type decisionLog struct {
	mu    sync.Mutex
	byID  map[string]Record
	order []string // IDs, oldest first
}

func (l *decisionLog) add(r Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byID == nil {
		l.byID = map[string]Record{}
	}
	if _, ok := l.byID[r.ID]; !ok {
		l.order = append(l.order, r.ID)
	}
	l.byID[r.ID] = r
	for len(l.order) > decisionsKept {
		delete(l.byID, l.order[0])
		l.order = l.order[1:]
	}
}

func (l *decisionLog) get(id string) (Record, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.byID[id]
	return r, ok
}

// DecisionOf returns the decision that placed the container with this
// (full) ID, when it was created through this placer recently.
func (p *Placer) DecisionOf(id string) (Record, bool) { return p.decisions.get(id) }
