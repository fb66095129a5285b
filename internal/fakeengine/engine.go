// Package fakeengine is an in-process Docker engine for tests and
// benchmarks: enough of the Engine API for the fleet's cache (ping, info,
// version, the event stream, list, inspect) and for the proxy's paths
// (create, start, stop, kill, restart, wait, delete, logs, attach, exec,
// images with pull, load, tag, remove, commit and build, volumes,
// networks, system df),
// with version-prefixed paths and Docker's error bodies (dockerd 20.10's
// wording).
//
//	Engine (state, http.Handler) ──► Server (one listener each: tcp or unix)
//
// It is lean on purpose, so that one process can carry a thousand engines
// and tens of thousands of containers: containers are small structs, names
// are indexed, answers are encoded from typed structs, and an event stream
// costs one goroutine and one buffered channel.
//
// It runs nothing: "running" is a state; a container's output is what a
// test writes (WriteLog); attached processes echo their stdin (see
// streams.go); events are kept for since/until only with
// Options.EventHistory. Tests steer it with hooks no real engine has:
// Intercept and Hang (failure injection, delays), Spec.Quiet and
// RemoveQuietly (lost events), Emit and Publish (events of their making),
// DropEventStreams, RecordCalls and CountRequests.
package fakeengine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure one engine. Zero values take the defaults noted.
type Options struct {
	Name     string   // GET /info Name; default "fake"
	Labels   []string // engine labels (GET /info Labels)
	Images   []string // image references present ("busybox" is busybox:latest)
	Volumes  []string // named volumes present
	Networks []string // user networks present (bridge, host and none always are)
	MaxAPI   string   // default 1.41
	MinAPI   string   // default 1.12
	Version  string   // engine version; default 20.10.24
	NCPU     int      // default 2
	MemTotal int64    // default 2 GiB
	// EventBuffer is each event stream's queue; a reader that falls further
	// behind loses events, as with a real engine. Default 256.
	EventBuffer int
	// EventHistory is how many past events an engine keeps for a stream's
	// since (dockerd keeps 256). Default 0: none, as befits a thousand
	// engines in one process.
	EventHistory int
	// IdleTimeout closes a Server's keep-alive connections idle that long
	// (0: never, as dockerd), to shed a client's idle pool.
	IdleTimeout time.Duration
}

func (o *Options) defaults() {
	if o.Name == "" {
		o.Name = "fake"
	}
	if o.MaxAPI == "" {
		o.MaxAPI = "1.41"
	}
	if o.MinAPI == "" {
		o.MinAPI = "1.12"
	}
	if o.Version == "" {
		o.Version = "20.10.24"
	}
	if o.NCPU == 0 {
		o.NCPU = 2
	}
	if o.MemTotal == 0 {
		o.MemTotal = 2 << 30
	}
	if o.EventBuffer == 0 {
		o.EventBuffer = 256
	}
}

// Container states.
const (
	StateCreated = "created"
	StateRunning = "running"
	StateExited  = "exited"
)

type ctr struct {
	id, name, image string
	imageID         string            // what image named at the create (sha256:…)
	labels          map[string]string // nil when none
	cmd             []string
	env             []string
	tty             bool
	hostConfig      json.RawMessage // as the client sent it; nil when none
	created         int64           // unix nanoseconds
	started         int64
	finished        int64
	state           string
	exitCode        int
	exited          chan struct{} // made by wait; closed on stop
	removed         chan struct{} // made by wait?condition=removed; closed on removal
	logs            []logLine     // what the container wrote (WriteLog)
	logged          chan struct{} // closed and renewed when a line is written
	execIDs         []string
	volumes         []string // named volumes in use (HostConfig Binds and Mounts)
	picked          []int    // host ports the engine picked at start, in binding order
}

type image struct {
	id      string // sha256:…
	refs    []string
	digests []string // repo@sha256:…
}

