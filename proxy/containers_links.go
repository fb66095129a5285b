package proxy

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/clocker/clocker/internal/errdefs"
)

// removeLink serves `docker rm --link /parent/alias`: DELETE
// /containers/{parent}/{alias}?link=1, forwarded to the parent's host by
// the parent's name (the engine keeps the link under "/parent/alias", a
// name, not an ID). Without link=1 the path names no container, as on an
// engine.
func (s *Server) removeLink(w http.ResponseWriter, r *http.Request) error {
	parent, alias := mux.Vars(r)["name"], mux.Vars(r)["link"]
	if on, _ := strconv.ParseBool(r.URL.Query().Get("link")); !on {
		return errdefs.NoSuchContainer(parent + "/" + alias)
	}
	h, c, err := s.resolveContainer(r, parent)
	if err != nil {
		return err
	}
	if s.Nets != nil {
		// A link served across hosts (fleetnet.LinksStep).
		found, err := s.Nets.RemoveLink(r.Context(), h, c.ID(), alias)
		if err != nil {
			return err
		}
		if found {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
	}
	name := c.ID()
	if len(c.Summary.Names) > 0 {
		name = strings.TrimPrefix(c.Summary.Names[0], "/")
	}
	return s.forward(w, r, h, forwardOptions{
		path:   "/containers/" + url.PathEscape(name) + "/" + url.PathEscape(alias),
		modify: refreshAfter(h, c.ID()),
	})
}
