package blueprint

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/clocker/clocker/blueprint/camp"
	"github.com/clocker/clocker/internal/errdefs"
)

// Brooklyn's PolicyApi/EnricherApi: list, add ?type=, status,
// start/stop/destroy (204), config.

func (m *Manager) adjunctSummary(a *Adjunct) map[string]any {
	e := a.Entity
	self := "/v1/applications/" + e.App.ID + "/entities/" + e.ID + "/" + a.Kind + "s/" + a.ID
	links := map[string]string{"self": self, "config": self + "/config", "start": self + "/start", "stop": self + "/stop", "destroy": self + "/destroy",
		"application": "/v1/applications/" + e.App.ID, "entity": "/v1/applications/" + e.App.ID + "/entities/" + e.ID}
	return map[string]any{"id": a.ID, "name": a.Name(), "type": a.Type, "catalogItemId": nil, "state": a.State(), "highlights": map[string]any{}, "links": links}
}

func (m *Manager) policyList(kind string) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		e, err := m.entityOf(r)
		if err != nil {
			return err
		}
		out := []any{}
		for _, a := range m.Adjuncts(e, kind) {
			out = append(out, m.adjunctSummary(a))
		}
		return writeJSON(w, http.StatusOK, out)
	}
}

func (m *Manager) adjunctOf(r *http.Request) (*Adjunct, error) {
	e, err := m.entityOf(r)
	if err != nil {
		return nil, err
	}
	return m.AdjunctOf(e, r.PathValue("p"))
}

// policyAdd attaches ?type= (policyType) with a JSON config map body.
func (m *Manager) policyAdd(w http.ResponseWriter, r *http.Request) error {
	e, err := m.entityOf(r)
	if err != nil {
		return err
	}
	typ := r.URL.Query().Get("type")
	if typ == "" {
		typ = r.URL.Query().Get("policyType")
	}
	if typ == "" {
		return errdefs.New(errdefs.ErrInvalid, "type is required: POST …/policies?type=org.apache.brooklyn.policy.ha.ServiceRestarter")
	}
	cfg := map[string]any{}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(body)) != "" {
		if err := json.Unmarshal(body, &cfg); err != nil {
			return errdefs.New(errdefs.ErrInvalid, "policy config: want a JSON map: "+err.Error())
		}
	}
	a, err := m.AddAdjunct(e, typ, cfg)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, m.adjunctSummary(a))
}

func (m *Manager) policyStatus(w http.ResponseWriter, r *http.Request) error {
	a, err := m.adjunctOf(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.State())
}

func (m *Manager) policyOp(w http.ResponseWriter, r *http.Request) error {
	a, err := m.adjunctOf(r)
	if err != nil {
		return err
	}
	state, ok := map[string]string{"start": AdjunctRunning, "stop": AdjunctStopped, "destroy": AdjunctDestroyed}[r.PathValue("op")]
	if !ok {
		return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("No operation '%s' on a policy: start, stop or destroy", r.PathValue("op")))
	}
	if err := m.SetAdjunctState(a, state); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// adjunctConfig is the adjunct's config: documented keys with their
// defaults, then the keys it was given.
func adjunctConfig(a *Adjunct) (keys []configKey, values map[string]any) {
	t := adjunctTypes[camp.ShortType(a.Type)]
	values = map[string]any{}
	seen := map[string]bool{}
	if t != nil {
		for _, k := range t.Keys {
			keys = append(keys, k)
			seen[k.Name] = true
			values[k.Name] = k.Default
		}
	}
	for _, k := range slices.Sorted(maps.Keys(a.Config)) {
		values[k] = plain(a.Config[k])
		if !seen[k] {
			keys = append(keys, configKey{Name: k, Type: "java.lang.Object"})
		}
	}
	return keys, values
}

func (m *Manager) policyConfig(w http.ResponseWriter, r *http.Request) error {
	a, err := m.adjunctOf(r)
	if err != nil {
		return err
	}
	keys, _ := adjunctConfig(a)
	out := []any{}
	for i, k := range keys {
		out = append(out, map[string]any{"name": k.Name, "type": k.Type, "description": k.Description, "defaultValue": k.Default,
			"reconfigurable": false, "label": k.Name, "priority": i + 1, "pinned": false, "possibleValues": []any{},
			"links": map[string]string{"self": r.URL.Path + "/" + k.Name}})
	}
	return writeJSON(w, http.StatusOK, out)
}

func (m *Manager) policyConfigState(w http.ResponseWriter, r *http.Request) error {
	a, err := m.adjunctOf(r)
	if err != nil {
		return err
	}
	_, values := adjunctConfig(a)
	return writeJSON(w, http.StatusOK, values)
}

func (m *Manager) policyConfigKey(w http.ResponseWriter, r *http.Request) error {
	a, err := m.adjunctOf(r)
	if err != nil {
		return err
	}
	_, values := adjunctConfig(a)
	v, ok := values[r.PathValue("key")]
	if !ok {
		return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("Cannot find config key '%s' in policy '%s'", r.PathValue("key"), a.Name()))
	}
	return writeValue(w, r, v)
}
