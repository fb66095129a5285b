package provision

import (
	"context"
	"time"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
)

// AddRequest is the body of POST /v1/fleet/hosts: {"Name": "h4", "URL":
// "tcp://…"} joins an engine; {"Provisioner": "local"} or {"Provisioner":
// "ssh", "Target": "root@10.0.0.5"} makes a host with a provisioner.
type AddRequest struct {
	Name string
	URL  string
	// TLS names the CA, client certificate and key files (on Clocker's
	// machine) for an engine started with --tlsverify.
	TLS         hosts.EngineTLS
	Provisioner string
	Target      string
	Labels      map[string]string
}

// AddHost joins the engine req names, which must answer first (and is
// stored), or makes a host with a provisioner of m (nil: none is
// configured); then it waits a moment for the new host's cache to fill, so
// that it takes containers at once.
func AddHost(ctx context.Context, f *hosts.Fleet, m *Manager, req AddRequest) (*hosts.Host, error) {
	var h *hosts.Host
	var err error
	switch {
	case req.Provisioner != "" && req.Provisioner != "static":
		if req.URL != "" {
			return nil, errdefs.New(errdefs.ErrInvalid, "give URL (an engine to join) or Provisioner (a host to make), not both")
		}
		if m == nil {
			return nil, errdefs.New(errdefs.ErrInvalid, "no provisioner is configured on this server")
		}
		// Making a machine may install Docker over SSH: minutes, not seconds.
		mctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		h, err = m.Provision(mctx, req.Provisioner, Request{Name: req.Name, Target: req.Target, Labels: req.Labels})
	case req.URL == "":
		return nil, errdefs.New(errdefs.ErrInvalid, `URL or Provisioner is required (e.g. {"URL": "tcp://10.0.0.4:2375"} or {"Provisioner": "local"})`)
	case req.Target != "" || len(req.Labels) > 0:
		return nil, errdefs.New(errdefs.ErrInvalid, "Target and Labels are for a Provisioner; label a joined host with POST /v1/fleet/hosts/NAME/labels")
	default:
		jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		h, err = f.Join(jctx, hosts.Record{Name: req.Name, URL: req.URL, TLS: req.TLS})
	}
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for h.LastError() == nil && !h.Healthy() && wctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	return h, nil
}

// RemoveHost takes a host out of the fleet; one a provisioner of m made
// (m may be nil) is destroyed with it. leave runs for a host that stays
// up (one that was joined), so that Clocker's own containers on it (the
// agent) leave with it.
func RemoveHost(ctx context.Context, f *hosts.Fleet, m *Manager, name string, leave func(context.Context, *hosts.Host)) error {
	h, ok := f.Host(name)
	if m != nil {
		mctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		_, made := m.Machine(name)
		if err := m.Remove(mctx, name); err != nil {
			return err
		}
		if ok && !made {
			leave(mctx, h)
		}
		return nil
	}
	if err := f.Remove(name, func(c *hosts.Container) bool { return !hosts.IsAgent(c) }); err != nil {
		return err
	}
	if ok {
		leave(ctx, h)
	}
	return nil
}
