package blueprint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/clocker/clocker/blueprint/camp"
	"github.com/clocker/clocker/internal/errdefs"
)

// Prefixes are the paths the Brooklyn API is mounted under.
var Prefixes = []string{"/v1/server", "/v1/applications", "/v1/activities", "/v1/locations", "/v1/catalog"}

// maxPlan bounds a blueprint's size.
const maxPlan = 4 << 20

// Handler serves Brooklyn's REST API (the part br and curl users rely
// on; see README.md). Any Basic or Bearer credentials are accepted.
func (m *Manager) Handler() http.Handler {
	mux := http.NewServeMux()
	h := func(pattern string, fn func(w http.ResponseWriter, r *http.Request) error) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := fn(w, r); err != nil {
				writeError(w, err)
			}
		})
	}
	const ent = "/v1/applications/{app}/entities/{e}"
	h("GET /v1/server/version", m.version_)
	h("GET /v1/applications", m.listApps)
	h("POST /v1/applications", m.deploy)
	h("GET /v1/applications/fetch", m.fetch)
	h("GET /v1/applications/{app}", m.getApp)
	h("DELETE /v1/applications/{app}", m.deleteAppHTTP)
	h("GET /v1/applications/{app}/entities", m.listEntities)
	h("GET "+ent, m.getEntity)
	h("GET "+ent+"/children", m.children)
	h("GET "+ent+"/descendants", m.descendants)
	m.entityRoutes(h, ent) // details, spec, locations, tags, expunge (rest_entity.go)
	h("GET "+ent+"/activities", m.activities)
	h("GET "+ent+"/config", m.configList)
	h("GET "+ent+"/config/current-state", m.configState)
	h("GET "+ent+"/config/{key}", m.configKey)
	h("GET "+ent+"/sensors", m.sensorList)
	h("GET "+ent+"/sensors/current-state", m.sensorState)
	h("GET "+ent+"/sensors/{name}", m.sensor)
	h("GET "+ent+"/effectors", m.effectorList)
	h("POST "+ent+"/effectors/{name}", m.invoke)
	h("GET "+ent+"/policies", m.policyList("policy"))
	h("GET "+ent+"/enrichers", m.policyList("enricher"))
	h("POST "+ent+"/policies", m.policyAdd)
	h("GET "+ent+"/policies/{p}", m.policyStatus)
	h("GET "+ent+"/enrichers/{p}", m.policyStatus)
	h("POST "+ent+"/policies/{p}/{op}", m.policyOp)
	h("POST "+ent+"/enrichers/{p}/{op}", m.policyOp)
	h("GET "+ent+"/policies/{p}/config", m.policyConfig)
	h("GET "+ent+"/policies/{p}/config/current-state", m.policyConfigState)
	h("GET "+ent+"/policies/{p}/config/{key}", m.policyConfigKey)
	h("GET /v1/activities/{id}", m.activity)
	h("GET /v1/activities/{id}/children", m.activityChildren)
	h("GET /v1/activities/{id}/stream/{stream}", m.activityStream)
	m.catalogRoutes(h)
	h("PUT /v1/applications/{app}", m.deployAs)
	h("GET /v1/locations", m.locations)
	h("GET /v1/locations/{id}", m.location)
	h("/", func(w http.ResponseWriter, r *http.Request) error {
		return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("No %s %s in Clocker's Brooklyn API", r.Method, r.URL.Path))
	})
	return mux
}

// apiError is Brooklyn's ApiError.
type apiError struct {
	Message string `json:"message"`
	Details string `json:"details"`
	Error   int    `json:"error"`
}

func writeError(w http.ResponseWriter, err error) {
	code := errdefs.Status(err)
	if errors.Is(err, camp.ErrInvalid) {
		code = http.StatusBadRequest
	}
	_ = writeJSON(w, code, apiError{Message: err.Error(), Error: code})
}

func writeJSON(w http.ResponseWriter, code int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	return json.NewEncoder(w).Encode(v)
}

func (m *Manager) version_(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]any{
		"version": m.version, "buildSha1": "", "buildBranch": "clocker",
		"features": []any{map[string]any{"name": "Clocker", "symbolicName": "io.clocker", "version": m.version, "lastModified": "", "additionalData": map[string]string{}}},
	})
}

