package reconciler

import (
	"context"
	"time"
)

// The bounds of one pass of run history upkeep: each statement deletes at
// most pruneBatch rows (a short lock on few rows), statements are
// pruneRest apart so that run records and status reads go on between
// them, and a pass deletes at most pruneBatches batches; the next resync
// goes on where it stopped.
const (
	pruneBatch       = 1000
	pruneBatches     = 20
	pruneRest        = 100 * time.Millisecond
	abandonedPerPass = 500
)

// DefaultAbandonGrace is how long after its deadline an attempt still
// running is closed as abandoned: the engine's own retry of a call whose
// replica stopped comes well within it.
const DefaultAbandonGrace = 5 * time.Minute

// DefaultRunRetention is how long run records are kept.
const DefaultRunRetention = 30 * 24 * time.Hour

// tendRuns is the leader's upkeep of the run records, once per resync:
// attempts whose replica stopped are closed as failed, then runs older
// than the retention are deleted in small batches.
func (c *Controller) tendRuns(ctx context.Context) {
	h := c.opts.Runs
	if h == nil {
		return
	}
	grace := c.opts.AbandonGrace
	if grace <= 0 {
		grace = DefaultAbandonGrace
	}
	runs, err := h.CloseAbandoned(ctx, grace, abandonedPerPass)
	n := 0
	for _, r := range runs {
		n += r.Attempts
	}
	c.metrics.abandoned.Add(float64(n))
	if counter, ok := c.opts.Apps.(AbandonedCounter); ok && len(runs) > 0 {
		counter.CountAbandoned(runs) // so that alerts on failed runs see them
	}
	if n > 0 {
		c.log.Warn("closed attempts left running by a replica that stopped", "attempts", n, "runs", len(runs), "grace", grace)
	}
	if err != nil {
		c.log.Warn("close abandoned attempts", "err", err)
	}
	if c.opts.RunRetention <= 0 {
		return
	}
	before := time.Now().Add(-c.opts.RunRetention)
	total := 0
	for i := 0; i < pruneBatches; i++ {
		if i > 0 {
			t := time.NewTimer(pruneRest)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		n, more, err := h.PruneRuns(ctx, before, pruneBatch)
		total += n
		c.metrics.pruned.Add(float64(n))
		if err != nil {
			c.log.Warn("prune run records", "err", err, "deleted", total)
			return
		}
		if !more {
			break
		}
	}
	if total > 0 {
		c.log.Info("pruned run records", "deleted", total, "older_than", before.UTC().Format(time.RFC3339))
	}
}
