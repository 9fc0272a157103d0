package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/riveredge/tasksync/reconciler"
)

// ErrNotFound means the tenant or definition asked for does not exist.
var ErrNotFound = reconciler.ErrNotFound

// LastReconcile returns the most recent reconcile, or ErrNotFound.
func (s *Store) LastReconcile(ctx context.Context) (reconciler.ReconcileRecord, error) {
	var r reconciler.ReconcileRecord
	var msg *string
	err := s.pool.QueryRow(ctx, `
		select started_at, finished_at, result, created, updated, retired, unchanged, held, errors, message
		from root_reconciles order by id desc limit 1`).Scan(&r.StartedAt, &r.FinishedAt, &r.Result,
		&r.Counts.Created, &r.Counts.Updated, &r.Counts.Retired, &r.Counts.Unchanged, &r.Counts.Held, &r.Counts.Errors, &msg)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("last reconcile: %w", redact(err))
	}
	if msg != nil {
		r.Message = *msg
	}
	r.DurationMS = r.FinishedAt.Sub(r.StartedAt).Milliseconds()
	return r, nil
}

// TenantStatuses summarizes every tenant.
func (s *Store) TenantStatuses(ctx context.Context) ([]reconciler.TenantStatus, error) {
	rows, err := s.pool.Query(ctx, `
		select t.code, t.retire_held, t.sync_state, coalesce(t.sync_error, ''), t.last_synced_at,
			(select count(*) from root_scheduled_tasks d where d.tenant_id = t.id and d.deleted_at is null),
			(select count(*) from root_scheduled_tasks d where d.tenant_id = t.id and d.deleted_at is null and d.is_active),
			(select count(*) from root_definition_errors e where e.tenant_id = t.id)
		from root_tenants t order by t.code`)
	if err != nil {
		return nil, fmt.Errorf("tenants: %w", redact(err))
	}
	defer rows.Close()
	var out []reconciler.TenantStatus
	for rows.Next() {
		var t reconciler.TenantStatus
		if err := rows.Scan(&t.Tenant, &t.HeldRetires, &t.SyncState, &t.SyncError, &t.LastSyncedAt, &t.Definitions, &t.Active, &t.Errors); err != nil {
			return nil, fmt.Errorf("tenants: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

const summaryColumns = `d.code, d.name, d.kind, d.type, d.is_active, d.trigger_type, d.source_path || ':' || d.source_line, d.revision,
	d.sync_state, d.last_run_at, coalesce(d.last_run_status, ''), d.updated_at, ` + hasErrorsColumn + `, ` + oneShotColumns

// hasErrorsColumn says whether a current validation problem names the
// definition or its file, or Inngest rejected it
// (reconciler.DefinitionSummary.HasErrors).
const hasErrorsColumn = `(d.sync_state = 'rejected' or exists (select 1 from root_definition_errors e
	where e.tenant_id = d.tenant_id and (e.path = d.source_path or e.code = d.code)))`

// oneShotColumns are the facts of a one-shot's state (reconciler.OneShotFacts),
// and the database's clock to judge them by.
const oneShotColumns = `(d.trigger_config ->> 'at')::timestamptz, d.revision_applied_at, d.fired_at, coalesce(d.fired_run_id, ''), now()`

func scanSummary(row pgx.Row, extra ...any) (reconciler.DefinitionSummary, error) {
	var d reconciler.DefinitionSummary
	var at *time.Time
	var f reconciler.OneShotFacts
	var now time.Time
	dest := append([]any{&d.Code, &d.Name, &d.Kind, &d.Type, &d.Active, &d.TriggerType, &d.Source, &d.Revision, &d.SyncState, &d.LastRunAt, &d.LastRunStatus, &d.UpdatedAt,
		&d.HasErrors, &at, &f.AppliedAt, &f.FiredAt, &f.RunID, &now}, extra...)
	if err := row.Scan(dest...); err != nil {
		return d, err
	}
	if d.TriggerType == reconciler.TriggerDate && at != nil {
		f.At, f.Active = *at, d.Active
		s := f.Status(now)
		d.OneShot = &s
	}
	return d, nil
}

// ListDefinitions lists a tenant's live definitions by code, filtered, one
// page at a time (keyset pagination on the code).
func (s *Store) ListDefinitions(ctx context.Context, tenant string, f reconciler.DefinitionFilter) ([]reconciler.DefinitionSummary, error) {
	if ok, err := s.tenantExists(ctx, tenant); err != nil || !ok {
		return nil, errors.Join(err, notFoundIf(!ok && err == nil))
	}
	var active, hasErrors any
	if f.Active != nil {
		active = *f.Active
	}
	if f.HasErrors != nil {
		hasErrors = *f.HasErrors
	}
	q := ""
	if f.Query != "" {
		q = "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.ToLower(f.Query)) + "%"
	}
	rows, err := s.pool.Query(ctx, `
		select `+summaryColumns+`
		from root_scheduled_tasks d join root_tenants t on t.id = d.tenant_id
		where t.code = $1 and d.deleted_at is null
			and ($2 = '' or d.kind = $2)
			and ($3::boolean is null or d.is_active = $3)
			and ($4 = '' or lower(d.code) like $4 or lower(d.name) like $4 or lower(d.description) like $4)
			and d.code > $5
			and ($7 = '' or d.type = $7)
			and ($8 = '' or d.trigger_type = $8)
			and ($9 = '' or d.sync_state = $9)
			and ($10::boolean is null or `+hasErrorsColumn+` = $10)
		order by d.code limit $6`, tenant, string(f.Kind), active, q, f.After, f.Limit,
		f.Type, string(f.TriggerType), string(f.SyncState), hasErrors)
	if err != nil {
		return nil, fmt.Errorf("definitions: %w", redact(err))
	}
	defer rows.Close()
	var out []reconciler.DefinitionSummary
	for rows.Next() {
		d, err := scanSummary(rows)
		if err != nil {
			return nil, fmt.Errorf("definitions: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Definition returns one live definition in detail, or ErrNotFound.
func (s *Store) Definition(ctx context.Context, tenant, code string) (reconciler.DefinitionDetail, error) {
	return s.definition(ctx, `t.code = $1 and d.code = $2 and d.deleted_at is null`, tenant, code)
}

// DefinitionByUUID returns the definition with the uuid in detail, live
// or retired, or ErrNotFound. A tenant other than "" confines the lookup
// to that tenant: another tenant's uuid is not found.
func (s *Store) DefinitionByUUID(ctx context.Context, uuid, tenant string) (reconciler.DefinitionDetail, error) {
	return s.definition(ctx, `d.uuid = $1::uuid and ($2 = '' or t.code = $2)`, uuid, tenant)
}

// definition reads the one definition where picks, with its args.
func (s *Store) definition(ctx context.Context, where string, args ...any) (reconciler.DefinitionDetail, error) {
	row := s.pool.QueryRow(ctx, `
		select `+summaryColumns+`, t.code, d.uuid::text, d.deleted_at, coalesce(d.source_commit, ''), d.description,
			coalesce(d.inngest_function_id, ''), d.source_path, d.source_line,
			d.spec_hash, d.spec, coalesce(d.sync_error, ''), coalesce(d.last_error, ''), d.is_running, d.created_at,
			d.missed_fires, d.last_missed_fire_at, d.last_missed_fires, lr.id, `+lastRunColumns+`
		from root_scheduled_tasks d join root_tenants t on t.id = d.tenant_id
		left join lateral (select * from root_task_runs r where r.task_id = d.id order by r.id desc limit 1) lr on true
		where `+where, args...)
	var d reconciler.DefinitionDetail
	var spec []byte
	var lastID *int64
	var last nullRun
	sum, err := scanSummary(row, append([]any{&d.Tenant, &d.UUID, &d.RetiredAt, &d.SourceCommit, &d.Description, &d.InngestFunctionID, &d.SourcePath, &d.SourceLine,
		&d.Hash, &spec, &d.SyncError, &d.LastError, &d.IsRunning, &d.CreatedAt, &d.MissedFires, &d.LastMissedFireAt, &d.LastMissedFires, &lastID}, last.dest()...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, ErrNotFound
	}
	if err != nil {
		return d, fmt.Errorf("definition: %w", redact(err))
	}
	d.DefinitionSummary, d.Spec = sum, spec
	if lastID != nil {
		r := last.record(*lastID)
		d.LastRun = &r
	}
	return d, nil
}

// lastRunColumns are the columns of the run row lr that nullRun scans.
const lastRunColumns = `lr.inngest_run_id, lr.attempt, lr.revision, lr.status, lr.started_at, lr.finished_at, lr.duration_ms,
	coalesce(lr.error, ''), lr.output, lr.steps, coalesce(lr.final, false), coalesce(lr.failed_step, ''), coalesce(lr.manual, false),
	lr.scheduled_for, coalesce(lr.catch_up, false)`

// nullRun scans a run row that may be absent (a left join).
type nullRun struct {
	runID, status, errText, failedStep *string
	attempt                            *int
	revision, duration                 *int64
	started, finished                  *time.Time
	output, steps                      []byte
	final, manual, catchUp             bool
	scheduledFor                       *time.Time
}

func (n *nullRun) dest() []any {
	return []any{&n.runID, &n.attempt, &n.revision, &n.status, &n.started, &n.finished, &n.duration, &n.errText, &n.output, &n.steps, &n.final, &n.failedStep,
		&n.manual, &n.scheduledFor, &n.catchUp}
}

func (n *nullRun) record(id int64) reconciler.RunRecord {
	r := reconciler.RunRecord{ID: id, FinishedAt: n.finished, DurationMS: n.duration, Final: n.final, ScheduledFor: n.scheduledFor, CatchUp: n.catchUp}
	deref(&r.InngestRunID, n.runID)
	deref(&r.Error, n.errText)
	deref(&r.FailedStep, n.failedStep)
	if n.manual {
		r.Trigger = reconciler.RunTriggerManual
	}
	if n.status != nil {
		r.Status = reconciler.RunStatus(*n.status)
	}
	if n.attempt != nil {
		r.Attempt = *n.attempt
	}
	if n.revision != nil {
		r.Revision = *n.revision
	}
	if n.started != nil {
		r.StartedAt = *n.started
	}
	if len(n.output) > 0 {
		r.Output = n.output
	}
	if len(n.steps) > 0 {
		r.Steps = n.steps
	}
	return r
}

func deref(dst, src *string) {
	if src != nil {
		*dst = *src
	}
}

// Runs lists a definition's run attempts, newest first, before the run id
// `before` (0 for the newest): those of every definition the code has had
// (one retired and added again is another), each naming its definition
// (uuid, tenant, code).
func (s *Store) Runs(ctx context.Context, tenant, code string, limit int, before int64) ([]reconciler.RunRecord, error) {
	var taskIDs []int64
	rows, err := s.pool.Query(ctx, `
		select d.id from root_scheduled_tasks d join root_tenants t on t.id = d.tenant_id
		where t.code = $1 and d.code = $2`, tenant, code)
	if err != nil {
		return nil, fmt.Errorf("runs: %w", redact(err))
	}
	taskIDs, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("runs: %w", err)
	}
	if len(taskIDs) == 0 {
		return nil, ErrNotFound
	}
	return s.runList(ctx, `lr.task_id = any($1) and ($2 = 0 or lr.id < $2)
		order by lr.id desc limit $3`, taskIDs, before, limit)
}

// TenantRuns lists a tenant's run attempts across its definitions, live
// and retired, newest first (by id), filtered, one page at a time (keyset
// pagination on the id), each naming its definition; ErrNotFound for an
// unknown tenant.
func (s *Store) TenantRuns(ctx context.Context, tenant string, f reconciler.RunFilter) ([]reconciler.RunRecord, error) {
	var tenantID int32
	err := s.pool.QueryRow(ctx, `select id from root_tenants where code = $1`, tenant).Scan(&tenantID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("tenant runs: %w", redact(err))
	}
	var since, until *time.Time
	if !f.Since.IsZero() {
		since = &f.Since
	}
	if !f.Until.IsZero() {
		until = &f.Until
	}
	return s.runList(ctx, `lr.tenant_id = $1 and ($2 = '' or lr.status = $2) and ($3::timestamptz is null or lr.started_at >= $3)
			and ($4::timestamptz is null or lr.started_at < $4) and ($5 = '' or d.code = $5) and ($6 = 0 or lr.id < $6)
		order by lr.id desc limit $7`, tenantID, string(f.Status), since, until, f.Code, f.Before, f.Limit)
}

// Run returns the attempts of one Inngest run, by definition and
// attempt, each naming its definition; ErrNotFound when there is none. A
// tenant other than "" confines the lookup to that tenant's definitions:
// another tenant's run is not found.
func (s *Store) Run(ctx context.Context, runID, tenant string) ([]reconciler.RunRecord, error) {
	out, err := s.runList(ctx, `lr.inngest_run_id = $1 and ($2 = '' or t.code = $2)
		order by d.id, lr.attempt, lr.id`, runID, tenant)
	if err == nil && len(out) == 0 {
		err = ErrNotFound
	}
	return out, err
}

// runList reads run attempts with their definition's uuid, tenant and
// code; where filters and orders them.
func (s *Store) runList(ctx context.Context, where string, args ...any) ([]reconciler.RunRecord, error) {
	rows, err := s.pool.Query(ctx, `
		select lr.id, d.uuid::text, t.code, d.code, `+lastRunColumns+`
		from root_task_runs lr join root_scheduled_tasks d on d.id = lr.task_id join root_tenants t on t.id = d.tenant_id
		where `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("runs: %w", redact(err))
	}
	defer rows.Close()
	var out []reconciler.RunRecord
	for rows.Next() {
		var id int64
		var uuid, tenant, code string
		var n nullRun
		if err := rows.Scan(append([]any{&id, &uuid, &tenant, &code}, n.dest()...)...); err != nil {
			return nil, fmt.Errorf("runs: %w", err)
		}
		r := n.record(id)
		r.DefinitionUUID, r.Tenant, r.Code = uuid, tenant, code
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("runs: %w", redact(err))
	}
	return out, nil
}

// Problems returns a tenant's current validation problems, or ErrNotFound.
func (s *Store) Problems(ctx context.Context, tenant string) ([]reconciler.Problem, error) {
	if ok, err := s.tenantExists(ctx, tenant); err != nil || !ok {
		return nil, errors.Join(err, notFoundIf(!ok && err == nil))
	}
	t, err := s.LoadTenant(ctx, tenant, false)
	if err != nil {
		return nil, err
	}
	return t.Problems, nil
}

func (s *Store) tenantExists(ctx context.Context, tenant string) (bool, error) {
	var ok bool
	if err := s.pool.QueryRow(ctx, `select exists (select 1 from root_tenants where code = $1)`, tenant).Scan(&ok); err != nil {
		return false, fmt.Errorf("tenant: %w", redact(err))
	}
	return ok, nil
}

func notFoundIf(b bool) error {
	if b {
		return ErrNotFound
	}
	return nil
}

// DefinitionCounts counts live definitions by tenant, kind and state.
func (s *Store) DefinitionCounts(ctx context.Context) ([]reconciler.DefinitionCount, error) {
	rows, err := s.pool.Query(ctx, `
		select t.code, d.kind, case when d.is_active then 'active' else 'inactive' end, count(*)
		from root_scheduled_tasks d join root_tenants t on t.id = d.tenant_id
		where d.deleted_at is null group by 1, 2, 3`)
	if err != nil {
		return nil, fmt.Errorf("definition counts: %w", redact(err))
	}
	defer rows.Close()
	var out []reconciler.DefinitionCount
	for rows.Next() {
		var c reconciler.DefinitionCount
		if err := rows.Scan(&c.Tenant, &c.Kind, &c.State, &c.N); err != nil {
			return nil, fmt.Errorf("definition counts: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// AppliedVersions returns every tenant's applied version, by tenant: a
// counter that moves whenever what the tenant's app serves changes (see
// Apply). Followers poll it to reload, soon after the leader applies a
// change, only the tenants it names; it is one small query whatever the
// number of definitions.
func (s *Store) AppliedVersions(ctx context.Context) (map[string]int64, error) {
	rows, err := s.pool.Query(ctx, `select code, applied_version from root_tenants`)
	if err != nil {
		return nil, fmt.Errorf("applied versions: %w", redact(err))
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var code string
		var v int64
		if err := rows.Scan(&code, &v); err != nil {
			return nil, fmt.Errorf("applied versions: %w", err)
		}
		out[code] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("applied versions: %w", redact(err))
	}
	return out, nil
}