// Engine is one fake Docker engine. Its methods and ServeHTTP may be
// called concurrently.
type Engine struct {
	opts Options
	// hook, when set, sees every request first (see Intercept).
	hook atomic.Pointer[Interceptor]

	mu         sync.Mutex
	seq        uint64
	containers map[string]*ctr    // by full ID
	names      map[string]*ctr    // by name without the slash
	images     map[string]*image  // by normalised reference
	dangling   map[string]*image  // by ID: kept without a tag (a commit without one, or a container uses it)
	imageSeq   uint64             // images made by commit and build
	volumes    map[string]*volume // by name
	networks   map[string]*netw   // by ID
	subs       map[*subscriber]struct{}
	requests   map[string]int // served requests by "METHOD /path" (unversioned, IDs kept)
	countReqs  bool
	calls      []Call // served requests, when recording (RecordCalls)
	recordCall bool
	execs      map[string]*execInst
	nextPort   int         // host ports picked so far
	followers  int         // open logs?follow=1 streams
	quiet      bool        // publish nothing (Spec.Quiet, RemoveQuietly)
	history    []histEntry // the last EventHistory events

	down chan struct{} // closed by Shutdown; renewed by Serve (under mu)
}

// New returns an engine holding opts' images, volumes and networks.
func New(opts Options) *Engine {
	opts.defaults()
	e := &Engine{
		opts:       opts,
		containers: map[string]*ctr{},
		names:      map[string]*ctr{},
		images:     map[string]*image{},
		dangling:   map[string]*image{},
		volumes:    map[string]*volume{},
		networks:   map[string]*netw{},
		subs:       map[*subscriber]struct{}{},
		execs:      map[string]*execInst{},
		down:       make(chan struct{}),
	}
	for _, ref := range opts.Images {
		e.addImageLocked(ref)
	}
	e.initNetworksLocked()
	for _, v := range opts.Volumes {
		e.addVolumeLocked(v, "local", nil)
	}
	for _, n := range opts.Networks {
		e.addNetworkLocked(n, "bridge", nil)
	}
	return e
}

// Name is the engine's own name.
func (e *Engine) Name() string { return e.opts.Name }

// Shutdown ends every event stream and wait; the engine answers nothing
// more through a Server (close that too).
func (e *Engine) Shutdown() {
	e.mu.Lock()
	defer e.mu.Unlock()
	select {
	case <-e.down:
	default:
		close(e.down)
	}
}

// up brings a shut-down engine back, with what it held (a rebooted host
// with its disk).
func (e *Engine) up() {
	e.mu.Lock()
	defer e.mu.Unlock()
	select {
	case <-e.down:
		e.down = make(chan struct{})
	default:
	}
}

// downC is closed when the engine shuts down.
func (e *Engine) downC() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.down
}

// Call is one request an engine served (see RecordCalls).
type Call struct {
	Method  string
	Path    string // without the /vX.Y prefix
	Version string // the path's version, "" when unversioned
	Query   url.Values
	// RawQuery is the query as sent.
	RawQuery string
	Body     string // a request body of known length up to 1 MiB
}

func (c Call) String() string { return c.Method + " " + c.Path }

// RecordCalls starts keeping every served request (see Calls).
func (e *Engine) RecordCalls() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.recordCall = true
}

// Calls returns the requests served since RecordCalls, in order; with
// method "", of any method; with prefix, those whose path starts so.
func (e *Engine) Calls(method, prefix string) []Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Call
	for _, c := range e.calls {
		if (method == "" || c.Method == method) && strings.HasPrefix(c.Path, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// Called reports whether the engine served method path (unversioned,
// exactly) since RecordCalls.
func (e *Engine) Called(method, path string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.calls {
		if c.Method == method && c.Path == path {
			return true
		}
	}
	return false
}

// Container is what a test may read of a container.
type Container struct {
	ID, Name, Image string
	Labels          map[string]string
	Cmd, Env        []string
	Tty             bool
	HostConfig      json.RawMessage // as the client sent it; nil when none
	State           string
	ExitCode        int
	Created         time.Time
}

// Container returns a copy of a container by reference (full ID, name or
// unique ID prefix).
func (e *Engine) Container(ref string) (Container, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.resolveLocked(ref)
	if err != nil {
		return Container{}, false
	}
	labels := make(map[string]string, len(c.labels))
	for k, v := range c.labels {
		labels[k] = v
	}
	return Container{ID: c.id, Name: c.name, Image: c.image, Labels: labels, Cmd: c.cmd, Env: c.env, Tty: c.tty,
		HostConfig: append(json.RawMessage(nil), c.hostConfig...), State: c.state, ExitCode: c.exitCode,
		Created: time.Unix(0, c.created).UTC()}, true
}

// Exit ends a running container's process with code, as when it exits
// by itself (a "die" event; waits answer).
func (e *Engine) Exit(ref string, code int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.resolveLocked(ref)
	if err != nil {
		return err
	}
	if c.state != StateRunning {
		return errf(409, "Container %s is not running", c.id)
	}
	e.stopLocked(c, code, "die")
	return nil
}

// CountRequests starts counting served requests (see Requests).
func (e *Engine) CountRequests() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.countReqs = true
	if e.requests == nil {
		e.requests = map[string]int{}
	}
}

// Requests returns how many requests were served by "METHOD /path" (path
// without its version prefix) since CountRequests.
func (e *Engine) Requests() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int, len(e.requests))
	for k, v := range e.requests {
		out[k] = v
	}
	return out
}

