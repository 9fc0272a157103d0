package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/riveredge/tasksync/reconciler"
)

// Current returns the live applied version of a definition.
func (s *Store) Current(ctx context.Context, tenant, code string) (reconciler.AppliedRef, bool, error) {
	var ref reconciler.AppliedRef
	err := s.pool.QueryRow(ctx, `
		select d.id, d.revision, d.spec_hash, d.revision_applied_at from root_scheduled_tasks d join root_tenants t on t.id = d.tenant_id
		where t.code = $1 and d.code = $2 and d.deleted_at is null`, tenant, code).Scan(&ref.ID, &ref.Revision, &ref.Hash, &ref.AppliedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return ref, false, nil
	}
	if err != nil {
		return ref, false, fmt.Errorf("current definition: %w", runErr(err))
	}
	ref.Tenant, ref.Code = tenant, code
	return ref, true, nil
}

// Definitions returns a tenant's live applied definitions, decoded from
// their canonical documents: what the tenant's Inngest app serves, last
// known good versions included.
func (s *Store) Definitions(ctx context.Context, tenant string) ([]reconciler.Definition, error) {
	return s.definitions(ctx, tenant, "")
}

// AppliedDefinition returns the live applied version of one definition; ok is
// false when it is retired or unknown.
func (s *Store) AppliedDefinition(ctx context.Context, tenant, code string) (d reconciler.Definition, ok bool, err error) {
	defs, err := s.definitions(ctx, tenant, code)
	if err != nil || len(defs) == 0 {
		return d, false, err
	}
	return defs[0], true, nil
}

// definitions loads a tenant's live definitions, or only code's if set.
func (s *Store) definitions(ctx context.Context, tenant, code string) ([]reconciler.Definition, error) {
	rows, err := s.pool.Query(ctx, `
		select d.spec, d.script_files, d.spec_hash, d.source_path, d.source_line
		from root_scheduled_tasks d join root_tenants t on t.id = d.tenant_id
		where t.code = $1 and ($2 = '' or d.code = $2) and d.deleted_at is null order by d.code`, tenant, code)
	if err != nil {
		return nil, fmt.Errorf("tenant %q: load definitions: %w", tenant, runErr(err))
	}
	defer rows.Close()
	var out []reconciler.Definition
	for rows.Next() {
		var doc []byte
		var scripts map[string]string
		var hash, path string
		var line int
		if err := rows.Scan(&doc, &scripts, &hash, &path, &line); err != nil {
			return nil, fmt.Errorf("tenant %q: load definitions: %w", tenant, err)
		}
		d, err := reconciler.DecodeCanonical(tenant, doc, scripts)
		if err != nil {
			return nil, fmt.Errorf("tenant %q: %w", tenant, err)
		}
		d.Hash, d.Source = hash, reconciler.Source{Path: path, Line: line}
		out = append(out, d)
	}
	return out, rows.Err()
}

// EachTenantDefinitions calls fn with every known tenant's live applied
// definitions (what Definitions returns), tenant by tenant in order, a
// tenant with none with an empty slice: one query for all, so that a
// replica loads its apps at start without a query per tenant. An error
// from fn stops the scan and is returned.
func (s *Store) EachTenantDefinitions(ctx context.Context, fn func(tenant string, defs []reconciler.Definition) error) error {
	rows, err := s.pool.Query(ctx, `
		select t.code, d.spec, d.script_files, d.spec_hash, d.source_path, d.source_line
		from root_tenants t left join root_scheduled_tasks d on d.tenant_id = t.id and d.deleted_at is null
		order by t.code, d.code`)
	if err != nil {
		return fmt.Errorf("load every tenant's definitions: %w", runErr(err))
	}
	defer rows.Close()
	var tenant string
	var defs []reconciler.Definition
	started := false
	for rows.Next() {
		var t string
		var doc []byte
		var scripts map[string]string
		var hash, path *string
		var line *int
		if err := rows.Scan(&t, &doc, &scripts, &hash, &path, &line); err != nil {
			return fmt.Errorf("load every tenant's definitions: %w", err)
		}
		if started && t != tenant {
			if err := fn(tenant, defs); err != nil {
				return err
			}
			defs = nil
		}
		tenant, started = t, true
		if doc == nil {
			continue // a tenant with no live definition
		}
		d, err := reconciler.DecodeCanonical(t, doc, scripts)
		if err != nil {
			return fmt.Errorf("tenant %q: %w", t, err)
		}
		d.Hash, d.Source = *hash, reconciler.Source{Path: *path, Line: *line}
		defs = append(defs, d)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load every tenant's definitions: %w", runErr(err))
	}
	if started {
		return fn(tenant, defs)
	}
	return nil
}

// Tenants lists the tenants the store knows.
func (s *Store) Tenants(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `select code from root_tenants order by code`)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", redact(err))
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Retired reports whether tenant's code has been applied and retired, and
// has no live definition now.
func (s *Store) Retired(ctx context.Context, tenant, code string) (bool, error) {
	var retired bool
	err := s.pool.QueryRow(ctx, `
		select exists (select 1 from root_scheduled_tasks d join root_tenants t on t.id = d.tenant_id
			where t.code = $1 and d.code = $2 and d.deleted_at is not null)
		and not exists (select 1 from root_scheduled_tasks d join root_tenants t on t.id = d.tenant_id
			where t.code = $1 and d.code = $2 and d.deleted_at is null)`, tenant, code).Scan(&retired)
	if err != nil {
		return false, fmt.Errorf("retired definition: %w", redact(err))
	}
	return retired, nil
}
