// Package reconciler holds tasksync's domain: the definitions teams write
// (scheduled tasks and workflows), the problems found in them, the plan
// that compares a tree with the applied state, and the Controller that
// keeps the applied state and the Inngest apps in step with the tree: the
// leader loop, the reconcile of changed tenants, the periodic resync and
// the sync of the apps (controller.go, pass.go, sync.go).
//
// The controller reaches the database, the leader lock, the Inngest apps
// and the tree watcher through the ports it declares in ports.go. This
// package imports no database driver, Inngest SDK, file watcher or HTTP
// code; the sub-packages that adapt them implement the ports, and
// cmd/tasksync plugs them in.
package reconciler
