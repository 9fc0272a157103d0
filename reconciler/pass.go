package reconciler

import (
	"context"
	"fmt"
	"time"
)

// Pass is the outcome of one pass of the loop: a reconcile and the sync of
// the apps it changed (of every app, for the whole tree).
type Pass struct {
	// Result is how the reconcile ended.
	Result ReconcileResult
	// Applied is what the reconcile did; nil when it failed as a whole
	// and nothing was applied.
	Applied *Result
	// Err is why the reconcile failed as a whole, or the tenants whose
	// apply failed; nil otherwise.
	Err error
	// Unsynced maps the tenants whose app could not be synced to why.
	Unsynced map[string]error
}

// pass applies the tree (or the named tenants) and syncs the tenants whose
// applied state changed; a pass over the whole tree syncs and verifies
// every tenant.
func (c *Controller) pass(ctx context.Context, r *Reconciler, tenants []string) *Pass {
	start := time.Now()
	var res *Result
	var err error
	if tenants == nil {
		res, err = r.Apply(ctx)
	} else {
		res, err = r.ApplyTenants(ctx, tenants)
	}
	p := &Pass{Result: ReconcileSuccess, Applied: res, Err: err}
	switch {
	case err != nil:
		p.Result = ReconcileError
	case res.Err() != nil:
		// Some tenants failed; the others applied and are synced below.
		p.Result, p.Err = ReconcileError, res.Err()
		c.log.Error("reconcile: some tenants could not be applied", "err", res.Err())
	case len(res.Problems()) > 0:
		p.Result = ReconcileInvalid
	}
	c.metrics.reconciles.WithLabelValues(string(p.Result)).Inc()
	c.metrics.reconcileDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		c.log.Error("reconcile failed: nothing applied", "err", err, "duration", time.Since(start).Round(time.Millisecond))
		return p
	}
	if p.Result != ReconcileError {
		c.metrics.lastSuccess.SetToCurrentTime()
	}
	msg := ""
	if res.Err() != nil {
		msg = fmt.Sprintf("%d tenants could not be applied", len(res.Failed))
	}
	if rerr := c.opts.State.RecordReconcile(ctx, res.StartedAt, res.FinishedAt, p.Result, res.Counts, msg); rerr != nil {
		c.log.Warn("cannot record the reconcile", "err", rerr)
	}
	c.logChanges(res)
	c.log.Info("reconcile", "result", p.Result, "tenants", len(res.Plans), "created", res.Counts.Created, "updated", res.Counts.Updated,
		"retired", res.Counts.Retired, "unchanged", res.Counts.Unchanged, "held", res.Counts.Held, "errors", res.Counts.Errors,
		"duration", time.Since(start).Round(time.Millisecond))
	for _, tp := range res.Plans {
		if res.Failed[tp.Tenant] != nil {
			continue
		}
		n := tp.Counts()
		c.metrics.changes.WithLabelValues(tp.Tenant, string(ChangeCreate)).Add(float64(n.Created))
		c.metrics.changes.WithLabelValues(tp.Tenant, string(ChangeUpdate)).Add(float64(n.Updated))
		c.metrics.changes.WithLabelValues(tp.Tenant, string(ChangeRetire)).Add(float64(n.Retired))
	}
	c.refreshGauges(ctx)
	if c.opts.Apps == nil {
		return p
	}
	// A full reconcile syncs and verifies every app (drift, a restarted
	// server); a tree change syncs only the tenants it changed.
	var only []string
	if tenants != nil {
		only = res.WrittenTenants
		if only == nil {
			only = []string{}
		}
	}
	p.Unsynced = c.syncTenants(ctx, only)
	return p
}

// logChanges logs one line per change applied.
func (c *Controller) logChanges(res *Result) {
	for _, p := range res.Plans {
		if res.Failed[p.Tenant] != nil {
			continue
		}
		for _, ch := range p.Changes {
			switch {
			case ch.Action == ChangeUnchanged:
			case ch.Held:
				c.log.Info("retirement held by the prune budget", "tenant", p.Tenant, "code", ch.Code)
			default:
				c.log.Info("change", "tenant", p.Tenant, "code", ch.Code, "kind", ch.Kind, "action", ch.Action, "source_only", ch.SourceOnly)
			}
		}
	}
}
