package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/gorilla/mux"

	"github.com/clocker/clocker/engineapi"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/fanout"
)

// imageAt is an image found on one host: its inspect answer and ID.
type imageAt struct {
	host *hosts.Host
	body []byte
	id   string
}

// locateImage asks every given host at once whether it has the image and
// returns those that do, in fleet order. When none does, the answer is the
// engines' own: a bad reference (400) when they say so, else their "No such
// image" (404).
func (s *Server) locateImage(ctx context.Context, r *http.Request, hs []*hosts.Host, name string) ([]imageAt, error) {
	if name == "" {
		return nil, errdefs.New(errdefs.ErrInvalid, "image name cannot be blank")
	}
	answers := fanout.Each(hs, func(h *hosts.Host) ([]byte, error) {
		return s.hostJSON(ctx, r, h, http.MethodGet, "/images/"+name+"/json", nil, nil)
	})
	var found []imageAt
	errs := make([]error, len(hs))
	for i, a := range answers {
		if a.Err != nil {
			errs[i] = a.Err
			continue
		}
		var in struct {
			ID string `json:"Id"`
		}
		if err := json.Unmarshal(a.Value, &in); err != nil {
			errs[i] = errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: image inspect: %v", hs[i].Name, err))
			continue
		}
		found = append(found, imageAt{host: hs[i], body: a.Value, id: in.ID})
	}
	if len(found) > 0 {
		return found, nil
	}
	return nil, engineapi.ImageNotFoundAnswer(name, errs)
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
		bodies[i] = f.body
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
	return s.forward(w, r, found[0].host, forwardOptions{path: "/images/" + found[0].id + "/history"})
}

// imageFanout runs fn on the first host alone and, once it succeeded,
// on the others at once. The engines check a request the same way, so a
// bad one is refused by the first and changes nothing anywhere. The error
// is the first in host order.
func imageFanout(hs []*hosts.Host, fn func(i int, h *hosts.Host) error) error {
	if len(hs) == 0 {
		return nil
	}
	if err := fn(0, hs[0]); err != nil {
		return err
	}
	rest := make([]int, len(hs)-1)
	for i := range rest {
		rest[i] = i + 1
	}
	return fanout.FirstError(fanout.Each(rest, func(i int) (struct{}, error) { return struct{}{}, fn(i, hs[i]) }))
}

// imageHosts returns the hosts of found images.
func imageHosts(found []imageAt) []*hosts.Host {
	out := make([]*hosts.Host, len(found))
	for i, f := range found {
		out[i] = f.host
	}
	return out
}

// imageHostCall sends one request to a host and turns an answer outside want
// into the engine's error; it returns the answer's body.
func (s *Server) imageHostCall(ctx context.Context, r *http.Request, h *hosts.Host, method, path string, want int) ([]byte, error) {
	resp, err := s.hostRequest(ctx, r, h, method, path, r.URL.Query(), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: %v", h.Name, err))
	}
	if resp.StatusCode != want {
		return nil, relayError(resp.StatusCode, body)
	}
	return body, nil
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
	err = imageFanout(imageHosts(found), func(i int, h *hosts.Host) error {
		// By ID: the very image found there, whatever the name resolves to
		// by now.
		touchImages(r.Context(), h)
		_, err := s.imageHostCall(r.Context(), r, h, http.MethodPost, "/images/"+found[i].id+"/tag", http.StatusCreated)
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
	inUse := func(f imageAt) bool {
		return slices.ContainsFunc(f.host.Containers(), func(c hosts.Container) bool { return c.Summary.ImageID == f.id })
	}
	slices.SortStableFunc(found, func(a, b imageAt) int {
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
	err = imageFanout(imageHosts(found), func(i int, h *hosts.Host) error {
		// By the name the client gave: a tag is untagged, not the image
		// removed.
		touchImages(r.Context(), h)
		body, err := s.imageHostCall(r.Context(), r, h, http.MethodDelete, "/images/"+name, http.StatusOK)
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
		found, err := s.locateImage(r.Context(), r, hs, n)
		if err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				return errdefs.NoSuchImage(n)
			}
			return err
		}
		for _, f := range found {
			has[slices.Index(hs, f.host)][j] = true
		}
	}
	i, missing := engineapi.PickSaveHost(has)
	if missing >= 0 {
		return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf(
			"No such image: %s (the named images are on different hosts: save them one host at a time)", names[missing]))
	}
	return s.forward(w, r, hs[i], forwardOptions{path: stripVersion(r.URL.Path)})
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
		h = found[0].host
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
