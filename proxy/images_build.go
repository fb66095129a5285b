package proxy

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
)

const (
	// buildPeekLimit bounds how much of a build context is read ahead to
	// find its Dockerfile; a context whose Dockerfile comes later is
	// placed without knowing its base images.
	buildPeekLimit = 512 << 20
	// buildPeekMemory is how much of that stays in memory; the rest waits
	// in an unlinked temporary file.
	buildPeekMemory = 8 << 20
	// dockerfileLimit bounds the Dockerfile read for its FROM lines.
	dockerfileLimit = 4 << 20
)

// errNoDockerfile: the context was read as far as allowed without finding
// the Dockerfile (or it could not be read).
var errNoDockerfile = errors.New("dockerfile not found in the build context")

// build is the classic builder's POST /build: the context streams to one
// host, one that has the base images when one does (so the build pulls
// nothing and `docker run` of the result lands there too), else the spread
// choice; a request naming hosts in ImageNodeHeader goes to the first one
// named. The progress streams back as the engine writes it.
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
	var bases []string
	if q.Get("remote") == "" && r.Body != nil && r.Body != http.NoBody {
		keep := &spillBuffer{memLimit: buildPeekMemory}
		defer keep.Close()
		dockerfile, perr := peekDockerfile(io.LimitReader(r.Body, buildPeekLimit), q.Get("dockerfile"), keep)
		if keep.err != nil {
			return errdefs.New(errdefs.ErrUnavailable, "buffering the build context: "+keep.err.Error())
		}
		if perr == nil {
			bases = baseImages(dockerfile, buildArgs(q.Get("buildargs")))
		} else {
			s.Log.Debug("build: placed without its base images", "err", perr)
		}
		prefix, err := keep.Reader()
		if err != nil {
			return errdefs.New(errdefs.ErrUnavailable, "buffering the build context: "+err.Error())
		}
		r.Body = buildBody{io.MultiReader(prefix, r.Body), r.Body}
	}
	h, err := s.placer.PlaceBuild(r.Context(), bases)
	if err != nil {
		return err
	}
	s.Log.Debug("build placed", "host", h.Name, "bases", bases)
	_ = http.NewResponseController(w).EnableFullDuplex()
	touchImages(r.Context(), h)
	return s.forward(w, r, h, forwardOptions{path: "/build"})
}

// buildBody reads from one reader and closes another.
type buildBody struct {
	io.Reader
	io.Closer
}

// peekDockerfile reads a build context (a tar, maybe gzip or bzip2
// compressed) from src until it finds the Dockerfile named name (default
// Dockerfile, then dockerfile, as the engine looks) and returns its text.
// Every byte taken from src is written to keep, so that keep followed by
// the rest of src is the context as it came.
func peekDockerfile(src io.Reader, name string, keep io.Writer) ([]byte, error) {
	br := bufio.NewReader(io.TeeReader(src, keep))
	magic, _ := br.Peek(6)
	var rd io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errNoDockerfile, err)
		}
		rd = zr
	case bytes.HasPrefix(magic, []byte("BZh")):
		rd = bzip2.NewReader(br)
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}), bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return nil, fmt.Errorf("%w: xz and zstd contexts are not read", errNoDockerfile)
	}
	want := []string{cleanContextPath(name)}
	if name == "" {
		want = []string{"Dockerfile", "dockerfile"}
	}
	var fallback []byte
	tr := tar.NewReader(rd)
	for {
		hdr, err := tr.Next()
		if err != nil {
			if fallback != nil {
				return fallback, nil
			}
			if err == io.EOF {
				return nil, errNoDockerfile
			}
			return nil, fmt.Errorf("%w: %v", errNoDockerfile, err)
		}
		n := cleanContextPath(hdr.Name)
		if n != want[0] && (len(want) == 1 || n != want[1]) {
			continue
		}
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA {
			continue
		}
		text, err := io.ReadAll(io.LimitReader(tr, dockerfileLimit+1))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errNoDockerfile, err)
		}
		if len(text) > dockerfileLimit {
			return nil, fmt.Errorf("%w: Dockerfile larger than %d bytes", errNoDockerfile, dockerfileLimit)
		}
		if n == want[0] {
			return text, nil
		}
		fallback = text
	}
}

