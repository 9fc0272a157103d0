// Package definitions reads a tenant tree of YAML definitions into
// validated, normalized reconciler.Definition values, and reports every
// problem it finds with the file, line and column to fix.
//
// A tree is any fs.FS (os.DirFS in production, fstest.MapFS in tests). Its
// first-level directories are tenants; each holds .yaml/.yml files at any
// depth, each file one or more documents. Validation has two layers: the
// embedded JSON Schema (schema/tasksync.schema.json), then the checks a
// schema cannot express (cron syntax as Inngest parses it, time zones,
// CEL, secret references, unique codes and step ids, ...).
package definitions