func base(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (m *Manager) appLinks(a *App) map[string]string {
	return map[string]string{"self": "/v1/applications/" + a.ID, "entities": "/v1/applications/" + a.ID + "/entities"}
}

func (m *Manager) appSummary(a *App) map[string]any {
	locs := []string{LocationID} // every location a blueprint names is the fleet
	return map[string]any{
		"id":     a.ID,
		"spec":   map[string]any{"name": a.Name, "type": a.Root.Node.Type, "locations": locs},
		"status": m.Status(a),
		"links":  m.appLinks(a),
	}
}

func (m *Manager) listApps(w http.ResponseWriter, r *http.Request) error {
	out := []any{}
	for _, a := range m.AppsFor(r.Context()) {
		out = append(out, m.appSummary(a))
	}
	return writeJSON(w, http.StatusOK, out)
}

// appOf is the application the path names, among those the request's
// tenant may see.
func (m *Manager) appOf(r *http.Request) (*App, error) {
	return m.AppFor(r.Context(), r.PathValue("app"))
}

func (m *Manager) entityOf(r *http.Request) (*Entity, error) {
	a, err := m.appOf(r)
	if err != nil {
		return nil, err
	}
	return m.Entity(a, r.PathValue("e"))
}

func (m *Manager) getApp(w http.ResponseWriter, r *http.Request) error {
	a, err := m.appOf(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, m.appSummary(a))
}

// readPlan takes the blueprint from any content type: a form's plan
// field, else the body itself (curl --data-binary sends YAML as a form).
func readPlan(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPlan+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxPlan {
		return nil, errdefs.New(errdefs.ErrTooLarge, fmt.Sprintf("blueprint over %d bytes", maxPlan))
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/x-www-form-urlencoded" {
		if q, err := url.ParseQuery(string(body)); err == nil && q.Get("plan") != "" {
			return []byte(q.Get("plan")), nil
		}
	}
	if strings.TrimSpace(string(body)) == "" {
		return nil, errdefs.New(errdefs.ErrInvalid, "no blueprint in the request body")
	}
	return body, nil
}

func (m *Manager) deploy(w http.ResponseWriter, r *http.Request) error {
	plan, err := readPlan(r)
	if err != nil {
		return err
	}
	if m.compose != nil && m.compose.IsCompose(plan) {
		return m.deployCompose(w, r, plan)
	}
	a, t, err := m.Deploy(r.Context(), plan)
	if err != nil {
		return err
	}
	w.Header().Set("Location", base(r)+"/v1/applications/"+a.ID)
	return writeJSON(w, http.StatusCreated, m.taskSummary(t))
}

// deployCompose answers a compose file as Brooklyn answers a deploy: 201,
// Location, the start task (the project is the task's entity; it shows
// under /v1/applications through its compose labels).
func (m *Manager) deployCompose(w http.ResponseWriter, r *http.Request, file []byte) error {
	owner := m.owner(r.Context())
	project, run, err := m.compose.Prepare(r.Context(), owner, file, r.URL.Query())
	if err != nil {
		return err
	}
	t := m.runTaskFor(m.ctx, owner, project, project, "start", run)
	w.Header().Set("Location", base(r)+"/v1/applications/"+project)
	return writeJSON(w, http.StatusCreated, m.taskSummary(t))
}

func (m *Manager) deleteAppHTTP(w http.ResponseWriter, r *http.Request) error {
	a, err := m.appOf(r)
	if err != nil {
		return err
	}
	if a.Project != "" {
		if err := m.setDownVolumes(a, r.URL.Query().Get("volumes")); err != nil {
			return err
		}
	}
	return writeJSON(w, http.StatusAccepted, m.taskSummary(m.Delete(a)))
}

func (m *Manager) entitySummary(e *Entity) map[string]any {
	self := "/v1/applications/" + e.App.ID + "/entities/" + e.ID
	links := map[string]string{
		"self": self, "application": "/v1/applications/" + e.App.ID, "children": self + "/children",
		"config": self + "/config", "sensors": self + "/sensors", "effectors": self + "/effectors",
		"policies": self + "/policies", "activities": self + "/activities",
	}
	if e.Parent != nil {
		links["parent"] = "/v1/applications/" + e.App.ID + "/entities/" + e.Parent.ID
	}
	return map[string]any{"id": e.ID, "name": e.Node.Name, "type": e.Node.Type, "catalogItemId": catalogItemID(e), "links": links}
}

func (m *Manager) summaries(es []*Entity) []any {
	out := []any{}
	for _, e := range es {
		out = append(out, m.entitySummary(e))
	}
	return out
}

func (m *Manager) listEntities(w http.ResponseWriter, r *http.Request) error {
	a, err := m.appOf(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, m.summaries(a.Root.Children()))
}

func (m *Manager) getEntity(w http.ResponseWriter, r *http.Request) error {
	e, err := m.entityOf(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, m.entitySummary(e))
}

func (m *Manager) children(w http.ResponseWriter, r *http.Request) error {
	e, err := m.entityOf(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, m.summaries(e.Children()))
}

func (m *Manager) descendants(w http.ResponseWriter, r *http.Request) error {
	e, err := m.entityOf(r)
	if err != nil {
		return err
	}
	var all []*Entity
	var walk func(x *Entity)
	walk = func(x *Entity) {
		for _, c := range x.Children() {
			all = append(all, c)
			walk(c)
		}
	}
	walk(e)
	return writeJSON(w, http.StatusOK, m.summaries(all))
}

// fetch is br tree's view: applications with their children, recursively.
func (m *Manager) fetch(w http.ResponseWriter, r *http.Request) error {
	var tree func(e *Entity) map[string]any
	tree = func(e *Entity) map[string]any {
		kids := []any{}
		for _, c := range e.Children() {
			kids = append(kids, tree(c))
		}
		up, _ := m.Sensor(e, SensorUp)
		parent := ""
		if e.Parent != nil {
			parent = e.Parent.ID
		}
		return map[string]any{
			"id": e.ID, "name": e.Node.Name, "type": e.Node.Type, "applicationId": e.App.ID, "parentId": parent,
			"serviceUp": up == true, "serviceState": m.State(e), "children": kids, "groupIds": []string{}, "members": []any{},
		}
	}
	out := []any{}
	for _, a := range m.AppsFor(r.Context()) {
		out = append(out, tree(a.Root))
	}
	return writeJSON(w, http.StatusOK, out)
}

// configValues is e's config as far as it resolves without waiting: what
// the start resolved, else values, DSL shown as written.
func (m *Manager) configValues(e *Entity) map[string]any {
	out := map[string]any{}
	m.mu.Lock()
	resolved := e.resolved
	m.mu.Unlock()
	for k, v := range e.Node.Config {
		if k == catalogItemKey {
			continue
		}
		if rv, ok := resolved[k]; ok {
			out[k] = rv
			continue
		}
		out[k] = plain(v)
	}
	return out
}

// plain replaces DSL calls by their call strings.
func plain(v any) any {
	switch t := v.(type) {
	case *camp.Call:
		return t.String()
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = plain(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = plain(x)
		}
		return out
	}
	return v
}

func (m *Manager) configList(w http.ResponseWriter, r *http.Request) error {
	e, err := m.entityOf(r)
	if err != nil {
		return err
	}
	out := []any{}
	for _, k := range slices.Sorted(maps.Keys(e.Node.Config)) {
		if k == catalogItemKey {
			continue
		}
		out = append(out, map[string]any{"name": k, "type": "java.lang.Object", "description": "", "reconfigurable": false, "links": map[string]string{}})
	}
	return writeJSON(w, http.StatusOK, out)
}

func (m *Manager) configState(w http.ResponseWriter, r *http.Request) error {
	e, err := m.entityOf(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, m.configValues(e))
}

func (m *Manager) configKey(w http.ResponseWriter, r *http.Request) error {
	e, err := m.entityOf(r)
	if err != nil {
		return err
	}
	k := r.PathValue("key")
	v, ok := m.configValues(e)[k]
	if !ok {
		return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("Config key '%s' not known on entity '%s'", k, e.Node.Name))
	}
	return writeValue(w, r, v)
}

