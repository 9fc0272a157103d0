package reconciler

import (
	"encoding/json"
	"errors"
	"time"
)

// The read model of the status API: what SREs see of the applied state.

// ReconcileResult is how a reconcile ended, as recorded, logged and
// counted in tasksync_reconcile_total{result}. run --once and the daemon
// use the same words.
type ReconcileResult string

// The results of a reconcile.
const (
	// ReconcileSuccess: every tenant applied, no validation problem.
	ReconcileSuccess ReconcileResult = "success"
	// ReconcileInvalid: every tenant applied what was valid; some files
	// have problems and keep their last applied versions.
	ReconcileInvalid ReconcileResult = "invalid"
	// ReconcileError: some tenant, or the whole reconcile, could not be
	// applied (Postgres, the tree unreadable, the leader lock lost, a stop
	// before it finished).
	ReconcileError ReconcileResult = "error"
)

// SyncState is the Inngest sync state of a tenant's app, or of one
// definition version in it.
type SyncState string

// The sync states.
const (
	// SyncPending: not synced since it was applied.
	SyncPending SyncState = "pending"
	// SyncSynced: Inngest serves it as applied.
	SyncSynced SyncState = "synced"
	// SyncFailed: the last sync failed; the next resync retries.
	SyncFailed SyncState = "failed"
	// SyncRejected marks a definition Inngest refused; it is kept out of
	// its app, which serves the tenant's other definitions.
	SyncRejected SyncState = "rejected"
)

// ReconcileRecord is one stored reconcile.
type ReconcileRecord struct {
	StartedAt  time.Time       `json:"started_at"`
	FinishedAt time.Time       `json:"finished_at"`
	DurationMS int64           `json:"duration_ms"`
	Result     ReconcileResult `json:"result"`
	Counts     Counts          `json:"counts"`
	Message    string          `json:"message,omitempty"`
}

// TenantStatus summarizes one tenant.
type TenantStatus struct {
	Tenant       string     `json:"tenant"`
	Definitions  int        `json:"definitions"`
	Active       int        `json:"active"`
	Errors       int        `json:"errors"`
	HeldRetires  []string   `json:"held_retirements"`
	SyncState    SyncState  `json:"sync_state"`
	SyncError    string     `json:"sync_error,omitempty"`
	LastSyncedAt *time.Time `json:"last_synced_at"`
}

// DefinitionSummary is one row of a tenant's definition list.
type DefinitionSummary struct {
	Code string `json:"code"`
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// Type is the task's type (api_call, python_script), or workflow.
	Type          string      `json:"type"`
	Active        bool        `json:"active"`
	TriggerType   TriggerType `json:"trigger_type"`
	Source        string      `json:"source"`
	Revision      int64       `json:"revision"`
	SyncState     SyncState   `json:"sync_state"`
	LastRunAt     *time.Time  `json:"last_run_at"`
	LastRunStatus string      `json:"last_run_status,omitempty"`
	UpdatedAt     time.Time   `json:"updated_at"`
	// HasErrors: a current validation problem names the definition or
	// its file (which keeps its last applied version), or Inngest
	// rejected it.
	HasErrors bool `json:"has_errors"`
	// OneShot is where a one-shot (an `at` trigger) stands; nil for
	// other triggers.
	OneShot *OneShotStatus `json:"one_shot,omitempty"`
}

// DefinitionFilter narrows a definition list.
type DefinitionFilter struct {
	Kind        Kind        // "" for all
	Type        string      // api_call, python_script or workflow; "" for all
	TriggerType TriggerType // "" for all
	SyncState   SyncState   // "" for all
	Active      *bool       // nil for all
	HasErrors   *bool       // nil for all
	Query       string      // substring of code, name or description, any case
	Limit       int
	After       string // the last code of the previous page
}

// RunFilter narrows a tenant's run list.
type RunFilter struct {
	Status RunStatus // "" for all
	Code   string    // the runs of every definition this code has had; "" for all
	Since  time.Time // started at or after; zero for no bound
	Until  time.Time // started before; zero for no bound
	Limit  int
	Before int64 // the last id of the previous page; 0 for the newest
}

