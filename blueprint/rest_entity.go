package blueprint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"go.yaml.in/yaml/v3"

	"github.com/clocker/clocker/blueprint/camp"
	"github.com/clocker/clocker/internal/errdefs"
)

// entityRoutes are Brooklyn's ApplicationResource.details and the entity
// sub-resources spec, locations, tags and expunge.
func (m *Manager) entityRoutes(h func(string, func(http.ResponseWriter, *http.Request) error), ent string) {
	h("GET /v1/applications/details", m.details)
	h("GET "+ent+"/spec", m.spec)
	h("GET "+ent+"/locations", m.entityLocations)
	h("GET "+ent+"/tags", m.tags)
	h("POST "+ent+"/expunge", m.expunge)
}

// details is ApplicationResource.details: every application (unless
// includeAllApps=false) and the entities named in items with their
// ancestors, as EntityDetail maps with children to depth levels and the
// sensors and config whose names match the globs asked.
func (m *Manager) details(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	items, err := stringList("items", q.Get("items"))
	if err != nil {
		return err
	}
	sensorGlobs, err := globs("sensors", q.Get("sensors"))
	if err != nil {
		return err
	}
	configGlobs, err := globs("config", q.Get("config"))
	if err != nil {
		return err
	}
	allApps := true
	for _, k := range []string{"includeAllApps", "includeAllApplications"} {
		if s := q.Get(k); s != "" {
			if allApps, err = strconv.ParseBool(s); err != nil {
				return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s %q: want true or false", k, s))
			}
		}
	}
	depth := 1
	if s := q.Get("depth"); s != "" {
		if depth, err = strconv.Atoi(s); err != nil {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("depth %q: want an integer (negative: all levels)", s))
		}
	}
	var order []*Entity
	seen := map[string]bool{}
	if allApps {
		for _, a := range m.AppsFor(r.Context()) {
			order, seen[a.ID] = append(order, a.Root), true
		}
	}
	// As Brooklyn: an unknown id is skipped; an entity brings its ancestors.
	for _, id := range items {
		m.mu.Lock()
		e := m.entities[id]
		m.mu.Unlock()
		if e != nil && !m.visible(r.Context(), e.App) {
			continue // another tenant's: unknown, skipped
		}
		for ; e != nil && !seen[e.ID]; e = e.Parent {
			order, seen[e.ID] = append(order, e), true
		}
	}
	out := []any{}
	for _, e := range order {
		out = append(out, m.entityDetail(e, depth, sensorGlobs, configGlobs))
	}
	return writeJSON(w, http.StatusOK, out)
}

// entityDetail is Brooklyn's EntityDetail of e (depth 0: the bare
// EntitySummary) with its extra fields.
func (m *Manager) entityDetail(e *Entity, depth int, sensorGlobs, configGlobs []*regexp.Regexp) map[string]any {
	self := "/v1/applications/" + e.App.ID + "/entities/" + e.ID
	d := map[string]any{"id": e.ID, "name": e.Node.Name, "type": e.Node.Type, "catalogItemId": catalogItemID(e), "links": map[string]string{"self": self}}
	if depth == 0 {
		return d
	}
	sensors := m.Sensors(e)
	var up, state any
	if v, ok := sensors[SensorUp].(bool); ok {
		up = v
	}
	if v, ok := sensors[SensorState].(string); ok && v != "" {
		state = v
	}
	var parent any
	if e.Parent != nil {
		parent = e.Parent.ID
	}
	kids, members := []any{}, []any{}
	for _, c := range e.Children() {
		kids = append(kids, m.entityDetail(c, depth-1, sensorGlobs, configGlobs))
		if e.Node.Kind == camp.KindCluster {
			members = append(members, map[string]string{"id": c.ID, "name": c.Node.Name})
		}
	}
	d["applicationId"], d["parentId"], d["serviceUp"], d["serviceState"] = e.App.ID, parent, up, state
	d["iconUrl"], d["children"], d["groupIds"], d["members"] = nil, kids, []string{}, members
	d["tags"], d["creationTimeUtc"], d["relations"] = m.entityTags(e), ms(e.App.Created), []any{}
	if len(sensorGlobs) > 0 {
		d["sensors"] = matching(sensors, sensorGlobs)
	}
	if len(configGlobs) > 0 {
		d["config"] = matching(m.configValues(e), configGlobs)
	}
	return d
}

