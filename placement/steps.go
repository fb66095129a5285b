package placement

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/clocker/clocker/admission"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/scheduler"
)

// Name is the place step's name: "place".
func (*Placer) Name() string { return "place" }

// Place is the create pipeline's place step: it decides where c.Request
// goes and reserves room there (one step: concurrent creates never book
// the same room), sets c.Host and labels the container with its host.
// When no host fits only for lack of the image, the error is Docker's
// "No such image" so that the client pulls and creates again. Done and
// Undo give the reservation back.
//
// The reservation is unnamed until Bind: a name picked in validate may
// still be taken by a concurrent create (the name step then picks
// another), and a reservation named after another's container would be
// taken for it once that one is cached, and not counted.
func (p *Placer) Place(ctx context.Context, c *admission.Create) (admission.Binding, error) {
	req := c.Request
	req.Name = ""
	d, h, r, release, err := p.decide(ctx, &req, false)
	if err != nil {
		return admission.Binding{}, CreateError(err, c.Request.Image)
	}
	c.Host = h
	c.SetLabel(labels.Host, h.Name)
	p.placed.Store(c, r)
	undo := func() {
		p.placed.Delete(c)
		release()
	}
	done := func() {
		undo()
		// Kept for the console: why the container runs where it does.
		p.decisions.add(Record{ID: c.ID, Name: c.Name, Host: h.Name, Time: time.Now(), Decision: d})
	}
	return admission.Binding{Undo: undo, Done: done}, nil
}

// Bind names the reservation Place made after the container, whose name
// the name step (before this one) holds by now.
func (p *Placer) Bind(_ context.Context, c *admission.Create) (admission.Binding, error) {
	if r, ok := p.placed.LoadAndDelete(c); ok && r != nil {
		p.ledger.Name(r.(*scheduler.Reservation), c.Name)
	}
	return admission.Binding{}, nil
}

// CreateError is a create's answer to a placement error: 404 "No such
// image" when pulling would make a host fit (the CLI pulls and retries),
// else the error as it is (the scheduler's "no host fits": 409, or 503
// when no host is healthy).
func CreateError(err error, image string) error {
	var nf *scheduler.NoHostFitsError
	if errors.As(err, &nf) && nf.ImageMissing {
		return errdefs.NoSuchImage(image)
	}
	return err
}

// NameStep is the create pipeline's step that holds the container's name
// fleet-wide: the client's, or one Clocker picks (engines name containers
// independently and would repeat each other's names).
type NameStep struct {
	fleet *hosts.Fleet
}

// NewNameStep returns the name step for the fleet.
func NewNameStep(fleet *hosts.Fleet) *NameStep { return &NameStep{fleet: fleet} }

// Name is the step's name: "name".
func (*NameStep) Name() string { return "name" }

// validName is the engine's rule for container names.
var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// ValidateName refuses a container name the engine would refuse, with the
// engine's message (create and rename).
func ValidateName(name string) error {
	if !validName.MatchString(name) {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name))
	}
	return nil
}

// Validate refuses a name the engine would refuse, with its message, and
// picks a name for a create without one (reserved in Bind): placement's
// reservation then carries the name the cache will show, so that the
// container is counted once when it appears there.
func (*NameStep) Validate(c *admission.Create) error {
	if c.Name == "" {
		c.Name = hosts.RandomName(0)
		c.Request.Name = c.Name
		return nil
	}
	return ValidateName(c.Name)
}

// Bind reserves c.Name across the fleet (a name in use is a 409), or
// picks a free one when the client gave none and sets c.Name (and
// c.Request.Name) to it. Undo and Done give the reservation back: after
// Done the fleet's cache holds the name.
func (s *NameStep) Bind(ctx context.Context, c *admission.Create) (admission.Binding, error) {
	var (
		release func()
		err     error
	)
	release, err = s.fleet.ReserveName(ctx, c.Name)
	if !c.NameGiven && errors.Is(err, errdefs.ErrConflict) {
		// The name picked in Validate was taken since: another.
		var name string
		name, release, err = s.fleet.ReserveGeneratedName(ctx)
		if err == nil {
			c.Name, c.Request.Name = name, name
		}
	}
	if err != nil {
		return admission.Binding{}, err
	}
	release = sync.OnceFunc(release)
	return admission.Binding{Undo: release, Done: release}, nil
}
