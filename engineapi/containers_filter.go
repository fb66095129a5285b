package engineapi

// Container-list filtering, as the Docker engine does it for
// GET /containers/json (moby's daemon/list.go and api/types/filters), applied
// to the fleet's merged container caches. Everything here is pure: the only
// outside knowledge, which image an `ancestor` value names on a host, comes
// from the caller's imageResolver.

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
)

var (
	// errInvalidFilter is the kind of every error caused by bad list input
	// (filters, limit): the caller answers 400. It is also errdefs.ErrInvalid.
	ErrInvalidFilter error = &errdefs.Message{Text: "invalid filter", Kind: errdefs.ErrInvalid}
	// errNoSuchContainer is the kind of the error for a before/since reference
	// naming no container: the caller answers 404. It is also
	// errdefs.ErrNotFound.
	ErrNoSuchContainer error = &errdefs.Message{Text: "no such container", Kind: errdefs.ErrNotFound}
)

// invalidFilterf returns an error of kind errInvalidFilter whose text is
// exactly the engine's.
func invalidFilterf(format string, args ...any) error {
	return &errdefs.Message{Text: fmt.Sprintf(format, args...), Kind: ErrInvalidFilter}
}

// containerListOptions are the query parameters of GET /containers/json.
type ContainerListOptions struct {
	All     bool
	Limit   int // -1 or 0 = no limit
	Latest  bool
	Size    bool
	Filters Filters
	// ShownName, when set, is the name a container's engine name is shown
	// as to the caller (a tenant's names without its key): the name
	// filter and the names of before and since match those, as an engine
	// would match the names it shows.
	ShownName func(engine string) string
}

// parseContainerListOptions parses the query of GET /containers/json: all,
// size and latest as the engine reads booleans, limit (or the CLI's name for
// it, last) as an integer, and filters in both JSON forms, the map form
// {"label":{"k=v":true}} and the legacy list form {"label":["k=v"]}. An empty
// filters string is no filter. Filter names and values are checked by
// listContainers, as the engine checks them when listing.
func ParseContainerListOptions(q url.Values) (ContainerListOptions, error) {
	opts := ContainerListOptions{
		All:    QueryBool(q, "all"),
		Size:   QueryBool(q, "size"),
		Latest: QueryBool(q, "latest"),
	}
	for _, key := range []string{"limit", "last"} {
		s := q.Get(key)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return ContainerListOptions{}, invalidFilterf("%s", err.Error())
		}
		opts.Limit = n
		break
	}
	f, err := ParseFilters(q.Get("filters"))
	if err != nil {
		return ContainerListOptions{}, err
	}
	opts.Filters = f
	return opts, nil
}