// stringList reads Brooklyn's list parameter: a JSON list, or names
// separated by commas (each optionally quoted).
func stringList(param, s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []string
	if strings.HasPrefix(s, "[") {
		if err := json.Unmarshal([]byte(s), &out); err != nil {
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s: want a JSON list of strings or names separated by commas: %v", param, err))
		}
		return out, nil
	}
	for _, x := range strings.Split(s, ",") {
		if x = strings.Trim(strings.TrimSpace(x), `"`); x != "" {
			out = append(out, x)
		}
	}
	return out, nil
}

// globs reads a list of Brooklyn's globs (* any run, ? one character).
func globs(param, s string) ([]*regexp.Regexp, error) {
	list, err := stringList(param, s)
	if err != nil {
		return nil, err
	}
	var out []*regexp.Regexp
	for _, g := range list {
		re := regexp.QuoteMeta(g)
		re = strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(re)
		out = append(out, regexp.MustCompile("^"+re+"$"))
	}
	return out, nil
}

// matching are the values of kv whose names match one of globs.
func matching(kv map[string]any, globs []*regexp.Regexp) map[string]any {
	out := map[string]any{}
	for k, v := range kv {
		if slices.ContainsFunc(globs, func(g *regexp.Regexp) bool { return g.MatchString(k) }) {
			out[k] = v
		}
	}
	return out
}

// specYAML is the YAML e was made from, as Brooklyn's yaml_spec tag: the
// whole blueprint for the application, a service's own map (a member's:
// its memberSpec) for others; none for the entities Clocker adds (a web
// cluster's controller and cluster).
func specYAML(e *Entity) (string, bool) {
	if e.Parent == nil {
		return e.App.Plan, true
	}
	if e.Node.Source == nil {
		return "", false
	}
	b, err := yaml.Marshal(plain(e.Node.Source))
	if err != nil {
		return "", false
	}
	return string(b), true
}

// specTypes are the media types Brooklyn's getSpec produces, its default
// first.
var specTypes = []string{"text/x-yaml", "application/x-yaml", "text/yaml", "application/yaml", "text/plain"}

// spec is EntityResource.getSpec: the YAML as text (204 when there is
// none); a client accepting only JSON gets it as a JSON string.
func (m *Manager) spec(w http.ResponseWriter, r *http.Request) error {
	e, err := m.entityOf(r)
	if err != nil {
		return err
	}
	text, ok := specYAML(e)
	if !ok {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	acc := r.Header.Get("Accept")
	ct := specTypes[0]
	for _, t := range specTypes {
		if strings.Contains(acc, t) {
			ct = t
			break
		}
	}
	if strings.Contains(acc, "json") && !strings.Contains(acc, ct) && !strings.Contains(acc, "*/*") {
		return writeJSON(w, http.StatusOK, text)
	}
	w.Header().Set("Content-Type", ct+"; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, err = io.WriteString(w, text)
	return err
}

// entityLocations: every entity runs on the fleet.
func (m *Manager) entityLocations(w http.ResponseWriter, r *http.Request) error {
	if _, err := m.entityOf(r); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, []any{m.locationSummary(r.Context())})
}

// entityTags are e's tags as Brooklyn lists them: the blueprint's
// brooklyn.tags, then the yaml_spec tag (a NamedStringTag).
func (m *Manager) entityTags(e *Entity) []any {
	out := []any{}
	if list, ok := e.Node.Config["brooklyn.tags"].([]any); ok {
		out = append(out, plain(list).([]any)...)
	}
	if text, ok := specYAML(e); ok {
		out = append(out, map[string]any{"kind": "yaml_spec", "contents": text})
	}
	return out
}

func (m *Manager) tags(w http.ResponseWriter, r *http.Request) error {
	e, err := m.entityOf(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, m.entityTags(e))
}

// expunge is EntityResource.expunge: 202 with the task.
func (m *Manager) expunge(w http.ResponseWriter, r *http.Request) error {
	e, err := m.entityOf(r)
	if err != nil {
		return err
	}
	release := false // JAX-RS reads a missing boolean as false
	if s := r.URL.Query().Get("release"); s != "" {
		if release, err = strconv.ParseBool(s); err != nil {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("release %q: want true or false", s))
		}
	}
	t, err := m.Expunge(e, release)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, m.taskSummary(t))
}

