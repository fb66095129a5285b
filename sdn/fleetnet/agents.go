package fleetnet

// The agents: the manager runs `clocker agent` on every host as a
// container of its own making, and tells each what to apply.
//
//	image  clocker-agent:<sha of this binary>, built ON each host through
//	       its engine (FROM scratch, the static binary; no registry)
//	box    clocker-agent-<host>: --network host, --cap-add NET_ADMIN,
//	       restart unless-stopped, label io.clocker.agent=1 (hidden from
//	       `docker ps` through Clocker, so that `docker rm -f $(docker ps -aq)`
//	       cannot break the fleet's networks)
//	state  sdn.AgentState pushed on the box's stdin, held attached (link.go),
//	       whenever it changes; the agent keeps it as /state/desired.json.
//	       Without a link, the file is written with the engine's archive API
//	dns    the host's DNS address: its engine's default bridge gateway,
//	       which every container of the host reaches whatever its networks
//	       (its own gateway, or the host through its default route); once
//	       the agent has it, containers created there get it as DNS server
//
// The channel is the engine API the manager already holds: no listener, no
// credentials of its own. The file lives in the box's layer, so an agent
// that restarts (or an engine) reads it again at once; a manager that
// restarts computes the same state and writes it once more.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/fanout"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/sdn"
	"github.com/clocker/clocker/sdn/dns"
)

// agentImageRepo is the repository of the agent images.
const agentImageRepo = "clocker-agent"

// agentName is the agent container's name on host h.
func agentName(h string) string { return "clocker-agent-" + h }

// agents is what the manager knows of the agents.
type agents struct {
	mu     sync.Mutex
	image  string // repo:tag; "" until StartAgents
	binary []byte
	hosts  map[string]*agentHost
}

// agentHost is what the manager knows of one host's agent.
type agentHost struct {
	id      string // container ID, "" until ensured
	busy    bool
	nextTry time.Time
	pushed  []byte // the state last written
	// pushedAt is when it was written, and acked whether the agent said
	// it applied it (sdn.AgentAppliedFile).
	pushedAt time.Time
	acked    bool
	// link is the held attach to the agent (link.go), linkSeq the seq of
	// the state last sent on it (0: written by the archive API), nextLink
	// when to attach again after a failure. noLink is an agent container
	// that did not acknowledge on its link: it gets files only.
	link     *agentLink
	linkSeq  uint64
	nextLink time.Time
	noLink   string
	// dns is the host's DNS address (its default bridge's gateway), read
	// from the engine when the agent is ensured; invalid when it has none.
	dns netip.Addr
	// dnsReady is the DNS address of the state last written to the
	// running agent: the address creates may hand out.
	dnsReady netip.Addr
	// stats are the agent's DNS counts, read from it now and then.
	stats dns.Stats
}

// started tells whether StartAgents ran.
func (a *agents) started() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.image != ""
}

// build is the image and the binary it is built from.
func (a *agents) build() (string, []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.image, a.binary
}

// host is what is known of host's agent (made on first use); read and
// change it under a.mu.
func (a *agents) host(name string) *agentHost {
	a.mu.Lock()
	defer a.mu.Unlock()
	ah := a.hosts[name]
	if ah == nil {
		ah = &agentHost{}
		a.hosts[name] = ah
	}
	return ah
}

// StartAgents makes sure every healthy host runs the agent of binary (at
// most wait for it). From then on Run keeps them so and keeps their state
// current: hosts that join later get theirs on its next turn.
func (c *Controller) StartAgents(ctx context.Context, binary string, wait time.Duration) error {
	data, err := os.ReadFile(binary)
	if err != nil {
		return fmt.Errorf("agent binary: %w", err)
	}
	if err := checkStatic(binary); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	a := c.agents
	a.mu.Lock()
	if a.image != "" {
		a.mu.Unlock()
		return errors.New("agents started already")
	}
	a.image, a.binary = agentImageRepo+":"+hex.EncodeToString(sum[:6]), data
	a.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var healthy []*hosts.Host
	for _, h := range c.fleet.Hosts() {
		if h.Healthy() {
			healthy = append(healthy, h)
		}
	}
	fanout.Each(healthy, func(h *hosts.Host) (struct{}, error) {
		c.ensureAgentLogged(wctx, h)
		return struct{}{}, nil
	})
	c.Changed()
	return nil
}