// writeValue answers one sensor or config value: JSON unless the client
// accepts only text/plain.
func writeValue(w http.ResponseWriter, r *http.Request, v any) error {
	acc := r.Header.Get("Accept")
	if strings.Contains(acc, "text/plain") && !strings.Contains(acc, "json") && !strings.Contains(acc, "*/*") {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, err := io.WriteString(w, str(v))
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// Sensor descriptions of the sensors Clocker publishes.
var sensorDocs = map[string]string{
	SensorUp:                   "Whether the service is up",
	SensorState:                "Lifecycle state: created, starting, running, stopping, stopped, on-fire",
	"service.problems":         "Why the entity is on fire",
	"docker.container.id":      "The Docker container's id",
	"docker.container.name":    "The Docker container's name",
	"docker.container.running": "Whether the container is running",
	"host.name":                "The fleet host the container runs on",
	"host.address":             "The fleet host's address",
	"host.subnet.address":      "The container's address on the application's fleet network",
	"main.uri":                 "URI of the first open port, through Clocker's ingress",
	"mapped.host.address":      "Where the mapped ports are published",
	SensorAddresses:            "The container's addresses on every network it joined",
	SensorPaused:               "Whether the container is paused",
}

// knownSensors is every sensor e may publish, set or not.
func (m *Manager) knownSensors(e *Entity) map[string]bool {
	known := map[string]bool{SensorUp: true, SensorState: true, "service.problems": true}
	if e.Node.Kind.RunsContainer() {
		for k := range sensorDocs {
			known[k] = true
		}
	}
	for _, s := range e.Node.Initializers {
		known[s.Name] = true
	}
	if e.Node.Kind == camp.KindCluster {
		known[SensorGroupMembers], known[SensorGroupMembersCount] = true, true
	}
	for _, k := range kindSensors[e.Node.Kind] {
		known[k] = true
	}
	for _, a := range m.Adjuncts(e, "") {
		for _, s := range adjunctSensors[camp.ShortType(a.Type)] {
			known[s] = true
		}
		if t := a.text("", "enricher.targetSensor", "targetSensor"); t != "" {
			known[t] = true
		}
	}
	for k := range m.Sensors(e) {
		known[k] = true
	}
	return known
}

func (m *Manager) sensorList(w http.ResponseWriter, r *http.Request) error {
	e, err := m.entityOf(r)
	if err != nil {
		return err
	}
	out := []any{}
	self := "/v1/applications/" + e.App.ID + "/entities/" + e.ID + "/sensors/"
	for _, k := range slices.Sorted(maps.Keys(m.knownSensors(e))) {
		out = append(out, map[string]any{"name": k, "description": sensorDocs[k], "type": "java.lang.Object", "links": map[string]string{"self": self + k}})
	}
	return writeJSON(w, http.StatusOK, out)
}

func (m *Manager) sensorState(w http.ResponseWriter, r *http.Request) error {
	e, err := m.entityOf(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, m.Sensors(e))
}

func (m *Manager) sensor(w http.ResponseWriter, r *http.Request) error {
	e, err := m.entityOf(r)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	v, ok := m.Sensor(e, name)
	if !ok {
		if m.knownSensors(e)[name] {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("Sensor '%s' not known", name))
	}
	return writeValue(w, r, v)
}

func (m *Manager) effectorList(w http.ResponseWriter, r *http.Request) error {
	e, err := m.entityOf(r)
	if err != nil {
		return err
	}
	out := []any{}
	for _, f := range m.Effectors(e) {
		params := []any{}
		for _, p := range f.Parameters {
			params = append(params, map[string]any{"name": p.Name, "type": p.Type, "description": p.Description, "defaultValue": nil})
		}
		rt := f.ReturnType
		if rt == "" {
			rt = "void"
		}
		out = append(out, map[string]any{"name": f.Name, "description": f.Description, "returnType": rt, "parameters": params,
			"links": map[string]string{"self": "/v1/applications/" + e.App.ID + "/entities/" + e.ID + "/effectors/" + f.Name}})
	}
	return writeJSON(w, http.StatusOK, out)
}

// invoke runs an effector; without timeout (or "never") it answers when
// done (200 with the result, 204 without one), else after the timeout
// with 202 and the task.
func (m *Manager) invoke(w http.ResponseWriter, r *http.Request) error {
	e, err := m.entityOf(r)
	if err != nil {
		return err
	}
	params := map[string]any{}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return err
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if s := strings.TrimSpace(string(body)); s != "" {
		if ct == "application/json" || strings.HasPrefix(s, "{") {
			if err := json.Unmarshal(body, &params); err != nil {
				return errdefs.New(errdefs.ErrInvalid, "effector parameters: want a JSON map: "+err.Error())
			}
		} else {
			q, err := url.ParseQuery(s)
			if err != nil {
				return errdefs.New(errdefs.ErrInvalid, "effector parameters: "+err.Error())
			}
			for k := range q {
				params[k] = q.Get(k)
			}
		}
	}
	timeout := camp.Forever
	if s := r.URL.Query().Get("timeout"); s != "" {
		if timeout, err = camp.ParseDuration(s); err != nil {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("timeout %q: want a duration such as 30s, a number of milliseconds, or never", s))
		}
	}
	t, err := m.Invoke(e, r.PathValue("name"), params)
	if err != nil {
		return err
	}
	if timeout == 0 {
		return writeJSON(w, http.StatusAccepted, m.taskSummary(t))
	}
	var expire <-chan time.Time
	if timeout >= 0 {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		expire = timer.C
	}
	select {
	case <-t.Done():
	case <-expire:
		return writeJSON(w, http.StatusAccepted, m.taskSummary(t))
	case <-r.Context().Done():
		return r.Context().Err()
	}
	res, err := t.Result()
	if err != nil {
		return err
	}
	if res == nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return writeJSON(w, http.StatusOK, res)
}

func (m *Manager) activities(w http.ResponseWriter, r *http.Request) error {
	e, err := m.entityOf(r)
	if err != nil {
		return err
	}
	out := []any{}
	for _, t := range m.Tasks(e) {
		out = append(out, m.taskSummary(t))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (m *Manager) activity(w http.ResponseWriter, r *http.Request) error {
	t := m.Task(r.PathValue("id"))
	if t == nil || !m.taskVisible(r.Context(), t) {
		return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("Activity '%s' not found", r.PathValue("id")))
	}
	code := http.StatusOK
	select {
	case <-t.Done():
	default:
		code = http.StatusAccepted
	}
	return writeJSON(w, code, m.taskSummary(t))
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// taskSummary is Brooklyn's TaskSummary of t.
func (m *Manager) taskSummary(t *Task) map[string]any {
	started, ended, err := t.times()
	status, detail := "In progress", "In progress"
	if !ended.IsZero() {
		status, detail = "Completed", "Completed"
		if err != nil {
			status, detail = "Failed", "Failed: "+err.Error()
		}
	}
	res, _ := t.Result()
	return map[string]any{
		"id": t.ID, "displayName": t.DisplayName, "description": t.Description,
		"entityId": t.EntityID, "entityDisplayName": t.EntityName,
		"currentStatus": status, "detailedStatus": detail, "blockingDetails": "",
		"submitTimeUtc": ms(t.Submitted), "startTimeUtc": ms(started), "endTimeUtc": ms(ended),
		"isError": err != nil, "error": err != nil, "isCancelled": false, "cancelled": false,
		"children": m.taskChildren(t), "submittedByTask": submittedBy(t), "streams": m.taskStreams(m.ctx, t), "result": res, "tags": []any{},
		"links": map[string]string{"self": "/v1/activities/" + t.ID, "entity": "/v1/applications/" + t.EntityID},
	}
}

// LocationID is the one location: the fleet.
const LocationID = "clocker"

func (m *Manager) locationSummary(ctx context.Context) map[string]any {
	hostList := []any{}
	if info, err := m.eng.Info(ctx, client.InfoOptions{}); err == nil {
		for _, kv := range info.Info.SystemStatus {
			if strings.HasPrefix(kv[0], " ") && !strings.HasPrefix(kv[0], "  ") {
				hostList = append(hostList, map[string]string{"name": strings.TrimSpace(kv[0]), "address": kv[1]})
			}
		}
	}
	return map[string]any{
		"id": LocationID, "name": "Clocker fleet", "spec": LocationID, "type": "org.apache.brooklyn.location.docker.DockerLocation",
		"config": map[string]any{"hosts": hostList, "displayName": "Clocker fleet"},
		"links":  map[string]string{"self": "/v1/locations/" + LocationID},
	}
}

func (m *Manager) locations(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, []any{m.locationSummary(r.Context())})
}

func (m *Manager) location(w http.ResponseWriter, r *http.Request) error {
	if id := r.PathValue("id"); id != LocationID {
		return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("Location '%s' not found (the fleet is '%s')", id, LocationID))
	}
	return writeJSON(w, http.StatusOK, m.locationSummary(r.Context()))
}