// Expunge forgets e and its descendants (Brooklyn's unmanage): with
// release their containers (with anonymous volumes), the named volumes
// no remaining entity uses and the networks they made are removed first,
// and a failure keeps them; without, their containers are left (labelled
// with the application, DELETE still removes them). The application
// itself is deleted as by DELETE. Planned entities stay forgotten across
// restarts (appRecord.Expunged).
func (m *Manager) Expunge(e *Entity, release bool) (*Task, error) {
	if e.Parent == nil {
		return m.Delete(e.App), nil
	}
	if e.Parent.Node.Kind == camp.KindWebCluster {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s is part of web cluster %s: expunge the web cluster instead", e.Node.Label(), e.Parent.Node.Label()))
	}
	return m.submit(e, "expunge", func(ctx context.Context) (any, error) {
		a := e.App
		a.run.Lock()
		defer a.run.Unlock()
		m.mu.Lock()
		live := m.entities[e.ID] == e
		m.mu.Unlock()
		if !live {
			return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("Entity '%s' was already expunged", e.ID))
		}
		gone := subtree(e)
		if release {
			if err := m.release(ctx, a, gone); err != nil {
				return nil, err
			}
		}
		m.forget(a, e, gone)
		if p := e.Parent; p.Node.Kind == camp.KindCluster {
			m.publishGroup(p)
			m.quorum(p)
		}
		return nil, m.save(a)
	}), nil
}

// subtree is e and its descendants.
func subtree(e *Entity) []*Entity {
	out := []*Entity{e}
	for _, c := range e.Children() {
		out = append(out, subtree(c)...)
	}
	return out
}

// release removes what the entities gone made.
func (m *Manager) release(ctx context.Context, a *App, gone []*Entity) error {
	var errs []error
	kept := map[string]bool{}
	for _, x := range a.all() {
		if !slices.Contains(gone, x) {
			for _, v := range namedVolumes(x) {
				kept[v] = true
			}
		}
	}
	for _, x := range gone {
		m.mu.Lock()
		id := x.containerID
		m.mu.Unlock()
		if id != "" {
			if _, err := m.engOf(a).ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("remove %s: %w", x.Node.Label(), err))
				continue
			}
			m.mu.Lock()
			x.containerID = ""
			m.mu.Unlock()
		}
		for _, v := range namedVolumes(x) {
			if kept[v] {
				continue
			}
			if _, err := m.engOf(a).VolumeRemove(ctx, v, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("volume %s: %w", v, err))
			}
		}
		if err := m.removeNetworkOf(ctx, a, x.Node); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// forget takes e (and so gone, its subtree) out of the application.
func (m *Manager) forget(a *App, e *Entity, gone []*Entity) {
	m.mu.Lock()
	var stop []*Adjunct
	for _, x := range gone {
		stop = append(stop, x.adjuncts...)
		x.adjuncts = nil
		delete(m.entities, x.ID)
	}
	if slices.Contains(a.plan.Nodes, e.Node) {
		a.expunged = append(slices.Clip(a.expunged), e.ID) // its subtree is not built either
	}
	m.mu.Unlock()
	for _, x := range stop {
		x.impl.stop()
	}
	a.tree.Lock()
	p := e.Parent
	p.kids = slices.DeleteFunc(slices.Clone(p.kids), func(k *Entity) bool { return k == e })
	for _, x := range gone {
		delete(a.byNode, x.Node)
	}
	a.tree.Unlock()
	for _, x := range gone {
		m.setState(x, "destroyed", false)
	}
}
