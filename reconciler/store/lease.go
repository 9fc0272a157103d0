package store

import (
	"context"

	"github.com/riveredge/tasksync/reconciler"
)

// Elector hands the controller the leader lock (reconciler.Elector).
type Elector struct {
	store *Store
	opts  LeaderOptions
}

// Elector returns the elector of s's leader lock; opts.Once is set per
// call.
func (s *Store) Elector(opts LeaderOptions) *Elector { return &Elector{store: s, opts: opts} }

// Acquire campaigns for the leader lock (AcquireLeadership): with once,
// one attempt. The lease's store is s fenced by the lock (WithFence).
func (e *Elector) Acquire(ctx context.Context, once bool) (reconciler.Lease, error) {
	opts := e.opts
	opts.Once = once
	l, err := e.store.AcquireLeadership(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &lease{Leadership: l, fenced: e.store.WithFence(l)}, nil
}

// lease is a Leadership with the store it fences.
type lease struct {
	*Leadership
	fenced *Store
}

// Store is the applied state written under the lease.
func (l *lease) Store() reconciler.Store { return l.fenced }