// clock hands out creation times, strictly increasing across every engine
// of the process, so that "newest first" is deterministic across hosts.
var clock atomic.Int64

func (e *Engine) now() int64 {
	// Creation times must order containers: never equal, never backwards.
	for {
		last := clock.Load()
		t := time.Now().UnixNano()
		if t <= last {
			t = last + 1
		}
		if clock.CompareAndSwap(last, t) {
			return t
		}
	}
}

// Interceptor sees a request before the engine: it answers it itself
// (failure injection, a hang, a delay) or passes it on to next, the
// engine.
type Interceptor func(w http.ResponseWriter, r *http.Request, next http.Handler)

// Intercept puts fn in front of every request from now on; nil removes
// it. Requests fn does not pass on are not counted (see CountRequests).
func (e *Engine) Intercept(fn Interceptor) {
	if fn == nil {
		e.hook.Store(nil)
		return
	}
	e.hook.Store(&fn)
}

// Hang makes every request but GET /events hang until its client gives
// up, as an engine behind a partition whose streams stay open; Hang(false)
// ends that. It replaces any Interceptor.
func (e *Engine) Hang(on bool) {
	if !on {
		e.Intercept(nil)
		return
	}
	e.Intercept(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if _, p := splitVersion(r.URL.Path); p == "/events" {
			next.ServeHTTP(w, r)
			return
		}
		<-r.Context().Done()
	})
}

// DropEventStreams cuts the connections of the event streams open now
// (the engine stays up; a client reconnects), as when a connection
// breaks.
func (e *Engine) DropEventStreams() { e.DropEventStreamsWhere(nil) }

// DropEventStreamsWhere cuts the open event streams whose query drop
// accepts (nil: all).
func (e *Engine) DropEventStreamsWhere(drop func(query url.Values) bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for s := range e.subs {
		if drop == nil || drop(s.query) {
			select {
			case <-s.kick:
			default:
				close(s.kick)
			}
		}
	}
}

// EventStreams is how many event streams are open.
func (e *Engine) EventStreams() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.subs)
}

// Spec is what a container is created from.
type Spec struct {
	ID         string // full 64-hex ID; empty: generated
	Name       string // empty: generated
	Image      string // must be present
	Labels     map[string]string
	Cmd        []string
	Env        []string
	Tty        bool
	HostConfig json.RawMessage
	// Networks are user networks (names or IDs) to join besides the one
	// of HostConfig.NetworkMode; each must exist.
	Networks []string
	// Running starts the container at once.
	Running bool
	// Quiet publishes no events for the creation (and start), as if the
	// engine's event stream lost them: only a list or inspect shows the
	// container.
	Quiet bool
}

// networkModeOf reads HostConfig.NetworkMode.
func networkModeOf(hostConfig json.RawMessage) string {
	var hc struct{ NetworkMode string }
	if hostConfig != nil {
		_ = json.Unmarshal(hostConfig, &hc)
	}
	return hc.NetworkMode
}

// Error is an engine answer other than success: its status and Docker's
// message.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

