package reconciler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// errRejected is a tenant synced without the functions Inngest refused.
var errRejected = errors.New("Inngest rejected functions")

// syncAttempts and syncBackoff bound how a tenant's failing sync is retried
// within one pass: 0.5 s, then 1 s, then it is reported.
const (
	syncAttempts = 3
	syncBackoff  = 500 * time.Millisecond
	// SyncParallel tenants sync at once. More did not help: with 1,000
	// apps, 16 at once made a cold start slower (docs/benchmarks.md).
	SyncParallel = 4
)

// syncTenants serves each tenant's applied definitions (last known good
// versions included) as its app, syncs it, verifies Inngest's view and
// syncs once more on drift; a failure is retried with backoff. Tenants
// sync a few at a time, so that one tenant's trouble never holds up the
// others. It records each tenant's sync state and returns the tenants
// that could not be synced.
//
// only limits the sync to the named tenants; nil syncs every tenant.
func (c *Controller) syncTenants(ctx context.Context, only []string) map[string]error {
	failed := map[string]error{}
	tenants := only
	if tenants == nil {
		var err error
		if tenants, err = c.opts.State.Tenants(ctx); err != nil {
			failed["*"] = err
			return failed
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	slots := make(chan struct{}, SyncParallel)
	for _, tenant := range tenants {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			var err error
			for attempt := range syncAttempts {
				if attempt > 0 {
					select {
					case <-ctx.Done():
						err = ctx.Err()
					case <-time.After(syncBackoff << (attempt - 1)):
					}
				}
				if err = c.syncTenant(ctx, tenant); err == nil || ctx.Err() != nil || errors.Is(err, errRejected) {
					break
				}
			}
			state, msg := SyncSynced, ""
			if err != nil {
				state, msg = SyncFailed, err.Error()
				if errors.Is(err, errRejected) {
					state = SyncSynced // synced, without what was rejected
				}
				mu.Lock()
				failed[tenant] = err
				mu.Unlock()
				c.log.Error("sync", "tenant", tenant, "app", c.opts.Apps.AppID(tenant), "err", err)
			} else {
				c.log.Info("sync", "tenant", tenant, "app", c.opts.Apps.AppID(tenant), "functions", len(c.opts.Apps.Functions(tenant)))
			}
			if err := c.opts.State.SetSyncState(ctx, tenant, state, msg); err != nil {
				c.log.Warn("cannot record the sync state", "tenant", tenant, "err", err)
			}
		})
	}
	wg.Wait()
	return failed
}

// syncTenant serves, syncs and verifies one tenant's app, and sends its
// due one-shots once Inngest has the app.
func (c *Controller) syncTenant(ctx context.Context, tenant string) error {
	st, apps := c.opts.State, c.opts.Apps
	defs, err := st.Definitions(ctx, tenant)
	if err != nil {
		return err
	}
	if err := apps.SetTenant(tenant, defs); err != nil {
		return err
	}
	versions := make(map[string]string, len(defs)) // code → the hash served
	for _, d := range defs {
		versions[d.Metadata.Code] = d.Hash
	}
	for attempt := 0; attempt < 2; attempt++ {
		rejected, err := apps.SyncIsolating(ctx, tenant)
		if err != nil {
			return err
		}
		for code, why := range rejected {
			if err := st.SetDefinitionSyncState(ctx, tenant, code, versions[code], SyncRejected, why); err != nil {
				return err
			}
		}
		if len(rejected) > 0 {
			// The rest of the app is synced: its one-shots are due too.
			synced := maps.Clone(versions)
			maps.DeleteFunc(synced, func(code, _ string) bool { _, ok := rejected[code]; return ok })
			if err := st.SetDefinitionsSynced(ctx, tenant, synced); err != nil {
				return err
			}
			if _, err := apps.SendOneShots(ctx, tenant, time.Now()); err != nil {
				return err
			}
			return fmt.Errorf("%w: kept out of the app: %v", errRejected, slices.Sorted(maps.Keys(rejected)))
		}
		drift, err := apps.Verify(ctx, tenant)
		if err != nil {
			return err
		}
		if drift.None() {
			if err := st.SetDefinitionsSynced(ctx, tenant, versions); err != nil {
				return err
			}
			_, err := apps.SendOneShots(ctx, tenant, time.Now())
			return err
		}
		if attempt == 1 {
			return fmt.Errorf("inngest still differs after a re-sync: missing %v, left over %v", drift.Missing, drift.Extra)
		}
	}
	return nil
}

// loadApps serves every tenant's applied definitions as its app, without
// syncing: a follower executes the runs Inngest sends it.
func (c *Controller) loadApps(ctx context.Context) error {
	if c.opts.Apps == nil {
		return nil
	}
	tenants, err := c.opts.State.Tenants(ctx)
	if err != nil {
		return err
	}
	for _, t := range tenants {
		defs, err := c.opts.State.Definitions(ctx, t)
		if err != nil {
			return err
		}
		if err := c.opts.Apps.SetTenant(t, defs); err != nil {
			return err
		}
	}
	return nil
}
