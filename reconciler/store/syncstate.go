package store

import (
	"context"
	"fmt"

	"github.com/riveredge/tasksync/reconciler"
)

// SetSyncState records the outcome of a tenant's sync.
func (s *Store) SetSyncState(ctx context.Context, tenant string, state reconciler.SyncState, errText string) error {
	_, err := s.pool.Exec(ctx, `
		update root_tenants set sync_state = $2, sync_error = nullif($3, ''),
			last_synced_at = case when $2 = 'synced' then now() else last_synced_at end
		where code = $1`, tenant, string(state), clean(errText))
	if err != nil {
		return fmt.Errorf("tenant %q: record sync state: %w", tenant, redact(err))
	}
	return nil
}

// SetDefinitionSyncState records the sync state of one definition version,
// such as a function Inngest rejected and that is kept out of its app.
// Only the version with hash is marked: a sync that finishes after a newer
// version was applied leaves that version's state alone.
func (s *Store) SetDefinitionSyncState(ctx context.Context, tenant, code, hash string, state reconciler.SyncState, errText string) error {
	_, err := s.pool.Exec(ctx, `
		update root_scheduled_tasks d set sync_state = $4, sync_error = nullif($5, '')
		from root_tenants t where t.id = d.tenant_id and t.code = $1 and d.code = $2 and d.spec_hash = $3 and d.deleted_at is null`,
		tenant, code, hash, string(state), clean(errText))
	if err != nil {
		return fmt.Errorf("tenant %q: record the sync state of %s: %w", tenant, code, redact(err))
	}
	return nil
}

// SetDefinitionsSynced marks the named versions (code → spec hash) of a
// tenant's definitions as synced, clearing any earlier sync error.
// Versions that were replaced in the meantime are left alone.
func (s *Store) SetDefinitionsSynced(ctx context.Context, tenant string, versions map[string]string) error {
	codes := make([]string, 0, len(versions))
	hashes := make([]string, 0, len(versions))
	for c, h := range versions {
		codes, hashes = append(codes, c), append(hashes, h)
	}
	_, err := s.pool.Exec(ctx, `
		update root_scheduled_tasks d set sync_state = 'synced', sync_error = null
		from root_tenants t, unnest($2::text[], $3::text[]) as v(code, hash)
		where t.id = d.tenant_id and t.code = $1 and d.code = v.code and d.spec_hash = v.hash
			and d.deleted_at is null and (d.sync_state <> 'synced' or d.sync_error is not null)`,
		tenant, codes, hashes)
	if err != nil {
		return fmt.Errorf("tenant %q: record the sync state of its definitions: %w", tenant, redact(err))
	}
	return nil
}

// RegisteredHash returns the hash of what was last registered with
// Inngest for the tenant's app; "" when nothing was, or the tenant is
// unknown.
func (s *Store) RegisteredHash(ctx context.Context, tenant string) (string, error) {
	var hash string
	err := s.pool.QueryRow(ctx, `select coalesce(max(registered_hash), '') from root_tenants where code = $1`, tenant).Scan(&hash)
	if err != nil {
		return "", fmt.Errorf("tenant %q: read what was last registered: %w", tenant, redact(err))
	}
	return hash, nil
}

// SetRegisteredHash records the hash of what was registered with Inngest
// for the tenant's app ("" forgets it, so that the next sync registers).
func (s *Store) SetRegisteredHash(ctx context.Context, tenant, hash string) error {
	_, err := s.pool.Exec(ctx, `update root_tenants set registered_hash = nullif($2, '') where code = $1`, tenant, hash)
	if err != nil {
		return fmt.Errorf("tenant %q: record what was registered: %w", tenant, redact(err))
	}
	return nil
}
