package blueprint

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"

	"github.com/clocker/clocker/internal/errdefs"
)

// Deploy checks the blueprint and, when it is sound, starts the
// application in the background. Nothing is made for a refused
// blueprint: the error wraps errdefs.ErrInvalid and names the problem.
// Services may name catalog items as their type (catalog_expand.go).
func (m *Manager) Deploy(ctx context.Context, yaml []byte) (*App, *Task, error) {
	return m.DeployAs(ctx, "", yaml)
}

// DeployAs is Deploy under the application id given (none: a new one);
// errdefs.ErrConflict when an application has it.
func (m *Manager) DeployAs(ctx context.Context, id string, yaml []byte) (*App, *Task, error) {
	if id != "" {
		if !appIDRE.MatchString(id) {
			return nil, nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("application id %q: 1 to 63 letters, digits, '_' or '-', starting with a letter or digit", id))
		}
		if _, err := m.App(id); err == nil {
			return nil, nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("Application '%s' already exists", id))
		}
	}
	a, t, err := m.deployPlan(ctx, id, yaml)
	if errors.Is(err, errdefs.ErrInvalid) {
		err = errdefs.New(errdefs.ErrInvalid, catalogHint(err.Error()))
	}
	return a, t, err
}

// appIDRE is what an application id given with PUT may be: it names
// the application's network and containers.
var appIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)

// deployAs is PUT /v1/applications/{app}: a deploy under that id, 409
// when it is taken.
func (m *Manager) deployAs(w http.ResponseWriter, r *http.Request) error {
	plan, err := readPlan(r)
	if err != nil {
		return err
	}
	a, t, err := m.DeployAs(r.Context(), r.PathValue("app"), plan)
	if err != nil {
		return err
	}
	w.Header().Set("Location", base(r)+"/v1/applications/"+a.ID)
	return writeJSON(w, http.StatusCreated, m.taskSummary(t))
}