// checkStatic refuses a dynamically linked binary: a FROM scratch image
// has no C library.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("agent binary %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("agent binary %s is dynamically linked: build it with CGO_ENABLED=0", path)
		}
	}
	return nil
}

func (c *Controller) ensureAgentLogged(ctx context.Context, h *hosts.Host) {
	a := c.agents
	ah := a.host(h.Name)
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute) // a build included
	defer cancel()
	id, err := c.ensureAgent(ctx, h)
	var dnsAddr netip.Addr
	if err == nil {
		dnsAddr, err = bridgeGateway(ctx, h)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	ah.busy = false
	if err != nil {
		c.log.Warn("agent not running", "host", h.Name, "err", err)
		ah.nextTry = time.Now().Add(10 * time.Second)
		return
	}
	if ah.id != id {
		ah.pushed, ah.dnsReady = nil, netip.Addr{}
		if ah.link != nil {
			ah.link.end(errors.New("agent replaced"))
			ah.link, ah.linkSeq = nil, 0
		}
	}
	ah.id, ah.dns = id, dnsAddr
}

// HostDNS is the DNS address containers created on host get: the host's
// default bridge gateway, once its running agent has been told to answer
// there. Invalid while the agent is not there (such containers get the
// engine's default DNS, as without agents).
func (c *Controller) HostDNS(host string) netip.Addr {
	a := c.agents
	a.mu.Lock()
	defer a.mu.Unlock()
	if ah := a.hosts[host]; ah != nil && ah.id != "" {
		return ah.dnsReady
	}
	return netip.Addr{}
}

// agentDNSAddr is the DNS address host's agent is to answer on.
func (c *Controller) agentDNSAddr(host string) netip.Addr {
	a := c.agents
	a.mu.Lock()
	defer a.mu.Unlock()
	if ah := a.hosts[host]; ah != nil {
		return ah.dns
	}
	return netip.Addr{}
}

// ensureAgent builds the agent image on h if missing and runs the agent
// container of that image, replacing one of another image.
func (c *Controller) ensureAgent(ctx context.Context, h *hosts.Host) (string, error) {
	image, _ := c.agents.build()
	cli := h.Client()
	if _, err := cli.ImageInspect(ctx, image); cerrdefs.IsNotFound(err) {
		if err := c.buildAgentImage(ctx, h); err != nil {
			return "", err
		}
	} else if err != nil {
		return "", engineError(h, "inspect the agent image", err)
	}
	name := agentName(h.Name)
	var oldImage string
	res, err := cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
	case err != nil:
		return "", engineError(h, "inspect the agent", err)
	default:
		ctr := res.Container
		if ctr.Config != nil && ctr.Config.Image == image {
			if ctr.State == nil || !ctr.State.Running {
				if _, err := cli.ContainerStart(ctx, ctr.ID, client.ContainerStartOptions{}); err != nil {
					return "", engineError(h, "start the agent", err)
				}
			}
			return ctr.ID, nil
		}
		// Another binary's agent: replaced (the data plane stays; the new
		// agent re-learns it).
		if _, err := cli.ContainerRemove(ctx, ctr.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return "", engineError(h, "remove old agent", err)
		}
		if ctr.Config != nil {
			oldImage = ctr.Config.Image
		}
	}
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image:  image,
			Labels: map[string]string{sdn.LabelAgent: "1", labels.Host: h.Name},
			// The manager pushes states on stdin (held attached, link.go);
			// it stays open across the manager's attaches.
			OpenStdin: true,
		},
		HostConfig: &container.HostConfig{
			NetworkMode:   "host",
			CapAdd:        []string{"NET_ADMIN"},
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
			LogConfig:     container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "1m"}},
		},
	})
	if err != nil {
		return "", engineError(h, "create the agent", err)
	}
	if _, err := cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return "", engineError(h, "start the agent", err)
	}
	_ = h.Refresh(ctx, created.ID)
	if strings.HasPrefix(oldImage, agentImageRepo+":") {
		_, _ = cli.ImageRemove(ctx, oldImage, client.ImageRemoveOptions{})
	}
	c.log.Info("agent started", "host", h.Name, "image", image)
	return created.ID, nil
}

