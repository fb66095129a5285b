package engineapi

import (
	"errors"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
)

// --- fixtures ---------------------------------------------------------------

var filterT0 = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// hexID pads s with zeros into a 64-hex ID.
func hexID(s string) string { return s + strings.Repeat("0", 64-len(s)) }

var (
	busyboxID = "sha256:" + strings.Repeat("2", 64)
	nginxID   = "sha256:" + strings.Repeat("1", 64)
	otherID   = "sha256:" + strings.Repeat("3", 64)
)

type ctrMod func(*hosts.Container)

// fctr builds a cached container; at is its creation in seconds after
// filterT0 (larger is newer).
func fctr(host, id, name string, state container.ContainerState, status string, at int, mods ...ctrMod) hosts.Container {
	created := filterT0.Add(time.Duration(at) * time.Second)
	c := hosts.Container{
		Host:    host,
		Created: created,
		Summary: container.Summary{
			ID:      hexID(id),
			Names:   []string{"/" + name},
			State:   state,
			Status:  status,
			Created: created.Unix(),
			Image:   "busybox",
			ImageID: busyboxID,
		},
	}
	for _, m := range mods {
		m(&c)
	}
	return c
}

func withImage(ref, id string) ctrMod {
	return func(c *hosts.Container) { c.Summary.Image, c.Summary.ImageID = ref, id }
}

func withLabels(kv ...string) ctrMod {
	return func(c *hosts.Container) {
		c.Summary.Labels = map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			c.Summary.Labels[kv[i]] = kv[i+1]
		}
	}
}

func withNames(names ...string) ctrMod {
	return func(c *hosts.Container) { c.Summary.Names = names }
}

func withPorts(ports ...container.PortSummary) ctrMod {
	return func(c *hosts.Container) { c.Summary.Ports = ports }
}

func withNetwork(name, id string) ctrMod {
	return func(c *hosts.Container) {
		if c.Summary.NetworkSettings == nil {
			c.Summary.NetworkSettings = &container.NetworkSettingsSummary{Networks: map[string]*network.EndpointSettings{}}
		}
		c.Summary.NetworkSettings.Networks[name] = &network.EndpointSettings{NetworkID: id}
	}
}

func withMounts(mounts ...container.MountPoint) ctrMod {
	return func(c *hosts.Container) { c.Summary.Mounts = mounts }
}

func withHealth(h container.HealthStatus) ctrMod {
	return func(c *hosts.Container) { c.Summary.Health = &container.HealthSummary{Status: h} }
}

func withCreated(t time.Time) ctrMod {
	return func(c *hosts.Container) { c.Created = t; c.Summary.Created = t.Unix() }
}

// testFleet is three hosts' caches, merged host by host (not in creation
// order). Newest first, the containers are: web, db, cache, worker, fresh,
// job, warmup, modern, flappy, zombie, leaving, crashed.
func testFleet() []hosts.Container {
	return []hosts.Container{
		// node1
		fctr("node1", "aa11", "web", container.StateRunning, "Up 3 minutes (healthy)", 100,
			withImage("nginx", nginxID),
			withLabels("app", "web", "tier", "front"),
			withPorts(
				container.PortSummary{PrivatePort: 80, PublicPort: 8080, Type: "tcp"},
				container.PortSummary{PrivatePort: 443, Type: "tcp"},
			),
			withNetwork("frontend", "f0f0"+strings.Repeat("9", 60)),
			withMounts(container.MountPoint{Type: "volume", Name: "webdata", Source: "/var/lib/docker/volumes/webdata/_data", Destination: "/usr/share/nginx/html"}),
		),
		fctr("node1", "bb22", "db", container.StateExited, "Exited (137) 2 minutes ago", 90,
			withImage("postgres:16", otherID),
			withLabels("app", "db", "tier", "back"),
			withNames("/db", "/web/db"),
			withNetwork("backend", "bacd"+strings.Repeat("8", 60)),
			withMounts(container.MountPoint{Type: "bind", Source: "/srv/pg", Destination: "/var/lib/postgresql/data"}),
		),
		fctr("node1", "ad99", "flappy", container.StateRestarting, "Restarting (1) 3 seconds ago", 20),
		fctr("node1", "b0cc", "crashed", container.StateExited, "Exited (1) 1 hour ago", 1),
		// node2
		fctr("node2", "cc33", "cache", container.StateRunning, "Up 1 hour (unhealthy)", 80,
			withImage("docker.io/library/redis:7", otherID),
			withLabels("app", "cache"),
			withPorts(container.PortSummary{PrivatePort: 6379, Type: "tcp"}),
			withNetwork("backend", "bacd"+strings.Repeat("8", 60)),
		),
		fctr("node2", "dd44", "worker", container.StatePaused, "Up 2 hours (Paused)", 70,
			withImage("busybox:latest", busyboxID),
			withLabels("app", "worker", "tier", "back"),
			withPorts(container.PortSummary{PrivatePort: 53, PublicPort: 5353, Type: "udp"}),
		),
		fctr("node2", "ee55", "fresh", container.StateCreated, "Created", 60),
		fctr("node2", "aeaa", "zombie", container.StateDead, "Dead", 10),
		// node3
		fctr("node3", "ff66", "job", container.StateExited, "Exited (0) 5 seconds ago", 50,
			withImage(busyboxID, busyboxID),
		),
		fctr("node3", "ab77", "warmup", container.StateRunning, "Up 4 seconds (health: starting)", 40,
			withImage("registry.example.com:5000/team/app:1.2", otherID),
		),
		fctr("node3", "ac88", "modern", container.StateRunning, "Up 1 minute", 30,
			withImage("nginx:1.25", otherID),
			withHealth(container.Healthy),
		),
		fctr("node3", "afbb", "leaving", container.StateRemoving, "Removal In Progress", 5),
	}
}

var (
	runningNames = []string{"web", "cache", "worker", "warmup", "modern", "flappy"}
	allNames     = []string{"web", "db", "cache", "worker", "fresh", "job", "warmup", "modern", "flappy", "zombie", "leaving", "crashed"}
)

