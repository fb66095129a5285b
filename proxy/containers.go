package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/clocker/clocker/engineapi"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/placement"
)

// containerPath is the engine path for the resolved container with the rest
// of the request path after its reference (/containers/REF/start →
// /containers/ID/start), so that a name or prefix is never re-resolved on
// the engine.
func containerPath(r *http.Request, id string) string {
	p := stripVersion(r.URL.Path)
	ref := mux.Vars(r)["name"]
	prefix := "/containers/" + ref
	return "/containers/" + id + strings.TrimPrefix(p, prefix)
}

// resolve finds the container a request names and its host.
func (s *Server) resolve(r *http.Request) (*hosts.Host, hosts.Container, error) {
	return s.Fleet.Resolve(r.Context(), mux.Vars(r)["name"])
}

// forwardContainer forwards a container-scoped call to the owning host.
func (s *Server) forwardContainer(w http.ResponseWriter, r *http.Request) error {
	h, c, err := s.resolve(r)
	if err != nil {
		return err
	}
	return s.forward(w, r, h, forwardOptions{path: containerPath(r, c.ID())})
}

// refreshAfter re-reads the container into the cache once the engine has
// answered, before the client sees the answer.
func refreshAfter(h *hosts.Host, id string) func(*http.Response) error {
	return func(resp *http.Response) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = h.Refresh(ctx, id) // the event stream catches up if this fails
		return nil
	}
}

// changeContainer forwards a state change and refreshes the cache before
// the client gets the answer.
func (s *Server) changeContainer(w http.ResponseWriter, r *http.Request) error {
	h, c, err := s.resolve(r)
	if err != nil {
		return err
	}
	if err := s.bufferJSONBody(r); err != nil {
		return err
	}
	return s.forward(w, r, h, forwardOptions{path: containerPath(r, c.ID()), modify: refreshAfter(h, c.ID())})
}

func (s *Server) removeContainer(w http.ResponseWriter, r *http.Request) error {
	h, c, err := s.resolve(r)
	if err != nil {
		return err
	}
	return s.forward(w, r, h, forwardOptions{path: containerPath(r, c.ID()), modify: refreshAfter(h, c.ID())})
}

// waitContainer forwards wait; its headers go out at once and its body when
// the condition is met. The cache is refreshed before the body is
// delivered, so a `docker run --rm` followed by `docker ps -a` agrees.
func (s *Server) waitContainer(w http.ResponseWriter, r *http.Request) error {
	h, c, err := s.resolve(r)
	if err != nil {
		return err
	}
	return s.forward(w, r, h, forwardOptions{path: containerPath(r, c.ID()), modify: func(resp *http.Response) error {
		resp.Body = &refreshOnEOF{body: resp.Body, refresh: func() {
			_ = refreshAfter(h, c.ID())(resp)
		}}
		return nil
	}})
}

// refreshOnEOF holds back a short body until it is complete, refreshes, then
// hands it out.
type refreshOnEOF struct {
	body    io.ReadCloser
	refresh func()
	buf     *bytes.Reader
}

func (b *refreshOnEOF) Read(p []byte) (int, error) {
	if b.buf == nil {
		data, err := io.ReadAll(io.LimitReader(b.body, 1<<20))
		b.refresh()
		b.buf = bytes.NewReader(data)
		if err != nil && len(data) == 0 {
			return 0, err
		}
	}
	return b.buf.Read(p)
}

func (b *refreshOnEOF) Close() error { return b.body.Close() }

// inspectContainer answers inspect from the host's cache (kept current by
// its event stream) when the client speaks the API version the cache was
// read with, else forwards; either way it adds classic swarm's Node object.
func (s *Server) inspectContainer(w http.ResponseWriter, r *http.Request) error {
	h, c, err := s.resolve(r)
	if err != nil {
		return err
	}
	node, err := json.Marshal(nodeOf(h))
	if err != nil {
		return err
	}
	if c.Inspect != nil && h.Healthy() && !engineapi.QueryBool(r.URL.Query(), "size") && upstreamVersion(r, h) == h.Facts().MaxAPI {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, err := w.Write(withNode(s.ingressInspect(h, c.Inspect), node))
		return err
	}
	return s.forward(w, r, h, forwardOptions{path: containerPath(r, c.ID()), modify: func(resp *http.Response) error {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode == http.StatusOK {
			body = withNode(s.ingressInspect(h, body), node)
		}
		replaceBody(resp, body)
		return nil
	}})
}

