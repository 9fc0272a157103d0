package inngest

import (
	"container/list"
	"net/http"
	"sync"

	"github.com/inngest/inngestgo"
)

// A tenant's app is kept in two parts. What SetTenant keeps for every
// tenant is small: the definitions, the runner, the function ids. The
// built part (an inngestgo client with a function per definition, and
// its HTTP handler) is some 12 kB for ten definitions; it is made on
// first use (a call from Inngest, a sync, a registration hash) and kept in
// a least-recently-used set of at most Options.BuiltApps apps. An app
// that falls out of it is built again, identically, from its definitions
// on its next use. A call being served keeps the built part it started
// with: the handler stays valid whatever the set does.

// DefaultBuiltApps is how many tenants' apps are kept built when
// Options.BuiltApps is 0: at some 12 kB each (ten definitions), about
// 12 MB. The leader syncs at most --sync-concurrency (at most 64) apps at
// once, each built for its sync and used again within it; the rest of
// the set holds the apps Inngest called lately (their runs' next steps
// and retries come back to them); a resync's check of an app the leader
// synced in its term builds nothing. A working set beyond a thousand
// apps costs a rebuild per use (some 50 µs of CPU for ten definitions,
// BenchmarkRegistryMemory), never a failure.
const DefaultBuiltApps = 1000

// builtApp is the part of an app that is built on demand.
type builtApp struct {
	client  inngestgo.Client
	handler http.Handler
}

// builtSet is the least-recently-used set of built apps. Its lock guards
// every app's built, elem and retired fields.
type builtSet struct {
	mu    sync.Mutex
	max   int
	order list.List // of *app, the most recently used first
}

// get returns a's built part, marking it used, or nil when it is not
// built.
func (s *builtSet) get(a *app) *builtApp {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.built != nil && a.elem != nil {
		s.order.MoveToFront(a.elem)
	}
	return a.built
}

// add keeps b as a's built part, dropping the least recently used apps'
// beyond the set's size. An app SetTenant replaced meanwhile is not kept.
func (s *builtSet) add(a *app, b *builtApp) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.retired {
		return
	}
	a.built = b
	a.elem = s.order.PushFront(a)
	for s.order.Len() > s.max {
		old := s.order.Remove(s.order.Back()).(*app)
		old.built, old.elem = nil, nil
	}
}

// retire drops a, which SetTenant replaced, from the set for good.
func (s *builtSet) retire(a *app) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a.retired = true
	if a.elem != nil {
		s.order.Remove(a.elem)
	}
	a.built, a.elem = nil, nil
}

// len is how many apps are built.
func (s *builtSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order.Len()
}

// built returns a's built part, building it when it is not. Two callers
// of an app not built build it once (a's build lock); no registry lock is
// held while building.
func (r *Registry) built(a *app) (*builtApp, error) {
	if b := r.builtApps.get(a); b != nil {
		return b, nil
	}
	a.building.Lock()
	defer a.building.Unlock()
	if b := r.builtApps.get(a); b != nil {
		return b, nil
	}
	b, err := r.build(a)
	if err != nil {
		return nil, err
	}
	r.builds.Add(1)
	r.builtApps.add(a, b)
	return b, nil
}
