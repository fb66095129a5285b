// Package admission is the create pipeline: every container create, from
// a user's `docker run`, a compose project, a blueprint or a reschedule,
// passes the same ordered chain of steps before it reaches an engine.
// The model is Kubernetes' admission chain: steps are small types owned
// by the package that knows the concern (placement, fleet networks,
// ingress, rescheduling); this package only holds the create being
// admitted and runs the chain in its fixed phases:
//
//		validate ─► prepare ─► place ─► bind ─► forward ─┬─► done (reverse order)
//		 (pure)    (request)  (host +   (name, ports,    │
//		                      reserve)  networks, DNS)   └─► undo (reverse order)
//
//	  - Validate checks the create and may normalise it (the spec, the
//	    placement request), touching nothing outside it: a refused create
//	    changed nothing.
//	  - Prepare reads the fleet's state to add to the placement request
//	    (pins, filters); it takes nothing.
//	  - Place asks the scheduler and reserves the chosen host in one step.
//	  - Bind takes what the container will hold (its name, published ports,
//	    fleet-network membership) and returns how to give it back.
//	  - Forward (the caller's) sends the encoded body to the chosen engine.
//	  - Once the engine created the container, every binding's Done runs
//	    (the container itself now holds what it took), else every Undo, in
//	    reverse order.
//
// The body is decoded once (NewCreate) and encoded once (Body): the fields
// steps changed are taken from the typed spec, every other byte is the
// client's.
package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/moby/moby/api/types/container"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/tenant"
	"github.com/clocker/clocker/scheduler"
)

// Create is one container create passing through the chain.
type Create struct {
	// Name is the container's name: the client's (?name=), or the one
	// the name step picks when it gave none.
	Name string
	// NameGiven tells whether the client named the container.
	NameGiven bool
	// Query is the create's query string (name aside, passed on).
	Query url.Values
	// Spec is the body, decoded once. A step that changes it says which
	// field it changed with Changed, so that Body encodes it.
	Spec *container.CreateRequest
	// Request is what placement is asked; validate and prepare fill it.
	Request scheduler.Request
	// Host is where the container goes, once placed.
	Host *hosts.Host
	// ID is the container's ID once the engine created it.
	ID string
	// Tenant is whose create it is (--tenants; nil: an admin's, the
	// in-process client's, or tenants off). TenantStep reads it.
	Tenant *tenant.Scope

	raw     map[string]json.RawMessage
	changed [][]string // field paths, e.g. {"HostConfig", "PortBindings"}
	created []func(context.Context, *Create) error
}

// Created runs the bindings' Created hooks, in the steps' order, once
// the engine made the container (c.ID set); the first error stops them.
func (c *Create) Created(ctx context.Context) error {
	for _, f := range c.created {
		if err := f(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// NewCreate decodes a create body, with the engine's answers for an empty
// or malformed one.
func NewCreate(name string, query url.Values, body []byte) (*Create, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errdefs.New(errdefs.ErrInvalid, "config cannot be empty in order to create a container")
	}
	c := &Create{Name: name, NameGiven: name != "", Query: query, Spec: &container.CreateRequest{}}
	if err := json.Unmarshal(body, &c.raw); err != nil {
		return nil, errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
	}
	if err := json.Unmarshal(body, c.Spec); err != nil {
		return nil, errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
	}
	if c.Spec.Config == nil {
		return nil, errdefs.New(errdefs.ErrInvalid, "config cannot be empty in order to create a container")
	}
	if c.Spec.HostConfig == nil {
		c.Spec.HostConfig = &container.HostConfig{}
	}
	return c, nil
}

// Changed records that a step changed the field at path in Spec (as JSON
// names: "Env", "Labels", "HostConfig", "PortBindings"); Body encodes that
// field from Spec and leaves the rest as the client sent it.
func (c *Create) Changed(path ...string) {
	c.changed = append(c.changed, path)
}

// SetLabel sets one of the container's labels.
func (c *Create) SetLabel(key, value string) {
	if c.Spec.Labels == nil {
		c.Spec.Labels = map[string]string{}
	}
	c.Spec.Labels[key] = value
	c.Changed("Labels")
}

// DeleteLabel removes one of the container's labels.
func (c *Create) DeleteLabel(key string) {
	if _, ok := c.Spec.Labels[key]; ok {
		delete(c.Spec.Labels, key)
		c.Changed("Labels")
	}
}

// SetEnv replaces the container's environment.
func (c *Create) SetEnv(env []string) {
	if env == nil {
		env = []string{}
	}
	c.Spec.Env = env
	c.Changed("Env")
}

// Body encodes the create for the engine: the client's body with the
// fields steps changed taken from Spec.
func (c *Create) Body() ([]byte, error) {
	if len(c.changed) == 0 {
		return json.Marshal(c.raw)
	}
	typed, err := json.Marshal(c.Spec)
	if err != nil {
		return nil, err
	}
	var from map[string]json.RawMessage
	if err := json.Unmarshal(typed, &from); err != nil {
		return nil, err
	}
	out := c.raw
	for _, path := range c.changed {
		if out, err = splice(out, from, path); err != nil {
			return nil, fmt.Errorf("encoding %s: %w", strings.Join(path, "."), err)
		}
	}
	c.raw, c.changed = out, nil
	return json.Marshal(out)
}

// splice copies the value at path from `from` into `into`, descending
// through objects; objects on the way keep their other fields.
func splice(into, from map[string]json.RawMessage, path []string) (map[string]json.RawMessage, error) {
	if into == nil {
		into = map[string]json.RawMessage{}
	}
	key := path[0]
	val, ok := from[key]
	if len(path) == 1 {
		if !ok {
			delete(into, key)
		} else {
			into[key] = val
		}
		return into, nil
	}
	var subFrom, subInto map[string]json.RawMessage
	if ok && !bytes.Equal(val, []byte("null")) {
		if err := json.Unmarshal(val, &subFrom); err != nil {
			return nil, err
		}
	}
	if cur, ok := into[key]; ok && !bytes.Equal(cur, []byte("null")) {
		if err := json.Unmarshal(cur, &subInto); err != nil {
			return nil, err
		}
	}
	subInto, err := splice(subInto, subFrom, path[1:])
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(subInto)
	if err != nil {
		return nil, err
	}
	into[key] = b
	return into, nil
}