func errf(status int, format string, args ...any) error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// Create makes a container as POST /containers/create does (events
// included) and returns its full ID.
func (e *Engine) Create(s Spec) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s.Quiet {
		e.quiet = true
		defer func() { e.quiet = false }()
	}
	c, err := e.createLocked(s)
	if err != nil {
		return "", err
	}
	if s.Running {
		e.startLocked(c)
	}
	return c.id, nil
}

func (e *Engine) createLocked(s Spec) (*ctr, error) {
	if s.Name != "" && !validName.MatchString(s.Name) {
		return nil, errf(400, "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", s.Name)
	}
	if s.Image == "" {
		return nil, errf(400, "config cannot be empty in order to create a container")
	}
	im := e.findImageLocked(s.Image)
	if im == nil {
		return nil, errf(404, "No such image: %s", s.Image)
	}
	var joins []*netw
	for _, ref := range append([]string{networkModeOf(s.HostConfig)}, s.Networks...) {
		if _, builtin := builtinDrivers[ref]; builtin || ref == "" || ref == "default" || strings.HasPrefix(ref, "container:") {
			continue
		}
		n, err := e.findNetworkLocked(ref)
		if err != nil {
			return nil, err
		}
		joins = append(joins, n)
	}
	e.seq++
	name := strings.TrimPrefix(s.Name, "/")
	if name == "" {
		name = fmt.Sprintf("%s_auto_%d", e.opts.Name, e.seq)
	}
	if prev, ok := e.names[name]; ok {
		return nil, errf(409, "Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", "/"+name, prev.id)
	}
	id := s.ID
	if id == "" {
		id = hexID(e.opts.Name + "/" + strconv.FormatUint(e.seq, 10) + "/" + name)
	} else if _, taken := e.containers[id]; taken || len(id) != 64 {
		return nil, errf(400, "invalid or taken container ID %q", id)
	}
	if len(s.Labels) == 0 {
		s.Labels = nil
	}
	if len(s.HostConfig) == 0 || string(s.HostConfig) == "null" {
		s.HostConfig = nil
	}
	c := &ctr{id: id, name: name, image: s.Image, imageID: im.id, labels: s.Labels, cmd: s.Cmd, env: s.Env,
		tty: s.Tty, hostConfig: s.HostConfig, created: e.now(), state: StateCreated,
		volumes: containerVolumes(s.HostConfig)}
	for _, v := range c.volumes {
		e.addVolumeLocked(v, "local", nil) // a named volume is made on first use
	}
	for _, n := range joins {
		n.members[c.id] = true
	}
	e.containers[id] = c
	e.names[name] = c
	e.publishLocked("create", c)
	return c, nil
}

func hexID(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Start, Stop and Remove change a container by reference (full ID, name
// or unique ID prefix) as the API does, events included.
func (e *Engine) Start(ref string) error { return e.change(ref, "start") }

// Stop stops a running container (exit code 143).
func (e *Engine) Stop(ref string) error { return e.change(ref, "stop") }

// Remove deletes a container; force stops a running one first.
func (e *Engine) Remove(ref string, force bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.removeLocked(ref, force)
}

// RemoveQuietly deletes a container, running or not, without any event,
// as if the engine's event stream lost them.
func (e *Engine) RemoveQuietly(ref string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.quiet = true
	defer func() { e.quiet = false }()
	return e.removeLocked(ref, true)
}

// Emit publishes a container event with the given action (such as
// "exec_start: sh") and changes nothing.
func (e *Engine) Emit(ref, action string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.resolveLocked(ref)
	if err != nil {
		return err
	}
	e.publishLocked(action, c)
	return nil
}

// Kill kills a running container (exit code 137).
func (e *Engine) Kill(ref string) error { return e.change(ref, "kill") }

// Len is how many containers the engine holds.
func (e *Engine) Len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.containers)
}

// IDs returns the full IDs of the engine's containers, sorted.
func (e *Engine) IDs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.containers))
	for id := range e.containers {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// State returns a container's state ("" when there is no such container).
func (e *Engine) State(ref string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.resolveLocked(ref)
	if err != nil {
		return ""
	}
	return c.state
}

// Created is when a container was made, to the nanosecond (as inspect
// tells it).
func (e *Engine) Created(ref string) (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.resolveLocked(ref)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, c.created).UTC(), true
}

