package scheduler

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// maxListed bounds the hosts a "no host fits" message names one by one; the
// rest are counted by filter, so the message stays readable at 1,000 hosts.
const maxListed = 30

// NoHostFitsError lists, per host, why none could take the request.
type NoHostFitsError struct {
	// Rejections are every host's, in the fleet's order.
	Rejections []Rejection
	// NoHealthy is set when no host of the fleet was healthy (or the fleet
	// is empty, or every host drains): the proxy answers 503, the fleet is
	// unavailable.
	NoHealthy bool
	// ImageMissing is set when some host failed only for lack of the
	// image: the proxy answers Docker's "No such image" so the client pulls.
	ImageMissing bool
	Image        string
	// Detail, when set, is the whole message (pins on two hosts).
	Detail string
}

func newNoHostFits(req *Request, nodes []Node, rej []Rejection) *NoHostFitsError {
	e := &NoHostFitsError{Rejections: rej, Image: req.Image, NoHealthy: true}
	for _, r := range rej {
		if r.Filter != FilterHealth {
			e.NoHealthy = false
		}
		// The image filter runs last: a host it turned down passed every
		// other filter and fits once the image is pulled there.
		if r.Filter == FilterImage {
			e.ImageMissing = true
		}
	}
	return e
}

func (e *NoHostFitsError) Error() string {
	if e.Detail != "" {
		return e.Detail
	}
	if len(e.Rejections) == 0 {
		return "no host fits: the fleet has no hosts"
	}
	var b strings.Builder
	b.WriteString("no host fits: ")
	n := min(len(e.Rejections), maxListed)
	for i, r := range e.Rejections[:n] {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %s", r.Host, r.Reason)
	}
	if rest := e.Rejections[n:]; len(rest) > 0 {
		by := map[string]int{}
		for _, r := range rest {
			by[r.Filter]++
		}
		parts := make([]string, 0, len(by))
		for _, f := range slices.Sorted(maps.Keys(by)) {
			parts = append(parts, fmt.Sprintf("%d by %s", by[f], f))
		}
		fmt.Fprintf(&b, "; and %d more hosts (%s)", len(rest), strings.Join(parts, ", "))
	}
	return b.String()
}

// Reasons counts the rejections by filter (for metrics).
func (e *NoHostFitsError) Reasons() map[string]int {
	out := map[string]int{}
	for _, r := range e.Rejections {
		out[r.Filter]++
	}
	return out
}