// queryBool reads a boolean query parameter as the engine's httputils.BoolValue:
// anything but "", "0", "no", "false" and "none" (any case) is true.
func QueryBool(q url.Values, key string) bool {
	switch strings.ToLower(strings.TrimSpace(q.Get(key))) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

// filterArgs maps a filter name to its set of values, as the engine's
// filters.Args. Values are keys of the inner map; as in the engine, a value
// present with false is walked and regex-matched but never matches exactly.
type Filters map[string]map[string]bool

// parseFilterArgs decodes the filters query parameter as filters.FromJSON.
func ParseFilters(s string) (Filters, error) {
	if s == "" {
		return Filters{}, nil
	}
	var f Filters
	if err := json.Unmarshal([]byte(s), &f); err == nil {
		if f == nil {
			f = Filters{}
		}
		return f, nil
	}
	// The legacy form, sent by clients of API versions before 1.22.
	var legacy map[string][]string
	if err := json.Unmarshal([]byte(s), &legacy); err != nil {
		return nil, invalidFilterf("invalid filter")
	}
	f = make(Filters, len(legacy))
	for k, vs := range legacy {
		set := make(map[string]bool, len(vs))
		for _, v := range vs {
			set[v] = true
		}
		f[k] = set
	}
	return f, nil
}

// add adds value to the set of values of key.
func (f Filters) Add(key, value string) {
	if f[key] == nil {
		f[key] = map[string]bool{}
	}
	f[key][value] = true
}

// contains tells whether key was given at all, even with no value.
func (f Filters) Contains(key string) bool {
	_, ok := f[key]
	return ok
}

// values returns the values of key, sorted so that errors and results do not
// depend on map order.
func (f Filters) Values(key string) []string {
	vs := make([]string, 0, len(f[key]))
	for v := range f[key] {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

// exactMatch is filters.Args.ExactMatch: true when key has no value, or when
// source is one of them.
func (f Filters) ExactMatch(key, source string) bool {
	vs := f[key]
	if len(vs) == 0 {
		return true
	}
	return vs[source]
}

// match is filters.Args.Match: exactMatch, or any value, as an unanchored
// regular expression, matches source (values that do not compile are
// skipped).
func (f Filters) Match(key, source string) bool {
	return newMatcher(f, key).match(source)
}

// matchKVList is filters.Args.MatchKVList: every value "k" or "k=v" of key
// must be a label of sources (with that value).
func (f Filters) MatchKVList(key string, sources map[string]string) bool {
	vs := f[key]
	if len(vs) == 0 {
		return true
	}
	if len(sources) == 0 {
		return false
	}
	for value := range vs {
		k, v, hasValue := strings.Cut(value, "=")
		got, ok := sources[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}

// matcher is filterArgs.match with its regular expressions compiled once per
// listing rather than once per container.
type matcher struct {
	exact map[string]bool
	res   []*regexp.Regexp
}

func newMatcher(f Filters, key string) matcher {
	m := matcher{exact: f[key]}
	for _, v := range f.Values(key) {
		if re, err := regexp.Compile(v); err == nil {
			m.res = append(m.res, re)
		}
	}
	return m
}

func (m matcher) match(source string) bool {
	if len(m.exact) == 0 || m.exact[source] {
		return true
	}
	for _, re := range m.res {
		if re.MatchString(source) {
			return true
		}
	}
	return false
}

// acceptedContainerFilters are the engine's acceptedPsFilterTags plus
// Clocker's own "node".
var acceptedContainerFilters = map[string]bool{
	"ancestor":  true,
	"before":    true,
	"exited":    true,
	"expose":    true,
	"health":    true,
	"id":        true,
	"is-task":   true,
	"isolation": true,
	"label":     true,
	"name":      true,
	"network":   true,
	"publish":   true,
	"since":     true,
	"status":    true,
	"volume":    true,
	"node":      true,
}

var validContainerStates = map[string]bool{
	string(container.StateCreated):    true,
	string(container.StateRunning):    true,
	string(container.StatePaused):     true,
	string(container.StateRestarting): true,
	string(container.StateRemoving):   true,
	string(container.StateExited):     true,
	string(container.StateDead):       true,
}

var validHealthStates = map[string]bool{
	string(container.NoHealthcheck): true,
	string(container.Starting):      true,
	string(container.Healthy):       true,
	string(container.Unhealthy):     true,
}

// imageResolver tells which image ID an `ancestor` value names on a host
// ("" when the host lacks it); the caller does the lookups.
type ImageResolver func(host, ref string) (imageID string)

// listContainers filters, orders (newest first by Created, ties stable), and
// limits the merged fleet list, as the engine's GET /containers/json. all is
// the whole fleet, stopped containers included: before/since and id prefixes
// are resolved against it. The result is never nil.
func ListContainers(all []hosts.Container, opts ContainerListOptions, resolveImage ImageResolver) ([]hosts.Container, error) {
	lc, err := newListContext(all, opts, resolveImage)
	if err != nil {
		return nil, err
	}
	sorted := slices.Clone(all)
	slices.SortStableFunc(sorted, func(a, b hosts.Container) int {
		return createdAt(&b).Compare(createdAt(&a))
	})
	out := []hosts.Container{}
	for i := range sorted {
		if lc.limit > 0 && len(out) == lc.limit {
			break
		}
		if lc.include(&sorted[i]) {
			out = append(out, sorted[i])
		}
	}
	return out, nil
}

// portRange is one publish or expose filter value: start-end/proto.
type portRange struct {
	start, end uint16
	proto      string
}

// listContext is the engine's listContext: the filters, checked and folded.
type listContext struct {
	filters Filters
	all     bool
	limit   int

	names, ids matcher
	// shown maps an engine name to the one the caller sees.
	shown func(string) string
	// idMatches are the IDs the id filter values name as unique prefixes;
	// nil when there is no id value.
	idMatches map[string]bool
	// nameFilter tells whether the name filter has values.
	nameFilter bool

	exitAllowed []int
	status      matcher

	taskFilter, isTask bool

	before, since []time.Time

	ancestors    []string
	resolveImage ImageResolver
	resolved     map[[2]string]string

	publish, expose []portRange
}

// newListContext is the engine's foldFilter: it checks the filters in the
// engine's order, so that the first error is the one the engine would give.
func newListContext(all []hosts.Container, opts ContainerListOptions, resolveImage ImageResolver) (*listContext, error) {
	f := opts.Filters
	if f == nil {
		f = Filters{}
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !acceptedContainerFilters[k] {
			return nil, invalidFilterf("invalid filter '%s'", k)
		}
	}

	lc := &listContext{
		filters:      f,
		all:          opts.All,
		limit:        opts.Limit,
		resolveImage: resolveImage,
		resolved:     map[[2]string]string{},
		shown:        opts.ShownName,
	}
	if lc.shown == nil {
		lc.shown = func(name string) string { return name }
	}
	// The CLI's --latest is --last 1 unless --last is given.
	if opts.Latest && lc.limit <= 0 {
		lc.limit = 1
	}

	for _, v := range f.Values("exited") {
		code, err := strconv.Atoi(v)
		if err != nil {
			return nil, invalidFilterf("%s", err.Error())
		}
		lc.exitAllowed = append(lc.exitAllowed, code)
	}

	for _, v := range f.Values("status") {
		if !validContainerStates[v] {
			return nil, invalidFilterf("invalid filter 'status=%s'", v)
		}
		// Any status value lists stopped containers too.
		lc.all = true
	}

	if f.Contains("is-task") {
		switch {
		case f.ExactMatch("is-task", "true"):
			lc.taskFilter, lc.isTask = true, true
		case f.ExactMatch("is-task", "false"):
			lc.taskFilter, lc.isTask = true, false
		default:
			return nil, invalidFilterf("invalid filter 'is-task=%s'", f.Values("is-task"))
		}
	}

	for _, v := range f.Values("health") {
		if !validHealthStates[v] {
			return nil, invalidFilterf("Unrecognised filter value for health: %s", v)
		}
	}

	for _, key := range []string{"before", "since"} {
		for _, v := range f.Values(key) {
			ref, err := containerRef(all, v, lc.shown)
			if err != nil {
				return nil, err
			}
			t := createdAt(ref)
			if key == "before" {
				lc.before = append(lc.before, t)
			} else {
				lc.since = append(lc.since, t)
			}
		}
	}

	if f.Contains("ancestor") {
		// With no value, nothing matches, as in the engine.
		lc.ancestors = f.Values("ancestor")
	}

	for _, key := range []string{"publish", "expose"} {
		for _, v := range f.Values(key) {
			pr, err := parsePortFilter(key, v)
			if err != nil {
				return nil, err
			}
			if key == "publish" {
				lc.publish = append(lc.publish, pr)
			} else {
				lc.expose = append(lc.expose, pr)
			}
		}
	}

	lc.names = newMatcher(f, "name")
	lc.nameFilter = len(f["name"]) > 0
	lc.ids = newMatcher(f, "id")
	lc.status = newMatcher(f, "status")
	if ids := f.Values("id"); len(ids) > 0 {
		// The engine only lists the containers whose IDs the id values name
		// as unique prefixes (its fast path), then also matches the values
		// as regular expressions against the ID.
		lc.idMatches = map[string]bool{}
		for _, v := range ids {
			if id, ok := uniqueIDPrefix(all, v); ok {
				lc.idMatches[id] = true
			}
		}
	}
	return lc, nil
}

// containerRef finds the container a before or since value names, as the
// engine: its full ID, else its name (with or without the leading slash) if
// exactly one container has it. Clocker also takes a unique ID prefix, which
// the engine does not.
func containerRef(all []hosts.Container, ref string, shown func(string) string) (*hosts.Container, error) {
	for i := range all {
		if all[i].Summary.ID == ref {
			return &all[i], nil
		}
	}
	notFound := &errdefs.Message{Text: "No such container: " + ref, Kind: ErrNoSuchContainer}
	var found *hosts.Container
	search := strings.TrimPrefix(ref, "/")
	for i := range all {
		for _, n := range all[i].Summary.Names {
			if strings.TrimPrefix(shown(n), "/") != search {
				continue
			}
			if found != nil && found.Summary.ID != all[i].Summary.ID {
				// Ambiguous across the fleet: the engine answers not found.
				return nil, notFound
			}
			found = &all[i]
		}
	}
	if found != nil {
		return found, nil
	}
	if ref != "" {
		for i := range all {
			if !strings.HasPrefix(all[i].Summary.ID, ref) {
				continue
			}
			if found != nil && found.Summary.ID != all[i].Summary.ID {
				return nil, invalidFilterf("multiple IDs found with provided prefix: %s", ref)
			}
			found = &all[i]
		}
	}
	if found == nil {
		return nil, notFound
	}
	return found, nil
}

// uniqueIDPrefix returns the one container ID of the fleet that starts with
// prefix, as the engine's GetByPrefix (an empty or ambiguous prefix names
// nothing).
func uniqueIDPrefix(all []hosts.Container, prefix string) (string, bool) {
	if prefix == "" {
		return "", false
	}
	found := ""
	for i := range all {
		id := all[i].Summary.ID
		if !strings.HasPrefix(id, prefix) {
			continue
		}
		if found != "" && found != id {
			return "", false
		}
		found = id
	}
	return found, found != ""
}

// parsePortFilter parses a publish or expose value, <port>[/<proto>] or
// <start>-<end>[/<proto>], with the engine's (go-connections') wording.
func parsePortFilter(key, value string) (portRange, error) {
	if strings.Contains(value, ":") {
		return portRange{}, invalidFilterf("filter for '%s' should not contain ':': %s", key, value)
	}
	fail := func(err string) (portRange, error) {
		return portRange{}, invalidFilterf("error while looking up for %s %s: %s", key, value, err)
	}
	port, proto, _ := strings.Cut(value, "/")
	if port == "" {
		return fail("empty string specified for ports")
	}
	if proto == "" {
		proto = "tcp"
	}
	startS, endS, isRange := strings.Cut(port, "-")
	start, err := parsePortNumber(startS)
	if err != "" {
		return fail(fmt.Sprintf("invalid start port '%s': %s", startS, err))
	}
	end := start
	if isRange && startS != endS {
		if end, err = parsePortNumber(endS); err != "" {
			return fail(fmt.Sprintf("invalid end port '%s': %s", endS, err))
		}
		if end < start {
			return fail("invalid port range: " + port)
		}
	}
	return portRange{start: start, end: end, proto: proto}, nil
}

// parsePortNumber parses a port number as go-connections, returning its
// error text ("" when valid).
func parsePortNumber(s string) (uint16, string) {
	if s == "" {
		return 0, "value is empty"
	}
	n, err := strconv.ParseInt(s, 10, 0)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok {
			return 0, ne.Err.Error()
		}
		return 0, err.Error()
	}
	if n < 0 || n > 65535 {
		return 0, "value out of range (0–65535)"
	}
	return uint16(n), ""
}

func (pr portRange) has(port uint16, proto string) bool {
	return proto == pr.proto && port >= pr.start && port <= pr.end
}

// include is the engine's includeContainerInList, the limit aside.
func (lc *listContext) include(c *hosts.Container) bool {
	s := &c.Summary
	created := createdAt(c)
	for _, t := range lc.before {
		if !created.Before(t) {
			return false
		}
	}
	for _, t := range lc.since {
		if !created.After(t) {
			return false
		}
	}

	state := containerState(s)
	// The engine's Running is true for paused and restarting containers too.
	running := state == string(container.StateRunning) ||
		state == string(container.StatePaused) ||
		state == string(container.StateRestarting)
	if !running && !lc.all && lc.limit <= 0 {
		return false
	}

	if lc.idMatches != nil && !lc.idMatches[s.ID] {
		return false
	}
	if lc.nameFilter {
		if lc.idMatches == nil && !slices.ContainsFunc(s.Names, lc.matchName) {
			return false
		}
		if !lc.matchName(primaryName(s.Names)) {
			return false
		}
	}
	if !lc.ids.match(s.ID) {
		return false
	}

	// Clocker lists plain engine containers, never swarm tasks.
	if lc.taskFilter && lc.isTask {
		return false
	}

	if !lc.filters.MatchKVList("label", s.Labels) {
		return false
	}
	// isolation: on Linux engines the filter never excludes (the engine only
	// applies it on Windows).

	if len(lc.exitAllowed) > 0 {
		code, ok := exitCode(s.Status)
		if running || !ok || !slices.Contains(lc.exitAllowed, code) {
			return false
		}
	}

	if !lc.status.match(state) {
		return false
	}

	if !lc.filters.ExactMatch("health", healthStatus(s)) {
		return false
	}

	if lc.filters.Contains("volume") && !lc.matchVolume(s) {
		return false
	}

	if lc.ancestors != nil && !lc.matchAncestor(c) {
		return false
	}

	if lc.filters.Contains("network") && !lc.matchNetwork(s) {
		return false
	}

	if len(lc.publish) > 0 || len(lc.expose) > 0 {
		found := false
		for _, p := range s.Ports {
			if slices.ContainsFunc(lc.publish, func(pr portRange) bool { return pr.has(p.PublicPort, p.Type) }) ||
				slices.ContainsFunc(lc.expose, func(pr portRange) bool { return pr.has(p.PrivatePort, p.Type) }) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}

	if !lc.filters.ExactMatch("node", c.Host) {
		return false
	}
	return true
}

// matchName matches a name, as the caller sees it, with and without its
// leading slash.
func (lc *listContext) matchName(name string) bool {
	name = lc.shown(name)
	return lc.names.match(name) || lc.names.match(strings.TrimPrefix(name, "/"))
}

// matchVolume: a value is a mount's destination, or its volume name (its
// source for mounts without a name, such as binds).
func (lc *listContext) matchVolume(s *container.Summary) bool {
	for _, v := range lc.filters.Values("volume") {
		for _, m := range s.Mounts {
			if m.Destination != "" && m.Destination == v {
				return true
			}
			if (m.Name != "" && m.Name == v) || (m.Name == "" && m.Source == v) {
				return true
			}
		}
	}
	return false
}

// matchNetwork: a value is the name of one of the container's networks or a
// prefix of one of their IDs.
func (lc *listContext) matchNetwork(s *container.Summary) bool {
	if s.NetworkSettings == nil {
		return false
	}
	for _, v := range lc.filters.Values("network") {
		if _, ok := s.NetworkSettings.Networks[v]; ok {
			return true
		}
		for _, nw := range s.NetworkSettings.Networks {
			if nw != nil && strings.HasPrefix(nw.NetworkID, v) {
				return true
			}
		}
	}
	return false
}

// matchAncestor: a value matches when it resolves, on the container's host,
// to the container's image ID; when it is that image ID; or when it is the
// container's image reference, both normalised (busybox ==
// docker.io/library/busybox:latest). With no resolver, an image ID prefix
// also matches. Containers of images built on the ancestor (its children)
// are not found, unlike in the engine.
func (lc *listContext) matchAncestor(c *hosts.Container) bool {
	imageID := trimDigestAlgo(c.Summary.ImageID)
	image := normalizeImageRef(c.Summary.Image)
	for _, v := range lc.ancestors {
		if v == "" {
			continue
		}
		if imageID != "" && trimDigestAlgo(v) == imageID {
			return true
		}
		if image != "" && normalizeImageRef(v) == image {
			return true
		}
		if lc.resolveImage == nil {
			if p := trimDigestAlgo(v); imageID != "" && isHex(p) && strings.HasPrefix(imageID, p) {
				return true
			}
			continue
		}
		key := [2]string{c.Host, v}
		id, ok := lc.resolved[key]
		if !ok {
			id = lc.resolveImage(c.Host, v)
			lc.resolved[key] = id
		}
		if id != "" && trimDigestAlgo(id) == imageID {
			return true
		}
	}
	return false
}

// createdAt is the container's precise creation time, or the list's seconds
// when the cache has none.
func createdAt(c *hosts.Container) time.Time {
	if !c.Created.IsZero() {
		return c.Created
	}
	return time.Unix(c.Summary.Created, 0)
}

// primaryName is the container's own name: link names ("/app/db") have a
// second slash.
func primaryName(names []string) string {
	for _, n := range names {
		if !strings.Contains(strings.TrimPrefix(n, "/"), "/") {
			return n
		}
	}
	if len(names) > 0 {
		return names[0]
	}
	return ""
}

// containerState is the engine's state string, from State, or from the
// human Status when State is missing.
func containerState(s *container.Summary) string {
	if s.State != "" {
		return string(s.State)
	}
	st := s.Status
	switch {
	case strings.HasPrefix(st, "Up"):
		if strings.HasSuffix(st, "(Paused)") {
			return string(container.StatePaused)
		}
		return string(container.StateRunning)
	case strings.HasPrefix(st, "Restarting"):
		return string(container.StateRestarting)
	case strings.HasPrefix(st, "Removal In Progress"):
		return string(container.StateRemoving)
	case strings.HasPrefix(st, "Dead"):
		return string(container.StateDead)
	case strings.HasPrefix(st, "Created"):
		return string(container.StateCreated)
	default:
		return string(container.StateExited)
	}
}

// healthStatus is the container's health: Summary.Health when the engine
// gives it (API 1.52+), else parsed from Status, where engines write it only
// for running, unpaused containers: "Up 3 seconds (healthy)", "(unhealthy)",
// "(health: starting)". Without either it is "none".
func healthStatus(s *container.Summary) string {
	if s.Health != nil && s.Health.Status != "" {
		return string(s.Health.Status)
	}
	switch {
	case strings.HasSuffix(s.Status, "(healthy)"):
		return string(container.Healthy)
	case strings.HasSuffix(s.Status, "(unhealthy)"):
		return string(container.Unhealthy)
	case strings.HasSuffix(s.Status, "(health: starting)"):
		return string(container.Starting)
	}
	return string(container.NoHealthcheck)
}

// exitCode parses the exit code out of a Status such as
// "Exited (137) 2 minutes ago".
func exitCode(status string) (int, bool) {
	rest, ok := strings.CutPrefix(status, "Exited (")
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, ")")
	if !ok {
		return 0, false
	}
	code, err := strconv.Atoi(num)
	return code, err == nil
}

func trimDigestAlgo(id string) string {
	return strings.TrimPrefix(id, "sha256:")
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return true
}

// normalizeImageRef writes an image reference in its full form, as
// distribution/reference's ParseNormalizedNamed followed by TagNameOnly:
// busybox, busybox:latest, library/busybox and
// docker.io/library/busybox:latest are all docker.io/library/busybox:latest.
// A full 64-hex ID becomes sha256:<id>; digests are kept.
func normalizeImageRef(ref string) string {
	if ref == "" || strings.HasPrefix(ref, "sha256:") {
		return ref
	}
	if len(ref) == 64 && isHex(ref) {
		return "sha256:" + ref
	}
	name, digest, hasDigest := strings.Cut(ref, "@")
	tag := ""
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name, tag = name[:i], name[i+1:]
	}
	domain, path := "docker.io", name
	if i := strings.IndexByte(name, '/'); i >= 0 {
		first := name[:i]
		if strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first {
			domain, path = first, name[i+1:]
		}
	}
	if domain == "index.docker.io" {
		domain = "docker.io"
	}
	if domain == "docker.io" && !strings.Contains(path, "/") {
		path = "library/" + path
	}
	out := domain + "/" + path
	if tag == "" && !hasDigest {
		tag = "latest"
	}
	if tag != "" {
		out += ":" + tag
	}
	if hasDigest {
		out += "@" + digest
	}
	return out
}
