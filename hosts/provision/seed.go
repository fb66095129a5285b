package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/clocker/clocker/hosts"
)

// seedImages copies onto a new engine (before it joins) the tagged images the rest of the
// fleet holds (no registry is needed: save on one host, load on the
// other), or, when the fleet holds none, those of the image source (the
// machine's own engine). Placement sends a container only where its image
// is, so a new host takes work as soon as this returns.
func (m *Manager) seedImages(ctx context.Context, dst *engine) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	have, err := tags(ctx, dst)
	if err != nil {
		return fmt.Errorf("list images of %s: %w", dst.name, err)
	}
	owned := map[string]bool{}
	for _, t := range have {
		owned[t] = true
	}
	// Which source gives which tags: the first healthy host that has it.
	bySource := map[*engine][]string{}
	var order []*engine
	add := func(src *engine, ts []string) {
		for _, t := range ts {
			if owned[t] || isClockerImage(t) {
				continue
			}
			owned[t] = true
			if bySource[src] == nil {
				order = append(order, src)
			}
			bySource[src] = append(bySource[src], t)
		}
	}
	found := false
	for _, other := range m.fleet.Hosts() {
		if !other.Healthy() {
			continue
		}
		src := engineOf(other)
		ts, err := tags(ctx, src)
		if err != nil {
			continue
		}
		found = found || len(ts) > 0
		add(src, ts)
	}
	if !found && m.ImageSource != "" {
		if src, err := engineAt(m.ImageSource); err == nil {
			if ts, err := tags(ctx, src); err == nil {
				add(src, ts)
			}
		}
	}
	for _, src := range order {
		if err := copyImages(ctx, src, dst, bySource[src]); err != nil {
			return err
		}
	}
	return nil
}

// isClockerImage: images Clocker builds on each host itself (the agent).
func isClockerImage(tag string) bool { return strings.HasPrefix(tag, "clocker-agent") }

// engine is enough of an engine's API to copy images.
type engine struct {
	base *url.URL
	rt   http.RoundTripper
	name string
}

func engineOf(h *hosts.Host) *engine {
	return &engine{base: h.Endpoint.Base, rt: h, name: h.Name}
}

func engineAt(raw string) (*engine, error) {
	ep, err := hosts.ParseEndpoint(raw)
	if err != nil {
		return nil, err
	}
	return &engine{base: ep.Base, rt: ep.Transport(), name: ep.URL}, nil
}

func (e *engine) do(ctx context.Context, method, path string, q url.Values, body io.Reader) (*http.Response, error) {
	u := *e.base
	u.Path, u.RawQuery = path, q.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-tar")
	}
	resp, err := e.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s on %s: status %d: %s", method, path, e.name, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return resp, nil
}

// tags lists an engine's image tags.
func tags(ctx context.Context, e *engine) ([]string, error) {
	resp, err := e.do(ctx, http.MethodGet, "/images/json", nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var list []struct{ RepoTags []string }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, err
	}
	var out []string
	for _, im := range list {
		for _, t := range im.RepoTags {
			if t != "<none>:<none>" {
				out = append(out, t)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// copyImages streams `docker save` of tags on src into `docker load` on dst.
func copyImages(ctx context.Context, src, dst *engine, ts []string) error {
	resp, err := src.do(ctx, http.MethodGet, "/images/get", url.Values{"names": ts}, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, err := dst.do(ctx, http.MethodPost, "/images/load", url.Values{"quiet": {"1"}}, resp.Body)
	if err != nil {
		return err
	}
	defer out.Body.Close()
	// The load answers a JSON stream; a failure is a message with an error.
	dec := json.NewDecoder(out.Body)
	for {
		var msg struct {
			Error       string
			ErrorDetail struct{ Message string } `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("load on %s: %w", dst.name, err)
		}
		if msg.Error != "" || msg.ErrorDetail.Message != "" {
			return fmt.Errorf("load on %s: %s", dst.name, msg.Error+msg.ErrorDetail.Message)
		}
	}
}
