package engineapi

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
	"path"
	"regexp"
	"slices"
	"strings"
)

var escapeDirective = regexp.MustCompile(`(?i)^#\s*escape\s*=\s*(\S)\s*$`)

var buildArgRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// dockerfileLimit bounds the Dockerfile read for its FROM lines.
const dockerfileLimit = 4 << 20

// ErrNoDockerfile: the context was read as far as allowed without finding
// the Dockerfile (or it could not be read).
var ErrNoDockerfile = errors.New("dockerfile not found in the build context")

// PeekDockerfile reads a build context (a tar, maybe gzip or bzip2
// compressed) from src until it finds the Dockerfile named name (default
// Dockerfile, then dockerfile, as the engine looks) and returns its text.
// Every byte taken from src is written to keep, so that keep followed by
// the rest of src is the context as it came.
func PeekDockerfile(src io.Reader, name string, keep io.Writer) ([]byte, error) {
	br := bufio.NewReader(io.TeeReader(src, keep))
	magic, _ := br.Peek(6)
	var rd io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNoDockerfile, err)
		}
		rd = zr
	case bytes.HasPrefix(magic, []byte("BZh")):
		rd = bzip2.NewReader(br)
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}), bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return nil, fmt.Errorf("%w: xz and zstd contexts are not read", ErrNoDockerfile)
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
				return nil, ErrNoDockerfile
			}
			return nil, fmt.Errorf("%w: %v", ErrNoDockerfile, err)
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
			return nil, fmt.Errorf("%w: %v", ErrNoDockerfile, err)
		}
		if len(text) > dockerfileLimit {
			return nil, fmt.Errorf("%w: Dockerfile larger than %d bytes", ErrNoDockerfile, dockerfileLimit)
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
func BuildArgs(s string) map[string]string {
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

// baseImages lists the images a Dockerfile builds FROM, in order and each
// once: not scratch, not an earlier stage, with the ARGs declared before
// the first FROM expanded (build args override their defaults).
func BaseImages(dockerfile []byte, args map[string]string) []string {
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

// MergeImagePruneReports sums prune reports: the lists under listKey joined
// (each entry once), SpaceReclaimed added up.
func MergeImagePruneReports(listKey string, bodies [][]byte) (map[string]any, error) {
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
