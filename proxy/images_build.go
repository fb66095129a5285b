package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/clocker/clocker/engineapi"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/fanout"
	"github.com/clocker/clocker/placement"
	"github.com/clocker/clocker/scheduler"
	"github.com/clocker/clocker/sdn"
	"github.com/clocker/clocker/sdn/fleetnet"
)

const (
	// buildPeekLimit bounds how much of a build context is read ahead to
	// find its Dockerfile; a context whose Dockerfile comes later is
	// placed without knowing its base images.
	buildPeekLimit = 512 << 20
	// buildPeekMemory is how much of that stays in memory; the rest waits
	// in an unlinked temporary file.
	buildPeekMemory = 8 << 20
)

// build is the classic builder's POST /build: the context streams to one
// host, one that has the base images when one does (so the build pulls
// nothing and `docker run` of the result lands there too), among those
// one with its cache sources (cachefrom) and then its tags (a rebuild
// meets its cache), else the spread choice; a build whose steps join a
// user network (networkmode) goes where that network is. A request naming
// hosts in ImageNodeHeader goes to the first one named. The progress
// streams back as the engine writes it.
func (s *Server) build(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if q.Get("version") == "2" {
		return errdefs.New(errdefs.ErrNotImplemented,
			"BuildKit builds are not supported by Clocker yet: build with the classic builder (DOCKER_BUILDKIT=0)")
	}
	if _, err := s.healthyHosts(); err != nil {
		return err
	}
	if r.Header.Get(ImageNodeHeader) != "" {
		hs, err := s.imageTargetHosts(r)
		if err != nil {
			return err
		}
		_ = http.NewResponseController(w).EnableFullDuplex()
		touchImages(r.Context(), hs[0])
		return s.forward(w, r, hs[0], forwardOptions{path: "/build"})
	}
	b := placement.Build{Tags: q["t"]}
	// A malformed list is the engine's to refuse; it places nothing.
	_ = json.Unmarshal([]byte(q.Get("cachefrom")), &b.CacheFrom)
	fleetNet, err := s.buildNetwork(r, &b)
	if err != nil {
		return err
	}
	if q.Get("remote") == "" && r.Body != nil && r.Body != http.NoBody {
		keep := &spillBuffer{memLimit: buildPeekMemory}
		defer keep.Close()
		dockerfile, perr := engineapi.PeekDockerfile(io.LimitReader(r.Body, buildPeekLimit), q.Get("dockerfile"), keep)
		if keep.err != nil {
			return errdefs.New(errdefs.ErrUnavailable, "buffering the build context: "+keep.err.Error())
		}
		if perr == nil {
			b.Bases = engineapi.BaseImages(dockerfile, engineapi.BuildArgs(q.Get("buildargs")))
		} else {
			s.Log.Debug("build: placed without its base images", "err", perr)
		}
		prefix, err := keep.Reader()
		if err != nil {
			return errdefs.New(errdefs.ErrUnavailable, "buffering the build context: "+err.Error())
		}
		r.Body = buildBody{io.MultiReader(prefix, r.Body), r.Body}
	}
	h, err := s.placer.PlaceBuild(r.Context(), b)
	if err != nil {
		return err
	}
	if fleetNet != nil {
		// The host takes part in the network as for a container of it;
		// the engine knows the network by its name.
		if err := s.Nets.Connect(r.Context(), *fleetNet, h, fleetnet.Addrs{}); err != nil {
			return err
		}
		q.Set("networkmode", fleetNet.Name)
		r.URL.RawQuery = q.Encode()
	}
	s.Log.Debug("build placed", "host", h.Name, "bases", b.Bases, "cachefrom", b.CacheFrom)
	_ = http.NewResponseController(w).EnableFullDuplex()
	touchImages(r.Context(), h)
	return s.forward(w, r, h, forwardOptions{path: "/build"})
}

