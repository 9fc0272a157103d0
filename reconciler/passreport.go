package reconciler

import (
	"fmt"
	"io"
)

// WriteText writes what `tasksync run --once` reports of a pass: every
// problem, one line a problem, then the counts applied, then, when the
// apps were synced (synced false: Inngest is not configured), whether
// every tenant's app was. A pass that applied nothing (Applied nil)
// writes nothing: its Err says why.
func (p *Pass) WriteText(w io.Writer, synced bool) {
	res := p.Applied
	if res == nil {
		return
	}
	for _, pr := range res.Problems() {
		fmt.Fprintln(w, pr.String())
	}
	n := res.Counts
	fmt.Fprintf(w, "Applied: %d created, %d updated, %d retired, %d unchanged", n.Created, n.Updated, n.Retired, n.Unchanged)
	if n.Held > 0 {
		fmt.Fprintf(w, ", %s held (raise the tenant's spec.maxRetire in a TenantSettings document, or --max-retire, to apply)", Plural(n.Held, "retirement"))
	}
	if n.Errors > 0 {
		fmt.Fprintf(w, "; %s (last applied versions kept)", Plural(n.Errors, "problem"))
	}
	fmt.Fprintln(w, ".")
	switch {
	case !synced:
	case len(p.Unsynced) > 0:
		fmt.Fprintf(w, "Inngest: %s could not be synced.\n", Plural(len(p.Unsynced), "tenant"))
	default:
		fmt.Fprintln(w, "Inngest: every tenant's app synced and verified.")
	}
}