// Labels returns a copy of a container's labels.
func (e *Engine) Labels(ref string) (map[string]string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.resolveLocked(ref)
	if err != nil {
		return nil, false
	}
	out := make(map[string]string, len(c.labels))
	for k, v := range c.labels {
		out[k] = v
	}
	return out, true
}

// AddImage makes ref present (an image "pull" event follows).
func (e *Engine) AddImage(ref string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	im := e.addImageLocked(ref)
	e.publishImageLocked("pull", normImage(ref), im)
}

// ImageID is the ID of the image ref names (a reference, an ID or an ID
// prefix; an image without tags is found by its ID).
func (e *Engine) ImageID(ref string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if im := e.findImageLocked(ref); im != nil {
		return im.id, true
	}
	return "", false
}

// Image is an image to put on an engine with PutImage.
type Image struct {
	ID          string   // sha256:…; empty: made from the first tag
	RepoTags    []string // references ("busybox" is busybox:latest)
	RepoDigests []string // repo@sha256:…
}

// PutImage stores im, with its ID, tags and digests (a "pull" event
// follows, as for AddImage).
func (e *Engine) PutImage(im Image) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if im.ID == "" && len(im.RepoTags) > 0 {
		im.ID = "sha256:" + hexID("image/"+normImage(im.RepoTags[0]))
	}
	stored := &image{id: im.ID, digests: append([]string(nil), im.RepoDigests...)}
	for _, ref := range im.RepoTags {
		e.moveTagLocked(normImage(ref), stored)
	}
	for _, d := range im.RepoDigests {
		e.images[normImage(d)] = stored
	}
	name := im.ID
	if len(stored.refs) > 0 {
		name = stored.refs[0]
	}
	e.publishImageLocked("pull", name, stored)
}

// moveTagLocked points the tag n at im, taking it from the image it named
// before (which goes with its last tag unless a container uses it: the
// fake keeps no other dangling images).
func (e *Engine) moveTagLocked(n string, im *image) {
	old, ok := e.images[n]
	if ok && old == im {
		return
	}
	if ok {
		old.refs = without(old.refs, n)
		if len(old.refs) == 0 {
			e.dropUntaggedLocked(old, false)
		}
	}
	im.refs = append(im.refs, n)
	e.images[n] = im
	delete(e.dangling, im.id)
}

// dropUntaggedLocked is what becomes of an image that lost its last tag:
// kept, dangling, while a container uses it (a running one even when
// forced), else deleted with its digests. It reports whether it was
// deleted.
func (e *Engine) dropUntaggedLocked(im *image, force bool) bool {
	users, running := e.imageUsersLocked(im)
	if users > 0 && (running || !force) {
		e.dangling[im.id] = im
		return false
	}
	for _, d := range im.digests {
		if e.images[normImage(d)] == im {
			delete(e.images, normImage(d))
		}
	}
	delete(e.dangling, im.id)
	return true
}

// imageUsersLocked counts the containers made from im and tells whether
// one runs.
func (e *Engine) imageUsersLocked(im *image) (users int, running bool) {
	for _, c := range e.containers {
		if c.imageID == im.id {
			users++
			running = running || c.state == StateRunning
		}
	}
	return users, running
}

// newImageLocked makes an image with an ID of its own (a commit's or a
// build's) under the given tags.
func (e *Engine) newImageLocked(kind string, tags []string) *image {
	e.imageSeq++
	im := &image{id: "sha256:" + hexID(e.opts.Name+"/"+kind+"/"+strconv.FormatUint(e.imageSeq, 10))}
	for _, t := range tags {
		n := normImage(t)
		e.moveTagLocked(n, im)
		e.publishImageLocked("tag", n, im)
	}
	if len(im.refs) == 0 {
		e.dangling[im.id] = im
	}
	return im
}

func (e *Engine) addImageLocked(ref string) *image {
	n := normImage(ref)
	if im, ok := e.images[n]; ok {
		return im
	}
	// The same reference has the same ID on every engine, as a pulled
	// image has.
	im := &image{id: "sha256:" + hexID("image/"+n), refs: []string{n}}
	e.images[n] = im
	return im
}

