package reconciler

import (
	"context"
	"errors"
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

// recordTimeout bounds writing a reconcile's row, which is written even
// when the pass's own context has ended (a stop, a lost lock).
const recordTimeout = 10 * time.Second

// pass applies the tree (or the named tenants) and syncs the tenants whose
// applied state changed; a pass over the whole tree syncs and verifies
// every tenant.
func (c *Controller) pass(ctx context.Context, r *Reconciler, tenants []string) *Pass {
	p := c.apply(ctx, r, tenants)
	if p.Applied == nil {
		return p
	}
	defer c.refreshGauges(ctx) // after the sync, whose states they show
	if c.opts.Apps == nil {
		return p
	}
	// A full reconcile syncs and verifies every app (drift, a restarted
	// server); a tree change syncs only the tenants it changed.
	var only []string
	if tenants != nil {
		only = p.Applied.WrittenTenants
		if only == nil {
			only = []string{}
		}
	}
	p.Unsynced = c.syncTenants(ctx, only)
	return p
}

// apply is the reconcile of a pass. However it ends, its one deferred
// block records it: the result row, the metrics and the log line.
func (c *Controller) apply(ctx context.Context, r *Reconciler, tenants []string) (p *Pass) {
	start := time.Now()
	p = &Pass{}
	defer func() { c.record(ctx, start, p) }()
	if tenants == nil {
		p.Applied, p.Err = r.Apply(ctx)
	} else {
		p.Applied, p.Err = r.ApplyTenants(ctx, tenants)
	}
	return p
}

// record sets p.Result and records the reconcile: its row for the status
// API, its metrics and its log line. The row's message is a fixed phrase
// or a count, never an error's text: every status token reads it.
func (c *Controller) record(ctx context.Context, start time.Time, p *Pass) {
	res := p.Applied
	msg := ""
	switch {
	case p.Err != nil:
		p.Applied, res = nil, nil
		p.Result, msg = ReconcileError, "nothing applied: "+failureReason(ctx, p.Err)
	case res.Err() != nil:
		// Some tenants failed; the others applied and are synced.
		p.Result, p.Err = ReconcileError, res.Err()
		msg = fmt.Sprintf("%d tenants could not be applied", len(res.Failed))
	case len(res.Problems()) > 0:
		p.Result = ReconcileInvalid
	default:
		p.Result = ReconcileSuccess
	}
	started, finished, counts, plans, skipped := start, time.Now(), Counts{}, 0, 0
	if res != nil {
		started, finished, counts, plans, skipped = res.StartedAt, res.FinishedAt, res.Counts, len(res.Plans), res.Skipped
	}

	// The row first: whoever sees the metric move finds the row stored.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := c.opts.State.RecordReconcile(rctx, started, finished, p.Result, counts, msg); err != nil {
		c.log.Warn("cannot record the reconcile", "err", err)
	}

	c.metrics.reconciles.WithLabelValues(string(p.Result)).Inc()
	c.metrics.reconcileDuration.Observe(time.Since(start).Seconds())
	// Successful: applied, and the tree as last seen (this pass's tenants
	// and the others' last) has no problem. Only then does the timestamp
	// alerts key on advance.
	clean := false
	if res != nil {
		clean = c.noticeChanges(res)
	}
	if p.Result == ReconcileSuccess && clean {
		c.metrics.lastSuccess.SetToCurrentTime()
		c.metrics.lastSuccessful.Set(1)
	} else {
		c.metrics.lastSuccessful.Set(0)
	}
	if res != nil {
		for _, tp := range res.Plans {
			if res.Failed[tp.Tenant] != nil {
				continue
			}
			n := tp.Counts()
			c.metrics.changes.WithLabelValues(tp.Tenant, string(ChangeCreate)).Add(float64(n.Created))
			c.metrics.changes.WithLabelValues(tp.Tenant, string(ChangeUpdate)).Add(float64(n.Updated))
			c.metrics.changes.WithLabelValues(tp.Tenant, string(ChangeRetire)).Add(float64(n.Retired))
		}
		c.logChanges(res)
	}

	attrs := []any{"result", p.Result, "tenants", plans, "created", counts.Created, "updated", counts.Updated,
		"retired", counts.Retired, "unchanged", counts.Unchanged, "held", counts.Held, "errors", counts.Errors, "skipped", skipped,
		"duration", time.Since(start).Round(time.Millisecond)}
	if p.Err != nil {
		c.log.Error("reconcile", append(attrs, "message", msg, "err", p.Err)...)
		return
	}
	c.log.Info("reconcile", attrs...)
}

// failureReason says, in a fixed phrase, why a reconcile failed as a
// whole.
func failureReason(ctx context.Context, err error) string {
	cause := context.Cause(ctx)
	switch {
	case errors.Is(err, ErrNotLeader) || errors.Is(cause, ErrNotLeader):
		return "the leader lock was lost"
	case errors.Is(cause, errStopped) || ctx.Err() != nil:
		return "stopped before it finished"
	}
	return "the tree or the applied state could not be read"
}

// logChanges logs one line per change applied.
func (c *Controller) logChanges(res *Result) {
	for _, p := range res.Plans {
		if res.Failed[p.Tenant] != nil {
			continue
		}
		for _, ch := range p.Changes {
			switch {
			case ch.Action == ChangeUnchanged, ch.Held: // held: see noticeChanges
			default:
				c.log.Info("change", "tenant", p.Tenant, "code", ch.Code, "kind", ch.Kind, "action", ch.Action, "source_only", ch.SourceOnly)
			}
		}
	}
}
