package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/clocker/clocker/engineapi"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/fanout"
	"github.com/clocker/clocker/placement"
)

// ImageNodeHeader names the hosts a pull or load goes to (comma separated;
// an import or a build goes to the first); without it, every healthy host.
const ImageNodeHeader = "X-Clocker-Node"

// imageTargetHosts are the hosts a pull or load goes to: those the ImageNodeHeader
// names, else every healthy host.
func (s *Server) imageTargetHosts(r *http.Request) ([]*hosts.Host, error) {
	v := strings.TrimSpace(r.Header.Get(ImageNodeHeader))
	if v == "" {
		return s.healthyHosts()
	}
	var out []*hosts.Host
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		h, ok := s.Fleet.Host(name)
		if !ok {
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s: no host %q in the fleet", ImageNodeHeader, name))
		}
		if !h.Healthy() {
			return nil, h.Unavailable()
		}
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	if len(out) == 0 {
		return s.healthyHosts()
	}
	return out, nil
}

// errLoadHostDone closes a load pipe whose host has answered.
var errLoadHostDone = errors.New("host answered")

// createImage is POST /images/create: a pull (fromImage) goes to every
// target host with their progress merged; an import (fromSrc) goes to one
// host, chosen as a container would be, with its body streamed.
func (s *Server) createImage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if q.Get("fromImage") == "" {
		return s.importImage(w, r)
	}
	hs, err := s.imageTargetHosts(r)
	if err != nil {
		return err
	}
	sources := make([]engineapi.ProgressSource, len(hs))
	for i, h := range hs {
		sources[i] = engineapi.ProgressSource{Host: h.Name, Open: func(ctx context.Context) (*http.Response, error) {
			touchImages(r.Context(), h)
			return s.hostRequest(ctx, r, h, http.MethodPost, "/images/create", q, nil)
		}}
	}
	return engineapi.MergeProgressStreams(r.Context(), w, sources, engineapi.PrefixMerge{})
}

// importImage sends docker import to one host: the first ImageNodeHeader
// names, else the spread choice.
func (s *Server) importImage(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.healthyHosts(); err != nil {
		return err
	}
	var h *hosts.Host
	if r.Header.Get(ImageNodeHeader) != "" {
		hs, err := s.imageTargetHosts(r)
		if err != nil {
			return err
		}
		h = hs[0]
	} else {
		var err error
		if h, err = s.placer.PlaceBuild(r.Context(), placement.Build{}); err != nil {
			return err
		}
	}
	_ = http.NewResponseController(w).EnableFullDuplex()
	touchImages(r.Context(), h)
	return s.forward(w, r, h, forwardOptions{path: "/images/create"})
}

// loadImages is docker load: the tar body goes to every target host at
// once (one pipe each), their answers merged into the one an engine gives
// ("Loaded image: …" once, not once per host).
func (s *Server) loadImages(w http.ResponseWriter, r *http.Request) error {
	hs, err := s.imageTargetHosts(r)
	if err != nil {
		return err
	}
	// Hosts may report progress while the body still arrives.
	_ = http.NewResponseController(w).EnableFullDuplex()
	q := r.URL.Query()
	readers := make([]*io.PipeReader, len(hs))
	writers := make([]*io.PipeWriter, len(hs))
	sources := make([]engineapi.ProgressSource, len(hs))
	for i, h := range hs {
		readers[i], writers[i] = io.Pipe()
		sources[i] = engineapi.ProgressSource{
			Host: h.Name,
			Open: func(ctx context.Context) (*http.Response, error) {
				touchImages(r.Context(), h)
				return s.hostRequest(ctx, r, h, http.MethodPost, "/images/load", q, readers[i])
			},
			Done: func() { _ = readers[i].CloseWithError(errLoadHostDone) },
		}
	}
	var body io.Reader = http.NoBody
	if r.Body != nil {
		body = r.Body
	}
	teeDone := make(chan struct{})
	go func() {
		defer close(teeDone)
		fanout.Tee(body, writers)
	}()
	err = engineapi.MergeProgressStreams(r.Context(), w, sources, engineapi.LoadMerge{LoadStream: engineapi.NewLoadStream(len(sources))})
	// Every host has answered and closed its pipe, so the tee ends.
	for _, pr := range readers {
		_ = pr.CloseWithError(errLoadHostDone)
	}
	<-teeDone
	return err
}
