package proxy

import (
	"net/http"

	"github.com/gorilla/mux"
)

func (s *Server) registerContainers(r *mux.Router) {
	s.register(r,
		route{http.MethodGet, "/containers/json", s.listContainersHandler},
		route{http.MethodPost, "/containers/create", s.createContainer},
		route{http.MethodPost, "/containers/prune", s.pruneContainers},
		route{http.MethodPost, "/commit", s.imagesChanged(s.commitContainer)},
		route{http.MethodGet, "/containers/{name}/json", s.inspectContainer},
		route{http.MethodPost, "/containers/{name}/attach", s.attachContainer},
		route{http.MethodPost, "/containers/{name}/rename", s.renameContainer},
		route{http.MethodPost, "/containers/{name}/exec", s.createExec},
		route{http.MethodPost, "/containers/{name}/wait", s.waitContainer},
		route{http.MethodDelete, "/containers/{name}", s.removeContainer},
		route{http.MethodDelete, "/containers/{name}/{link}", s.removeLink},
		// Calls whose effect the list shows: refreshed before the reply so
		// that `docker ps` right after sees it.
		route{http.MethodPost, "/containers/{name}/start", s.startContainer},
		route{http.MethodPost, "/containers/{name}/stop", s.changeContainer},
		route{http.MethodPost, "/containers/{name}/restart", s.startContainer},
		route{http.MethodPost, "/containers/{name}/kill", s.changeContainer},
		route{http.MethodPost, "/containers/{name}/pause", s.changeContainer},
		route{http.MethodPost, "/containers/{name}/unpause", s.changeContainer},
		route{http.MethodPost, "/containers/{name}/update", s.changeContainer},
		// Calls that only read or stream: forwarded to the owning host.
		route{http.MethodGet, "/containers/{name}/logs", s.streamContainer},
		route{http.MethodGet, "/containers/{name}/top", s.forwardContainer},
		route{http.MethodGet, "/containers/{name}/stats", s.forwardContainer},
		route{http.MethodGet, "/containers/{name}/changes", s.forwardContainer},
		route{http.MethodGet, "/containers/{name}/export", s.streamContainer},
		route{http.MethodGet, "/containers/{name}/attach/ws", s.forwardContainer},
		route{http.MethodPost, "/containers/{name}/resize", s.forwardContainer},
		route{http.MethodHead, "/containers/{name}/archive", s.forwardContainer},
		route{http.MethodGet, "/containers/{name}/archive", s.forwardContainer},
		route{http.MethodPut, "/containers/{name}/archive", s.forwardContainer},
	)
}
