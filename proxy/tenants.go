package proxy

// Tenants (--tenants): the front door puts a tenant's scope into the
// request context (internal/tenant); these are the places that read it.
// Containers: resolveContainer (every container route), the list, inspect,
// info's counts and the event stream, and the create pipeline's tenant
// step (admission.TenantStep). Networks and volumes: tenantObjects, one
// middleware over their routes. Images stay shared.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/clocker/clocker/engineapi"
	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/internal/tenant"
)

// resolveContainer finds the container ref names for the request's
// tenant: its own only; another's answers as absent. Without a tenant,
// the fleet's Resolve.
func (s *Server) resolveContainer(r *http.Request, ref string) (*hosts.Host, hosts.Container, error) {
	t, ok := tenant.FromContext(r.Context())
	if !ok {
		return s.Fleet.Resolve(r.Context(), ref)
	}
	return s.resolveOwn(r.Context(), t, ref)
}

// tenantRef is the create pipeline's resolver of a tenant's container
// references (admission.TenantStep.Resolve): the engine name of the
// tenant's container ref names, by name, full ID or unique ID prefix.
func (s *Server) tenantRef(t tenant.Scope, ref string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, c, err := s.resolveOwn(ctx, t, ref)
	if err != nil {
		return "", err
	}
	if len(c.Summary.Names) == 0 {
		return c.Summary.ID, nil
	}
	return strings.TrimPrefix(c.Summary.Names[0], "/"), nil
}

// resolveOwn finds the tenant's own container ref names: its name as the
// tenant gave it first (an ID-like ref: its ID first), then ref as it
// is; another tenant's answers as absent.
func (s *Server) resolveOwn(ctx context.Context, t tenant.Scope, ref string) (*hosts.Host, hosts.Container, error) {
	name := strings.TrimPrefix(ref, "/")
	try := []string{t.EngineName(name), ref}
	if looksLikeID(name) {
		try[0], try[1] = ref, t.EngineName(name)
	}
	for _, x := range try {
		h, c, err := s.Fleet.Resolve(ctx, x)
		if err == nil && t.OwnsLabels(c.Summary.Labels) {
			return h, c, nil
		}
		if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return nil, hosts.Container{}, err
		}
	}
	return nil, hosts.Container{}, errdefs.NoSuchContainer(ref)
}

// looksLikeID tells whether a reference may be an ID or its prefix.
func looksLikeID(ref string) bool {
	if ref == "" {
		return false
	}
	for i := 0; i < len(ref); i++ {
		if !(ref[i] >= '0' && ref[i] <= '9' || ref[i] >= 'a' && ref[i] <= 'f') {
			return false
		}
	}
	return true
}

// tenantContainers keeps a tenant's own containers of a list and maps
// its list filters' network names (network=front) to the engines'. Its
// name filters match the names it sees (opts.ShownName, set by the
// caller).
func tenantContainers(t tenant.Scope, all []hosts.Container, f engineapi.Filters) []hosts.Container {
	for _, v := range f.Values("network") {
		if userNetworkName(v) && !t.HasPrefix(v) {
			f.Add("network", t.EngineName(v))
		}
	}
	out := make([]hosts.Container, 0, len(all)/4)
	for i := range all {
		if all[i].Summary.Labels[labels.Owner] == t.Name {
			out = append(out, all[i])
		}
	}
	return out
}

func userNetworkName(n string) bool { return !engineapi.IsBuiltinNetwork(n) && n != "default" }

// tenantShown is a list entry or inspect as the request's tenant reads
// it: the names at path without its prefix.
func tenantShown(t tenant.Scope, ok bool, obj []byte, path ...string) []byte {
	if !ok || !bytes.Contains(obj, []byte(t.Prefix())) {
		return obj
	}
	return engineapi.MapStrings(obj, t.ShownPath, path...)
}