// cleanContextPath is a path inside the context as the engine resolves it.
func cleanContextPath(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

// buildArgs decodes the buildargs parameter (a JSON map; null values mean
// "from the environment", which the client has already filled in).
func buildArgs(s string) map[string]string {
	out := map[string]string{}
	if s == "" {
		return out
	}
	var in map[string]*string
	if json.Unmarshal([]byte(s), &in) != nil {
		return out
	}
	for k, v := range in {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

var escapeDirective = regexp.MustCompile(`(?i)^#\s*escape\s*=\s*(\S)\s*$`)

// baseImages lists the images a Dockerfile builds FROM, in order and each
// once: not scratch, not an earlier stage, with the ARGs declared before
// the first FROM expanded (build args override their defaults).
func baseImages(dockerfile []byte, args map[string]string) []string {
	var out []string
	escape := byte('\\')
	meta := map[string]string{} // ARGs before the first FROM
	stages := map[string]bool{}
	seenFrom := false
	for _, ins := range dockerInstructions(dockerfile, &escape) {
		fields := strings.Fields(ins)
		if len(fields) == 0 {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "ARG":
			if seenFrom {
				continue
			}
			for _, a := range fields[1:] {
				k, v, hasDefault := strings.Cut(a, "=")
				v = strings.Trim(v, `"'`)
				if bv, ok := args[k]; ok {
					meta[k] = bv
				} else if hasDefault {
					meta[k] = expandBuildArgs(v, meta)
				} else {
					meta[k] = ""
				}
			}
		case "FROM":
			seenFrom = true
			rest := fields[1:]
			for len(rest) > 0 && strings.HasPrefix(rest[0], "--") {
				rest = rest[1:]
			}
			if len(rest) == 0 {
				continue
			}
			image := expandBuildArgs(rest[0], meta)
			if image != "" && !strings.EqualFold(image, "scratch") && !stages[strings.ToLower(image)] && !slices.Contains(out, image) {
				out = append(out, image)
			}
			// A stage's name counts from the next FROM on.
			if len(rest) >= 3 && strings.EqualFold(rest[1], "AS") {
				stages[strings.ToLower(rest[2])] = true
			}
		}
	}
	return out
}

// dockerInstructions splits a Dockerfile into instructions: parser
// directives read (escape), comments and blank lines dropped, continued
// lines joined.
func dockerInstructions(text []byte, escape *byte) []string {
	lines := strings.Split(strings.ReplaceAll(string(text), "\r\n", "\n"), "\n")
	var out []string
	var cur strings.Builder
	directives := true
	for _, raw := range lines {
		line := strings.TrimSpace(raw)
		if directives {
			if m := escapeDirective.FindStringSubmatch(line); m != nil {
				*escape = m[1][0]
				continue
			}
			if !strings.HasPrefix(line, "#") || line == "#" {
				directives = false
			} else if !strings.Contains(line, "=") {
				directives = false
			}
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue // also inside a continued instruction, as the engine reads it
		}
		if line[len(line)-1] == *escape {
			cur.WriteString(line[:len(line)-1])
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(line)
		out = append(out, cur.String())
		cur.Reset()
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

var buildArgRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// expandBuildArgs substitutes $NAME, ${NAME}, ${NAME:-default} and
// ${NAME:+alternative} with the meta ARGs.
func expandBuildArgs(s string, vars map[string]string) string {
	return buildArgRef.ReplaceAllStringFunc(s, func(m string) string {
		sub := buildArgRef.FindStringSubmatch(m)
		if sub[4] != "" {
			return vars[sub[4]]
		}
		v := vars[sub[1]]
		switch sub[2] {
		case "-":
			if v == "" {
				return sub[3]
			}
		case "+":
			if v != "" {
				return sub[3]
			}
			return ""
		}
		return v
	})
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

// mergeImagePruneReports sums prune reports: the lists under listKey joined
// (each entry once), SpaceReclaimed added up.
func mergeImagePruneReports(listKey string, bodies [][]byte) (map[string]any, error) {
	var (
		list  []json.RawMessage
		seen  = map[string]bool{}
		space uint64
	)
	for _, b := range bodies {
		var rep map[string]json.RawMessage
		if err := json.Unmarshal(b, &rep); err != nil {
			return nil, err
		}
		var entries []json.RawMessage
		if raw, ok := rep[listKey]; ok {
			if err := json.Unmarshal(raw, &entries); err != nil {
				return nil, err
			}
		}
		for _, e := range entries {
			var c bytes.Buffer
			if err := json.Compact(&c, e); err != nil {
				return nil, err
			}
			if !seen[c.String()] {
				seen[c.String()] = true
				list = append(list, json.RawMessage(c.String()))
			}
		}
		var n uint64
		if raw, ok := rep["SpaceReclaimed"]; ok {
			if err := json.Unmarshal(raw, &n); err != nil {
				return nil, err
			}
		}
		space += n
	}
	return map[string]any{listKey: list, "SpaceReclaimed": space}, nil
}

// imagePruneEverywhere runs a prune on every healthy host (the first alone, so
// that a bad filter is refused before anything is pruned) and sums them.
func (s *Server) imagePruneEverywhere(w http.ResponseWriter, r *http.Request, path, listKey string) error {
	hs, err := s.healthyHosts()
	if err != nil {
		return err
	}
	bodies := make([][]byte, len(hs))
	err = imageFanout(hs, func(i int, h *hosts.Host) error {
		touchImages(r.Context(), h)
		b, err := s.imageHostCall(r.Context(), r, h, http.MethodPost, path, http.StatusOK)
		bodies[i] = b
		return err
	})
	if err != nil {
		return firstOfJoined(err)
	}
	rep, err := mergeImagePruneReports(listKey, bodies)
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