// buildAgentImage builds the agent image on h from this binary.
func (c *Controller) buildAgentImage(ctx context.Context, h *hosts.Host) error {
	image, binary := c.agents.build()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dockerfile := "FROM scratch\nCOPY clocker /clocker\nCOPY state /state\n" +
		"LABEL " + sdn.LabelAgent + "=1\nENTRYPOINT [\"/clocker\", \"agent\"]\n"
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"Dockerfile", 0o644, []byte(dockerfile)},
		{"clocker", 0o755, binary},
		{"state/.keep", 0o644, nil},
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	res, err := h.Client().ImageBuild(ctx, &buf, client.ImageBuildOptions{Tags: []string{image}, Remove: true, ForceRemove: true})
	if err != nil {
		return engineError(h, "build agent image", err)
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	for dec.More() {
		var m struct{ Error string }
		if err := dec.Decode(&m); err != nil {
			return engineError(h, "build agent image", err)
		}
		if m.Error != "" {
			return fmt.Errorf("host %s: build agent image: %s", h.Name, m.Error)
		}
	}
	c.log.Info("agent image built", "host", h.Name, "image", image)
	return nil
}

// pushAgentStates writes the state of every healthy host whose state
// changed since it was last written, to all such hosts at once; hosts
// without an agent get one.
func (c *Controller) pushAgentStates(ctx context.Context) {
	a := c.agents
	states := c.AgentStates()
	type push struct {
		h    *hosts.Host
		ah   *agentHost
		id   string
		data []byte
		dns  netip.Addr
	}
	var pushes []push
	for _, h := range c.fleet.Hosts() {
		if !h.Healthy() {
			continue
		}
		ah := a.host(h.Name)
		a.mu.Lock()
		if ah.id != "" && !ah.busy {
			if _, ok := h.Container(ah.id); !ok {
				// Gone (removed on the engine, or the host left the fleet
				// and came back): run it again and push the state anew.
				ah.id, ah.pushed = "", nil
			}
		}
		id, busy, next, pushed := ah.id, ah.busy, ah.nextTry, ah.pushed
		if id == "" && !busy && time.Now().After(next) {
			ah.busy = true
			go c.ensureAgentLogged(ctx, h)
		}
		a.mu.Unlock()
		st, ok := states[h.Name]
		if id == "" || !ok {
			continue
		}
		data, err := json.Marshal(st)
		if err != nil || bytes.Equal(data, pushed) {
			continue
		}
		pushes = append(pushes, push{h, ah, id, data, st.DNS})
	}
	fanout.Each(pushes, func(p push) (struct{}, error) {
		seq, linked := c.pushByLink(ctx, p.h, p.ah, p.id, p.data)
		var err error
		if !linked {
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = pushState(pctx, p.h, p.id, p.data)
			cancel()
		}
		if err != nil {
			c.log.Warn("agent state not written", "host", p.h.Name, "err", err)
			if errors.Is(err, errNoAgent) {
				a.mu.Lock()
				p.ah.id = ""
				a.mu.Unlock()
			}
			return struct{}{}, nil
		}
		a.mu.Lock()
		if p.ah.id == p.id {
			p.ah.pushed, p.ah.dnsReady = p.data, p.dns
			p.ah.pushedAt, p.ah.acked, p.ah.linkSeq = time.Now(), false, seq
		}
		a.mu.Unlock()
		c.log.Debug("agent state written", "host", p.h.Name, "bytes", len(p.data), "linked", linked)
		return struct{}{}, nil
	})
}