// tenantContainer maps the names of a container's inspect or list entry
// (names at path: "Name" or "Names"): its own, its network mode's and
// its networks' (NetworkSettings.Networks), so that compose and
// templates find the networks by the names the tenant gave.
func tenantContainer(t tenant.Scope, ok bool, body []byte, path ...string) []byte {
	if !ok || !bytes.Contains(body, []byte(t.Prefix())) {
		return body
	}
	body = engineapi.MapStrings(body, t.ShownPath, path...)
	body = engineapi.MapStrings(body, t.ShownName, "HostConfig", "NetworkMode")
	return engineapi.MapKeys(body, t.ShownName, "NetworkSettings", "Networks")
}

// tenantContainerInspect is tenantContainer for the request's tenant.
func tenantContainerInspect(r *http.Request, body []byte) []byte {
	t, ok := tenant.FromContext(r.Context())
	return tenantContainer(t, ok, body, "Name")
}

// tenantError is err as the request's tenant reads it: its names in the
// message without its prefix (a name conflict names "/web"); the error's
// kind is kept.
func tenantError(r *http.Request, err error) error {
	t, ok := tenant.FromContext(r.Context())
	if !ok || !strings.Contains(err.Error(), t.Prefix()) {
		return err
	}
	msg := err.Error()
	for _, before := range []string{`"`, "/", " "} {
		msg = strings.ReplaceAll(msg, before+t.Prefix(), before)
	}
	return errdefs.New(err, msg)
}

// tenantEvents keeps a tenant's own events of the stream (containers by
// their owner label, networks and volumes by name; images are shared) and
// maps their names.
func tenantEvents(r *http.Request, emit func([]byte) error) func([]byte) error {
	t, ok := tenant.FromContext(r.Context())
	if !ok {
		return emit
	}
	return func(b []byte) error {
		var ev struct {
			Type  string
			Actor struct{ Attributes map[string]string }
		}
		if json.Unmarshal(b, &ev) != nil {
			return nil
		}
		a := ev.Actor.Attributes
		switch ev.Type {
		case "container":
			if a[labels.Owner] != t.Name {
				return nil
			}
		case "network", "volume":
			if !t.HasPrefix(a["name"]) {
				return nil
			}
		case "image":
		default:
			return nil
		}
		b = tenantShown(t, true, b, "Actor", "Attributes", "name")
		return emit(b)
	}
}

// tenantInfo keeps a tenant's own containers in info's counts.
func tenantInfo(r *http.Request, ihs []engineapi.InfoHost) {
	t, ok := tenant.FromContext(r.Context())
	if !ok {
		return
	}
	for i := range ihs {
		own := ihs[i].Containers[:0:0]
		for _, c := range ihs[i].Containers {
			if t.OwnsLabels(c.Summary.Labels) {
				own = append(own, c)
			}
		}
		ihs[i].Containers = own
	}
}

// tenantObjects serves a tenant's network and volume routes: creates get
// the tenant's name and owner label; a reference is the tenant's own
// object (its name, or the ID of one of its own) or answers 404; lists
// keep its own; every answer shows its names. Prunes are refused: an
// engine prune cannot be narrowed to one tenant's objects that compose
// made without the label.
func (s *Server) tenantObjects(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, ok := tenant.FromContext(r.Context())
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		p := stripVersion(r.URL.Path)
		if p == "/system/df" {
			if err := record(next, r).replay(w, func(b []byte) []byte { return tenantDF(t, b) }); err != nil {
				s.Log.Debug("system df answer not written", "err", err)
			}
			return
		}
		kind, rest, found := strings.Cut(strings.TrimPrefix(p, "/"), "/")
		if kind != "networks" && kind != "volumes" {
			next.ServeHTTP(w, r)
			return
		}
		if err := s.tenantObject(w, r, next, t, kind, rest, found); err != nil {
			writeError(w, err)
		}
	})
}

