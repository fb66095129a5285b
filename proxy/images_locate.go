package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/gorilla/mux"

	"github.com/clocker/clocker/engineapi"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/fanout"
)

// locateImage asks every given host at once whether it has the image
// (engineapi.LocateImage).
func (s *Server) locateImage(ctx context.Context, r *http.Request, hs []*hosts.Host, name string) ([]engineapi.ImageAt, error) {
	if name == "" {
		return nil, errdefs.New(errdefs.ErrInvalid, "image name cannot be blank")
	}
	return engineapi.LocateImage(name, s.ask(r).Each(ctx, hs, http.MethodGet, "/images/"+name+"/json", nil, nil))
}

// inspectImage answers from the first host that has the image, with the
// tags other hosts give it.
func (s *Server) inspectImage(w http.ResponseWriter, r *http.Request) error {
	hs, err := s.healthyHosts()
	if err != nil {
		return err
	}
	found, err := s.locateImage(r.Context(), r, hs, mux.Vars(r)["name"])
	if err != nil {
		return err
	}
	bodies := make([][]byte, len(found))
	for i, f := range found {
		bodies[i] = f.Body
	}
	body, err := engineapi.MergeImageInspect(bodies)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(body)
	return err
}

// imageHistory forwards to the first host that has the image.
func (s *Server) imageHistory(w http.ResponseWriter, r *http.Request) error {
	hs, err := s.healthyHosts()
	if err != nil {
		return err
	}
	found, err := s.locateImage(r.Context(), r, hs, mux.Vars(r)["name"])
	if err != nil {
		return err
	}
	return s.forward(w, r, found[0].Host, forwardOptions{path: "/images/" + found[0].ID + "/history"})
}

// tagImage tags the image on every host that has it.
func (s *Server) tagImage(w http.ResponseWriter, r *http.Request) error {
	hs, err := s.healthyHosts()
	if err != nil {
		return err
	}
	found, err := s.locateImage(r.Context(), r, hs, mux.Vars(r)["name"])
	if err != nil {
		return err
	}
	err = fanout.FirstThenRest(engineapi.ImageHosts(found), func(i int, h *hosts.Host) error {
		// By ID: the very image found there, whatever the name resolves to
		// by now.
		touchImages(r.Context(), h)
		_, err := s.ask(r).Expect(r.Context(), h, http.MethodPost, "/images/"+found[i].ID+"/tag", r.URL.Query(), nil, isStatus(http.StatusCreated))
		return err
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

// removeImage removes the image (or the tag) on every host that has it and
// merges the reports. Hosts where a container uses the image go first: the
// engine refuses there (409) before changing anything, and then no host
// has changed.
func (s *Server) removeImage(w http.ResponseWriter, r *http.Request) error {
	hs, err := s.healthyHosts()
	if err != nil {
		return err
	}
	name := mux.Vars(r)["name"]
	found, err := s.locateImage(r.Context(), r, hs, name)
	if err != nil {
		return err
	}
	inUse := func(f engineapi.ImageAt) bool {
		return slices.ContainsFunc(f.Host.Containers(), func(c hosts.Container) bool { return c.Summary.ImageID == f.ID })
	}
	slices.SortStableFunc(found, func(a, b engineapi.ImageAt) int {
		ua, ub := inUse(a), inUse(b)
		switch {
		case ua && !ub:
			return -1
		case ub && !ua:
			return 1
		}
		return 0
	})
	reports := make([][]map[string]string, len(found))
	err = fanout.FirstThenRest(engineapi.ImageHosts(found), func(i int, h *hosts.Host) error {
		// By the name the client gave: a tag is untagged, not the image
		// removed.
		touchImages(r.Context(), h)
		body, err := s.ask(r).Expect(r.Context(), h, http.MethodDelete, "/images/"+name, r.URL.Query(), nil, isStatus(http.StatusOK))
		if err != nil {
			return err
		}
		if err := json.Unmarshal(body, &reports[i]); err != nil {
			return errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: image delete: %v", h.Name, err))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, engineapi.MergeImageDeleteReports(reports...))
}

// saveImages answers docker save from one host that has every named image,
// streamed.
func (s *Server) saveImages(w http.ResponseWriter, r *http.Request) error {
	hs, err := s.healthyHosts()
	if err != nil {
		return err
	}
	names := r.URL.Query()["names"]
	if n, ok := mux.Vars(r)["name"]; ok {
		names = []string{n}
	}
	has := make([][]bool, len(hs)) // host → name → present
	for i := range hs {
		has[i] = make([]bool, len(names))
	}
	for j, n := range names {
		// A repository is every tag of it, as an engine saves it.
		inRepo, err := s.hostsWithRepository(r, hs, n)
		if err != nil {
			return err
		}
		found, err := s.locateImage(r.Context(), r, hs, n)
		if err != nil && (!errors.Is(err, errdefs.ErrNotFound) || !slices.Contains(inRepo, true)) {
			if errors.Is(err, errdefs.ErrNotFound) {
				return errdefs.NoSuchImage(n)
			}
			return err
		}
		for _, f := range found {
			has[slices.Index(hs, f.Host)][j] = true
		}
		for i, ok := range inRepo {
			has[i][j] = has[i][j] || ok
		}
	}
	i, missing := engineapi.PickSaveHost(has)
	if missing >= 0 {
		return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf(
			"No such image: %s (the named images are on different hosts: save them one host at a time)", names[missing]))
	}
	return s.forward(w, r, hs[i], forwardOptions{path: stripVersion(r.URL.Path)})
}

// hostsWithRepository tells which of hs hold a tag of the repository name
// names; all false when name is not a repository name.
func (s *Server) hostsWithRepository(r *http.Request, hs []*hosts.Host, name string) ([]bool, error) {
	out := make([]bool, len(hs))
	repo, ok := engineapi.RepositoryName(name)
	if !ok {
		return out, nil
	}
	f, _ := json.Marshal(map[string][]string{"reference": {repo}})
	lists, err := s.collectImageLists(r, hs, url.Values{"filters": {string(f)}})
	if err != nil {
		return nil, err
	}
	for _, l := range lists {
		if len(l.Rows) > 0 {
			out[slices.IndexFunc(hs, func(h *hosts.Host) bool { return h.Name == l.Host })] = true
		}
	}
	return out, nil
}

// pushImage pushes from the first host that has the image; without one, a
// host answers the engine's own error.
func (s *Server) pushImage(w http.ResponseWriter, r *http.Request) error {
	hs, err := s.healthyHosts()
	if err != nil {
		return err
	}
	name := mux.Vars(r)["name"]
	ref := name
	if tag := r.URL.Query().Get("tag"); tag != "" {
		ref += ":" + tag
	}
	h := hs[0]
	if found, err := s.locateImage(r.Context(), r, hs, ref); err == nil {
		h = found[0].Host
	}
	return s.forward(w, r, h, forwardOptions{path: "/images/" + name + "/push"})
}

// searchImages asks one host's registry.
func (s *Server) searchImages(w http.ResponseWriter, r *http.Request) error {
	hs, err := s.healthyHosts()
	if err != nil {
		return err
	}
	return s.forward(w, r, hs[0], forwardOptions{path: "/images/search"})
}
