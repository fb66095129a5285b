package engineapi

// The hosts' answers about volumes and networks read as one engine's:
// which hosts have an object, which list each host gave, how a prune
// failed. The caller asks the hosts (hosts.Asker.Each).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
)

// ObjectHit is a volume or network one host has.
type ObjectHit struct {
	Host *hosts.Host
	Raw  json.RawMessage
	Head ObjectHead
}

// FindObject reads the hosts' answers to GET path (one volume or network
// by reference): the hosts that have it, in the answers' order; with none,
// the first host's own not-found error. Any other refusal (an engine's
// "ambiguous") is returned as it is; a host that does not answer only
// matters when no other has the object.
func FindObject(answers []hosts.Answer, path string) ([]ObjectHit, error) {
	var (
		hits     []ObjectHit
		notFound error
		down     error
	)
	for _, a := range answers {
		switch {
		case a.Err != nil:
			if down == nil {
				down = a.Err
			}
		case a.Status == http.StatusOK:
			hit := ObjectHit{Host: a.Host, Raw: bytes.TrimSpace(a.Body)}
			if err := json.Unmarshal(a.Body, &hit.Head); err != nil {
				return nil, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("host %s: bad answer to GET %s: %v", a.Host.Name, path, err))
			}
			hits = append(hits, hit)
		case a.Status == http.StatusNotFound:
			if notFound == nil {
				notFound = errdefs.FromEngine(a.Status, a.Body)
			}
		default:
			return nil, errdefs.FromEngine(a.Status, a.Body)
		}
	}
	switch {
	case len(hits) > 0:
		return hits, nil
	case down != nil:
		return nil, down
	case notFound != nil:
		return nil, notFound
	}
	return nil, errdefs.New(errdefs.ErrUnavailable, "no host of the fleet is available")
}

// BestNetworkHits keeps the hits of the best kind of match, as an engine
// does: full ID, then name, then ID prefix.
func BestNetworkHits(ref string, hits []ObjectHit) []ObjectHit {
	rank := func(h ObjectHit) int {
		switch {
		case h.Head.ID == ref:
			return 0
		case h.Head.Name == ref:
			return 1
		default:
			return 2
		}
	}
	best := 3
	for _, h := range hits {
		best = min(best, rank(h))
	}
	var out []ObjectHit
	for _, h := range hits {
		if rank(h) == best {
			out = append(out, h)
		}
	}
	return out
}

// AmbiguousNetwork is the error for a reference that networks of several
// hosts answer to.
func AmbiguousNetwork(ref string, hits []ObjectHit) error {
	return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf(
		"network %s is ambiguous (%d matches found on hosts %s): name one as HOST/%s (e.g. %s/%s)",
		ref, len(hits), HostList(hitHosts(hits)), ref, hits[0].Host.Name, ref))
}

// AmbiguousVolume is the error for a volume name several hosts have, when
// the caller is about to change it.
func AmbiguousVolume(name string, hits []ObjectHit) error {
	return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf(
		"volume %s is ambiguous: hosts %s each have one; name one as HOST/%s (e.g. %s/%s)",
		name, HostList(hitHosts(hits)), name, hits[0].Host.Name, name))
}

func hitHosts(hits []ObjectHit) []*hosts.Host {
	hs := make([]*hosts.Host, len(hits))
	for i, h := range hits {
		hs[i] = h.Host
	}
	return hs
}

// HostList names hosts for messages.
func HostList(hs []*hosts.Host) string {
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = h.Name
	}
	return strings.Join(names, ", ")
}

// ListedObjects reads the hosts' answers to GET /volumes or /networks:
// decode reads one answer (its objects and warnings), node is the host as
// objects show it. A 4xx is the request's refusal (bad filters: every host
// says so), returned as the error. A host that failed is left out, with
// leftOut's note in its place among the engines' warnings.
func ListedObjects(answers []hosts.Answer, node func(*hosts.Host) json.RawMessage,
	decode func([]byte) ([]json.RawMessage, []string, error), leftOut func(*hosts.Host, error) string,
) (parts []HostObjects, notes []string, err error) {
	for _, a := range answers {
		if a.Err == nil && a.Status >= 400 && a.Status < 500 {
			return nil, nil, errdefs.FromEngine(a.Status, a.Body)
		}
		var objs []json.RawMessage
		var warnings []string
		if a.Err == nil && a.Status == http.StatusOK {
			objs, warnings, a.Err = decode(a.Body)
		} else if a.Err == nil {
			a.Err = errdefs.FromEngine(a.Status, a.Body)
		}
		if a.Err != nil {
			notes = append(notes, leftOut(a.Host, a.Err))
			continue
		}
		parts = append(parts, HostObjects{Host: a.Host.Name, Node: node(a.Host), Objects: objs})
		notes = append(notes, warnings...)
	}
	return parts, notes, nil
}

// DecodeVolumeList reads an engine's answer to GET /volumes.
func DecodeVolumeList(b []byte) ([]json.RawMessage, []string, error) {
	var l struct {
		Volumes  []json.RawMessage
		Warnings []string
	}
	err := json.Unmarshal(b, &l)
	return l.Volumes, l.Warnings, err
}

// DecodeNetworkList reads an engine's answer to GET /networks.
func DecodeNetworkList(b []byte) ([]json.RawMessage, []string, error) {
	var l []json.RawMessage
	err := json.Unmarshal(b, &l)
	return l, nil, err
}

// ObjectNames are the names in an engine's list answer (decode: one of
// the Decode…List).
func ObjectNames(body []byte, decode func([]byte) ([]json.RawMessage, []string, error)) ([]string, error) {
	objs, _, err := decode(body)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(objs))
	for i, o := range objs {
		var head ObjectHead
		if err := json.Unmarshal(o, &head); err != nil {
			return nil, err
		}
		names[i] = head.Name
	}
	return names, nil
}

// AnswerBodies are the hosts' names and the bodies of their answers.
func AnswerBodies(answers []hosts.Answer) ([]string, [][]byte) {
	names, bodies := make([]string, len(answers)), make([][]byte, len(answers))
	for i, a := range answers {
		names[i], bodies[i] = a.Host.Name, a.Body
	}
	return names, bodies
}

// PruneFailure is the error of a fanned-out prune: a refusal of the
// request (bad filters: every engine refuses before it removes anything)
// as the engine put it, else the hosts that failed.
func PruneFailure(answers []hosts.Answer) error {
	var failed []string
	for _, a := range answers {
		switch {
		case a.Err != nil:
			failed = append(failed, a.Err.Error())
		case a.Status >= 400 && a.Status < 500:
			return errdefs.FromEngine(a.Status, a.Body)
		case a.Status != http.StatusOK:
			failed = append(failed, fmt.Sprintf("host %s: %v", a.Host.Name, errdefs.FromEngine(a.Status, a.Body)))
		}
	}
	if len(failed) > 0 {
		return errdefs.New(errdefs.ErrUnavailable, "prune failed on part of the fleet (the other hosts pruned): "+strings.Join(failed, "; "))
	}
	return nil
}
