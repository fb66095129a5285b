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
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/gorilla/mux"

	"github.com/clocker/clocker/engineapi"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/fanout"
	"github.com/clocker/clocker/internal/labels"
)

// composeProjectLabel groups the objects of one compose project; its new
// volumes and networks go where the project already is (placement ranks
// that host first).
const composeProjectLabel = labels.ComposeProject

// qualified splits a reference of the form HOST/NAME when HOST is a host of
// the fleet; any other reference is a plain name.
func (s *Server) qualified(ref string) (*hosts.Host, string) {
	if hn, name, ok := strings.Cut(ref, "/"); ok && name != "" {
		if h, ok := s.Fleet.Host(hn); ok {
			return h, name
		}
	}
	return nil, ref
}

// objectRef is the volume or network a path names: NAME, or HOST/NAME
// (routes /volumes/{host}/{name}, /networks/{host}/{name}).
func objectRef(r *http.Request) string {
	v := mux.Vars(r)
	if h := v["host"]; h != "" {
		return h + "/" + v["name"]
	}
	return v["name"]
}

// requestedHost is the host a create asks for: HOST/NAME or the label
// io.clocker.host=HOST (both must agree). It returns the bare name.
func (s *Server) requestedHost(name string, labels map[string]string) (*hosts.Host, string, error) {
	h, bare := s.qualified(name)
	want, ok := labels[HostLabel]
	if !ok {
		return h, bare, nil
	}
	if h != nil && h.Name != want {
		return nil, "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s names host %s but the label %s=%s names host %s", name, h.Name, HostLabel, want, want))
	}
	lh, found := s.Fleet.Host(want)
	if !found {
		return nil, "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("label %s=%s: no host %q in the fleet (hosts: %s)", HostLabel, want, want, strings.Join(s.hostNames(), ", ")))
	}
	return lh, bare, nil
}