// mapResolver resolves ancestor values per host from a table.
func mapResolver(m map[string]map[string]string) ImageResolver {
	return func(host, ref string) string { return m[host][ref] }
}

var testResolver = mapResolver(map[string]map[string]string{
	"node1": {"busybox": busyboxID, "nginx": nginxID, "2222": busyboxID},
	"node2": {"busybox": busyboxID},
	"node3": {"busybox": busyboxID},
})

// qv builds a query from key, value pairs.
func qv(kv ...string) url.Values {
	q := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		q.Add(kv[i], kv[i+1])
	}
	return q
}

func containerNames(cs []hosts.Container) []string {
	out := []string{}
	for i := range cs {
		out = append(out, strings.TrimPrefix(primaryName(cs[i].Summary.Names), "/"))
	}
	return out
}

// --- listContainers ----------------------------------------------------------

func TestListContainersFilters(t *testing.T) {
	dupFleet := []hosts.Container{
		fctr("node1", "1111", "web", container.StateRunning, "Up 1 second", 20),
		fctr("node2", "2222", "web", container.StateRunning, "Up 1 second", 10),
		fctr("node2", "3333", "old", container.StateRunning, "Up 1 second", 1),
	}
	sameSecond := filterT0.Add(time.Hour)
	nanoFleet := []hosts.Container{
		fctr("node1", "1111", "first", container.StateRunning, "Up", 0, withCreated(sameSecond.Add(100*time.Millisecond))),
		fctr("node2", "2222", "second", container.StateRunning, "Up", 0, withCreated(sameSecond.Add(200*time.Millisecond))),
		fctr("node3", "3333", "third", container.StateRunning, "Up", 0, withCreated(sameSecond.Add(300*time.Millisecond))),
	}
	tieFleet := []hosts.Container{
		fctr("node2", "1111", "tie-a", container.StateRunning, "Up", 5),
		fctr("node1", "2222", "older", container.StateRunning, "Up", 1),
		fctr("node3", "3333", "tie-b", container.StateRunning, "Up", 5),
		fctr("node1", "4444", "tie-c", container.StateRunning, "Up", 5),
		fctr("node1", "5555", "newest", container.StateRunning, "Up", 9),
	}
	stoppedNewest := []hosts.Container{
		fctr("node1", "1111", "running", container.StateRunning, "Up", 1),
		fctr("node2", "2222", "stopped", container.StateExited, "Exited (0) 1 second ago", 2),
	}
	noPrecise := []hosts.Container{
		fctr("node1", "1111", "a", container.StateRunning, "Up", 0, withCreated(time.Time{})),
		fctr("node1", "2222", "b", container.StateRunning, "Up", 0, withCreated(time.Time{})),
	}
	noPrecise[0].Summary.Created = 100
	noPrecise[1].Summary.Created = 200
	healthFleet := []hosts.Container{
		// Summary.Health wins over the Status text.
		fctr("node1", "1111", "api-health", container.StateRunning, "Up 1 minute (healthy)", 3, withHealth(container.Unhealthy)),
		fctr("node1", "2222", "text-health", container.StateRunning, "Up 1 minute (healthy)", 2),
		fctr("node1", "3333", "no-state", "", "Up 1 minute (unhealthy)", 1),
	}
	noStateFleet := []hosts.Container{
		fctr("node1", "1111", "up", "", "Up 5 minutes", 9),
		fctr("node1", "2222", "paused", "", "Up 5 minutes (Paused)", 8),
		fctr("node1", "3333", "restarting", "", "Restarting (2) 1 second ago", 7),
		fctr("node1", "4444", "exited", "", "Exited (3) 1 minute ago", 6),
		fctr("node1", "5555", "created", "", "Created", 5),
		fctr("node1", "6666", "dead", "", "Dead", 4),
		fctr("node1", "7777", "removing", "", "Removal In Progress", 3),
	}
	unnamed := []hosts.Container{
		fctr("node1", "1111", "x", container.StateDead, "Dead", 1, withNames()),
	}

	tests := []struct {
		name     string
		query    url.Values
		fleet    []hosts.Container // testFleet() when nil
		resolver ImageResolver     // testResolver when nil and useNil false
		useNil   bool              // call with a nil resolver
		want     []string
		wantErr  error  // sentinel the error must match
		wantMsg  string // exact error text
	}{
		// all, limit, latest, ordering
		{name: "default lists running, paused and restarting, newest first", query: qv(), want: runningNames},
		{name: "all=1 lists every state newest first", query: qv("all", "1"), want: allNames},
		{name: "all=true", query: qv("all", "true"), want: allNames},
		{name: "all=TRUE any case", query: qv("all", "TRUE"), want: allNames},
		{name: "all=yes is true", query: qv("all", "yes"), want: allNames},
		{name: "all=0 is false", query: qv("all", "0"), want: runningNames},
		{name: "all=false", query: qv("all", "false"), want: runningNames},
		{name: "all=no", query: qv("all", "no"), want: runningNames},
		{name: "all=none", query: qv("all", "none"), want: runningNames},
		{name: "limit implies all", query: qv("limit", "3"), want: []string{"web", "db", "cache"}},
		{name: "limit=0 is no limit", query: qv("limit", "0"), want: runningNames},
		{name: "limit=-1 is no limit", query: qv("limit", "-1"), want: runningNames},
		{name: "limit larger than the list", query: qv("limit", "50"), want: allNames},
		{name: "limit applies after filters", query: qv("limit", "2", "filters", `{"status":["exited"]}`), want: []string{"db", "job"}},
		{name: "limit applies after running check with all", query: qv("all", "1", "limit", "4", "filters", `{"node":["node3"]}`), want: []string{"job", "warmup", "modern", "leaving"}},
		{name: "last is limit's CLI name", query: qv("last", "2"), want: []string{"web", "db"}},
		{name: "latest is the newest container", query: qv("latest", "1"), want: []string{"web"}},
		{name: "latest includes stopped containers", query: qv("latest", "true"), fleet: stoppedNewest, want: []string{"stopped"}},
		{name: "latest with filter", query: qv("latest", "1", "filters", `{"node":["node2"]}`), want: []string{"cache"}},
		{name: "limit wins over latest", query: qv("latest", "1", "limit", "2"), want: []string{"web", "db"}},
		{name: "ties keep merge order", query: qv(), fleet: tieFleet, want: []string{"newest", "tie-a", "tie-b", "tie-c", "older"}},
		{name: "precise Created orders within a second", query: qv(), fleet: nanoFleet, want: []string{"third", "second", "first"}},
		{name: "list seconds order when Created is missing", query: qv(), fleet: noPrecise, want: []string{"b", "a"}},
		{name: "empty fleet", query: qv("all", "1"), fleet: []hosts.Container{}, want: []string{}},
		{name: "empty filters object", query: qv("filters", `{}`), want: runningNames},

		// label
		{name: "label key", query: qv("filters", `{"label":["tier"]}`), want: []string{"web", "worker"}},
		{name: "label key with all", query: qv("all", "1", "filters", `{"label":{"tier":true}}`), want: []string{"web", "db", "worker"}},
		{name: "label key=value", query: qv("all", "1", "filters", `{"label":{"tier=back":true}}`), want: []string{"db", "worker"}},
		{name: "labels must all match", query: qv("filters", `{"label":["app=web","tier=front"]}`), want: []string{"web"}},
		{name: "labels must all match, one fails", query: qv("filters", `{"label":["app=web","tier=back"]}`), want: []string{}},
		{name: "label with empty value matches empty only", query: qv("all", "1", "filters", `{"label":["app="]}`), want: []string{}},
		{name: "label on containers without labels", query: qv("all", "1", "filters", `{"label":["app"]}`), want: []string{"web", "db", "cache", "worker"}},

		// name
		{name: "name regex against slash name", query: qv("all", "1", "filters", `{"name":["^/w"]}`), want: []string{"web", "worker", "warmup"}},
		{name: "name regex against bare name", query: qv("all", "1", "filters", `{"name":["^w"]}`), want: []string{"web", "worker", "warmup"}},
		{name: "name exact with slash", query: qv("all", "1", "filters", `{"name":["/db"]}`), want: []string{"db"}},
		{name: "name substring", query: qv("all", "1", "filters", `{"name":["sh"]}`), want: []string{"fresh", "crashed"}},
		{name: "name ignores link names", query: qv("all", "1", "filters", `{"name":["web"]}`), want: []string{"web"}},
		{name: "several names are alternatives", query: qv("all", "1", "filters", `{"name":["^job$","^cache$"]}`), want: []string{"cache", "job"}},
		{name: "name is subject to all=false", query: qv("filters", `{"name":["db"]}`), want: []string{}},
		{name: "name invalid regex matches nothing", query: qv("all", "1", "filters", `{"name":["["]}`), want: []string{}},
		{name: "name on unnamed container", query: qv("all", "1", "filters", `{"name":[".*"]}`), fleet: unnamed, want: []string{}},

		// id
		{name: "id full", query: qv("all", "1", "filters", `{"id":["`+hexID("bb22")+`"]}`), want: []string{"db"}},
		{name: "id unique prefix", query: qv("all", "1", "filters", `{"id":["bb"]}`), want: []string{"db"}},
		{name: "id ambiguous prefix matches nothing", query: qv("all", "1", "filters", `{"id":["a"]}`), want: []string{}},
		{name: "id must be a prefix", query: qv("all", "1", "filters", `{"id":["b22"]}`), want: []string{}},
		{name: "several ids", query: qv("all", "1", "filters", `{"id":["bb","cc3"]}`), want: []string{"db", "cache"}},
		{name: "id prefix unique across the fleet only", query: qv("all", "1", "filters", `{"id":["ff"]}`), want: []string{"job"}},
		{name: "id and name must both match", query: qv("all", "1", "filters", `{"id":["aa"],"name":["db"]}`), want: []string{}},
		{name: "id and name both matching", query: qv("all", "1", "filters", `{"id":["aa"],"name":["web"]}`), want: []string{"web"}},
		{name: "empty id value matches nothing", query: qv("all", "1", "filters", `{"id":[""]}`), want: []string{}},

		// status
		{name: "status created", query: qv("filters", `{"status":["created"]}`), want: []string{"fresh"}},
		{name: "status restarting", query: qv("filters", `{"status":["restarting"]}`), want: []string{"flappy"}},
		{name: "status running", query: qv("filters", `{"status":["running"]}`), want: []string{"web", "cache", "warmup", "modern"}},
		{name: "status removing", query: qv("filters", `{"status":["removing"]}`), want: []string{"leaving"}},
		{name: "status paused", query: qv("filters", `{"status":["paused"]}`), want: []string{"worker"}},
		{name: "status exited implies all", query: qv("filters", `{"status":["exited"]}`), want: []string{"db", "job", "crashed"}},
		{name: "status dead", query: qv("filters", `{"status":["dead"]}`), want: []string{"zombie"}},
		{name: "several statuses", query: qv("filters", `{"status":{"exited":true,"dead":true}}`), want: []string{"db", "job", "zombie", "crashed"}},
		{name: "status with no value lists as without", query: qv("filters", `{"status":[]}`), want: runningNames},
		{name: "status parsed from Status when State is missing", query: qv("filters", `{"status":["paused","restarting"]}`), fleet: noStateFleet, want: []string{"paused", "restarting"}},
		{name: "no State: default lists running ones", query: qv(), fleet: noStateFleet, want: []string{"up", "paused", "restarting"}},
		{name: "no State: exited", query: qv("filters", `{"status":["exited"]}`), fleet: noStateFleet, want: []string{"exited"}},
		{name: "no State: created dead removing", query: qv("filters", `{"status":["created","dead","removing"]}`), fleet: noStateFleet, want: []string{"created", "dead", "removing"}},
		{name: "status invalid", query: qv("filters", `{"status":["xyz"]}`), wantErr: ErrInvalidFilter, wantMsg: "invalid filter 'status=xyz'"},
		{name: "status invalid among valid", query: qv("filters", `{"status":["running","up"]}`), wantErr: ErrInvalidFilter, wantMsg: "invalid filter 'status=up'"},

		// exited
		{name: "exited code", query: qv("all", "1", "filters", `{"exited":["137"]}`), want: []string{"db"}},
		{name: "several exit codes", query: qv("all", "1", "filters", `{"exited":["0","1"]}`), want: []string{"job", "crashed"}},
		{name: "exited needs all", query: qv("filters", `{"exited":["0"]}`), want: []string{}},
		{name: "exited ignores restarting containers", query: qv("all", "1", "filters", `{"exited":["1"]}`), want: []string{"crashed"}},
		{name: "exited with status", query: qv("filters", `{"exited":["137","0"],"status":["exited"]}`), want: []string{"db", "job"}},
		{name: "exited with limit", query: qv("limit", "10", "filters", `{"exited":["0"]}`), want: []string{"job"}},
		{name: "exited no match", query: qv("all", "1", "filters", `{"exited":["2"]}`), want: []string{}},
		{name: "exited parsed without State", query: qv("all", "1", "filters", `{"exited":["3","2"]}`), fleet: noStateFleet, want: []string{"exited"}},
		{name: "exited not an integer", query: qv("all", "1", "filters", `{"exited":["abc"]}`), wantErr: ErrInvalidFilter, wantMsg: `strconv.Atoi: parsing "abc": invalid syntax`},

		// health
		{name: "health healthy from Status and Summary.Health", query: qv("filters", `{"health":["healthy"]}`), want: []string{"web", "modern"}},
		{name: "health unhealthy", query: qv("filters", `{"health":["unhealthy"]}`), want: []string{"cache"}},
		{name: "health starting", query: qv("filters", `{"health":["starting"]}`), want: []string{"warmup"}},
		{name: "health none", query: qv("all", "1", "filters", `{"health":["none"]}`), want: []string{"db", "worker", "fresh", "job", "flappy", "zombie", "leaving", "crashed"}},
		{name: "several healths", query: qv("filters", `{"health":["starting","unhealthy"]}`), want: []string{"cache", "warmup"}},
		{name: "Summary.Health wins over Status", query: qv("filters", `{"health":["unhealthy"]}`), fleet: healthFleet, want: []string{"api-health", "no-state"}},
		{name: "health from Status text", query: qv("filters", `{"health":["healthy"]}`), fleet: healthFleet, want: []string{"text-health"}},
		{name: "health invalid", query: qv("filters", `{"health":["sick"]}`), wantErr: ErrInvalidFilter, wantMsg: "Unrecognised filter value for health: sick"},

		// ancestor
		{name: "ancestor by name via resolver and reference", query: qv("all", "1", "filters", `{"ancestor":["busybox"]}`), want: []string{"worker", "fresh", "job", "flappy", "zombie", "leaving", "crashed"}},
		{name: "ancestor normalised name without resolver", query: qv("all", "1", "filters", `{"ancestor":["docker.io/library/busybox:latest"]}`), useNil: true, want: []string{"worker", "fresh", "flappy", "zombie", "leaving", "crashed"}},
		{name: "ancestor short name without resolver", query: qv("all", "1", "filters", `{"ancestor":["busybox"]}`), useNil: true, want: []string{"worker", "fresh", "flappy", "zombie", "leaving", "crashed"}},
		{name: "ancestor library path", query: qv("all", "1", "filters", `{"ancestor":["library/redis:7"]}`), want: []string{"cache"}},
		{name: "ancestor tag must match", query: qv("all", "1", "filters", `{"ancestor":["redis"]}`), want: []string{}},
		{name: "ancestor resolved on the container's host only", query: qv("all", "1", "filters", `{"ancestor":["nginx"]}`), want: []string{"web"}},
		{name: "ancestor registry with port", query: qv("all", "1", "filters", `{"ancestor":["registry.example.com:5000/team/app:1.2"]}`), want: []string{"warmup"}},
		{name: "ancestor registry default tag differs", query: qv("all", "1", "filters", `{"ancestor":["registry.example.com:5000/team/app"]}`), want: []string{}},
		{name: "ancestor full image ID", query: qv("all", "1", "filters", `{"ancestor":["`+busyboxID+`"]}`), useNil: true, want: []string{"worker", "fresh", "job", "flappy", "zombie", "leaving", "crashed"}},
		{name: "ancestor bare full image ID", query: qv("all", "1", "filters", `{"ancestor":["`+strings.TrimPrefix(nginxID, "sha256:")+`"]}`), want: []string{"web"}},
		{name: "ancestor ID prefix without resolver", query: qv("all", "1", "filters", `{"ancestor":["2222"]}`), useNil: true, want: []string{"worker", "fresh", "job", "flappy", "zombie", "leaving", "crashed"}},
		{name: "ancestor ID prefix resolved per host", query: qv("all", "1", "filters", `{"ancestor":["2222"]}`), want: []string{"flappy", "crashed"}},
		{name: "several ancestors", query: qv("all", "1", "filters", `{"ancestor":["nginx","postgres:16"]}`), want: []string{"web", "db"}},
		{name: "ancestor unknown", query: qv("all", "1", "filters", `{"ancestor":["nosuch"]}`), want: []string{}},
		{name: "ancestor with no value matches nothing", query: qv("all", "1", "filters", `{"ancestor":{}}`), want: []string{}},
		{name: "ancestor subject to all=false", query: qv("filters", `{"ancestor":["busybox"]}`), want: []string{"worker", "flappy"}},

		// before / since
		{name: "before by name", query: qv("all", "1", "filters", `{"before":["cache"]}`), want: []string{"worker", "fresh", "job", "warmup", "modern", "flappy", "zombie", "leaving", "crashed"}},
		{name: "before without all keeps running only", query: qv("filters", `{"before":["cache"]}`), want: []string{"worker", "warmup", "modern", "flappy"}},
		{name: "before by slash name", query: qv("all", "1", "filters", `{"before":["/zombie"]}`), want: []string{"leaving", "crashed"}},
		{name: "before by full ID", query: qv("all", "1", "filters", `{"before":["`+hexID("aeaa")+`"]}`), want: []string{"leaving", "crashed"}},
		{name: "before by link name", query: qv("all", "1", "filters", `{"before":["web/db"]}`), want: []string{"cache", "worker", "fresh", "job", "warmup", "modern", "flappy", "zombie", "leaving", "crashed"}},
		{name: "since by name", query: qv("all", "1", "filters", `{"since":["modern"]}`), want: []string{"web", "db", "cache", "worker", "fresh", "job", "warmup"}},
		{name: "since by unique ID prefix", query: qv("all", "1", "filters", `{"since":["ff6"]}`), want: []string{"web", "db", "cache", "worker", "fresh"}},
		{name: "since newest is empty", query: qv("all", "1", "filters", `{"since":["web"]}`), want: []string{}},
		{name: "before and since", query: qv("all", "1", "filters", `{"before":["cache"],"since":["job"]}`), want: []string{"worker", "fresh"}},
		{name: "several befores all apply", query: qv("all", "1", "filters", `{"before":["cache","job"]}`), want: []string{"warmup", "modern", "flappy", "zombie", "leaving", "crashed"}},
		{name: "before across hosts", query: qv("filters", `{"before":["web"],"node":["node3"]}`), want: []string{"warmup", "modern"}},
		{name: "before uses precise Created", query: qv("filters", `{"before":["second"]}`), fleet: nanoFleet, want: []string{"first"}},
		{name: "since uses precise Created", query: qv("filters", `{"since":["second"]}`), fleet: nanoFleet, want: []string{"third"}},
		{name: "before excludes equal Created", query: qv("filters", `{"before":["tie-b"]}`), fleet: tieFleet, want: []string{"older"}},
		{name: "since excludes equal Created", query: qv("filters", `{"since":["tie-b"]}`), fleet: tieFleet, want: []string{"newest"}},
		{name: "before unknown", query: qv("all", "1", "filters", `{"before":["nope"]}`), wantErr: ErrNoSuchContainer, wantMsg: "No such container: nope"},
		{name: "since unknown", query: qv("filters", `{"since":["abcdef"]}`), wantErr: ErrNoSuchContainer, wantMsg: "No such container: abcdef"},
		{name: "before name ambiguous across hosts", query: qv("filters", `{"before":["web"]}`), fleet: dupFleet, wantErr: ErrNoSuchContainer, wantMsg: "No such container: web"},
		{name: "before ID unambiguous despite duplicate names", query: qv("filters", `{"before":["`+hexID("2222")+`"]}`), fleet: dupFleet, want: []string{"old"}},
		{name: "since ambiguous ID prefix", query: qv("filters", `{"since":["a"]}`), wantErr: ErrInvalidFilter, wantMsg: "multiple IDs found with provided prefix: a"},
		{name: "before empty value", query: qv("filters", `{"before":[""]}`), wantErr: ErrNoSuchContainer, wantMsg: "No such container: "},

		// network
		{name: "network by name", query: qv("all", "1", "filters", `{"network":["backend"]}`), want: []string{"db", "cache"}},
		{name: "network by ID prefix", query: qv("all", "1", "filters", `{"network":["f0f0"]}`), want: []string{"web"}},
		{name: "network by full ID", query: qv("all", "1", "filters", `{"network":["bacd`+strings.Repeat("8", 60)+`"]}`), want: []string{"db", "cache"}},
		{name: "several networks", query: qv("all", "1", "filters", `{"network":["frontend","backend"]}`), want: []string{"web", "db", "cache"}},
		{name: "network unknown", query: qv("all", "1", "filters", `{"network":["host"]}`), want: []string{}},

		// volume
		{name: "volume by name", query: qv("all", "1", "filters", `{"volume":["webdata"]}`), want: []string{"web"}},
		{name: "volume by destination", query: qv("all", "1", "filters", `{"volume":["/var/lib/postgresql/data"]}`), want: []string{"db"}},
		{name: "volume by bind source", query: qv("all", "1", "filters", `{"volume":["/srv/pg"]}`), want: []string{"db"}},
		{name: "volume source of named volume does not match", query: qv("all", "1", "filters", `{"volume":["/var/lib/docker/volumes/webdata/_data"]}`), want: []string{}},
		{name: "several volumes", query: qv("all", "1", "filters", `{"volume":["webdata","/srv/pg"]}`), want: []string{"web", "db"}},

		// publish / expose
		{name: "publish port", query: qv("filters", `{"publish":["8080"]}`), want: []string{"web"}},
		{name: "publish port/proto", query: qv("filters", `{"publish":["8080/tcp"]}`), want: []string{"web"}},
		{name: "publish wrong proto", query: qv("filters", `{"publish":["8080/udp"]}`), want: []string{}},
		{name: "publish range", query: qv("filters", `{"publish":["8000-8100"]}`), want: []string{"web"}},
		{name: "publish udp", query: qv("filters", `{"publish":["5353/udp"]}`), want: []string{"worker"}},
		{name: "publish is not the private port", query: qv("filters", `{"publish":["80"]}`), want: []string{}},
		{name: "expose private port", query: qv("filters", `{"expose":["80"]}`), want: []string{"web"}},
		{name: "expose unpublished port", query: qv("filters", `{"expose":["6379/tcp"]}`), want: []string{"cache"}},
		{name: "expose udp range", query: qv("filters", `{"expose":["50-60/udp"]}`), want: []string{"worker"}},
		{name: "expose tcp range", query: qv("filters", `{"expose":["1-1000"]}`), want: []string{"web"}},
		{name: "publish or expose", query: qv("filters", `{"publish":["5353/udp"],"expose":["443"]}`), want: []string{"web", "worker"}},
		{name: "publish with colon", query: qv("filters", `{"publish":["80:80"]}`), wantErr: ErrInvalidFilter, wantMsg: "filter for 'publish' should not contain ':': 80:80"},
		{name: "publish not a number", query: qv("filters", `{"publish":["abc"]}`), wantErr: ErrInvalidFilter, wantMsg: "error while looking up for publish abc: invalid start port 'abc': invalid syntax"},
		{name: "expose reversed range", query: qv("filters", `{"expose":["90-80"]}`), wantErr: ErrInvalidFilter, wantMsg: "error while looking up for expose 90-80: invalid port range: 90-80"},
		{name: "expose bad end", query: qv("filters", `{"expose":["80-x/udp"]}`), wantErr: ErrInvalidFilter, wantMsg: "error while looking up for expose 80-x/udp: invalid end port 'x': invalid syntax"},
		{name: "expose out of range", query: qv("filters", `{"expose":["70000"]}`), wantErr: ErrInvalidFilter, wantMsg: "error while looking up for expose 70000: invalid start port '70000': value out of range (0–65535)"},
		{name: "publish empty", query: qv("filters", `{"publish":[""]}`), wantErr: ErrInvalidFilter, wantMsg: "error while looking up for publish : empty string specified for ports"},

		// is-task, isolation
		{name: "is-task false", query: qv("filters", `{"is-task":["false"]}`), want: runningNames},
		{name: "is-task true", query: qv("all", "1", "filters", `{"is-task":["true"]}`), want: []string{}},
		{name: "is-task invalid", query: qv("filters", `{"is-task":["maybe"]}`), wantErr: ErrInvalidFilter, wantMsg: "invalid filter 'is-task=[maybe]'"},
		{name: "isolation is accepted and ignored", query: qv("filters", `{"isolation":["hyperv"]}`), want: runningNames},

		// node
		{name: "node", query: qv("all", "1", "filters", `{"node":["node2"]}`), want: []string{"cache", "worker", "fresh", "zombie"}},
		{name: "several nodes", query: qv("filters", `{"node":["node1","node3"]}`), want: []string{"web", "warmup", "modern", "flappy"}},
		{name: "node is exact", query: qv("all", "1", "filters", `{"node":["node"]}`), want: []string{}},
		{name: "node is not a glob", query: qv("all", "1", "filters", `{"node":["node*"]}`), want: []string{}},

		// combinations
		{name: "label status node", query: qv("filters", `{"label":["tier=back"],"status":["exited","paused"],"node":["node1"]}`), want: []string{"db"}},
		{name: "legacy form with several filters", query: qv("filters", `{"label":["app"],"health":["unhealthy","healthy"],"network":["backend"]}`), want: []string{"cache"}},

		// invalid input
		{name: "unknown filter", query: qv("filters", `{"foo":["bar"]}`), wantErr: ErrInvalidFilter, wantMsg: "invalid filter 'foo'"},
		{name: "unknown filter without value", query: qv("filters", `{"foo":{}}`), wantErr: ErrInvalidFilter, wantMsg: "invalid filter 'foo'"},
		{name: "first unknown filter in name order", query: qv("filters", `{"zeta":[],"beta":[]}`), wantErr: ErrInvalidFilter, wantMsg: "invalid filter 'beta'"},
		{name: "unknown filter checked before values", query: qv("filters", `{"status":["xyz"],"foo":["x"]}`), wantErr: ErrInvalidFilter, wantMsg: "invalid filter 'foo'"},
		{name: "exited checked before status", query: qv("filters", `{"status":["xyz"],"exited":["x"]}`), wantErr: ErrInvalidFilter, wantMsg: `strconv.Atoi: parsing "x": invalid syntax`},
		{name: "bad filters are checked before references", query: qv("filters", `{"before":["nope"],"health":["sick"]}`), wantErr: ErrInvalidFilter, wantMsg: "Unrecognised filter value for health: sick"},
		{name: "filters not JSON", query: qv("filters", `{"label":`), wantErr: ErrInvalidFilter, wantMsg: "invalid filter"},
		{name: "limit not an integer", query: qv("limit", "ten"), wantErr: ErrInvalidFilter, wantMsg: `strconv.Atoi: parsing "ten": invalid syntax`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fleet := tt.fleet
			if fleet == nil {
				fleet = testFleet()
			}
			resolver := tt.resolver
			if resolver == nil && !tt.useNil {
				resolver = testResolver
			}
			before := slices.Clone(fleet)
			opts, err := ParseContainerListOptions(tt.query)
			var got []hosts.Container
			if err == nil {
				got, err = ListContainers(fleet, opts, resolver)
			}
			if tt.wantErr != nil || tt.wantMsg != "" {
				if err == nil {
					t.Fatalf("got %v, want error %q", containerNames(got), tt.wantMsg)
				}
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("error %v is not %v", err, tt.wantErr)
				}
				if err.Error() != tt.wantMsg {
					t.Errorf("error text %q, want %q", err.Error(), tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got == nil {
				t.Fatal("result is nil, want a non-nil slice")
			}
			if names := containerNames(got); !slices.Equal(names, tt.want) {
				t.Errorf("got %q, want %q", names, tt.want)
			}
			if !reflect.DeepEqual(fleet, before) {
				t.Error("listContainers modified its input")
			}
		})
	}
}

func TestListContainersErrorKinds(t *testing.T) {
	tests := []struct {
		name    string
		filters string
		is      []error
		isNot   []error
		status  int
	}{
		{name: "invalid filter is 400", filters: `{"foo":["x"]}`, is: []error{ErrInvalidFilter, errdefs.ErrInvalid}, isNot: []error{ErrNoSuchContainer, errdefs.ErrNotFound}, status: 400},
		{name: "no such container is 404", filters: `{"since":["nope"]}`, is: []error{ErrNoSuchContainer, errdefs.ErrNotFound}, isNot: []error{ErrInvalidFilter, errdefs.ErrInvalid}, status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseFilters(tt.filters)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ListContainers(testFleet(), ContainerListOptions{Filters: f}, nil)
			if err == nil {
				t.Fatal("no error")
			}
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("%v is not %v", err, target)
				}
			}
			for _, target := range tt.isNot {
				if errors.Is(err, target) {
					t.Errorf("%v is %v", err, target)
				}
			}
			if got := errdefs.Status(err); got != tt.status {
				t.Errorf("status %d, want %d", got, tt.status)
			}
		})
	}
}

