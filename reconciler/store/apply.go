package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/riveredge/tasksync/reconciler"
)

// Apply writes one tenant's plan in one transaction: creates, updates,
// retirements not held, the held retirements and the tenant's current
// validation problems. Definitions the plan leaves unchanged are not
// touched, and a plan that changes nothing stored writes nothing.
//
// current is the tenant as loaded before planning. With a fence (see
// WithFence), the transaction first checks that the leader lock is held.
// written is false when nothing needed writing.
func (s *Store) Apply(ctx context.Context, plan reconciler.TenantPlan, current reconciler.AppliedTenant) (written bool, err error) {
	held := []string{}
	for _, ch := range plan.Changes {
		if ch.Action == reconciler.ChangeRetire && ch.Held {
			held = append(held, ch.Code)
		}
	}
	slices.Sort(held)
	problemsChanged := !slices.Equal(current.Problems, plan.Problems)
	heldChanged := len(current.Held) != len(held) || !slices.Equal(current.Held, held)
	if !plan.Pending() && !problemsChanged && !heldChanged {
		return false, nil
	}

	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("tenant %q: begin: %w", plan.Tenant, redact(err))
	}
	defer tx.Rollback(ctx)
	if s.fence != nil {
		if err := s.fence.check(ctx, tx); err != nil {
			return false, err
		}
	}
	// The tenant's applied version moves when what its app serves does,
	// so that followers reload this tenant, and only this one.
	bump := 0
	if plan.Pending() {
		bump = 1
	}
	var tenantID int32
	err = tx.QueryRow(ctx, `
		insert into root_tenants (code, applied_version) values ($1, $2)
		on conflict (code) do update set applied_version = root_tenants.applied_version + $2
		returning id`, plan.Tenant, bump).Scan(&tenantID)
	if err != nil {
		return false, fmt.Errorf("tenant %q: %w", plan.Tenant, err)
	}

	b := &pgx.Batch{}
	for _, ch := range plan.Changes {
		switch {
		case ch.Action == reconciler.ChangeCreate:
			r, err := s.row(plan.Tenant, ch.Desired)
			if err != nil {
				return false, err
			}
			b.Queue(`
				insert into root_scheduled_tasks (tenant_id, name, code, description, type, trigger_type,
					trigger_config, task_config, inngest_function_id, is_active, kind, spec_hash, spec,
					script_files, source_path, source_line, source_commit)
				values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, nullif($17, ''))`,
				tenantID, r.name, r.code, r.description, r.typ, r.triggerType, r.triggerConfig, r.taskConfig,
				r.functionID, r.active, r.kind, r.hash, r.spec, r.scriptFiles, r.sourcePath, r.sourceLine, ch.Desired.Commit)
		case ch.Action == reconciler.ChangeUpdate && ch.SourceOnly:
			b.Queue(`update root_scheduled_tasks set source_path = $2, source_line = $3, source_commit = nullif($4, ''), updated_at = now() where id = $1`,
				ch.Applied.ID, ch.Desired.Source.Path, ch.Desired.Source.Line, ch.Desired.Commit)
		case ch.Action == reconciler.ChangeUpdate:
			r, err := s.row(plan.Tenant, ch.Desired)
			if err != nil {
				return false, err
			}
			b.Queue(`
				update root_scheduled_tasks set name = $2, description = $3, type = $4, trigger_type = $5,
					trigger_config = $6, task_config = $7, is_active = $8, kind = $9, spec_hash = $10, spec = $11,
					script_files = $12, source_path = $13, source_line = $14, source_commit = nullif($15, ''), revision = revision + 1,
					sync_state = 'pending', sync_error = null, updated_at = now(),
					revision_applied_at = now(), fired_at = null, fired_run_id = null, fires_due_at = null
				where id = $1`,
				ch.Applied.ID, r.name, r.description, r.typ, r.triggerType, r.triggerConfig, r.taskConfig,
				r.active, r.kind, r.hash, r.spec, r.scriptFiles, r.sourcePath, r.sourceLine, ch.Desired.Commit)
		case ch.Action == reconciler.ChangeRetire && !ch.Held:
			b.Queue(`update root_scheduled_tasks set deleted_at = now(), updated_at = now() where id = $1 and deleted_at is null`, ch.Applied.ID)
		}
	}
	if heldChanged {
		b.Queue(`
			update root_tenants set retire_held = $2,
				retire_held_since = case when cardinality($2::text[]) = 0 then null else coalesce(retire_held_since, now()) end,
				updated_at = now()
			where id = $1`, tenantID, held)
	}
	if problemsChanged {
		b.Queue(`delete from root_definition_errors where tenant_id = $1`, tenantID)
		for _, p := range plan.Problems {
			b.Queue(`insert into root_definition_errors (tenant_id, path, line, col, code, message) values ($1, $2, $3, $4, $5, $6)`,
				tenantID, p.Path, p.Line, p.Column, p.Code, p.Message)
		}
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return false, fmt.Errorf("tenant %q: apply: %w", plan.Tenant, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("tenant %q: commit: %w", plan.Tenant, redact(err))
	}
	return true, nil
}

// row is a definition in the columns of root_scheduled_tasks.
type row struct {
	name, code, description, typ, triggerType, functionID, kind, hash string
	triggerConfig, taskConfig, spec, scriptFiles                      []byte
	active                                                            bool
	sourcePath                                                        string
	sourceLine                                                        int
}

func (s *Store) row(tenant string, d *reconciler.Definition) (row, error) {
	r := row{
		name:        d.Metadata.Name,
		code:        d.Metadata.Code,
		description: d.Metadata.Description,
		triggerType: string(d.Spec.Trigger.Type()),
		functionID:  s.FunctionID(tenant, d.Metadata.Code),
		kind:        string(d.Kind),
		hash:        d.Hash,
		active:      d.Spec.Active,
		sourcePath:  d.Source.Path,
		sourceLine:  d.Source.Line,
	}
	var err error
	if r.spec, err = d.Canonical(); err != nil {
		return row{}, err
	}
	if r.triggerConfig, err = json.Marshal(d.Spec.Trigger); err != nil {
		return row{}, err
	}
	files := map[string]string{}
	switch d.Kind {
	case reconciler.KindWorkflow:
		r.typ = "workflow"
		r.taskConfig, err = json.Marshal(map[string]any{"steps": d.Spec.Steps})
		for _, st := range d.Spec.Steps {
			if st.PythonScript != nil && st.PythonScript.File != "" {
				files[st.PythonScript.File] = st.PythonScript.FileContent
			}
		}
	default:
		r.typ = string(d.Spec.Type)
		r.taskConfig, err = json.Marshal(d.Spec.Config)
		if c := d.Spec.Config; c != nil && c.PythonScript != nil && c.PythonScript.File != "" {
			files[c.PythonScript.File] = c.PythonScript.FileContent
		}
	}
	if err != nil {
		return row{}, err
	}
	if r.scriptFiles, err = json.Marshal(files); err != nil {
		return row{}, err
	}
	return r, nil
}

// FunctionID is the fully qualified Inngest function ID of a definition:
// <app-prefix>-<tenant>-_<code> (reconciler.FunctionID).
func (s *Store) FunctionID(tenant, code string) string {
	return reconciler.FunctionID(s.appPrefix, tenant, code)
}
