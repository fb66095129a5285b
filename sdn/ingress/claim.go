package ingress

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/network"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/labels"
)

// published is the HostConfig of a create that publishes ports the
// ingress handles, else nil.
func published(spec *container.CreateRequest) *container.HostConfig {
	hc := spec.HostConfig
	if hc == nil || hc.NetworkMode == "host" || (!hc.PublishAllPorts && len(hc.PortBindings) == 0) {
		return nil
	}
	return hc
}

// validatePorts checks the host ports of a create's bindings on every
// address (the ones the ingress takes), touching nothing. The container
// ports and host addresses were checked when the body was decoded.
func validatePorts(spec *container.CreateRequest) error {
	hc := published(spec)
	if hc == nil {
		return nil
	}
	for _, bs := range hc.PortBindings {
		for _, b := range bs {
			if !wildcardAddr(b.HostIP) {
				continue // bound to one address of its host: the engine's to check
			}
			if _, _, _, err := parseHostPort(b.HostPort); err != nil {
				return errInvalidPort(b.HostPort)
			}
		}
	}
	return nil
}

func errInvalidPort(hostPort string) error {
	return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid port specification: %q", hostPort))
}

// parseHostPort reads a binding's HostPort: "" and "0" are any port, "N"
// one port, "A-B" a range.
func parseHostPort(s string) (lo, hi uint16, random bool, err error) {
	if s == "" || s == "0" {
		return 0, 0, true, nil
	}
	a, b, isRange := strings.Cut(s, "-")
	x, err := strconv.ParseUint(a, 10, 16)
	if err != nil || x == 0 {
		return 0, 0, false, fmt.Errorf("bad port %q", s)
	}
	if !isRange {
		return uint16(x), uint16(x), false, nil
	}
	y, err := strconv.ParseUint(b, 10, 16)
	if err != nil || y < x {
		return 0, 0, false, fmt.Errorf("bad port range %q", s)
	}
	return uint16(x), uint16(y), false, nil
}

// claim is the ports one create took; undo or done gives them back.
type claim struct {
	t     *Table
	local bool // the host publishes locally: no listener was opened
	keys  []Key
	who   *portClaim
	once  sync.Once
	// shared are the claims made in the shared store, by port.
	shared map[Key]sharedClaim
}

// undo gives the ports back at once and closes the listeners no
// container holds (the create failed).
func (c *claim) undo() {
	c.once.Do(func() {
		c.t.mu.Lock()
		c.undoLocked()
		c.t.mu.Unlock()
	})
}

func (c *claim) undoLocked() {
	t := c.t
	t.dropShared(c.keys)
	for _, k := range c.keys {
		if t.claims[k] == c.who {
			delete(t.claims, k)
		}
		if !c.local {
			if hd, ok := t.held[k]; !ok || hd.local {
				t.fwd.Close(k)
			}
		}
	}
}

// done gives the claims back once the caches show the container, which
// now holds its ports: the table adopts its listeners (or closes them if
// the create failed after all).
func (c *claim) done() {
	c.once.Do(func() {
		t := c.t
		t.mu.Lock()
		for _, k := range c.keys {
			if t.claims[k] == c.who {
				delete(t.claims, k)
			}
		}
		t.mu.Unlock()
		t.reconcile()
		t.nameShared(c)
	})
}

