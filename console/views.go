package console

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/placement"
)

// zoneLabel is the engine label the fleet view groups hosts by (the
// geographic strategy's).
const zoneLabel = "zone"

// slotsLabel is the engine label that bounds a host's containers.
const slotsLabel = "containerslots"

// Host is a host card: the fleet API's view, its zone and its slots.
type Host struct {
	hosts.Status
	Zone string
	// Slots is how many containers the host takes (0: no bound).
	Slots int
}

// hostCards is the fleet as cards, by zone then name.
func (c *Console) hostCards() []Host {
	all := c.o.Hosts()
	out := make([]Host, 0, len(all))
	for _, s := range all {
		h := Host{Status: s, Zone: s.Labels[zoneLabel], Slots: c.o.MaxPerHost}
		if n, err := strconv.Atoi(s.Labels[slotsLabel]); err == nil && n > 0 && (h.Slots == 0 || n < h.Slots) {
			h.Slots = n
		}
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b Host) int {
		if d := strings.Compare(a.Zone, b.Zone); d != 0 {
			return d
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// listHosts answers GET /ui/api/hosts.
func (c *Console) listHosts(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, c.hostCards())
}

// Container is a container on the board and in the table.
type Container struct {
	ID       string
	Name     string
	Image    string
	State    string
	Status   string
	Host     string
	Created  int64
	Networks []string
}

// maxContainers bounds one answer of the container list (a page stays
// under 2 MB at ~300 bytes a container); offset pages on.
const maxContainers = 5000

// listContainers answers GET /ui/api/containers?q=&offset=&limit=: every
// container of the fleet (all states), by host then name; q keeps those
// whose name, image, host or ID contain it.
func (c *Console) listContainers(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	offset, limit := 0, maxContainers
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errorf(http.StatusBadRequest, "offset %q: a whole number ≥ 0 is expected", v)
		}
		offset = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxContainers {
			return errorf(http.StatusBadRequest, "limit %q: a whole number from 1 to %d is expected", v, maxContainers)
		}
		limit = n
	}
	fl, err := c.fleetContainers(r.Context())
	if err != nil {
		return err
	}
	needle := strings.ToLower(q.Get("q"))
	if needle == "" && offset == 0 && limit >= len(fl.list) {
		// The whole list, as every page opening asks: encoded once per
		// change of the fleet.
		w.Header().Set("X-Total-Count", strconv.Itoa(len(fl.list)))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, err := w.Write(fl.encoded())
		return err
	}
	out := []Container{}
	for _, ct := range fl.list {
		if needle != "" && !strings.Contains(strings.ToLower(ct.Name+" "+ct.Image+" "+ct.Host+" "+ct.ID), needle) {
			continue
		}
		out = append(out, ct)
	}
	total := len(out)
	out = out[min(offset, total):min(offset+limit, total)]
	w.Header().Set("X-Total-Count", strconv.Itoa(total))
	return writeJSON(w, http.StatusOK, out)
}

// containerList is the fleet's containers, by host then name, as made
// from the front door's two lists (raw, compared to tell a change).
type containerList struct {
	raw, rawPlaced []byte
	list           []Container
	once           sync.Once
	json           []byte
}

func (l *containerList) encoded() []byte {
	l.once.Do(func() {
		l.json, _ = json.Marshal(l.list) // strings and numbers: cannot fail
		l.json = append(l.json, '\n')
	})
	return l.json
}

