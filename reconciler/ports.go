package reconciler

import (
	"context"
	"errors"
	"time"
)

// The ports of the Controller: what it needs from the store, the leader
// lock, the Inngest apps and the tree watcher, declared here where they are
// consumed. The adapters under reconciler/ satisfy them; cmd/tasksync
// plugs them in.

// AppliedState is the applied state as the controller reads and records
// it (store.Store).
type AppliedState interface {
	// Tenants lists every known tenant, sorted.
	Tenants(ctx context.Context) ([]string, error)
	// Definitions returns a tenant's applied definitions, the last known
	// good versions included: what its app serves.
	Definitions(ctx context.Context, tenant string) ([]Definition, error)
	// AppliedVersions returns every tenant's applied version: a counter
	// that moves whenever what the tenant's app serves changes.
	AppliedVersions(ctx context.Context) (map[string]int64, error)
	// RecordReconcile stores how one reconcile ended, for the status API.
	RecordReconcile(ctx context.Context, started, finished time.Time, result ReconcileResult, c Counts, message string) error
	// SetSyncState records the outcome of a tenant's sync.
	SetSyncState(ctx context.Context, tenant string, state SyncState, errText string) error
	// SetDefinitionSyncState records the sync state of one definition
	// version (hash), such as a function Inngest rejected.
	SetDefinitionSyncState(ctx context.Context, tenant, code, hash string, state SyncState, errText string) error
	// SetDefinitionsSynced marks the versions (code → hash) as synced.
	SetDefinitionsSynced(ctx context.Context, tenant string, versions map[string]string) error
	// RegisteredHash is what was last registered for the tenant's app
	// (Apps.RegistrationHash); "" for nothing.
	RegisteredHash(ctx context.Context, tenant string) (string, error)
	// SetRegisteredHash records what was registered for the tenant's app;
	// "" forgets it.
	SetRegisteredHash(ctx context.Context, tenant, hash string) error
	// FireChecks returns the scheduled definitions whose fires are due for
	// a check up to `to` (their next fire is due by then, or not known),
	// with the fires their runs were for.
	FireChecks(ctx context.Context, to time.Time) ([]FireCheck, error)
	// RecordFireCheck records that a definition's fires were checked from
	// c.From up to `to`, the missed ones counted, and the catch-up runs
	// owed now (pending, for c.Hash); counted is false when another check
	// recorded that window first (a former leader), and then nothing is
	// recorded.
	RecordFireCheck(ctx context.Context, c FireCheck, to time.Time, missed, pending []time.Time) (counted bool, err error)
	// SetFiresDue records, by definition id, when each definition's next
	// fire is due: FireChecks leaves it out until then.
	SetFiresDue(ctx context.Context, due map[int64]time.Time) error
	// DefinitionCounts counts live definitions by tenant, kind and state.
	DefinitionCounts(ctx context.Context) ([]DefinitionCount, error)
	// TenantStatuses summarizes every tenant.
	TenantStatuses(ctx context.Context) ([]TenantStatus, error)
}

// DefinitionsScanner is an AppliedState that reads every tenant's applied
// definitions in one pass (store.Store): a replica that starts loads its
// apps with it, one query instead of one per tenant.
type DefinitionsScanner interface {
	// EachTenantDefinitions calls fn with every known tenant's applied
	// definitions (what Definitions returns), tenant by tenant; an error
	// from fn stops it.
	EachTenantDefinitions(ctx context.Context, fn func(tenant string, defs []Definition) error) error
}

// ErrNotLeader means this replica does not hold the leader lock: another
// one does, or a write was refused because the lock was lost.
var ErrNotLeader = errors.New("not the leader: the leader lock was lost")

// Elector campaigns for the leader lock (store.Elector).
type Elector interface {
	// Acquire blocks until this replica holds the leader lock, ctx ends,
	// or the database cannot be reached at all. With once it makes one
	// attempt, and returns ErrNotLeader while another replica holds it.
	Acquire(ctx context.Context, once bool) (Lease, error)
}

