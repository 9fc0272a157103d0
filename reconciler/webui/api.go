package webui

import (
	"encoding/json"
	"time"
)

// The status API's documents, as the pages read them. They are decoded
// from its JSON, not shared with its Go types: the page reads the API as
// any client would, and fields it does not know are shown as they come
// (extraFields).

type statusDoc struct {
	Leader        bool           `json:"leader"`
	LastReconcile *reconcileDoc  `json:"last_reconcile"`
	Totals        totalsDoc      `json:"totals"`
	InngestSync   map[string]int `json:"inngest_sync"`
	SyncFailed    []string       `json:"sync_failed"`
	Held          struct {
		Total   int                 `json:"total"`
		Tenants map[string][]string `json:"tenants"`
	} `json:"held_retirements"`
}

type reconcileDoc struct {
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	DurationMS int64      `json:"duration_ms"`
	Result     string     `json:"result"`
	Counts     *countsDoc `json:"counts"`
	Message    string     `json:"message"`
}

type countsDoc struct {
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Retired   int `json:"retired"`
	Unchanged int `json:"unchanged"`
	Held      int `json:"held"`
	Errors    int `json:"errors"`
}

type totalsDoc struct {
	Tenants     int `json:"tenants"`
	Definitions int `json:"definitions"`
	Active      int `json:"active"`
	Errors      int `json:"errors"`
}

type tenantDoc struct {
	Tenant       string     `json:"tenant"`
	Definitions  int        `json:"definitions"`
	Active       int        `json:"active"`
	Errors       int        `json:"errors"`
	Held         []string   `json:"held_retirements"`
	SyncState    string     `json:"sync_state"`
	SyncError    string     `json:"sync_error"`
	LastSyncedAt *time.Time `json:"last_synced_at"`
}

type oneShotDoc struct {
	State   string     `json:"state"`
	At      *time.Time `json:"at"`
	FiredAt *time.Time `json:"fired_at"`
	RunID   string     `json:"run_id"`
}

type summaryDoc struct {
	Code          string      `json:"code"`
	Name          string      `json:"name"`
	Kind          string      `json:"kind"`
	Type          string      `json:"type"`
	Active        bool        `json:"active"`
	TriggerType   string      `json:"trigger_type"`
	Source        string      `json:"source"`
	Revision      int64       `json:"revision"`
	SyncState     string      `json:"sync_state"`
	LastRunAt     *time.Time  `json:"last_run_at"`
	LastRunStatus string      `json:"last_run_status"`
	UpdatedAt     *time.Time  `json:"updated_at"`
	OneShot       *oneShotDoc `json:"one_shot"`
	HasErrors     bool        `json:"has_errors"`
}

type definitionsDoc struct {
	Definitions []summaryDoc `json:"definitions"`
	NextCursor  *string      `json:"next_cursor"`
}

type detailDoc struct {
	summaryDoc
	UUID              string          `json:"uuid"`
	Tenant            string          `json:"tenant"`
	RetiredAt         *time.Time      `json:"retired_at"`
	SourceCommit      string          `json:"source_commit"`
	Description       string          `json:"description"`
	InngestFunctionID string          `json:"inngest_function_id"`
	SourcePath        string          `json:"source_path"`
	SourceLine        int             `json:"source_line"`
	Hash              string          `json:"spec_hash"`
	Spec              json.RawMessage `json:"spec"`
	SyncError         string          `json:"sync_error"`
	LastError         string          `json:"last_error"`
	IsRunning         bool            `json:"is_running"`
	CreatedAt         *time.Time      `json:"created_at"`
	MissedFires       int64           `json:"missed_fires"`
	LastMissedFireAt  *time.Time      `json:"last_missed_fire_at"`
	LastMissedFires   []time.Time     `json:"last_missed_fires"`
}

