package placement

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/fanout"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/scheduler"
)

// Object is a volume or a per-host network to place.
type Object struct {
	// Kind is scheduler.KindVolume or scheduler.KindNetwork.
	Kind scheduler.Kind
	// Host is the host the create names (HOST/NAME or the label
	// io.clocker.host); nil: any.
	Host *hosts.Host
	// Project is the object's compose project ("": none).
	Project string
	// Objects counts the objects of the kind each host holds, by host
	// name (built-in networks not counted).
	Objects map[string]int
}

// PlaceObject picks the host of a new volume or per-host network: the one
// the create names, else the one holding most of its compose project
// (healthy are the hosts asked), else the strategy's choice, the host
// with fewest objects of the kind among equally busy ones. Nothing is
// reserved: the caller creates it at once.
func (p *Placer) PlaceObject(ctx context.Context, healthy []*hosts.Host, o Object) (*hosts.Host, error) {
	req := scheduler.Request{Kind: o.Kind, Project: o.Project}
	var project map[string]int
	switch {
	case o.Host != nil:
		if !o.Host.Healthy() {
			return nil, o.Host.Unavailable()
		}
		req.Pins = []scheduler.Pin{{Host: o.Host.Name, Reason: fmt.Sprintf("the %s (%s=%s)", o.Kind, labels.Host, o.Host.Name)}}
	case o.Project != "":
		project = projectObjects(ctx, healthy, o.Project)
	}
	all := p.fleet.Hosts()
	nodes := make([]scheduler.Node, len(all))
	for i, h := range all {
		nodes[i] = scheduler.Node{Name: h.Name, Healthy: h.Healthy(), Containers: h.CountContainers(nil),
			Objects: o.Objects[h.Name], ProjectObjects: project[h.Name]}
	}
	return p.placeOn(&req, nodes)
}

// projectObjects counts, per host, the containers, volumes and networks
// of a compose project (hosts that do not answer count none).
func projectObjects(ctx context.Context, hs []*hosts.Host, project string) map[string]int {
	label := labels.ComposeProject + "=" + project
	f, _ := json.Marshal(map[string]map[string]bool{"label": {label: true}})
	q := url.Values{"filters": {string(f)}}
	counts := fanout.Each(hs, func(h *hosts.Host) (int, error) {
		n := 0
		if body, status, err := h.GetJSON(ctx, "/volumes", q); err == nil && status == http.StatusOK {
			var l struct{ Volumes []json.RawMessage }
			_ = json.Unmarshal(body, &l)
			n += len(l.Volumes)
		}
		if body, status, err := h.GetJSON(ctx, "/networks", q); err == nil && status == http.StatusOK {
			var l []json.RawMessage
			_ = json.Unmarshal(body, &l)
			n += len(l)
		}
		n += h.CountContainers(func(c *hosts.Container) bool { return c.Summary.Labels[labels.ComposeProject] == project })
		return n, nil
	})
	out := make(map[string]int, len(hs))
	for i, h := range hs {
		out[h.Name] = counts[i].Value
	}
	return out
}

// Build is what places a build (or an import: nothing set).
type Build struct {
	// Bases are the images its Dockerfile starts FROM: a host without
	// them would pull them.
	Bases []string
	// CacheFrom are the images the client names as its cache sources
	// (cachefrom): the engine reuses their layers only where they are.
	CacheFrom []string
	// Tags are the names the build gives its result (t): a rebuild goes
	// where the last build of the name is, where the engine's own cache
	// and the image it replaces are.
	Tags []string
	// Pins and Allow tie it to hosts, as a container's (a per-host
	// network, the members of a fleet network).
	Pins  []scheduler.Pin
	Allow []scheduler.Allow
}

// PlaceBuild picks the host of a build: the one holding the most of its
// base images, so that it pulls nothing and `docker run` of the result
// lands there too; among those, the one with the most of its cache
// sources, then of its tags; among those, the strategy's choice,
// weighing hosts by their containers and images. Nothing is reserved.
func (p *Placer) PlaceBuild(ctx context.Context, b Build) (*hosts.Host, error) {
	all := p.fleet.Hosts()
	count := func(images []string) []int {
		have := make([]int, len(all))
		for _, im := range images {
			for i, ok := range imagePresence(ctx, all, im) {
				if ok {
					have[i]++
				}
			}
		}
		return have
	}
	bases, cache, tags := count(b.Bases), count(b.CacheFrom), count(b.Tags)
	nodes := make([]scheduler.Node, len(all))
	for i, h := range all {
		load := h.CountContainers(nil) + imageCount(h)
		// One score ordered as the doc says: bases, then cache sources,
		// then tags.
		score := (bases[i]*(len(b.CacheFrom)+1)+cache[i])*(len(b.Tags)+1) + tags[i]
		nodes[i] = scheduler.Node{Name: h.Name, Healthy: h.Healthy(), Running: load, Containers: load, BaseImages: score}
	}
	return p.placeOn(&scheduler.Request{Kind: scheduler.KindBuild, BaseImages: b.Bases, Pins: b.Pins, Allow: b.Allow}, nodes)
}

// placeOn decides req over nodes and returns the chosen host.
func (p *Placer) placeOn(req *scheduler.Request, nodes []scheduler.Node) (*hosts.Host, error) {
	d, err := p.strategy.Decide(req, nodes)
	if err != nil {
		return nil, err
	}
	name := d.Hosts[0].Host
	h, ok := p.fleet.Host(name)
	if !ok {
		return nil, leftTheFleet(name)
	}
	return h, nil
}