func (s *Server) hostNames() []string {
	var out []string
	for _, h := range s.Fleet.Hosts() {
		out = append(out, h.Name)
	}
	return out
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

// selectedHosts are the healthy hosts sel allows, and a warning for each
// allowed host that is down. No allowed host at all is an empty answer, not
// an error; allowed hosts that are all down are.
func (s *Server) selectedHosts(sel engineapi.HostSelection, what string) ([]*hosts.Host, []string, error) {
	var (
		out      []*hosts.Host
		warnings []string
		allowed  int
	)
	for _, h := range s.Fleet.Hosts() {
		if !sel.Allows(h.Name) {
			continue
		}
		allowed++
		if !h.Healthy() {
			warnings = append(warnings, fmt.Sprintf("host %s is unavailable: its %s are not included", h.Name, what))
			continue
		}
		out = append(out, h)
	}
	if allowed > 0 && len(out) == 0 {
		return nil, nil, errdefs.New(errdefs.ErrUnavailable, "no host of the fleet is available")
	}
	return out, warnings, nil
}

// --- asking hosts ------------------------------------------------------------

// hostAnswer is one host's answer to a fanned-out request; err is set when
// the host did not answer at all.
type hostAnswer struct {
	host   *hosts.Host
	status int
	body   []byte
	err    error
}

// onHosts sends the same request to each host at once and returns the
// answers in the order of hs.
func (s *Server) onHosts(r *http.Request, hs []*hosts.Host, method, path string, q url.Values, body []byte) []hostAnswer {
	answers := fanout.Each(hs, func(h *hosts.Host) (hostAnswer, error) {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		resp, err := s.hostRequest(r.Context(), r, h, method, path, q, rd)
		if err != nil {
			return hostAnswer{}, err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			return hostAnswer{}, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: %v", h.Name, err))
		}
		return hostAnswer{status: resp.StatusCode, body: data}, nil
	})
	out := make([]hostAnswer, len(hs))
	for i, a := range answers {
		out[i] = a.Value
		out[i].host, out[i].err = hs[i], a.Err
	}
	return out
}

// objectHit is an object one host has.
type objectHit struct {
	host *hosts.Host
	raw  json.RawMessage
	head engineapi.ObjectHead
}

// findObject asks hosts for GET path (one volume or network by reference).
// It returns the hosts that have it, in the order of hs; with none, the
// first host's own not-found error. Any other refusal (an engine's
// "ambiguous") is returned as it is; a host that does not answer only
// matters when no other has the object.
func (s *Server) findObject(r *http.Request, hs []*hosts.Host, path string, q url.Values) ([]objectHit, error) {
	var (
		hits     []objectHit
		notFound error
		down     error
	)
	for _, a := range s.onHosts(r, hs, http.MethodGet, path, q, nil) {
		switch {
		case a.err != nil:
			if down == nil {
				down = a.err
			}
		case a.status == http.StatusOK:
			hit := objectHit{host: a.host, raw: bytes.TrimSpace(a.body)}
			if err := json.Unmarshal(a.body, &hit.head); err != nil {
				return nil, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: bad answer to GET %s: %v", a.host.Name, path, err))
			}
			hits = append(hits, hit)
		case a.status == http.StatusNotFound:
			if notFound == nil {
				notFound = relayError(a.status, a.body)
			}
		default:
			return nil, relayError(a.status, a.body)
		}
	}
	switch {
	case len(hits) > 0:
		return hits, nil
	case down != nil:
		return nil, down
	case notFound != nil:
		return nil, notFound
	}
	return nil, errdefs.New(errdefs.ErrUnavailable, "no host of the fleet is available")
}

// census is what the hosts hold of one kind of object, for a create.
type census struct {
	counts  map[string]int // objects per host (built-in networks not counted)
	holders []*hosts.Host  // hosts that have an object of the name, in fleet order
}

// takeCensus lists the objects of every host in hs and finds name among
// them. decode reads an engine's list answer.
func (s *Server) takeCensus(r *http.Request, hs []*hosts.Host, path, name string, decode func([]byte) ([]json.RawMessage, error), skip func(engineapi.ObjectHead) bool) (census, error) {
	c := census{counts: map[string]int{}}
	for _, a := range s.onHosts(r, hs, http.MethodGet, path, nil, nil) {
		if a.err != nil {
			return c, a.err
		}
		if a.status != http.StatusOK {
			return c, relayError(a.status, a.body)
		}
		objs, err := decode(a.body)
		if err != nil {
			return c, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: bad answer to GET %s: %v", a.host.Name, path, err))
		}
		held := false
		for _, o := range objs {
			var head engineapi.ObjectHead
			if err := json.Unmarshal(o, &head); err != nil {
				return c, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: bad answer to GET %s: %v", a.host.Name, path, err))
			}
			if skip != nil && skip(head) {
				continue
			}
			c.counts[a.host.Name]++
			if name != "" && head.Name == name {
				held = true
			}
		}
		if held {
			c.holders = append(c.holders, a.host)
		}
	}
	return c, nil
}

func decodeVolumeList(b []byte) ([]json.RawMessage, error) {
	var l struct{ Volumes []json.RawMessage }
	err := json.Unmarshal(b, &l)
	return l.Volumes, err
}

func decodeNetworkList(b []byte) ([]json.RawMessage, error) {
	var l []json.RawMessage
	err := json.Unmarshal(b, &l)
	return l, err
}

// --- one name at a time --------------------------------------------------------

// nameLocks serialize the creates of one volume or network name, so that
// two concurrent creates cannot make it on two hosts. They live with the
// process (no Server field is ours to add), keyed by kind and name.
var nameLocks = &keyedMutex{m: map[string]*keyedEntry{}}

type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

// lock takes the lock of key and returns its release.
func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
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

// hostList names hosts for messages.
func hostList(hs []*hosts.Host) string {
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = h.Name
	}
	return strings.Join(names, ", ")
}
