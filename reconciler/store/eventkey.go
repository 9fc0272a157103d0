package store

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/riveredge/tasksync/reconciler"
)

// EventKey returns the key that signs tasksync's own events
// (reconciler.EventKey), generating it the first time: every replica and
// `tasksync trigger` read the same one. The key is never logged, and the
// errors here never hold it.
func (s *Store) EventKey(ctx context.Context) (*reconciler.EventKey, error) {
	fresh := make([]byte, reconciler.EventKeySize)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("generate the event key: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `insert into root_event_key (key) values ($1) on conflict (id) do nothing`, fresh); err != nil {
		return nil, fmt.Errorf("store the event key: %w", redact(err))
	}
	var key []byte
	if err := s.pool.QueryRow(ctx, `select key from root_event_key`).Scan(&key); err != nil {
		return nil, fmt.Errorf("read the event key: %w", redact(err))
	}
	return reconciler.NewEventKey(key)
}