func TestListContainersNilFilters(t *testing.T) {
	got, err := ListContainers(testFleet(), ContainerListOptions{All: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if names := containerNames(got); !slices.Equal(names, allNames) {
		t.Errorf("got %q, want %q", names, allNames)
	}
}

func TestListContainersResolverCalledOncePerHostAndRef(t *testing.T) {
	calls := map[[2]string]int{}
	resolver := func(host, ref string) string {
		calls[[2]string{host, ref}]++
		return testResolver(host, ref)
	}
	f := Filters{}
	f.Add("ancestor", "busybox")
	f.Add("ancestor", "nosuch")
	if _, err := ListContainers(testFleet(), ContainerListOptions{All: true, Filters: f}, resolver); err != nil {
		t.Fatal(err)
	}
	if len(calls) == 0 {
		t.Fatal("resolver never called")
	}
	for k, n := range calls {
		if n != 1 {
			t.Errorf("resolver called %d times for %v", n, k)
		}
	}
}

// --- parseContainerListOptions -------------------------------------------

func TestParseContainerListOptions(t *testing.T) {
	tests := []struct {
		name    string
		query   url.Values
		want    ContainerListOptions
		wantMsg string
	}{
		{name: "empty", query: qv(), want: ContainerListOptions{Filters: Filters{}}},
		{name: "booleans", query: qv("all", "1", "size", "true", "latest", "yes"), want: ContainerListOptions{All: true, Size: true, Latest: true, Filters: Filters{}}},
		{name: "false booleans", query: qv("all", "0", "size", "False", "latest", " no "), want: ContainerListOptions{Filters: Filters{}}},
		{name: "first value counts", query: qv("all", "0", "all", "1"), want: ContainerListOptions{Filters: Filters{}}},
		{name: "limit", query: qv("limit", "5"), want: ContainerListOptions{Limit: 5, Filters: Filters{}}},
		{name: "negative limit", query: qv("limit", "-1"), want: ContainerListOptions{Limit: -1, Filters: Filters{}}},
		{name: "last", query: qv("last", "3"), want: ContainerListOptions{Limit: 3, Filters: Filters{}}},
		{name: "limit over last", query: qv("limit", "2", "last", "7"), want: ContainerListOptions{Limit: 2, Filters: Filters{}}},
		{name: "map form", query: qv("filters", `{"label":{"a=b":true,"c":true},"status":{"running":true}}`),
			want: ContainerListOptions{Filters: Filters{"label": {"a=b": true, "c": true}, "status": {"running": true}}}},
		{name: "legacy list form", query: qv("filters", `{"label":["a=b","c"],"status":["running"]}`),
			want: ContainerListOptions{Filters: Filters{"label": {"a=b": true, "c": true}, "status": {"running": true}}}},
		{name: "legacy empty list", query: qv("filters", `{"label":[]}`), want: ContainerListOptions{Filters: Filters{"label": {}}}},
		{name: "null filters", query: qv("filters", `null`), want: ContainerListOptions{Filters: Filters{}}},
		{name: "filter with null values", query: qv("filters", `{"label":null}`), want: ContainerListOptions{Filters: Filters{"label": nil}}},
		{name: "bad limit", query: qv("limit", "x"), wantMsg: `strconv.Atoi: parsing "x": invalid syntax`},
		{name: "bad last", query: qv("last", "1.5"), wantMsg: `strconv.Atoi: parsing "1.5": invalid syntax`},
		{name: "truncated JSON", query: qv("filters", `{"label":`), wantMsg: "invalid filter"},
		{name: "JSON array", query: qv("filters", `["label"]`), wantMsg: "invalid filter"},
		{name: "string values", query: qv("filters", `{"label":"a"}`), wantMsg: "invalid filter"},
		{name: "mixed forms", query: qv("filters", `{"label":["a"],"status":{"running":true}}`), wantMsg: "invalid filter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseContainerListOptions(tt.query)
			if tt.wantMsg != "" {
				if err == nil {
					t.Fatalf("got %+v, want error %q", got, tt.wantMsg)
				}
				if !errors.Is(err, ErrInvalidFilter) || !errors.Is(err, errdefs.ErrInvalid) {
					t.Errorf("error %v is not invalid", err)
				}
				if err.Error() != tt.wantMsg {
					t.Errorf("error text %q, want %q", err.Error(), tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// --- filterArgs ------------------------------------------------------------

func TestFilterArgsMatching(t *testing.T) {
	f := Filters{
		"name":  {"^web$": true, "/db": true, "[": true, "off": false},
		"empty": {},
		"label": {"a=b": true, "c": true},
	}
	tests := []struct {
		name string
		got  bool
		want bool
	}{
		{name: "contains key", got: f.Contains("empty"), want: true},
		{name: "contains missing key", got: f.Contains("nope"), want: false},
		{name: "exact match value", got: f.ExactMatch("name", "/db"), want: true},
		{name: "exact match is not regex", got: f.ExactMatch("name", "web"), want: false},
		{name: "exact match false value", got: f.ExactMatch("name", "off"), want: false},
		{name: "exact match no values", got: f.ExactMatch("empty", "x"), want: true},
		{name: "exact match missing key", got: f.ExactMatch("nope", "x"), want: true},
		{name: "match regex", got: f.Match("name", "web"), want: true},
		{name: "match anchored regex fails", got: f.Match("name", "webby"), want: false},
		{name: "match unanchored regex", got: f.Match("name", "/dbx"), want: true},
		{name: "match false value still regex-matches", got: f.Match("name", "office"), want: true},
		{name: "match invalid regex still matches exactly", got: f.Match("name", "["), want: true},
		{name: "match invalid regex skipped", got: f.Match("name", "[x"), want: false},
		{name: "match missing key", got: f.Match("nope", "x"), want: true},
		{name: "kv all present", got: f.MatchKVList("label", map[string]string{"a": "b", "c": "", "d": "e"}), want: true},
		{name: "kv wrong value", got: f.MatchKVList("label", map[string]string{"a": "x", "c": "y"}), want: false},
		{name: "kv missing key", got: f.MatchKVList("label", map[string]string{"a": "b"}), want: false},
		{name: "kv no labels", got: f.MatchKVList("label", nil), want: false},
		{name: "kv no filter", got: f.MatchKVList("nope", nil), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
	if got, want := f.Values("name"), []string{"/db", "[", "^web$", "off"}; !slices.Equal(got, want) {
		t.Errorf("values %q, want %q", got, want)
	}
	if got := f.Values("nope"); got == nil || len(got) != 0 {
		t.Errorf("values of missing key %#v", got)
	}
}

// --- helpers -----------------------------------------------------------------

func TestNormalizeImageRef(t *testing.T) {
	id := strings.Repeat("ab", 32)
	tests := []struct {
		name, ref, want string
	}{
		{name: "short name", ref: "busybox", want: "docker.io/library/busybox:latest"},
		{name: "tag", ref: "busybox:1.36", want: "docker.io/library/busybox:1.36"},
		{name: "library path", ref: "library/busybox", want: "docker.io/library/busybox:latest"},
		{name: "full", ref: "docker.io/library/busybox:latest", want: "docker.io/library/busybox:latest"},
		{name: "index.docker.io", ref: "index.docker.io/library/busybox", want: "docker.io/library/busybox:latest"},
		{name: "user repo", ref: "moby/buildkit:v0.12", want: "docker.io/moby/buildkit:v0.12"},
		{name: "registry with port", ref: "localhost:5000/app", want: "localhost:5000/app:latest"},
		{name: "localhost", ref: "localhost/app:1", want: "localhost/app:1"},
		{name: "registry domain", ref: "ghcr.io/org/app", want: "ghcr.io/org/app:latest"},
		{name: "digest keeps no tag", ref: "busybox@sha256:" + id, want: "docker.io/library/busybox@sha256:" + id},
		{name: "tag and digest", ref: "busybox:1@sha256:" + id, want: "docker.io/library/busybox:1@sha256:" + id},
		{name: "image ID", ref: "sha256:" + id, want: "sha256:" + id},
		{name: "bare full ID", ref: id, want: "sha256:" + id},
		{name: "empty", ref: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := normalizeImageRef(tt.ref); got != tt.want {
				t.Errorf("normalizeImageRef(%q) = %q, want %q", tt.ref, got, tt.want)
			}
		})
	}
}

func TestContainerStatusParsing(t *testing.T) {
	tests := []struct {
		name     string
		summary  container.Summary
		state    string
		health   string
		exitCode int
		exitOK   bool
	}{
		{name: "running healthy", summary: container.Summary{State: "running", Status: "Up 3 seconds (healthy)"}, state: "running", health: "healthy"},
		{name: "running unhealthy", summary: container.Summary{Status: "Up 3 seconds (unhealthy)"}, state: "running", health: "unhealthy"},
		{name: "running starting", summary: container.Summary{Status: "Up 1 second (health: starting)"}, state: "running", health: "starting"},
		{name: "running no healthcheck", summary: container.Summary{Status: "Up About a minute"}, state: "running", health: "none"},
		{name: "health from summary", summary: container.Summary{State: "running", Status: "Up 1 second", Health: &container.HealthSummary{Status: container.Starting}}, state: "running", health: "starting"},
		{name: "empty summary health falls back", summary: container.Summary{Status: "Up 1 second (healthy)", Health: &container.HealthSummary{}}, state: "running", health: "healthy"},
		{name: "paused", summary: container.Summary{Status: "Up 2 hours (Paused)"}, state: "paused", health: "none"},
		{name: "exited", summary: container.Summary{Status: "Exited (137) 2 minutes ago"}, state: "exited", health: "none", exitCode: 137, exitOK: true},
		{name: "exited negative", summary: container.Summary{State: "exited", Status: "Exited (-1) 2 minutes ago"}, state: "exited", health: "none", exitCode: -1, exitOK: true},
		{name: "restarting", summary: container.Summary{Status: "Restarting (1) 3 seconds ago"}, state: "restarting", health: "none"},
		{name: "created", summary: container.Summary{Status: "Created"}, state: "created", health: "none"},
		{name: "dead", summary: container.Summary{Status: "Dead"}, state: "dead", health: "none"},
		{name: "removing", summary: container.Summary{Status: "Removal In Progress"}, state: "removing", health: "none"},
		{name: "malformed exit", summary: container.Summary{State: "exited", Status: "Exited (x"}, state: "exited", health: "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := containerState(&tt.summary); got != tt.state {
				t.Errorf("state %q, want %q", got, tt.state)
			}
			if got := healthStatus(&tt.summary); got != tt.health {
				t.Errorf("health %q, want %q", got, tt.health)
			}
			code, ok := exitCode(tt.summary.Status)
			if code != tt.exitCode || ok != tt.exitOK {
				t.Errorf("exit code %d %v, want %d %v", code, ok, tt.exitCode, tt.exitOK)
			}
		})
	}
}

func TestPrimaryName(t *testing.T) {
	tests := []struct {
		name  string
		names []string
		want  string
	}{
		{name: "single", names: []string{"/web"}, want: "/web"},
		{name: "link first", names: []string{"/app/db", "/db"}, want: "/db"},
		{name: "only links", names: []string{"/app/db"}, want: "/app/db"},
		{name: "none", names: nil, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := primaryName(tt.names); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