// buildNetwork ties a build whose steps join a user network (networkmode)
// to where the network is: a per-host network's host (HOST/NAME becomes
// NAME); a fleet network's healthy members, returned so that the chosen
// host joins it when none is a member yet. A network no host has is the
// engine's to report, as one engine does.
func (s *Server) buildNetwork(r *http.Request, b *placement.Build) (*sdn.Network, error) {
	q := r.URL.Query()
	mode := q.Get("networkmode")
	if mode == "" || mode == "default" || engineapi.IsBuiltinNetwork(mode) || strings.HasPrefix(mode, "container:") {
		return nil, nil
	}
	if n, ok := s.fleetNetwork(mode); ok {
		members := map[string]bool{}
		for name := range n.Hosts {
			if h, ok := s.Fleet.Host(name); ok && h.Healthy() {
				members[name] = true
			}
		}
		if len(members) > 0 {
			b.Allow = append(b.Allow, scheduler.Allow{Hosts: members, Reason: "not a member of network " + n.Name})
		}
		return &n, nil
	}
	hits, err := s.findNetwork(r, mode, nil)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(hits) > 1 {
		return nil, engineapi.AmbiguousNetwork(mode, hits)
	}
	b.Pins = append(b.Pins, scheduler.Pin{Host: hits[0].Host.Name, Reason: "network " + mode})
	if _, bare := s.qualified(mode); bare != mode {
		q.Set("networkmode", bare)
		r.URL.RawQuery = q.Encode()
	}
	return nil, nil
}

// buildBody reads from one reader and closes another.
type buildBody struct {
	io.Reader
	io.Closer
}

// spillBuffer keeps what is written to it in memory up to memLimit, then
// in an unlinked temporary file. A failed write is kept in err.
type spillBuffer struct {
	memLimit int
	mem      bytes.Buffer
	file     *os.File
	err      error
}

func (b *spillBuffer) Write(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.file == nil && b.mem.Len()+len(p) > b.memLimit {
		f, err := os.CreateTemp("", "clocker-build-context-*")
		if err != nil {
			b.err = err
			return 0, err
		}
		_ = os.Remove(f.Name()) // lives while open
		b.file = f
	}
	if b.file != nil {
		n, err := b.file.Write(p)
		if err != nil {
			b.err = err
		}
		return n, err
	}
	return b.mem.Write(p)
}

// Reader reads back everything written.
func (b *spillBuffer) Reader() (io.Reader, error) {
	if b.file == nil {
		return bytes.NewReader(b.mem.Bytes()), nil
	}
	if _, err := b.file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return io.MultiReader(bytes.NewReader(b.mem.Bytes()), b.file), nil
}

// Close drops the temporary file.
func (b *spillBuffer) Close() error {
	if b.file != nil {
		return b.file.Close()
	}
	return nil
}

// imagePruneEverywhere runs a prune on every healthy host (the first alone, so
// that a bad filter is refused before anything is pruned) and sums them.
func (s *Server) imagePruneEverywhere(w http.ResponseWriter, r *http.Request, path, listKey string) error {
	hs, err := s.healthyHosts()
	if err != nil {
		return err
	}
	bodies := make([][]byte, len(hs))
	err = fanout.FirstThenRest(hs, func(i int, h *hosts.Host) error {
		touchImages(r.Context(), h)
		b, err := s.ask(r).Expect(r.Context(), h, http.MethodPost, path, r.URL.Query(), nil, isStatus(http.StatusOK))
		bodies[i] = b
		return err
	})
	if err != nil {
		return err
	}
	rep, err := engineapi.MergeImagePruneReports(listKey, bodies)
	if err != nil {
		return errdefs.New(errdefs.ErrUnavailable, "prune report: "+err.Error())
	}
	return writeJSON(w, http.StatusOK, rep)
}

func (s *Server) pruneImages(w http.ResponseWriter, r *http.Request) error {
	return s.imagePruneEverywhere(w, r, "/images/prune", "ImagesDeleted")
}

func (s *Server) pruneBuildCache(w http.ResponseWriter, r *http.Request) error {
	return s.imagePruneEverywhere(w, r, "/build/prune", "CachesDeleted")
}
