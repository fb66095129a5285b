package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

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
	body, err := s.readJSONBody(r)
	if err != nil {
		return err
	}
	if body == nil {
		return errdefs.New(errdefs.ErrInvalid, "config cannot be empty in order to create a container")
	}
	var spec container.CreateRequest
	if err := json.Unmarshal(body, &spec); err != nil {
		return errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
	}
	if spec.Config == nil {
		return errdefs.New(errdefs.ErrInvalid, "config cannot be empty in order to create a container")
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

	h, err := s.place(r.Context(), &spec)
	if err != nil {
		return err
	}
	labelled, err := withLabel(body, HostLabel, h.Name)
	if err != nil {
		return errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
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
	resp, err := h.Transport.RoundTrip(req)
	if err != nil {
		s.metrics.upstream.WithLabelValues(h.Name).Inc()
		return errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s (%s): %v", h.Name, h.Endpoint.URL, err))
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
			if err := h.Refresh(r.Context(), created.ID); err != nil {
				s.Log.Warn("cache refresh after create", "host", h.Name, "id", created.ID, "err", err)
			}
		}
	}
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	_, err = w.Write(out)
	return err
}

// withLabel sets one label in a create body, leaving every other field as
// the client sent it.
func withLabel(body []byte, key, value string) ([]byte, error) {
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
	return json.Marshal(fields)
}

// place gathers what ties the container to a host (volumes, links, shared
// namespaces, networks) and where its image is, then runs the strategy.
func (s *Server) place(ctx context.Context, spec *container.CreateRequest) (*hosts.Host, error) {
	all := s.Fleet.Hosts()
	pins, err := s.pins(ctx, spec)
	if err != nil {
		return nil, err
	}
	hasImage := s.imagePresence(ctx, all, spec.Image)
	nodes := make([]scheduler.Node, len(all))
	for i, h := range all {
		nodes[i] = scheduler.Node{Name: h.Name, Healthy: h.Healthy(), Containers: len(h.Containers()), HasImage: spec.Image == "" || hasImage[i]}
	}
	name, err := s.Strategy.Place(scheduler.Request{Image: spec.Image, Pins: pins}, nodes)
	if err != nil {
		var nf *scheduler.NoHostFitsError
		if errors.As(err, &nf) && nf.ImageMissing {
			return nil, errdefs.NoSuchImage(spec.Image)
		}
		return nil, err
	}
	h, _ := s.Fleet.Host(name)
	return h, nil
}

// imagePresence asks every healthy host at once whether it has the image.
func (s *Server) imagePresence(ctx context.Context, all []*hosts.Host, image string) []bool {
	out := make([]bool, len(all))
	if image == "" {
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i, h := range all {
		if !h.Healthy() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, status, err := h.GetJSON(ctx, "/images/"+image+"/json", nil)
			out[i] = err == nil && status == http.StatusOK
		}()
	}
	wg.Wait()
	return out
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