// fleetContainers reads the front door's lists straight into the few
// fields shown (the Docker client's full decoding of two lists was most of
// the list's time), and decodes nothing when they are as last time: the
// front door keeps its answer while nothing changes, so a page opened on
// a quiet fleet costs two reads and a comparison.
func (c *Console) fleetContainers(ctx context.Context) (*containerList, error) {
	raw, err := c.readFrontDoor(ctx, "/containers/json?all=1")
	if err != nil {
		return nil, err
	}
	// The front door shows its bookkeeping labels (the host) only to a
	// list that filters on them: the containers Clocker placed, by host.
	rawPlaced, err := c.readFrontDoor(ctx, "/containers/json?all=1&filters="+url.QueryEscape(`{"label":["`+labels.Host+`"]}`))
	if err != nil {
		return nil, err
	}
	c.containers.mu.Lock()
	last := c.containers.last
	c.containers.mu.Unlock()
	if last != nil && bytes.Equal(last.raw, raw) && bytes.Equal(last.rawPlaced, rawPlaced) {
		return last, nil
	}
	var all []listed
	if err := json.Unmarshal(raw, &all); err != nil {
		return nil, err
	}
	var placed []struct {
		ID     string `json:"Id"`
		Labels struct {
			Host string `json:"io.clocker.host"`
		}
	}
	if err := json.Unmarshal(rawPlaced, &placed); err != nil {
		return nil, err
	}
	hostOf := make(map[string]string, len(placed))
	for _, s := range placed {
		hostOf[s.ID] = s.Labels.Host
	}
	out := make([]Container, 0, len(all))
	for _, s := range all {
		ct := s.container()
		ct.Host = hostOf[s.ID]
		out = append(out, ct)
	}
	slices.SortFunc(out, func(a, b Container) int {
		if d := strings.Compare(a.Host, b.Host); d != 0 {
			return d
		}
		return strings.Compare(a.Name, b.Name)
	})
	l := &containerList{raw: raw, rawPlaced: rawPlaced, list: out}
	c.containers.mu.Lock()
	c.containers.last = l
	c.containers.mu.Unlock()
	return l, nil
}

// listed is what the console reads of a container in the front door's
// list.
type listed struct {
	ID              string `json:"Id"`
	Names           []string
	Image           string
	State           string
	Status          string
	Created         int64
	NetworkSettings *struct {
		Networks map[string]json.RawMessage
	}
}

func (s listed) container() Container {
	ct := Container{ID: s.ID, Image: s.Image, State: s.State, Status: s.Status, Created: s.Created}
	if len(s.Names) > 0 {
		ct.Name = strings.TrimPrefix(s.Names[0], "/")
		// Swarm-style names are /HOST/NAME.
		if _, n, ok := strings.Cut(ct.Name, "/"); ok {
			ct.Name = n
		}
	}
	if s.NetworkSettings != nil {
		for n := range s.NetworkSettings.Networks {
			ct.Networks = append(ct.Networks, n)
		}
		slices.Sort(ct.Networks)
	}
	return ct
}

// ContainerPage is a container's page: the inspect summary and the
// placement decision that put it on its host (nil when not kept: created
// before this start, or long ago).
type ContainerPage struct {
	ID        string
	Name      string
	Image     string
	Host      string
	State     string
	Created   string
	StartedAt string
	Cmd       []string
	Env       []string
	Labels    map[string]string
	Ports     []string
	Networks  map[string]string // name → IPv4 address
	Mounts    []string
	Memory    int64
	NanoCPUs  int64
	Restart   string
	ExitCode  int
	Placement *placement.Record
}

