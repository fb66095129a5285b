package hosts

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/fanout"
)

// Asker sends one request to a host on a client's behalf: under the
// client's API version, with its headers (the proxy makes one per
// request). path has no version prefix; query may be nil. A failure at the
// transport is an ErrUnavailable naming the host.
type Asker func(ctx context.Context, h *Host, method, path string, query url.Values, body io.Reader) (*http.Response, error)

// Answer is one host's whole answer to a fanned-out request; Err is set
// when the host did not answer at all.
type Answer struct {
	Host   *Host
	Status int
	Body   []byte
	Err    error
}

// Read sends one request and reads the whole answer, whatever its status.
func (a Asker) Read(ctx context.Context, h *Host, method, path string, query url.Values, body io.Reader) Answer {
	resp, err := a(ctx, h, method, path, query, body)
	if err != nil {
		return Answer{Host: h, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return Answer{Host: h, Err: errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: %v", h.Name, err))}
	}
	return Answer{Host: h, Status: resp.StatusCode, Body: data}
}

// Expect sends one request and returns the body of an answer with status
// want; any other answer is the engine's error.
func (a Asker) Expect(ctx context.Context, h *Host, method, path string, query url.Values, body io.Reader, want func(status int) bool) ([]byte, error) {
	ans := a.Read(ctx, h, method, path, query, body)
	if ans.Err != nil {
		return nil, ans.Err
	}
	if !want(ans.Status) {
		return nil, errdefs.FromEngine(ans.Status, ans.Body)
	}
	return ans.Body, nil
}

// JSON is Expect of a 2xx answer.
func (a Asker) JSON(ctx context.Context, h *Host, method, path string, query url.Values, body io.Reader) ([]byte, error) {
	return a.Expect(ctx, h, method, path, query, body, func(s int) bool { return s < 300 })
}

// Each sends the same request to each host at once and returns the
// answers in the order of hs.
func (a Asker) Each(ctx context.Context, hs []*Host, method, path string, query url.Values, body []byte) []Answer {
	answers := fanout.Each(hs, func(h *Host) (Answer, error) {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		return a.Read(ctx, h, method, path, query, rd), nil
	})
	out := make([]Answer, len(hs))
	for i, ans := range answers {
		out[i] = ans.Value
	}
	return out
}

// Selected are the healthy hosts allows admits, and a warning for each
// admitted host that is down. No admitted host at all is an empty answer,
// not an error; admitted hosts that are all down are.
func (f *Fleet) Selected(allows func(host string) bool, what string) ([]*Host, []string, error) {
	var (
		out      []*Host
		warnings []string
		allowed  int
	)
	for _, h := range f.Hosts() {
		if !allows(h.Name) {
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

// Scope are the hosts to ask about an object reference: the host a
// HOST/NAME reference names (an error when it is down), else every healthy
// host; and the reference without its host.
func (f *Fleet) Scope(ref string) ([]*Host, string, error) {
	h, name := f.Qualified(ref)
	if h == nil {
		hs, err := f.Healthy()
		return hs, name, err
	}
	if !h.Healthy() {
		return nil, name, h.Unavailable()
	}
	return []*Host{h}, name, nil
}