// claim runs once the host is chosen: it checks the create's published
// host ports against the fleet's, picks the random ones from the ingress
// range, binds the manager's listeners (unless the host publishes
// locally) and makes every binding of spec explicit. It returns nil when
// the create publishes nothing the ingress handles.
func (t *Table) claim(ctx context.Context, h *hosts.Host, name string, spec *container.CreateRequest) (*claim, error) {
	hc := published(spec)
	if hc == nil {
		return nil, nil
	}
	bindings := make(network.PortMap, len(hc.PortBindings))
	for p, bs := range hc.PortBindings {
		bindings[p] = slices.Clone(bs)
	}
	if hc.PublishAllPorts {
		exposed := map[network.Port]bool{}
		if spec.Config != nil {
			for p := range spec.ExposedPorts {
				exposed[p] = true
			}
		}
		for _, p := range imageExposedPorts(ctx, h, spec.Image) {
			exposed[p] = true
		}
		for p := range exposed {
			if _, ok := bindings[p]; !ok {
				bindings[p] = []network.PortBinding{{}}
			}
		}
	}
	// HostIp "" and 0.0.0.0 print as 0.0.0.0 in Docker's message.
	shownIP := func(a netip.Addr) string {
		if !a.IsValid() {
			return "0.0.0.0"
		}
		return a.String()
	}
	t.reconcile() // the table as the caches are now (a container just stopped holds nothing)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, errdefs.New(errdefs.ErrUnavailable, "ingress: shut down")
	}
	c := &claim{t: t, local: t.isLocal(h), who: &portClaim{name: name}, shared: map[Key]sharedClaim{}}
	service := ""
	if spec.Config != nil {
		service = labels.ComposeReplicaOf(spec.Labels)
	}
	fail := func(err error) (*claim, error) {
		c.undoLocked()
		return nil, err
	}
	taken := func(k Key) (string, bool) {
		if hd, ok := t.held[k]; ok {
			return fmt.Sprintf("container %q on host %s", hd.name, hd.host), true
		}
		if cl, ok := t.claims[k]; ok {
			return fmt.Sprintf("container %q, being created", cl.name), true
		}
		return "", false
	}
	bind := func(k Key) error {
		if c.local {
			return nil
		}
		return t.fwd.Open(k)
	}
	// In the order of the ports' names, as the body's keys sort.
	ports := slices.SortedFunc(maps.Keys(bindings), func(a, b network.Port) int { return strings.Compare(a.String(), b.String()) })
	for _, port := range ports {
		proto := protoOf(string(port.Proto()))
		bs := bindings[port]
		for i, b := range bs {
			if !wildcardAddr(b.HostIP) {
				continue // bound to one address of its host: not forwarded
			}
			lo, hi, random, err := parseHostPort(b.HostPort)
			if err != nil {
				return fail(errInvalidPort(b.HostPort))
			}
			if random {
				lo, hi = t.cfg.PortMin, t.cfg.PortMax
			}
			var picked Key
			if !random && lo == hi {
				k := Key{Proto: proto, Port: lo}
				if hd, ok := t.held[k]; ok && service != "" && hd.service == service {
					// Compose recreates a service by creating the new
					// container before it stops the old one, as an engine
					// allows (ports bind at start): the new one holds the
					// port once the old one stops, and cannot start before.
					continue
				}
				if holder, ok := taken(k); ok {
					return fail(errdefs.New(errdefs.ErrConflict, fmt.Sprintf("Bind for %s:%d failed: port is already allocated (by %s)", shownIP(b.HostIP), lo, holder)))
				}
				if err := t.claimShared(k, name, c); errors.Is(err, errdefs.ErrConflict) {
					return fail(errdefs.New(errdefs.ErrConflict, fmt.Sprintf("Bind for %s:%d failed: port is already allocated (by %s)", shownIP(b.HostIP), lo, err.Error())))
				} else if err != nil {
					return fail(err)
				}
				if err := bind(k); err != nil {
					t.dropShared([]Key{k})
					return fail(cannotListen(k, t.shown, err))
				}
				picked = k
			} else {
				// A range: the first free port from the cursor (random
				// ports) or from its start, as Docker's allocator does.
				var lastErr error
				found := false
				n := int(hi) - int(lo) + 1
				start := lo
				if random && t.next >= lo && t.next <= hi {
					start = t.next
				}
				for j := 0; j < n && !found; j++ {
					p := uint16(int(lo) + (int(start)-int(lo)+j)%n)
					k := Key{Proto: proto, Port: p}
					if _, ok := taken(k); ok {
						continue
					}
					if err := t.claimShared(k, name, c); errors.Is(err, errdefs.ErrConflict) {
						continue // another manager's create has it
					} else if err != nil {
						return fail(err)
					}
					if err := bind(k); err != nil {
						t.dropShared([]Key{k})
						lastErr = err
						continue // another process has it: try the next
					}
					picked, found = k, true
					if random {
						t.next = p + 1
						if p == hi {
							t.next = lo
						}
					}
				}
				if !found {
					msg := fmt.Sprintf("Bind for %s:%d-%d failed: port is already allocated (no free port in the range)", shownIP(b.HostIP), lo, hi)
					if lastErr != nil {
						msg += ": " + lastErr.Error()
					}
					return fail(errdefs.New(errdefs.ErrConflict, msg))
				}
			}
			t.claims[picked] = c.who
			c.keys = append(c.keys, picked)
			bs[i].HostPort = strconv.Itoa(int(picked.Port))
		}
	}
	hc.PortBindings = bindings
	return c, nil
}

// cannotListen is the create's error when the manager cannot bind a port.
func cannotListen(k Key, addr string, err error) error {
	why := err.Error()
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		why = "address already in use"
	case errors.Is(err, syscall.EACCES):
		why = "permission denied"
	}
	return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("Clocker cannot listen on %s for the published port %s: %s", net.JoinHostPort(addr, strconv.Itoa(int(k.Port))), k, why))
}

// imageExposedPorts are the ports the image exposes, from the chosen host
// (which has it); none when it cannot tell.
func imageExposedPorts(ctx context.Context, h *hosts.Host, ref string) []network.Port {
	if ref == "" {
		return nil
	}
	status, body, err := h.Call(ctx, http.MethodGet, "/images/"+ref+"/json", nil, nil, "")
	if err != nil || status != http.StatusOK {
		return nil
	}
	var in image.InspectResponse
	if json.Unmarshal(body, &in) != nil || in.Config == nil {
		return nil
	}
	var out []network.Port
	for p := range in.Config.ExposedPorts {
		if port, err := network.ParsePort(p); err == nil {
			out = append(out, port)
		}
	}
	return out
}
