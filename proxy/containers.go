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
	"github.com/clocker/clocker/sdn/fleetnet"
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
	return s.resolveContainer(r, mux.Vars(r)["name"])
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

// syncAfter is refreshAfter, then, for a container on a fleet network,
// the fleet networks' Sync: the answer goes out once every host's fleet
// DNS serves the names the change brings (a started container's name,
// aliases, and its links).
func (s *Server) syncAfter(h *hosts.Host, id string) func(*http.Response) error {
	refresh := refreshAfter(h, id)
	return func(resp *http.Response) error {
		_ = refresh(resp)
		if s.onFleetNetwork(h, id) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s.Nets.Sync(ctx)
		}
		return nil
	}
}

// onFleetNetwork tells whether h's container id is on a fleet network,
// as h's cache has it.
func (s *Server) onFleetNetwork(h *hosts.Host, id string) bool {
	if s.Nets == nil {
		return false
	}
	c, ok := h.Container(id)
	if !ok || c.Summary.NetworkSettings == nil {
		return false
	}
	for name := range c.Summary.NetworkSettings.Networks {
		if _, ok := s.Nets.Network(name); ok {
			return true
		}
	}
	return false
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
	link := engineapi.QueryBool(r.URL.Query(), "link")
	return s.forward(w, r, h, forwardOptions{path: containerPath(r, c.ID()), modify: func(resp *http.Response) error {
		if resp.StatusCode == http.StatusNoContent && !link {
			h.Forget(c.ID()) // removed: nothing to read back
			return nil
		}
		return refreshAfter(h, c.ID())(resp)
	}})
}

// waitContainer forwards wait; its headers go out at once and its body when
// the condition is met. The cache is brought up to date before the body is
// delivered, so a `docker run --rm` followed by `docker ps -a` agrees: a
// wait for removal that the engine answered without an error forgets the
// container, any other is read back.
func (s *Server) waitContainer(w http.ResponseWriter, r *http.Request) error {
	h, c, err := s.resolve(r)
	if err != nil {
		return err
	}
	removal := r.URL.Query().Get("condition") == "removed"
	return s.forward(w, r, h, forwardOptions{path: containerPath(r, c.ID()), modify: func(resp *http.Response) error {
		resp.Body = &refreshOnEOF{body: resp.Body, refresh: func(body []byte) {
			if removal && resp.StatusCode == http.StatusOK && waitedOK(body) {
				h.Forget(c.ID())
				return
			}
			_ = refreshAfter(h, c.ID())(resp)
		}}
		return nil
	}})
}

// waitedOK tells whether a wait's answer carries no error.
func waitedOK(body []byte) bool {
	var out struct {
		Error *struct{ Message string }
	}
	return json.Unmarshal(body, &out) == nil && (out.Error == nil || out.Error.Message == "")
}

// refreshOnEOF holds back a short body until it is complete, refreshes, then
// hands it out.
type refreshOnEOF struct {
	body    io.ReadCloser
	refresh func(body []byte)
	buf     *bytes.Reader
}

func (b *refreshOnEOF) Read(p []byte) (int, error) {
	if b.buf == nil {
		data, err := io.ReadAll(io.LimitReader(b.body, 1<<20))
		b.refresh(data)
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
	node := nodeJSON(h)
	// Always asked of the engine, never served from the cache: a client
	// that saw an event (a die, from its own event stream) inspects next
	// and must see the state the event brought, as on one engine; the
	// cache's own stream may not have caught up yet. (compose's attached
	// up takes a running container after its die for a restart and waits
	// forever.)
	return s.forward(w, r, h, forwardOptions{path: containerPath(r, c.ID()), modify: func(resp *http.Response) error {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode == http.StatusOK {
			body = withNode(tenantContainerInspect(r, s.shownInspect(s.ingressInspect(h, body))), node)
		}
		replaceBody(resp, body)
		return nil
	}})
}

// shownInspect is a container's inspect as a user reads it: Clocker's
// labels left out, the links it served across hosts in HostConfig.Links,
// fleet networks under their fleet IDs.
func (s *Server) shownInspect(body []byte) []byte {
	body = engineapi.ShowLinks(engineapi.HideBookkeeping(body, "Config", "Labels"), fleetnet.LinksNetwork)
	return s.showFleetNetworkIDs(body)
}

// showFleetNetworkIDs gives the networks of a container's inspect or list
// entry that are a host's copy of a fleet network the fleet network's ID,
// the one the network list and inspect show (compose compares them).
func (s *Server) showFleetNetworkIDs(obj []byte) []byte {
	if s.Nets == nil {
		return obj
	}
	return engineapi.ShowNetworkIDs(obj, func(name string) (string, bool) {
		n, ok := s.Nets.Network(name)
		if !ok || n.Name != name {
			return "", false
		}
		return n.ID, true
	})
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

// nodeJSON is nodeOf(h) encoded.
func nodeJSON(h *hosts.Host) json.RawMessage {
	b, _ := json.Marshal(nodeOf(h)) // strings, numbers and a string map: cannot fail
	return b
}

func nodeOf(h *hosts.Host) node {
	f := h.Facts()
	return node{ID: h.Name, IP: h.Endpoint.IP(), Addr: h.Endpoint.Addr(), Name: h.Name, Cpus: f.NCPU, Memory: f.MemTotal, Labels: f.EngineLabels()}
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
	h, c, err := s.resolveContainer(r, ref)
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
	if err := tenantPruneQuery(r); err != nil {
		return err
	}
	hs, err := s.healthyHosts()
	if err != nil {
		return err
	}
	var total engineapi.ContainerPruneReport
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
			return errdefs.FromEngine(resp.StatusCode, body)
		}
		var rep engineapi.ContainerPruneReport
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
