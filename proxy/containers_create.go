package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/scheduler"
)

// validName is the engine's rule for container names.
var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func validateName(name string) error {
	if !validName.MatchString(name) {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name))
	}
	return nil
}

// createContainer validates the request, reserves the name fleet-wide, asks
// the scheduler for a host, labels the container with it and forwards the
// create. The cache knows the container before the client does.
func (s *Server) createContainer(w http.ResponseWriter, r *http.Request) error {
	name := r.URL.Query().Get("name")
	if name != "" {
		if err := validateName(name); err != nil {
			return err
		}
	}
	body, spec, err := s.readCreateBody(r)
	if err != nil {
		return err
	}

	preq, env, envChanged, err := placementRequest(name, &spec)
	if err != nil {
		return err
	}

	var release func()
	if name != "" {
		release, err = s.Fleet.ReserveName(r.Context(), name)
	} else {
		// Engines name containers independently and would repeat each
		// other's names: Clocker picks a fleet-unique one.
		name, release, err = s.Fleet.ReserveGeneratedName(r.Context())
	}
	if err != nil {
		return err
	}
	defer release()
	preq.Name = name

	h, unreserve, err := s.placeAndReserve(r.Context(), &spec, &preq)
	if err != nil {
		return err
	}
	// The reservation holds until the cache shows the container (after
	// the Refresh below) or the create failed.
	defer unreserve()
	body, releasePorts, err := s.ingressCreate(r.Context(), h, name, body)
	if err != nil {
		return err
	}
	defer releasePorts()
	labelled, err := rewriteCreateBody(body, HostLabel, h.Name, env, envChanged)
	if err != nil {
		return errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
	}
	if labelled, err = withReschedulePolicy(labelled); err != nil {
		return err
	}
	if labelled, err = s.fleetCreateHook(r.Context(), h, &spec, labelled); err != nil {
		return err
	}

	u := *h.Endpoint.Base
	u.Path = "/v" + upstreamVersion(r, h) + "/containers/create"
	q := r.URL.Query()
	q.Set("name", name)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, u.String(), bytes.NewReader(labelled))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.RoundTrip(req)
	if err != nil {
		return s.upstreamFailed(r.Context(), h, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: %v", h.Name, err))
	}
	if resp.StatusCode == http.StatusCreated {
		var created struct {
			ID string `json:"Id"`
		}
		if json.Unmarshal(out, &created) == nil && created.ID != "" {
			if err := h.Cached(r.Context(), created.ID); err != nil {
				s.Log.Warn("cache refresh after create", "host", h.Name, "id", created.ID, "err", err)
			}
		}
	}
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	_, err = w.Write(out)
	return err
}

// readCreateBody reads a container-create body, with the engine's answers
// for an empty or malformed one.
func (s *Server) readCreateBody(r *http.Request) ([]byte, container.CreateRequest, error) {
	var spec container.CreateRequest
	body, err := s.readJSONBody(r)
	if err != nil {
		return nil, spec, err
	}
	if body == nil {
		return nil, spec, errdefs.New(errdefs.ErrInvalid, "config cannot be empty in order to create a container")
	}
	if err := json.Unmarshal(body, &spec); err != nil {
		return nil, spec, errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
	}
	if spec.Config == nil {
		return nil, spec, errdefs.New(errdefs.ErrInvalid, "config cannot be empty in order to create a container")
	}
	return body, spec, nil
}

// rewriteCreateBody sets one label and, when setEnv, replaces Env (the
// constraint:/affinity: entries removed), leaving every other field as the
// client sent it.
func rewriteCreateBody(body []byte, key, value string, env []string, setEnv bool) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, err
	}
	labels := map[string]string{}
	if raw, ok := fields["Labels"]; ok && !bytes.Equal(raw, []byte("null")) {
		if err := json.Unmarshal(raw, &labels); err != nil {
			return nil, err
		}
	}
	labels[key] = value
	raw, err := json.Marshal(labels)
	if err != nil {
		return nil, err
	}
	fields["Labels"] = raw
	if setEnv {
		if env == nil {
			env = []string{}
		}
		if fields["Env"], err = json.Marshal(env); err != nil {
			return nil, err
		}
	}
	return json.Marshal(fields)
}

// place picks the host for a create body without holding it: a decision
// only (benchmarks, callers that create nothing).
func (s *Server) place(ctx context.Context, spec *container.CreateRequest) (*hosts.Host, error) {
	req, _, _, err := placementRequest("", spec)
	if err != nil {
		return nil, err
	}
	h, release, err := s.placeAndReserve(ctx, spec, &req)
	if err != nil {
		return nil, err
	}
	release()
	return h, nil
}