func (e *Engine) resolveLocked(ref string) (*ctr, error) {
	if ref == "" {
		return nil, errf(404, "No such container: %s", ref)
	}
	if c, ok := e.containers[ref]; ok {
		return c, nil
	}
	if c, ok := e.names[strings.TrimPrefix(ref, "/")]; ok {
		return c, nil
	}
	var found *ctr
	for id, c := range e.containers {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, errf(400, "multiple IDs found with provided prefix: %s", ref)
			}
			found = c
		}
	}
	if found == nil {
		return nil, errf(404, "No such container: %s", ref)
	}
	return found, nil
}

func (e *Engine) change(ref, action string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.resolveLocked(ref)
	if err != nil {
		return err
	}
	running := c.state == StateRunning
	switch action {
	case "start":
		if running {
			return errf(304, "container already started")
		}
		e.startLocked(c)
	case "stop":
		if !running {
			return errf(304, "container already stopped")
		}
		e.stopLocked(c, 143, "kill", "die", "stop")
	case "kill":
		if !running {
			return errf(409, "Cannot kill container: %s: Container %s is not running", ref, c.id)
		}
		e.stopLocked(c, 137, "kill", "die")
	case "restart":
		if running {
			e.stopLocked(c, 143, "kill", "die", "stop")
		}
		e.startLocked(c)
		e.publishLocked("restart", c)
	default:
		return errf(404, "page not found")
	}
	return nil
}

func (e *Engine) startLocked(c *ctr) {
	c.state = StateRunning
	c.exitCode = 0
	c.started = e.now()
	c.picked = nil
	if c.hostConfig != nil {
		for _, b := range portBindings(c.hostConfig) {
			if b.hostPort == 0 { // any port: one of the ephemeral range
				e.nextPort++
				c.picked = append(c.picked, 32768+(e.nextPort-1)%(61000-32768))
			}
		}
	}
	e.publishLocked("start", c)
}

func (e *Engine) stopLocked(c *ctr, code int, actions ...string) {
	c.state = StateExited
	c.exitCode = code
	c.finished = e.now()
	if c.exited != nil {
		close(c.exited)
		c.exited = nil
	}
	wakeLocked(c)
	for _, a := range actions {
		e.publishLocked(a, c)
	}
}

func (e *Engine) removeLocked(ref string, force bool) error {
	c, err := e.resolveLocked(ref)
	if err != nil {
		return err
	}
	if c.state == StateRunning {
		if !force {
			return errf(409, "cannot remove container %q: container is running: stop the container before removing or force remove", "/"+c.name)
		}
		e.stopLocked(c, 137, "kill", "die")
	}
	delete(e.containers, c.id)
	delete(e.names, c.name)
	for _, id := range c.execIDs {
		delete(e.execs, id)
	}
	for _, n := range e.networks {
		delete(n.members, c.id)
	}
	if c.removed != nil {
		close(c.removed)
		c.removed = nil
	}
	wakeLocked(c)
	e.publishLocked("destroy", c)
	return nil
}

// normImage gives a reference's short canonical form: no docker.io/ or
// library/ prefix, :latest when it has neither tag nor digest.
func normImage(ref string) string {
	ref = strings.TrimPrefix(ref, "docker.io/")
	ref = strings.TrimPrefix(ref, "library/")
	if strings.Contains(ref, "@") {
		return ref
	}
	if !strings.Contains(ref[strings.LastIndex(ref, "/")+1:], ":") {
		return ref + ":latest"
	}
	return ref
}

// findImageLocked finds an image by reference, full ID or ID prefix.
func (e *Engine) findImageLocked(ref string) *image {
	if im, ok := e.images[normImage(ref)]; ok {
		return im
	}
	hexRef := strings.TrimPrefix(ref, "sha256:")
	if len(hexRef) < 4 {
		return nil
	}
	for _, im := range e.images {
		if strings.HasPrefix(strings.TrimPrefix(im.id, "sha256:"), hexRef) {
			return im
		}
	}
	for _, im := range e.dangling {
		if strings.HasPrefix(strings.TrimPrefix(im.id, "sha256:"), hexRef) {
			return im
		}
	}
	return nil
}

var _ http.Handler = (*Engine)(nil)
