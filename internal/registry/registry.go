// Package registry holds drivers registered by name, as containerd and
// Caddy register plugins: provisioners (hosts/provision) and SDN providers
// (sdn) keep their constructors in one.
package registry

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/clocker/clocker/internal/errdefs"
)

// Registry maps names to constructors of one kind of driver.
type Registry[F any] struct {
	kind string // "provisioner", "SDN provider": for messages
	mu   sync.RWMutex
	m    map[string]F
}

// New returns an empty registry; kind names the drivers in errors.
func New[F any](kind string) *Registry[F] {
	return &Registry[F]{kind: kind, m: map[string]F{}}
}

// Register adds a constructor; a name can be registered once.
func (r *Registry[F]) Register(name string, f F) error {
	if name == "" || isNil(f) {
		return errdefs.New(errdefs.ErrInvalid, r.kind+": empty name or constructor")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.m[name]; ok {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("%s %q is already registered", r.kind, name))
	}
	r.m[name] = f
	return nil
}

// Unregister removes a name (tests that register and run again).
func (r *Registry[F]) Unregister(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, name)
}

// Names lists the registered names in order.
func (r *Registry[F]) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.m))
}

// Get returns the constructor of name; an unknown name is an
// invalid-argument error listing the known ones.
func (r *Registry[F]) Get(name string) (F, error) {
	r.mu.RLock()
	f, ok := r.m[name]
	r.mu.RUnlock()
	if !ok {
		return f, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("unknown %s %q (known: %s)", r.kind, name, strings.Join(r.Names(), ", ")))
	}
	return f, nil
}

// isNil: a nil func (or pointer) constructor, which an interface check
// misses once it is typed.
func isNil(f any) bool {
	v := reflect.ValueOf(f)
	switch v.Kind() {
	case reflect.Invalid:
		return true
	case reflect.Func, reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Chan:
		return v.IsNil()
	}
	return false
}