// Lease is the leader lock while this replica holds it.
type Lease interface {
	// Lost is closed when the lock is lost.
	Lost() <-chan struct{}
	// Release gives the lock up.
	Release(ctx context.Context) error
	// Store is the applied state written under the lease: each of its
	// writes fails with ErrNotLeader once the lock is lost.
	Store() Store
}

// Apps are the tenants' Inngest apps (inngest.Apps: the registry bound to
// the runner its functions call).
type Apps interface {
	// SetTenant serves defs as the tenant's app.
	SetTenant(tenant string, defs []Definition) error
	// SyncIsolating syncs the tenant's app; a function Inngest refuses is
	// kept out of it and returned (code → why) while the rest syncs.
	SyncIsolating(ctx context.Context, tenant string) (rejected map[string]string, err error)
	// RegistrationHash identifies what a sync of the tenant's app would
	// register now: equal hashes, equal registrations.
	RegistrationHash(ctx context.Context, tenant string) (string, error)
	// Views reads Inngest's view of every app at once: app id → the ids
	// of its functions. ErrNoBulkView: the server offers no such read.
	Views(ctx context.Context) (map[string][]string, error)
	// Verify compares Inngest's view of the app with what it serves.
	Verify(ctx context.Context, tenant string) (Drift, error)
	// SendOneShots sends the events of the app's due `at` definitions.
	SendOneShots(ctx context.Context, tenant string, now time.Time) (sent int, err error)
	// SeedFires sends the events of the next instant of the app's
	// intervals driven by fire events, those at most horizon ahead (any
	// for 0).
	SeedFires(ctx context.Context, tenant string, now time.Time, horizon time.Duration) (sent int, err error)
	// SendFires sends the events of the given fires (catch-ups).
	SendFires(ctx context.Context, tenant string, fires []Fire) (sent int, err error)
	// AppID names the tenant's app.
	AppID(tenant string) string
	// Functions lists the function ids the app serves.
	Functions(tenant string) []string
}

// AbandonedRun is a run whose attempts the leader closed as abandoned:
// the run failed.
type AbandonedRun struct {
	Tenant   string
	Kind     Kind
	Attempts int // its attempts closed (usually one)
}

// AbandonedCounter is what counts runs the leader closed as abandoned in
// the run metrics (inngest.Apps does, when the controller's Apps have it),
// as failed runs and failed attempts.
type AbandonedCounter interface {
	CountAbandoned(runs []AbandonedRun)
}

// ErrNoBulkView means the Inngest server's view of every app cannot be
// read at once; each app's view is read on its own.
var ErrNoBulkView = errors.New("the Inngest server offers no view of every app at once")

// Drift is how Inngest's view of an app differs from what it should serve.
type Drift struct {
	Missing []string // functions the server lacks
	Extra   []string // functions the server has that the app no longer serves
}

// None reports whether there is no drift.
func (d Drift) None() bool { return len(d.Missing) == 0 && len(d.Extra) == 0 }

// TreeChange is one debounced batch of changes to the definitions tree
// (the watch package sends them): "look again" at these tenants.
type TreeChange struct {
	// Tenants that changed, sorted; a tenant directory created, removed or
	// renamed is among them.
	Tenants []string
	// Full asks for a rescan of the whole tree: the watcher overflowed or
	// failed, or the tree's root itself changed (a volume swap).
	Full bool
}

// RunHistory is the run records as the leader tends them (store.Store):
// it closes attempts whose replica stopped and prunes old runs.
type RunHistory interface {
	// CloseAbandoned closes as failed and final the attempts still
	// running grace after their deadline, for at most limit definitions,
	// and returns the runs it closed.
	CloseAbandoned(ctx context.Context, grace time.Duration, limit int) ([]AbandonedRun, error)
	// PruneRuns deletes at most batch attempts that ended before
	// `before`, keeping each definition's newest; more reports that a
	// full batch went.
	PruneRuns(ctx context.Context, before time.Time, batch int) (deleted int, more bool, err error)
}
