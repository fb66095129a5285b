// Package engineapi computes the Docker Engine API's answers over the
// fleet's data without HTTP: the filters of `docker ps` applied to the
// hosts' container caches (as moby's daemon/list.go does for one engine),
// and the merges of many engines' answers into one: disk usage, image
// lists (with the before/since filters an engine cannot apply to another's
// images), image inspect and delete reports, volume and network lists
// labelled with the host that holds each object (and the io.clocker.host
// filter that picks the hosts to ask), pull and load progress streams, and
// the event stream (the query, each event annotated with its host, the
// fleet's own events, the merge in time order or as events arrive).
//
// The proxy serves the routes and asks the hosts; this package knows what
// an engine would answer. Nothing here calls an engine: what it needs to
// know of the fleet (which image a reference names on a host, the hosts'
// answers) comes from the caller.
package engineapi
