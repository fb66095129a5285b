package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"

	"github.com/gorilla/mux"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/tenant"
)

// execTable remembers which host made each exec ID: exec IDs name no
// container. It is memory only; an unknown ID is looked up on the engines.
type execTable struct {
	mu    sync.Mutex
	hosts map[string]execEntry
	order []string // oldest first, to bound the table
}

// execEntry is where an exec runs: its host and container.
type execEntry struct{ host, container string }

const maxExecs = 100000

func newExecTable() *execTable { return &execTable{hosts: map[string]execEntry{}} }

func (t *execTable) put(id, host, container string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.hosts[id]; !ok {
		t.order = append(t.order, id)
	}
	t.hosts[id] = execEntry{host, container}
	for len(t.order) > maxExecs {
		delete(t.hosts, t.order[0])
		t.order = t.order[1:]
	}
}

func (t *execTable) get(id string) (execEntry, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h, ok := t.hosts[id]
	return h, ok
}

func (s *Server) registerExec(r *mux.Router) {
	s.register(r,
		route{http.MethodPost, "/exec/{id}/start", s.startExec},
		route{http.MethodPost, "/exec/{id}/resize", s.forwardExec},
		route{http.MethodGet, "/exec/{id}/json", s.forwardExec},
	)
}

// createExec forwards exec create, remembers the new ID's host and
// refreshes the container's cached inspect.
func (s *Server) createExec(w http.ResponseWriter, r *http.Request) error {
	h, c, err := s.resolve(r)
	if err != nil {
		return err
	}
	if err := s.bufferJSONBody(r); err != nil {
		return err
	}
	return s.forward(w, r, h, forwardOptions{path: containerPath(r, c.ID()), modify: func(resp *http.Response) error {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		var created struct {
			ID string `json:"Id"`
		}
		if json.Unmarshal(body, &created) == nil && created.ID != "" {
			s.execs.put(created.ID, h.Name, c.ID())
			// Inspect lists the exec in ExecIDs at once, as an engine's does.
			_ = refreshAfter(h, c.ID())(resp)
		}
		replaceBody(resp, body)
		return nil
	}})
}

// execHost finds the host of an exec ID, asking the engines when this
// process did not see it made (e.g. after a restart). A tenant's request
// finds only the execs of its own containers.
func (s *Server) execHost(r *http.Request) (*hosts.Host, string, error) {
	h, id, container, err := s.findExec(r)
	if err != nil {
		return nil, "", err
	}
	if t, ok := tenant.FromContext(r.Context()); ok {
		if c, ok := h.Container(container); !ok || !t.OwnsLabels(c.Summary.Labels) {
			return nil, "", errdefs.New(errdefs.ErrNotFound, "No such exec instance: "+mux.Vars(r)["id"])
		}
	}
	return h, id, nil
}

// findExec is the host, ID and container of the request's exec.
func (s *Server) findExec(r *http.Request) (h *hosts.Host, id, container string, err error) {
	id = mux.Vars(r)["id"]
	if e, ok := s.execs.get(id); ok {
		if h, ok := s.Fleet.Host(e.host); ok {
			return h, id, e.container, nil
		}
	}
	for _, h := range s.Fleet.Hosts() {
		if !h.Healthy() {
			continue
		}
		body, status, err := h.GetJSON(r.Context(), "/exec/"+id+"/json", nil)
		if err != nil || status != http.StatusOK {
			continue
		}
		var in struct{ ID, ContainerID string }
		if json.Unmarshal(body, &in) == nil && in.ID != "" {
			s.execs.put(in.ID, h.Name, in.ContainerID)
			return h, in.ID, in.ContainerID, nil
		}
	}
	return nil, "", "", errdefs.New(errdefs.ErrNotFound, "No such exec instance: "+id)
}

func (s *Server) startExec(w http.ResponseWriter, r *http.Request) error {
	h, id, err := s.execHost(r)
	if err != nil {
		return err
	}
	body, err := s.readJSONBody(r)
	if err != nil {
		return err
	}
	return s.hijack(w, r, h, "/exec/"+id+"/start", body)
}

func (s *Server) forwardExec(w http.ResponseWriter, r *http.Request) error {
	h, id, err := s.execHost(r)
	if err != nil {
		return err
	}
	rest := stripVersion(r.URL.Path)
	rest = rest[len("/exec/"+mux.Vars(r)["id"]):]
	return s.forward(w, r, h, forwardOptions{path: "/exec/" + id + rest})
}
