// Package migrations embeds the SQL migrations of tasksync's applied
// state, applied in order by `tasksync migrate` and at the start of
// `tasksync run` (see reconciler/store).
package migrations

import "embed"

// FS holds the migrations, named NNNNN_description.sql in goose's format.
//
//go:embed *.sql
var FS embed.FS
