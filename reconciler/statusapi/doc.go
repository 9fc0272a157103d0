// Package statusapi is the read-only JSON status API (/v1/...): the last
// reconcile, tenants, definitions (filtered and paginated), one
// definition in detail with its next fire times, run history and current
// validation problems, optionally behind per-tenant bearer tokens.
package statusapi
