package reconciler

import (
	"encoding/json"
	"time"
)

// Applied is a definition as the store last applied it: what a reconcile
// compares the tree with.
type Applied struct {
	ID          int64
	UUID        string
	Tenant      string
	Code        string
	Kind        Kind
	Hash        string
	Active      bool
	Source      Source
	Revision    int64
	TriggerType TriggerType
	// Spec is the canonical JSON document applied (see Definition); loaded
	// only when a caller asks for it.
	Spec      json.RawMessage
	UpdatedAt time.Time
	// Commit is the git commit the tree was at when this revision was
	// applied; "" when it was no git checkout.
	Commit string
}

// AppliedTenant is one tenant's applied state.
type AppliedTenant struct {
	Tenant      string
	Definitions map[string]Applied // by code
	// Known: the store has a record of the tenant.
	Known bool
	// Held lists the codes whose retirement the prune budget holds, sorted.
	Held []string
	// Problems are the validation problems stored at the last reconcile.
	Problems []Problem
}