// placeAndReserve gathers what ties the container to a host (volumes,
// links, shared namespaces, networks), asks the strategy, and reserves the
// host it chose; release gives the reservation back.
func (s *Server) placeAndReserve(ctx context.Context, spec *container.CreateRequest, req *scheduler.Request) (*hosts.Host, func(), error) {
	pins, err := s.pins(ctx, spec)
	if err != nil {
		return nil, nil, err
	}
	req.Pins = pins
	_, h, release, err := s.decide(ctx, req, false)
	if err != nil {
		return nil, nil, placementError(err, spec.Image)
	}
	return h, release, nil
}

// pins lists the hosts the container must share with what it uses.
func (s *Server) pins(ctx context.Context, spec *container.CreateRequest) ([]scheduler.Pin, error) {
	var pins []scheduler.Pin
	pinContainer := func(ref, why string) error {
		h, _, err := s.Fleet.Resolve(ctx, ref)
		if err != nil {
			return err
		}
		pins = append(pins, scheduler.Pin{Host: h.Name, Reason: fmt.Sprintf("container %s (%s)", ref, why)})
		return nil
	}
	hc := spec.HostConfig
	if hc == nil {
		hc = &container.HostConfig{}
	}
	for _, vf := range hc.VolumesFrom {
		ref, _, _ := strings.Cut(vf, ":")
		if err := pinContainer(ref, "--volumes-from"); err != nil {
			return nil, err
		}
	}
	for _, l := range hc.Links {
		ref, _, _ := strings.Cut(l, ":")
		if err := pinContainer(strings.TrimPrefix(ref, "/"), "--link"); err != nil {
			return nil, err
		}
	}
	for _, mode := range []string{string(hc.NetworkMode), string(hc.PidMode), string(hc.IpcMode)} {
		if ref, ok := strings.CutPrefix(mode, "container:"); ok {
			if err := pinContainer(ref, "shared namespace"); err != nil {
				return nil, err
			}
		}
	}
	for _, vol := range namedVolumes(hc) {
		if h := s.findOnHosts(ctx, "/volumes/"+url.PathEscape(vol)); h != nil {
			pins = append(pins, scheduler.Pin{Host: h.Name, Reason: "volume " + vol})
		}
	}
	for _, nw := range userNetworks(spec) {
		if s.fleetNetworkPinHook(nw) {
			continue // a fleet network spans hosts: no pin
		}
		h := s.findOnHosts(ctx, "/networks/"+url.PathEscape(nw))
		if h == nil {
			return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("network %s not found", nw))
		}
		pins = append(pins, scheduler.Pin{Host: h.Name, Reason: "network " + nw})
	}
	return pins, nil
}

// findOnHosts returns the first healthy host where GET path succeeds.
func (s *Server) findOnHosts(ctx context.Context, path string) *hosts.Host {
	for _, h := range s.Fleet.Hosts() {
		if !h.Healthy() {
			continue
		}
		if _, status, err := h.GetJSON(ctx, path, nil); err == nil && status == http.StatusOK {
			return h
		}
	}
	return nil
}

// namedVolumes are the named (not bind) volumes a container mounts.
func namedVolumes(hc *container.HostConfig) []string {
	var out []string
	for _, b := range hc.Binds {
		src, _, ok := strings.Cut(b, ":")
		if ok && src != "" && !strings.HasPrefix(src, "/") && !strings.HasPrefix(src, ".") {
			out = append(out, src)
		}
	}
	for _, m := range hc.Mounts {
		if m.Type == mount.TypeVolume && m.Source != "" {
			out = append(out, m.Source)
		}
	}
	return out
}

// perHostModes are network modes every engine has of its own.
var perHostModes = map[string]bool{"": true, "default": true, "bridge": true, "host": true, "none": true}

// userNetworks are the user-defined networks a container joins.
func userNetworks(spec *container.CreateRequest) []string {
	var out []string
	seen := map[string]bool{}
	add := func(n string) {
		if perHostModes[n] || strings.HasPrefix(n, "container:") || seen[n] {
			return
		}
		seen[n] = true
		out = append(out, n)
	}
	if spec.HostConfig != nil {
		add(string(spec.HostConfig.NetworkMode))
	}
	if spec.NetworkingConfig != nil {
		for n := range spec.NetworkingConfig.EndpointsConfig {
			add(n)
		}
	}
	return out
}