func (s *Server) tenantObject(w http.ResponseWriter, r *http.Request, next http.Handler, t tenant.Scope, kind, rest string, sub bool) error {
	switch {
	case !sub && r.Method == http.MethodGet: // list
		rec := record(next, r)
		return rec.replay(w, func(b []byte) []byte { return tenantList(t, kind, b) })
	case rest == "create" && r.Method == http.MethodPost:
		if err := tenantCreateBody(s, r, t); err != nil {
			return err
		}
		rec := record(next, r)
		return rec.replay(w, func(b []byte) []byte { return tenantShown(t, true, b, "Name") })
	case rest == "prune":
		return errdefs.New(errdefs.ErrForbidden, kind+" prune is not available to tenants: remove your "+kind+" by name")
	}
	ref, tail, _ := strings.Cut(rest, "/")
	if kind == "volumes" && tail != "" {
		ref, tail = rest, "" // HOST/NAME
	}
	if ref, _ = url.PathUnescape(ref); ref == "" {
		next.ServeHTTP(w, r)
		return nil
	}
	own, err := s.tenantObjectRef(r, next, t, kind, ref)
	if err != nil {
		return err
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = strings.TrimSuffix(r.URL.Path, stripVersion(r.URL.Path)) + "/" + kind + "/" + own
	if tail != "" {
		r2.URL.Path += "/" + tail
	}
	r2.URL.RawPath = ""
	if tail == "connect" || tail == "disconnect" {
		if err := s.tenantConnectBody(r2); err != nil {
			return err
		}
	}
	rec := record(next, r2)
	return rec.replay(w, func(b []byte) []byte { return tenantShown(t, true, b, "Name") })
}

// tenantObjectRef is the engines' reference of the tenant's network or
// volume ref: by its name, else an ID of one of its own; else 404.
func (s *Server) tenantObjectRef(r *http.Request, next http.Handler, t tenant.Scope, kind, ref string) (string, error) {
	for _, x := range []string{engineRef(t, ref), ref} {
		probe := r.Clone(r.Context())
		probe.Method, probe.Body, probe.ContentLength = http.MethodGet, http.NoBody, 0
		probe.URL.Path = "/" + kind + "/" + x
		probe.URL.RawPath, probe.URL.RawQuery = "", ""
		rec := record(next, probe)
		if rec.status != http.StatusOK {
			continue
		}
		var obj struct{ Name string }
		if json.Unmarshal(rec.body.Bytes(), &obj) == nil && t.HasPrefix(obj.Name) {
			return x, nil
		}
	}
	if kind == "volumes" {
		return "", errdefs.New(errdefs.ErrNotFound, "get "+ref+": no such volume")
	}
	return "", errdefs.New(errdefs.ErrNotFound, "network "+ref+" not found")
}

// engineRef is the engines' name of a tenant's NAME or HOST/NAME.
func engineRef(t tenant.Scope, ref string) string {
	i := strings.LastIndexByte(ref, '/') + 1
	return ref[:i] + t.EngineName(ref[i:])
}

// randomHex is a name for a volume created without one, as an engine
// picks (64 hex digits).
func randomHex() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tenantCreateBody gives a network or volume create the tenant's name
// and owner label.
func tenantCreateBody(s *Server, r *http.Request, t tenant.Scope) error {
	body, err := s.readJSONBody(r)
	if err != nil {
		return err
	}
	var req struct {
		Name   string
		Labels map[string]string
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
	}
	set := map[string]json.RawMessage{}
	if req.Name != "" && !engineapi.IsBuiltinNetwork(req.Name) {
		set["Name"], _ = json.Marshal(engineRef(t, req.Name))
	} else if req.Name == "" {
		set["Name"], _ = json.Marshal(t.EngineName(randomHex()))
	}
	if req.Labels == nil {
		req.Labels = map[string]string{}
	}
	req.Labels[labels.Owner] = t.Name
	set["Labels"] = engineapi.MarshalLabels(req.Labels)
	if body, err = engineapi.SetFields(body, set); err != nil {
		return errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
	}
	setBody(r, body)
	return nil
}

// tenantConnectBody names the container of a network connect or
// disconnect by its ID, found among the tenant's own.
func (s *Server) tenantConnectBody(r *http.Request) error {
	body, err := s.readJSONBody(r)
	if err != nil {
		return err
	}
	var req struct{ Container string }
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
		}
	}
	if req.Container != "" {
		_, c, err := s.resolveContainer(r, req.Container)
		if err != nil {
			return err
		}
		raw, _ := json.Marshal(c.ID())
		if body, err = engineapi.SetFields(body, map[string]json.RawMessage{"Container": raw}); err != nil {
			return errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
		}
	}
	setBody(r, body)
	return nil
}

