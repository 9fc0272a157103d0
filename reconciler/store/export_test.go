package store

// PruneRunsSQL and PruneClaimsSQL are PruneRuns' statements, for the
// tests that check which indexes they can use.
const (
	PruneRunsSQL   = pruneRunsSQL
	PruneClaimsSQL = pruneClaimsSQL
	// PruneManualClaimsSQL prunes the claims of manual events.
	PruneManualClaimsSQL = pruneManualClaimsSQL
)