// detailKnown are the detail's fields the definition page lays out
// itself; any other is listed as it comes.
var detailKnown = fieldSet("code", "name", "kind", "type", "active", "trigger_type", "source", "revision", "sync_state",
	"last_run_at", "last_run_status", "updated_at", "one_shot", "has_errors", "uuid", "tenant", "retired_at", "source_commit", "description", "inngest_function_id", "source_path",
	"source_line", "spec_hash", "spec", "sync_error", "last_error", "is_running", "created_at", "missed_fires", "last_missed_fire_at", "last_missed_fires")

type definitionResponse struct {
	Definition    json.RawMessage `json:"definition"`
	NextFireTimes []time.Time     `json:"next_fire_times"`
	LastRun       *runDoc         `json:"last_run"`
}

type runDoc struct {
	ID             int64           `json:"id"`
	InngestRunID   string          `json:"inngest_run_id"`
	Attempt        int             `json:"attempt"`
	DefinitionUUID string          `json:"definition_uuid"`
	Tenant         string          `json:"tenant"`
	Code           string          `json:"code"`
	Revision       int64           `json:"revision"`
	Status         string          `json:"status"`
	Trigger        string          `json:"trigger"`
	ScheduledFor   *time.Time      `json:"scheduled_for"`
	CatchUp        bool            `json:"catch_up"`
	StartedAt      *time.Time      `json:"started_at"`
	FinishedAt     *time.Time      `json:"finished_at"`
	DurationMS     *int64          `json:"duration_ms"`
	Error          string          `json:"error"`
	Output         json.RawMessage `json:"output"`
	Final          bool            `json:"final"`
	FailedStep     string          `json:"failed_step"`
	Steps          []stepDoc       `json:"steps"`
}

// runKnown are the run fields the pages lay out themselves.
var runKnown = fieldSet("id", "inngest_run_id", "attempt", "definition_uuid", "tenant", "code", "revision", "status", "trigger", "scheduled_for", "catch_up",
	"started_at", "finished_at", "duration_ms", "error", "output", "final", "failed_step", "steps")

type stepDoc struct {
	ID     string          `json:"id"`
	Status string          `json:"status"`
	Output json.RawMessage `json:"output"`
	Error  string          `json:"error"`
}

type runsResponse struct {
	Runs       []json.RawMessage `json:"runs"`
	NextCursor *string           `json:"next_cursor"`
}

// runDocument is /v1/runs/{run_id}: the attempts of one Inngest run.
type runDocument struct {
	InngestRunID string            `json:"inngest_run_id"`
	Status       string            `json:"status"`
	Attempts     []json.RawMessage `json:"attempts"`
}

type problemDoc struct {
	Path     string `json:"path"`
	Line     int    `json:"line"`
	Column   int    `json:"column"`
	Code     string `json:"code"`
	Message  string `json:"message"`
	Severity string `json:"severity"`
	Location string `json:"location"`
}

// triggerDoc is the trigger in a definition's spec.
type triggerDoc struct {
	Cron     string     `json:"cron"`
	Timezone string     `json:"timezone"`
	Jitter   string     `json:"jitter"`
	Interval string     `json:"interval"`
	At       *time.Time `json:"at"`
	Event    string     `json:"event"`
	If       string     `json:"if"`
	// CatchUp and CatchUpWindow are a cron or interval trigger's
	// catch-up policy; "" when unset (skip; defaultCatchUpWindow).
	CatchUp       string `json:"catchup"`
	CatchUpWindow string `json:"catchup_window"`
}

// defaultCatchUpWindow is the catch-up window of a trigger that sets
// none (docs/format.md, "Catch-up").
const defaultCatchUpWindow = "1h"

// catchUp says, for a cron or interval trigger, what becomes of its
// missed fires; "" for any other.
func (t triggerDoc) catchUp() string {
	if t.Cron == "" && t.Interval == "" {
		return ""
	}
	window := t.CatchUpWindow
	if window == "" {
		window = defaultCatchUpWindow
	}
	switch t.CatchUp {
	case "":
		return "catch-up skip (the default)"
	case "skip":
		return "catch-up skip"
	}
	return "catch-up " + t.CatchUp + ", window " + window
}

func fieldSet(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}
