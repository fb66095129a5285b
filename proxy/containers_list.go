package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
)

// listContainersHandler answers GET /containers/json from the caches; only
// size=1 (which needs the engines to measure) asks the hosts.
func (s *Server) listContainersHandler(w http.ResponseWriter, r *http.Request) error {
	opts, err := parseContainerListOptions(r.URL.Query())
	if err != nil {
		return asListError(err)
	}
	var all []hosts.Container
	if opts.Size {
		all, err = s.listFromEngines(r.Context())
		if err != nil {
			return err
		}
	} else {
		all = s.Fleet.Containers()
	}
	all = withoutAgents(all, r.URL.Query())
	list, err := listContainers(all, opts, s.imageResolver(r.Context()))
	if err != nil {
		return asListError(err)
	}
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, c := range list {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(s.ingressList(c.Host, c.Raw))
	}
	buf.WriteString("]\n")
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(buf.Bytes())
	return err
}

func asListError(err error) error {
	switch {
	case errors.Is(err, errInvalidFilter):
		return errdefs.New(errdefs.ErrInvalid, err.Error())
	case errors.Is(err, errNoSuchContainer):
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
	var (
		mu  sync.Mutex
		out []hosts.Container
		wg  sync.WaitGroup
		bad error
	)
	for _, h := range hs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			list, err := h.ListWithSize(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				bad = err
				return
			}
			out = append(out, list...)
		}()
	}
	wg.Wait()
	return out, bad
}

// imageResolver looks up which image ID a reference names on a host, once
// per host and reference within one request.
func (s *Server) imageResolver(ctx context.Context) imageResolver {
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
