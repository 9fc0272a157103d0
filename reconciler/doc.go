// Package reconciler holds tasksync's domain: the definitions teams write
// (scheduled tasks and workflows), the problems found in them, and the
// values the adapters under reconciler/ pass between each other.
//
// It imports no database driver, Inngest SDK, file watcher or HTTP code;
// those live in the sub-packages that adapt them.
package reconciler
