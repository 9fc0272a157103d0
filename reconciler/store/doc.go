// Package store keeps tasksync's applied state in PostgreSQL: tenants,
// their applied definitions (soft-deleted when retired), validation
// problems, reconciles and runs. It owns all SQL and applies the embedded
// migrations.
package store
