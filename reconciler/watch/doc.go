// Package watch turns file-system events under a definitions tree into
// debounced "look again" signals naming the tenants that changed. It knows
// nothing of YAML: a change means the reconciler re-reads those tenants.
package watch