// tenantPruneQuery narrows a tenant's container prune to its own
// containers (the owner label, which every one of them carries).
func tenantPruneQuery(r *http.Request) error {
	t, ok := tenant.FromContext(r.Context())
	if !ok {
		return nil
	}
	q := r.URL.Query()
	f, err := engineapi.ParseFilters(q.Get("filters"))
	if err != nil {
		return errdefs.New(errdefs.ErrInvalid, err.Error())
	}
	if f == nil {
		f = engineapi.Filters{}
	}
	f.Add("label", labels.Owner+"="+t.Name)
	raw, _ := json.Marshal(f)
	q.Set("filters", string(raw))
	r.URL.RawQuery = q.Encode()
	return nil
}

// tenantDF keeps a tenant's own containers and volumes in system df.
func tenantDF(t tenant.Scope, b []byte) []byte {
	var df map[string]json.RawMessage
	if json.Unmarshal(b, &df) != nil {
		return b
	}
	keep := func(key string, own func(raw json.RawMessage) bool, path ...string) {
		var objs []json.RawMessage
		if json.Unmarshal(df[key], &objs) != nil || objs == nil {
			return
		}
		out := []json.RawMessage{}
		for _, o := range objs {
			if own(o) {
				out = append(out, tenantShown(t, true, o, path...))
			}
		}
		df[key], _ = json.Marshal(out)
	}
	keep("Containers", func(o json.RawMessage) bool {
		var c struct{ Names []string }
		return json.Unmarshal(o, &c) == nil && len(c.Names) > 0 && t.HasPrefix(c.Names[0])
	}, "Names")
	keep("Volumes", func(o json.RawMessage) bool {
		var v struct{ Name string }
		return json.Unmarshal(o, &v) == nil && t.HasPrefix(v.Name)
	}, "Name")
	out, _ := json.Marshal(df)
	return append(out, '\n')
}

// tenantList keeps the tenant's own objects of a network list (an array)
// or volume list ({"Volumes": [...]}) and shows their names.
func tenantList(t tenant.Scope, kind string, b []byte) []byte {
	filter := func(objs []json.RawMessage) []json.RawMessage {
		out := []json.RawMessage{}
		for _, o := range objs {
			var obj struct{ Name string }
			if json.Unmarshal(o, &obj) == nil && t.HasPrefix(obj.Name) {
				out = append(out, tenantShown(t, true, o, "Name"))
			}
		}
		return out
	}
	if kind == "networks" {
		var objs []json.RawMessage
		if json.Unmarshal(b, &objs) != nil {
			return b
		}
		out, _ := json.Marshal(filter(objs))
		return append(out, '\n')
	}
	var list map[string]json.RawMessage
	if json.Unmarshal(b, &list) != nil {
		return b
	}
	var objs []json.RawMessage
	_ = json.Unmarshal(list["Volumes"], &objs)
	list["Volumes"], _ = json.Marshal(filter(objs))
	out, _ := json.Marshal(list)
	return append(out, '\n')
}

// recorded is an answer held to be rewritten.
type recorded struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (rec *recorded) Header() http.Header { return rec.header }
func (rec *recorded) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec.body.Write(b)
}
func (rec *recorded) WriteHeader(code int) {
	if rec.status == 0 {
		rec.status = code
	}
}

// record serves r into a held answer.
func record(h http.Handler, r *http.Request) *recorded {
	rec := &recorded{header: http.Header{}}
	h.ServeHTTP(rec, r)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec
}

// replay writes the held answer, its body passed through f when 2xx.
func (rec *recorded) replay(w http.ResponseWriter, f func([]byte) []byte) error {
	body := rec.body.Bytes()
	if rec.status < 300 && len(body) > 0 {
		body = f(body)
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	w.WriteHeader(rec.status)
	_, err := w.Write(body)
	return err
}