var errNoAgent = errors.New("agent container is gone")

// pushByLink sends data to the agent id of h on its link, attaching
// first when there is none (at most once a second): the seq to wait for,
// and whether it went; when not, the caller writes the file instead.
func (c *Controller) pushByLink(ctx context.Context, h *hosts.Host, ah *agentHost, id string, data []byte) (uint64, bool) {
	a := c.agents
	a.mu.Lock()
	l := ah.link
	if l != nil && !l.alive() {
		l, ah.link = nil, nil
	}
	try := l == nil && ah.noLink != id && time.Now().After(ah.nextLink)
	if try {
		ah.nextLink = time.Now().Add(time.Second)
	}
	a.mu.Unlock()
	if l == nil && try {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		nl, err := openLink(actx, h, id)
		cancel()
		if err != nil {
			c.log.Debug("agent link not opened", "host", h.Name, "err", err)
			return 0, false
		}
		a.mu.Lock()
		if ah.id != id || ah.link != nil {
			a.mu.Unlock()
			nl.end(errors.New("agent link not needed"))
			return 0, false
		}
		ah.link, l = nl, nl
		a.mu.Unlock()
		c.log.Debug("agent link opened", "host", h.Name)
	}
	if l == nil {
		return 0, false
	}
	seq, err := l.send(data)
	if err != nil {
		c.log.Debug("agent link broke", "host", h.Name, "err", err)
		return 0, false
	}
	return seq, true
}

// SyncTimeout bounds how long Sync waits for one agent, and how old a
// write may be for Sync to wait for it (an agent that did not apply its
// state in that time is not waited for again until its next write).
const SyncTimeout = 2 * time.Second

// syncPoll is how often Sync asks an agent whether it applied its state.
const syncPoll = 10 * time.Millisecond

// Sync writes every agent's state that changed, then waits until the
// agents whose state was written in the last SyncTimeout applied it
// (each for SyncTimeout at most, all at once). The proxy calls it before
// it answers a start or a connect, so that the names the container
// brings resolve at once on every host, as on one engine: a client that
// starts a container and then looks its name (or link alias) up from
// another must not get "can't find" for the moment the agents lag.
func (c *Controller) Sync(ctx context.Context) {
	if !c.agents.started() {
		return
	}
	c.pushMu.Lock()
	c.pushAgentStates(ctx)
	c.pushMu.Unlock()
	type wait struct {
		h        *hosts.Host
		ah       *agentHost
		id, sum  string
		deadline time.Time
		link     *agentLink // the state went on it as seq; nil: as a file
		seq      uint64
	}
	var waits []wait
	a := c.agents
	for _, h := range c.fleet.Hosts() {
		ah := a.host(h.Name)
		a.mu.Lock()
		if ah.id != "" && ah.pushed != nil && !ah.acked && time.Since(ah.pushedAt) < SyncTimeout {
			w := wait{h: h, ah: ah, id: ah.id, sum: sdn.AppliedSum(ah.pushed), deadline: ah.pushedAt.Add(SyncTimeout)}
			if ah.linkSeq > 0 && ah.link != nil {
				w.link, w.seq = ah.link, ah.linkSeq
			}
			waits = append(waits, w)
		}
		a.mu.Unlock()
	}
	if len(waits) == 0 {
		return
	}
	start := time.Now()
	fanout.Each(waits, func(w wait) (struct{}, error) {
		wctx, cancel := context.WithDeadline(ctx, w.deadline)
		defer cancel()
		if w.link != nil {
			err := w.link.wait(wctx, w.seq)
			switch {
			case err == nil:
				a.mu.Lock()
				if ah := w.ah; ah.id == w.id && ah.linkSeq == w.seq {
					ah.acked = true
				}
				a.mu.Unlock()
				return struct{}{}, nil
			case wctx.Err() != nil && ctx.Err() == nil:
				// Up but silent: this agent gets files from now on.
				c.log.Warn("agent did not acknowledge on its link; writing files", "host", w.h.Name)
				w.link.end(errors.New("no acknowledgement"))
				a.mu.Lock()
				w.ah.noLink = w.id
				a.mu.Unlock()
				return struct{}{}, nil
			case ctx.Err() != nil:
				return struct{}{}, nil
			}
			// The link ended: the agent kept the state if it got it;
			// ask the file.
		}
		tick := time.NewTicker(syncPoll)
		defer tick.Stop()
		for {
			got, err := readApplied(wctx, w.h, w.id)
			if err == nil && got == w.sum {
				a.mu.Lock()
				if ah := w.ah; ah.id == w.id && ah.pushed != nil && sdn.AppliedSum(ah.pushed) == w.sum {
					ah.acked = true
				}
				a.mu.Unlock()
				return struct{}{}, nil
			}
			select {
			case <-wctx.Done():
				c.log.Debug("agent did not apply its state in time", "host", w.h.Name, "err", err)
				return struct{}{}, nil
			case <-tick.C:
			}
		}
	})
	c.log.Debug("agents synced", "hosts", len(waits), "took", time.Since(start))
}

