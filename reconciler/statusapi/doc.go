// Package statusapi is the read-only JSON status API described in
// docs/status-api.md: the last reconcile, tenants, definitions (filtered
// and paginated), one definition in detail with its next fire times, run
// history and current validation problems, optionally behind per-tenant
// bearer tokens.
package statusapi
