package engineapi

// The answers of the image routes that name one image (inspect, remove,
// save) computed from the answers of the hosts that have it.

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/distribution/reference"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
)

// ImageNotFoundAnswer picks the answer for an image no host has from the
// hosts' errors: an engine's refusal of the reference first; Docker's
// "No such image: NAME" when a host said so or none could be asked for
// lack of hosts; else the error of a host that could not be asked.
func ImageNotFoundAnswer(name string, errs []error) error {
	var notFound, down error
	for _, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, errdefs.ErrNotFound):
			if notFound == nil {
				notFound = err
			}
		case errors.Is(err, errdefs.ErrUnavailable):
			if down == nil {
				down = err
			}
		default:
			return err
		}
	}
	if notFound == nil && down != nil {
		return down
	}
	// The engines word it differently per route ("no such image: x: No such
	// image: x:latest" from inspect); Clocker answers as create does.
	return errdefs.NoSuchImage(name)
}

// MergeImageInspect returns the first host's inspect answer with the tags
// and digests the other hosts give the same image added; other IDs under
// the same name are left out. The first answer is returned as it is when
// nothing is added.
func MergeImageInspect(bodies [][]byte) ([]byte, error) {
	if len(bodies) == 0 {
		return nil, errors.New("no inspect answer")
	}
	type refs struct {
		ID          string `json:"Id"`
		RepoTags    []string
		RepoDigests []string
	}
	var base refs
	if err := json.Unmarshal(bodies[0], &base); err != nil {
		return nil, err
	}
	tags, digests := slices.Clone(base.RepoTags), slices.Clone(base.RepoDigests)
	for _, b := range bodies[1:] {
		var other refs
		if err := json.Unmarshal(b, &other); err != nil {
			return nil, err
		}
		if other.ID != base.ID {
			continue
		}
		tags = unionTags(tags, other.RepoTags)
		digests = unionTags(digests, other.RepoDigests)
	}
	if len(tags) == len(base.RepoTags) && len(digests) == len(base.RepoDigests) {
		return bodies[0], nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(bodies[0], &fields); err != nil {
		return nil, err
	}
	var err error
	if fields["RepoTags"], err = json.Marshal(tags); err != nil {
		return nil, err
	}
	if fields["RepoDigests"], err = json.Marshal(digests); err != nil {
		return nil, err
	}
	out, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// MergeImageDeleteReports joins the hosts' DELETE /images/{name} reports,
// each entry once, in the reports' order.
func MergeImageDeleteReports(reports ...[]map[string]string) []map[string]string {
	out := []map[string]string{}
	seen := map[string]bool{}
	for _, rep := range reports {
		for _, e := range rep {
			b, _ := json.Marshal(e)
			if seen[string(b)] {
				continue
			}
			seen[string(b)] = true
			out = append(out, e)
		}
	}
	return out
}

// RepositoryName tells whether ref names a repository (a name with neither
// tag nor digest), which docker save reads as every tag of it, and returns
// the name as the reference filter of an image list matches it.
func RepositoryName(ref string) (string, bool) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil || !reference.IsNameOnly(named) {
		return "", false
	}
	return reference.FamiliarName(named), true
}

// PickSaveHost chooses the host of a docker save from has (host → name →
// the host has it): the first host that has every name; when none has,
// the host with the most and the first name it lacks (missing ≥ 0).
func PickSaveHost(has [][]bool) (host, missing int) {
	best, bestCount := 0, -1
	for i, names := range has {
		n := 0
		for _, ok := range names {
			if ok {
				n++
			}
		}
		if n == len(names) {
			return i, -1
		}
		if n > bestCount {
			best, bestCount = i, n
		}
	}
	if len(has) == 0 {
		return 0, -1
	}
	return best, slices.Index(has[best], false)
}

// ImageAt is an image found on one host: its inspect answer and ID.
type ImageAt struct {
	Host *hosts.Host
	Body []byte
	ID   string
}

// LocateImage reads the hosts' answers to GET /images/NAME/json: the hosts
// that have the image, in the answers' order. When none does, the answer
// is the engines' own (ImageNotFoundAnswer).
func LocateImage(name string, answers []hosts.Answer) ([]ImageAt, error) {
	var found []ImageAt
	errs := make([]error, len(answers))
	for i, a := range answers {
		switch {
		case a.Err != nil:
			errs[i] = a.Err
			continue
		case a.Status >= 300:
			errs[i] = errdefs.FromEngine(a.Status, a.Body)
			continue
		}
		var in struct {
			ID string `json:"Id"`
		}
		if err := json.Unmarshal(a.Body, &in); err != nil {
			errs[i] = errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: image inspect: %v", a.Host.Name, err))
			continue
		}
		found = append(found, ImageAt{Host: a.Host, Body: a.Body, ID: in.ID})
	}
	if len(found) > 0 {
		return found, nil
	}
	return nil, ImageNotFoundAnswer(name, errs)
}

// ImageHosts are the hosts of found images.
func ImageHosts(found []ImageAt) []*hosts.Host {
	out := make([]*hosts.Host, len(found))
	for i, f := range found {
		out[i] = f.Host
	}
	return out
}

// ImageLists reads the hosts' answers to GET /images/json. An engine's
// error answer (a bad filter) is the client's answer; a host that failed
// to answer at all is left out (told to leftOut) while another answered.
func ImageLists(answers []hosts.Answer, leftOut func(*hosts.Host, error)) ([]HostImages, error) {
	var (
		out      []HostImages
		hostDown error
	)
	for _, a := range answers {
		var rows []json.RawMessage
		switch {
		case a.Err == nil && a.Status >= 300:
			a.Err = errdefs.FromEngine(a.Status, a.Body)
		case a.Err == nil:
			if err := json.Unmarshal(a.Body, &rows); err != nil {
				a.Err = errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: image list: %v", a.Host.Name, err))
			}
		}
		if a.Err != nil {
			if errors.Is(a.Err, errdefs.ErrUnavailable) {
				leftOut(a.Host, a.Err)
				hostDown = a.Err
				continue
			}
			return nil, a.Err
		}
		out = append(out, HostImages{Host: a.Host.Name, Rows: rows})
	}
	if len(out) == 0 && hostDown != nil {
		return nil, hostDown
	}
	return out, nil
}
