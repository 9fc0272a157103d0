package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/riveredge/tasksync/reconciler"
)

// LoadAll returns the applied state of every tenant the store knows,
// by tenant code. withSpec also loads each definition's canonical
// document, which only field-level plans need.
func (s *Store) LoadAll(ctx context.Context, withSpec bool) (map[string]reconciler.AppliedTenant, error) {
	return s.load(ctx, true, nil, withSpec)
}

// LoadTenants returns the applied state of the named tenants the store
// knows, by tenant code: a resync loads only the tenants it must diff.
func (s *Store) LoadTenants(ctx context.Context, tenants []string, withSpec bool) (map[string]reconciler.AppliedTenant, error) {
	if len(tenants) == 0 {
		return map[string]reconciler.AppliedTenant{}, nil
	}
	return s.load(ctx, false, tenants, withSpec)
}

// LoadTenant returns one tenant's applied state; a tenant the store does
// not know has no definitions.
func (s *Store) LoadTenant(ctx context.Context, tenant string, withSpec bool) (reconciler.AppliedTenant, error) {
	all, err := s.load(ctx, false, []string{tenant}, withSpec)
	if err != nil {
		return reconciler.AppliedTenant{}, err
	}
	if t, ok := all[tenant]; ok {
		return t, nil
	}
	return reconciler.AppliedTenant{Tenant: tenant, Definitions: map[string]reconciler.Applied{}}, nil
}

func (s *Store) load(ctx context.Context, all bool, only []string, withSpec bool) (map[string]reconciler.AppliedTenant, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return nil, fmt.Errorf("load applied state: %w", redact(err))
	}
	defer tx.Rollback(ctx)

	byID := map[int32]*reconciler.AppliedTenant{}
	rows, err := tx.Query(ctx, `select id, code, retire_held from root_tenants where $1 or code = any($2)`, all, only)
	if err != nil {
		return nil, fmt.Errorf("load tenants: %w", err)
	}
	for rows.Next() {
		var id int32
		t := &reconciler.AppliedTenant{Definitions: map[string]reconciler.Applied{}, Known: true}
		if err := rows.Scan(&id, &t.Tenant, &t.Held); err != nil {
			return nil, fmt.Errorf("load tenants: %w", err)
		}
		byID[id] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load tenants: %w", err)
	}

	spec := "null::jsonb"
	if withSpec {
		spec = "d.spec"
	}
	rows, err = tx.Query(ctx, `
		select d.tenant_id, d.id, d.uuid::text, d.code, d.kind, d.spec_hash, d.is_active, d.source_path,
		       d.source_line, d.revision, d.trigger_type, `+spec+`, d.updated_at, coalesce(d.source_commit, '')
		from root_scheduled_tasks d join root_tenants t on t.id = d.tenant_id
		where d.deleted_at is null and ($1 or t.code = any($2))`, all, only)
	if err != nil {
		return nil, fmt.Errorf("load definitions: %w", err)
	}
	for rows.Next() {
		var tid int32
		var a reconciler.Applied
		var specJSON []byte
		if err := rows.Scan(&tid, &a.ID, &a.UUID, &a.Code, &a.Kind, &a.Hash, &a.Active, &a.Source.Path,
			&a.Source.Line, &a.Revision, &a.TriggerType, &specJSON, &a.UpdatedAt, &a.Commit); err != nil {
			return nil, fmt.Errorf("load definitions: %w", err)
		}
		t := byID[tid]
		a.Tenant = t.Tenant
		a.Spec = specJSON
		t.Definitions[a.Code] = a
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load definitions: %w", err)
	}

	rows, err = tx.Query(ctx, `
		select e.tenant_id, e.path, e.line, e.col, e.code, e.message
		from root_definition_errors e join root_tenants t on t.id = e.tenant_id
		where $1 or t.code = any($2)
		order by e.id`, all, only)
	if err != nil {
		return nil, fmt.Errorf("load problems: %w", err)
	}
	for rows.Next() {
		var tid int32
		var p reconciler.Problem
		if err := rows.Scan(&tid, &p.Path, &p.Line, &p.Column, &p.Code, &p.Message); err != nil {
			return nil, fmt.Errorf("load problems: %w", err)
		}
		t := byID[tid]
		p.Tenant = t.Tenant
		t.Problems = append(t.Problems, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load problems: %w", err)
	}
	tenants := make(map[string]reconciler.AppliedTenant, len(byID))
	for _, t := range byID {
		tenants[t.Tenant] = *t
	}
	return tenants, tx.Commit(ctx)
}
