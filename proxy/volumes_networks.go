package proxy

// What volumes and networks share. Until fleet networks arrive, both live on
// exactly one host each, as on a single engine:
//
//   - create asks placement for the host (the one the request names, else
//     the one that already holds the same compose project, else spread)
//     and labels the object io.clocker.host=HOST there, as containers are
//     labelled;
//   - lists ask every healthy host and merge, names as the engines report
//     them (a name made on two hosts behind Clocker's back is listed twice),
//     each object carrying io.clocker.host with the host that holds it;
//   - calls on one object go to the host that has it; HOST/NAME names the
//     host when the name alone is ambiguous.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/clocker/clocker/engineapi"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/placement"
	"github.com/clocker/clocker/scheduler"
)

// qualified splits a reference of the form HOST/NAME when HOST is a host of
// the fleet; any other reference is a plain name.
func (s *Server) qualified(ref string) (*hosts.Host, string) { return s.Fleet.Qualified(ref) }

// objectRef is the volume or network a path names: NAME, or HOST/NAME
// (routes /volumes/{host}/{name}, /networks/{host}/{name}).
func objectRef(r *http.Request) string {
	v := mux.Vars(r)
	if h := v["host"]; h != "" {
		return h + "/" + v["name"]
	}
	return v["name"]
}

// createObject makes a volume or per-host network where placement puts
// it (placement.PlaceNamed): the host the request names (HOST/NAME or the
// label io.clocker.host=HOST), else the host of its compose project, else
// where the strategy puts it; the body is the client's with the host's
// label and the bare name (engineapi.ObjectCreateBody).
func (s *Server) createObject(w http.ResponseWriter, r *http.Request, kind scheduler.Kind) error {
	// What create reads of the body; it is forwarded with every other
	// field intact.
	var req struct {
		Name   string
		Labels map[string]string
	}
	body, err := s.readObjectRequest(r, &req)
	if err != nil {
		return err
	}
	path, decode := "/volumes", engineapi.DecodeVolumeList
	if kind == scheduler.KindNetwork {
		path, decode = "/networks", engineapi.DecodeNetworkList
	}
	np, err := s.placer.PlaceNamed(r.Context(), placement.NamedObject{Kind: kind,
		Ref: req.Name, Labels: req.Labels, List: s.objectNames(r, path, decode)})
	if err != nil {
		return err
	}
	defer np.Done()
	opt := forwardOptions{path: path + "/create"}
	if kind == scheduler.KindVolume {
		opt.modify = shownAnswer(np.Host)
	}
	if np.Builtin {
		// The engine's own refusal (403, predefined network); nothing is made.
		setBody(r, body)
	} else {
		out, err := engineapi.ObjectCreateBody(body, np.Host.Name, np.Name, req.Name, req.Labels)
		if err != nil {
			return err
		}
		setBody(r, out)
	}
	return s.forward(w, r, np.Host, opt)
}

// checkJSONContentType refuses a body that is not declared JSON, as the
// engine does (no Content-Type is fine).
func checkJSONContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == "application/json" {
		return nil
	}
	return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("Content-Type specified (%s) must be 'application/json'", ct))
}

// readObjectRequest reads the JSON body of a create, connect or disconnect
// and decodes it into v. The body is required, as the engine requires it.
func (s *Server) readObjectRequest(r *http.Request, v any) ([]byte, error) {
	if err := checkJSONContentType(r); err != nil {
		return nil, err
	}
	body, err := s.readJSONBody(r)
	if err != nil {
		return nil, err
	}
	if body == nil {
		return nil, errdefs.New(errdefs.ErrInvalid, "got EOF while reading request body")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return nil, errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
	}
	return body, nil
}

// setBody makes b the request's body for forwarding.
func setBody(r *http.Request, b []byte) {
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	r.Header.Set("Content-Length", fmt.Sprint(len(b)))
	r.Header.Set("Content-Type", "application/json")
}

// objectNames lists the names of the objects a host holds, for
// placement's census: path is /volumes or /networks, decode reads the
// engine's list answer.
func (s *Server) objectNames(r *http.Request, path string, decode func([]byte) ([]json.RawMessage, []string, error)) func(context.Context, *hosts.Host) ([]string, error) {
	return func(ctx context.Context, h *hosts.Host) ([]string, error) {
		body, err := s.ask(r).JSON(ctx, h, http.MethodGet, path, nil, nil)
		if err != nil {
			return nil, err
		}
		names, err := engineapi.ObjectNames(body, decode)
		if err != nil {
			return nil, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: bad answer to GET %s: %v", h.Name, path, err))
		}
		return names, nil
	}
}

// writeRawJSON answers with an engine's JSON as it is.
func writeRawJSON(w http.ResponseWriter, status int, body []byte) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// A write error means the client went away: nothing left to answer.
	_, _ = w.Write(body)
	_, _ = w.Write([]byte("\n"))
	return nil
}