// containerPage answers GET /ui/api/containers/{id}.
func (c *Console) containerPage(w http.ResponseWriter, r *http.Request) error {
	res, err := c.o.Docker.ContainerInspect(r.Context(), r.PathValue("id"), client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	ci := res.Container
	p := ContainerPage{ID: ci.ID, Name: strings.TrimPrefix(ci.Name, "/"), Created: ci.Created, Networks: map[string]string{}}
	if ci.Config != nil {
		p.Image, p.Cmd, p.Env, p.Labels = ci.Config.Image, ci.Config.Cmd, ci.Config.Env, ci.Config.Labels
	}
	// Clocker's inspect says where the container runs as classic Swarm
	// did: Node.Name.
	var node struct{ Node struct{ Name string } }
	if err := json.Unmarshal(res.Raw, &node); err == nil {
		p.Host = node.Node.Name
	}
	if ci.State != nil {
		p.State, p.StartedAt, p.ExitCode = string(ci.State.Status), ci.State.StartedAt, ci.State.ExitCode
	}
	if ci.HostConfig != nil {
		p.Memory, p.NanoCPUs, p.Restart = ci.HostConfig.Memory, ci.HostConfig.NanoCPUs, string(ci.HostConfig.RestartPolicy.Name)
	}
	if ci.NetworkSettings != nil {
		for name, ep := range ci.NetworkSettings.Networks {
			ip := ""
			if ep != nil && ep.IPAddress.IsValid() {
				ip = ep.IPAddress.String()
			}
			p.Networks[name] = ip
		}
		for port, bs := range ci.NetworkSettings.Ports {
			for _, b := range bs {
				p.Ports = append(p.Ports, b.HostIP.String()+":"+b.HostPort+"→"+port.String())
			}
		}
		slices.Sort(p.Ports)
	}
	for _, m := range ci.Mounts {
		p.Mounts = append(p.Mounts, string(m.Type)+" "+m.Source+" → "+m.Destination)
	}
	if c.o.Placement != nil {
		if rec, ok := c.o.Placement(ci.ID); ok {
			p.Placement = &rec
		}
	}
	return writeJSON(w, http.StatusOK, p)
}

// Network is a fleet network: its subnets and each member host's slice.
type Network struct {
	Name    string
	ID      string
	Driver  string
	Subnet  string
	Subnet6 string `json:",omitempty"`
	Created time.Time
	Slices  []Slice
}

// Slice is a member host's part of a fleet network.
type Slice struct {
	Host    string
	Index   int
	IPRange string
	Gateway string
}

// listNetworks answers GET /ui/api/networks: the fleet networks, by name.
func (c *Console) listNetworks(w http.ResponseWriter, r *http.Request) error {
	out := []Network{}
	if c.o.Networks != nil {
		for _, n := range c.o.Networks() {
			nw := Network{Name: n.Name, ID: n.ID, Driver: n.Driver, Subnet: n.Subnet.String(), Created: n.Created, Slices: []Slice{}}
			if n.Subnet6.IsValid() {
				nw.Subnet6 = n.Subnet6.String()
			}
			for host, s := range n.Hosts {
				nw.Slices = append(nw.Slices, Slice{Host: host, Index: s.Index, IPRange: s.IPRange.String(), Gateway: s.Gateway.String()})
			}
			slices.SortFunc(nw.Slices, func(a, b Slice) int { return a.Index - b.Index })
			out = append(out, nw)
		}
	}
	slices.SortFunc(out, func(a, b Network) int { return strings.Compare(a.Name, b.Name) })
	return writeJSON(w, http.StatusOK, out)
}

// LocalNetwork is a per-host network: it lives on one host, and only
// containers placed there join it.
type LocalNetwork struct {
	Name    string
	ID      string
	Driver  string
	Host    string
	Subnets []string
	Created string
}

// listLocalNetworks answers GET /ui/api/networks/local: the per-host
// networks of the front door's network list (those it shows on a host,
// its Node; the built-in bridge, host and none of every host and the
// fleet networks are not), by host then name.
func (c *Console) listLocalNetworks(w http.ResponseWriter, r *http.Request) error {
	raw, err := c.readFrontDoor(r.Context(), "/networks")
	if err != nil {
		return err
	}
	var listed []struct {
		ID      string `json:"Id"`
		Name    string
		Driver  string
		Created string
		IPAM    struct{ Config []struct{ Subnet string } }
		Node    *struct{ Name string }
	}
	if err := json.Unmarshal(raw, &listed); err != nil {
		return err
	}
	out := []LocalNetwork{}
	for _, n := range listed {
		if n.Node == nil || n.Node.Name == "" {
			continue
		}
		ln := LocalNetwork{Name: n.Name, ID: n.ID, Driver: n.Driver, Host: n.Node.Name, Created: n.Created, Subnets: []string{}}
		for _, cfg := range n.IPAM.Config {
			if cfg.Subnet != "" {
				ln.Subnets = append(ln.Subnets, cfg.Subnet)
			}
		}
		out = append(out, ln)
	}
	slices.SortFunc(out, func(a, b LocalNetwork) int {
		if d := strings.Compare(a.Host, b.Host); d != 0 {
			return d
		}
		return strings.Compare(a.Name, b.Name)
	})
	return writeJSON(w, http.StatusOK, out)
}