// DefinitionDetail is one definition with everything the status API shows.
type DefinitionDetail struct {
	DefinitionSummary
	Tenant string `json:"tenant"`
	UUID   string `json:"uuid"`
	// RetiredAt is when the definition was retired (its file or code
	// removed); nil while it is live. A retired definition keeps its uuid
	// and its runs.
	RetiredAt *time.Time `json:"retired_at"`
	// SourceCommit is the commit the tree was at (its git HEAD) when this
	// revision was applied; "" when the tree is no git checkout.
	SourceCommit      string          `json:"source_commit"`
	Description       string          `json:"description,omitempty"`
	InngestFunctionID string          `json:"inngest_function_id"`
	SourcePath        string          `json:"source_path"`
	SourceLine        int             `json:"source_line"`
	Hash              string          `json:"spec_hash"`
	Spec              json.RawMessage `json:"spec"`
	SyncError         string          `json:"sync_error,omitempty"`
	LastError         string          `json:"last_error,omitempty"`
	IsRunning         bool            `json:"is_running"`
	CreatedAt         time.Time       `json:"created_at"`
	// MissedFires counts the fires of the schedule that no run was for
	// (checked once the missed-fire grace has passed).
	MissedFires      int64      `json:"missed_fires"`
	LastMissedFireAt *time.Time `json:"last_missed_fire_at"`
	// LastMissedFires are the most recent missed fires (at most 10),
	// oldest first.
	LastMissedFires []time.Time `json:"last_missed_fires"`
	// LastRun is the newest attempt of this definition, read in the same
	// statement as LastRunAt, LastRunStatus, LastError and IsRunning,
	// which it agrees with; nil before its first run.
	LastRun *RunRecord `json:"-"`
}

// RunRecord is one run attempt.
type RunRecord struct {
	ID           int64  `json:"id"`
	InngestRunID string `json:"inngest_run_id"`
	Attempt      int    `json:"attempt"`
	// DefinitionUUID is the uuid of the definition the run belongs to: a
	// code retired and added again is another definition, and the runs
	// list spans every definition the code has had. Set in runs lists.
	DefinitionUUID string `json:"definition_uuid,omitempty"`
	// Tenant and Code name the definition, with DefinitionUUID, in run
	// lists and a run's attempts (not in a detail's last_run).
	Tenant string `json:"tenant,omitempty"`
	Code   string `json:"code,omitempty"`
	// Revision is the definition's revision the attempt ran.
	Revision int64     `json:"revision"`
	Status   RunStatus `json:"status"`
	// ScheduledFor is the fire of the schedule the run was for; nil for
	// a run of an event or one started by hand.
	ScheduledFor *time.Time `json:"scheduled_for"`
	// CatchUp marks a run started to catch up its missed fire.
	CatchUp    bool       `json:"catch_up,omitempty"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	DurationMS *int64     `json:"duration_ms"`
	Error      string     `json:"error,omitempty"`
	// Output is the task's output, a JSON value.
	Output json.RawMessage `json:"output,omitempty"`
	// Final marks the run's last attempt: it succeeded, or no retry
	// follows.
	Final bool `json:"final"`
	// FailedStep is the workflow step the attempt failed at.
	FailedStep string `json:"failed_step,omitempty"`
	// Trigger is RunTriggerManual for a run started by hand (tasksync
	// trigger); empty for a run its trigger started.
	Trigger RunTrigger `json:"trigger,omitempty"`
	// Steps are a workflow run's step outcomes, each output a JSON value.
	Steps json.RawMessage `json:"steps,omitempty"`
}

// RunTrigger says what started a run, where it was not its own trigger.
type RunTrigger string

// RunTriggerManual marks a run started by hand (ManualRunEvent).
const RunTriggerManual RunTrigger = "manual"

// DefinitionCount is the number of live definitions of one tenant, kind
// and state (active or inactive).
type DefinitionCount struct {
	Tenant string
	Kind   string
	State  string
	N      int
}

// ErrNotFound means the tenant, definition or record asked for does not
// exist.
var ErrNotFound = errors.New("not found")