// readApplied reads which state the agent applied last (its
// sdn.AgentAppliedFile; "" before the first).
func readApplied(ctx context.Context, h *hosts.Host, id string) (string, error) {
	res, err := h.Client().CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: sdn.AgentStateDir + "/" + sdn.AgentAppliedFile})
	if cerrdefs.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", engineError(h, "read what the agent applied", err)
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	if _, err := tr.Next(); err != nil {
		return "", err
	}
	b, err := io.ReadAll(io.LimitReader(tr, 128))
	return strings.TrimSpace(string(b)), err
}

// statsLoop reads every agent's DNS counts every interval (its stats
// file, through the engine's archive API) for the metrics.
func (c *Controller) statsLoop(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	a := c.agents
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, h := range c.fleet.Hosts() {
			if !h.Healthy() {
				continue
			}
			ah := a.host(h.Name)
			a.mu.Lock()
			id := ah.id
			a.mu.Unlock()
			if id == "" {
				continue
			}
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			st, err := readAgentStats(rctx, h, id)
			cancel()
			if err != nil {
				c.log.Debug("agent stats not read", "host", h.Name, "err", err)
				continue
			}
			a.mu.Lock()
			ah.stats = st
			a.mu.Unlock()
		}
	}
}

// readAgentStats reads the agent's stats file out of its container.
func readAgentStats(ctx context.Context, h *hosts.Host, id string) (dns.Stats, error) {
	var st dns.Stats
	res, err := h.Client().CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: sdn.AgentStateDir + "/" + sdn.AgentStatsFile})
	if cerrdefs.IsNotFound(err) {
		return st, nil // no query yet
	}
	if err != nil {
		return st, engineError(h, "read the agent's stats", err)
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	if _, err := tr.Next(); err != nil {
		return st, err
	}
	err = json.NewDecoder(io.LimitReader(tr, 1<<16)).Decode(&st)
	return st, err
}

// pushState writes data as the agent's state file.
func pushState(ctx context.Context, h *hosts.Host, id string, data []byte) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: sdn.AgentStateFile, Mode: 0o644, Size: int64(len(data)), ModTime: time.Now()}); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	_, err := h.Client().CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: sdn.AgentStateDir, Content: &buf})
	if cerrdefs.IsNotFound(err) {
		return errNoAgent
	}
	return engineError(h, "write the agent's state", err)
}

// RemoveAgent removes Clocker's agent from h (a host that leaves the
// fleet); a host without one is no error.
func RemoveAgent(ctx context.Context, h *hosts.Host) error {
	_, err := h.Client().ContainerRemove(ctx, agentName(h.Name), client.ContainerRemoveOptions{Force: true})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return engineError(h, "remove the agent", err)
}
