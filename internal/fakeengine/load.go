package fakeengine

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// manifestEntry is one image of a docker save archive's manifest.json.
type manifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// ImageArchive is a docker save archive of one image per reference, as
// far as POST /images/load reads one: its manifest.json.
func ImageArchive(refs ...string) []byte {
	m := make([]manifestEntry, len(refs))
	for i, r := range refs {
		m[i] = manifestEntry{Config: hexID("image/"+normImage(r)) + ".json", RepoTags: []string{r}, Layers: []string{}}
	}
	b, _ := json.Marshal(m)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: int64(len(b))})
	_, _ = tw.Write(b)
	_ = tw.Close()
	return buf.Bytes()
}

// load answers POST /images/load: the images the archive's manifest.json
// names are there at once, each with a "load" event (a burst, as dockerd
// sends for docker load of many images), then one "Loaded image" message
// each.
func (e *Engine) load(w http.ResponseWriter, r *http.Request) error {
	var manifest []manifestEntry
	tr := tar.NewReader(r.Body)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return errf(400, "invalid tar archive: %v", err)
		}
		if hdr.Name != "manifest.json" {
			continue
		}
		if err := json.NewDecoder(tr).Decode(&manifest); err != nil {
			return errf(400, "invalid manifest.json: %v", err)
		}
	}
	if manifest == nil {
		return errf(500, "open manifest.json: no such file or directory")
	}
	var loaded []string
	e.mu.Lock()
	for _, m := range manifest {
		for _, ref := range m.RepoTags {
			im := e.addImageLocked(ref)
			e.publishImageLocked("load", normImage(ref), im)
			loaded = append(loaded, ref)
		}
	}
	e.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	for _, ref := range loaded {
		_ = enc.Encode(map[string]string{"stream": "Loaded image: " + ref + "\n"})
	}
	return nil
}
