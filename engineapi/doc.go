// Package engineapi computes the Docker Engine API's answers over the
// fleet's data without HTTP: the filters of `docker ps` applied to the
// hosts' container caches (as moby's daemon/list.go does for one engine),
// and the merges of many engines' answers into one (disk usage). The proxy
// serves the routes; this package knows what an engine would answer.
// Everything here is pure: what it needs to know of the fleet (which image
// a reference names on a host) comes from the caller.
package engineapi