// withNode splices the Node object in before the closing brace, keeping
// the engine's own bytes and field order.
func withNode(body, node []byte) []byte {
	trimmed := bytes.TrimRight(body, " \r\n\t")
	if len(trimmed) < 2 || trimmed[len(trimmed)-1] != '}' {
		return body
	}
	out := make([]byte, 0, len(trimmed)+len(node)+10)
	out = append(out, trimmed[:len(trimmed)-1]...)
	out = append(out, `,"Node":`...)
	out = append(out, node...)
	return append(out, "}\n"...)
}

// node is classic swarm's description of the host in inspect.
type node struct {
	ID     string
	IP     string
	Addr   string
	Name   string
	Cpus   int
	Memory int64
	Labels map[string]string
}

func nodeOf(h *hosts.Host) node {
	f := h.Facts()
	return node{ID: h.Name, IP: hostIP(h), Addr: hostAddr(h), Name: h.Name, Cpus: f.NCPU, Memory: f.MemTotal, Labels: placement.EngineLabels(f)}
}

// renameContainer keeps names unique across the fleet.
func (s *Server) renameContainer(w http.ResponseWriter, r *http.Request) error {
	h, c, err := s.resolve(r)
	if err != nil {
		return err
	}
	newName := r.URL.Query().Get("name")
	if err := placement.ValidateName(newName); err != nil {
		return err
	}
	release, err := s.Fleet.ReserveName(r.Context(), newName)
	if err != nil {
		return err
	}
	defer release()
	return s.forward(w, r, h, forwardOptions{path: containerPath(r, c.ID()), modify: refreshAfter(h, c.ID())})
}

// commitContainer commits on the container's host; the image then lives
// there, and create places containers of it there.
func (s *Server) commitContainer(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	ref := q.Get("container")
	if ref == "" {
		return errdefs.New(errdefs.ErrInvalid, "No container name or ID supplied")
	}
	h, c, err := s.Fleet.Resolve(r.Context(), ref)
	if err != nil {
		return err
	}
	if err := s.bufferJSONBody(r); err != nil {
		return err
	}
	q.Set("container", c.ID())
	r.URL.RawQuery = q.Encode()
	touchImages(r.Context(), h)
	return s.forward(w, r, h, forwardOptions{path: "/commit"})
}

// attachContainer takes the hijack path.
func (s *Server) attachContainer(w http.ResponseWriter, r *http.Request) error {
	h, c, err := s.resolve(r)
	if err != nil {
		return err
	}
	return s.hijack(w, r, h, containerPath(r, c.ID()), nil)
}

// pruneContainers prunes on every healthy host and sums the reports.
func (s *Server) pruneContainers(w http.ResponseWriter, r *http.Request) error {
	hs, err := s.healthyHosts()
	if err != nil {
		return err
	}
	type report struct {
		ContainersDeleted []string
		SpaceReclaimed    uint64
	}
	var total report
	for _, h := range hs {
		req, err := http.NewRequestWithContext(r.Context(), http.MethodPost,
			h.Endpoint.Base.String()+"/v"+upstreamVersion(r, h)+"/containers/prune"+queryOf(r), nil)
		if err != nil {
			return err
		}
		resp, err := h.RoundTrip(req)
		if err != nil {
			return errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: %v", h.Name, err))
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return relayError(resp.StatusCode, body)
		}
		var rep report
		if err := json.Unmarshal(body, &rep); err != nil {
			return err
		}
		total.ContainersDeleted = append(total.ContainersDeleted, rep.ContainersDeleted...)
		total.SpaceReclaimed += rep.SpaceReclaimed
		for _, id := range rep.ContainersDeleted {
			_ = h.Refresh(r.Context(), id)
		}
	}
	return writeJSON(w, http.StatusOK, total)
}

// relayError turns an engine's error answer into ours, keeping its message.
func relayError(status int, body []byte) error {
	var e errorBody
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		msg = e.Message
	}
	kind := errdefs.ErrUnavailable
	switch status {
	case http.StatusNotFound:
		kind = errdefs.ErrNotFound
	case http.StatusBadRequest:
		kind = errdefs.ErrInvalid
	case http.StatusConflict:
		kind = errdefs.ErrConflict
	case http.StatusNotModified:
		kind = errdefs.ErrNotModified
	case http.StatusInternalServerError:
		kind = errEngine
	}
	return errdefs.New(kind, msg)
}

// errEngine is an engine's own internal error, passed on as a 500.
var errEngine = fmt.Errorf("engine error")
