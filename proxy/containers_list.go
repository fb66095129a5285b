package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync"

	"github.com/clocker/clocker/engineapi"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/fanout"
	"github.com/clocker/clocker/internal/tenant"
)

// listContainersHandler answers GET /containers/json from the caches; only
// size=1 (which needs the engines to measure) asks the hosts.
func (s *Server) listContainersHandler(w http.ResponseWriter, r *http.Request) error {
	opts, err := engineapi.ParseContainerListOptions(r.URL.Query())
	if err != nil {
		return asListError(err)
	}
	s.fleetNetworkFilter(opts.Filters)
	var all []hosts.Container
	var stamp listStamp
	if opts.Size {
		all, err = s.listFromEngines(r.Context())
		if err != nil {
			return err
		}
	} else {
		// Read before the caches: a change made meanwhile makes the stamp
		// old, so the answer is never kept under a newer one than its own.
		stamp = s.listStampOf(r)
		if body, ok := s.lists.get(stamp); ok {
			w.Header().Set("Content-Type", "application/json")
			_, err := w.Write(body)
			return err
		}
		all = s.Fleet.Containers()
	}
	all = withoutAgents(all, r.URL.Query())
	t, tenanted := tenant.FromContext(r.Context())
	if tenanted {
		all = tenantContainers(t, all, opts.Filters)
		opts.ShownName = t.ShownPath
	}
	list, err := engineapi.ListContainers(all, opts, s.imageResolver(r.Context()))
	if err != nil {
		return asListError(err)
	}
	keep := engineapi.ShowsBookkeeping(r.URL.Query().Get("filters"))
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, c := range list {
		if i > 0 {
			buf.WriteByte(',')
		}
		raw := c.Raw
		if !keep {
			raw = engineapi.HideBookkeeping(raw, "Labels")
		}
		buf.Write(tenantContainer(t, tenanted, s.showFleetNetworkIDs(s.ingressList(c.Host, raw)), "Names"))
	}
	buf.WriteString("]\n")
	if !opts.Size {
		s.lists.put(stamp, buf.Bytes())
	}
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(buf.Bytes())
	return err
}

// fleetNetworkFilter lets a network filter name a fleet network by its ID
// (or a prefix of it), as the network list shows it: the engines' copies
// have IDs of their own, so the filter gets the fleet network's name,
// which is the copies' too.
func (s *Server) fleetNetworkFilter(f engineapi.Filters) {
	for _, v := range f.Values("network") {
		if n, ok := s.fleetNetwork(v); ok && n.Name != v {
			f.Add("network", n.Name)
		}
	}
}

// listStamp says what a cached-list answer was made from: the request
// (path with its API version, query) and every host with its cache
// generation (containers, hidden copies and images all move it).
type listStamp struct {
	request string
	hosts   []*hosts.Host
	gens    []uint64
}

func (s *Server) listStampOf(r *http.Request) listStamp {
	hs := s.Fleet.Hosts()
	st := listStamp{request: r.URL.RequestURI(), hosts: hs, gens: make([]uint64, len(hs))}
	if t, ok := tenant.FromContext(r.Context()); ok {
		st.request = t.Key + " " + st.request // each tenant's answers apart
	}
	for i, h := range hs {
		st.gens[i] = h.Generation()
	}
	return st
}

func (a listStamp) equal(b listStamp) bool {
	return a.request == b.request && slices.Equal(a.hosts, b.hosts) && slices.Equal(a.gens, b.gens)
}

// listMemo keeps the last few answers of GET /containers/json: `docker ps`
// polled while nothing changes (watch, dashboards, compose waiting) costs
// a comparison instead of merging, filtering and encoding every container.
type listMemo struct {
	mu      sync.Mutex
	entries []listEntry // most recent last
}

type listEntry struct {
	stamp listStamp
	body  []byte
}

// listMemoSize bounds the answers kept (distinct queries in use at once).
const listMemoSize = 8

func (m *listMemo) get(st listStamp) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.entries {
		if e.stamp.equal(st) {
			return e.body, true
		}
	}
	return nil, false
}

func (m *listMemo) put(st listStamp, body []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries = slices.DeleteFunc(m.entries, func(e listEntry) bool { return e.stamp.request == st.request })
	if len(m.entries) == listMemoSize {
		m.entries = slices.Delete(m.entries, 0, 1)
	}
	m.entries = append(m.entries, listEntry{stamp: st, body: bytes.Clone(body)})
}

func asListError(err error) error {
	switch {
	case errors.Is(err, engineapi.ErrInvalidFilter):
		return errdefs.New(errdefs.ErrInvalid, err.Error())
	case errors.Is(err, engineapi.ErrNoSuchContainer):
		return errdefs.New(errdefs.ErrNotFound, err.Error())
	}
	return err
}

// listFromEngines asks every healthy host for its list with sizes.
func (s *Server) listFromEngines(ctx context.Context) ([]hosts.Container, error) {
	hs, err := s.healthyHosts()
	if err != nil {
		return nil, err
	}
	lists := fanout.Each(hs, func(h *hosts.Host) ([]hosts.Container, error) { return h.ListWithSize(ctx) })
	var out []hosts.Container
	for _, l := range lists {
		out = append(out, l.Value...)
	}
	return out, fanout.FirstError(lists)
}

// imageResolver looks up which image ID a reference names on a host, once
// per host and reference within one request.
func (s *Server) imageResolver(ctx context.Context) engineapi.ImageResolver {
	type key struct{ host, ref string }
	memo := map[key]string{}
	return func(host, ref string) string {
		k := key{host, ref}
		if id, ok := memo[k]; ok {
			return id
		}
		id := ""
		if h, ok := s.Fleet.Host(host); ok && h.Healthy() {
			body, status, err := h.GetJSON(ctx, "/images/"+ref+"/json", nil)
			var in struct {
				ID string `json:"Id"`
			}
			if err == nil && status == http.StatusOK && json.Unmarshal(body, &in) == nil {
				id = in.ID
			}
		}
		memo[k] = id
		return id
	}
}
