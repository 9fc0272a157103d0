package reconciler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// errRejected is a tenant synced without the functions Inngest refused.
var errRejected = errors.New("Inngest rejected functions")

// syncAttempts and syncBackoff bound how a tenant's failing sync is retried
// within one pass: 0.5 s, then 1 s, then it is reported.
const (
	syncAttempts = 3
	syncBackoff  = 500 * time.Millisecond
	// DefaultSyncConcurrency tenants sync at once (--sync-concurrency);
	// docs/benchmarks.md has the measurements behind it.
	DefaultSyncConcurrency = 4
)

// syncConcurrency is how many tenants sync at once.
func (c *Controller) syncConcurrency() int {
	if c.opts.SyncConcurrency > 0 {
		return c.opts.SyncConcurrency
	}
	return DefaultSyncConcurrency
}

// syncTenants syncs the named tenants' apps (every tenant's when only is
// nil), SyncConcurrency at a time, and returns those that could not be
// synced. run --once syncs this way; the daemon's leader queues its
// syncs instead (runSyncs).
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
	slots := make(chan struct{}, c.syncConcurrency())
	for _, tenant := range tenants {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			if _, err := c.syncOne(ctx, tenant, false); err != nil {
				mu.Lock()
				failed[tenant] = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return failed
}

// syncOne syncs one tenant's app, retrying a failure with backoff, and
// records its sync state. It reports whether the app was registered
// (not merely checked) and why it could not be synced.
//
// A check (a pass over every app, not an edit) of an app that is still
// synced (stillSynced) stops there, and writes nothing.
func (c *Controller) syncOne(ctx context.Context, tenant string, check bool) (registered bool, err error) {
	if check && c.stillSynced(ctx, tenant) {
		c.log.Debug("sync: Inngest holds the app as registered", "tenant", tenant, "app", c.opts.Apps.AppID(tenant))
		// The intervals' next fires are due at every check all the same
		// (an instant comes within the horizon only as time passes).
		return false, c.seedFires(ctx, tenant)
	}
	c.fullSyncs.Add(1)
	// The version before the definitions the sync reads: should an apply
	// come in between, the app is synced again at the next check.
	_, versions := c.passViews(ctx)
	version, known := versions[tenant]
	defer func() { c.synced.set(tenant, version, known && err == nil) }()
	for attempt := range syncAttempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				err = ctx.Err()
			case <-time.After(syncBackoff << (attempt - 1)):
			}
		}
		var reg bool
		reg, err = c.syncTenant(ctx, tenant)
		registered = registered || reg
		if err == nil || ctx.Err() != nil || errors.Is(err, errRejected) {
			break
		}
	}
	state, msg := SyncSynced, ""
	switch {
	case err != nil:
		state, msg = SyncFailed, err.Error()
		if errors.Is(err, errRejected) {
			state = SyncSynced // synced, without what was rejected
		}
		c.log.Error("sync", "tenant", tenant, "app", c.opts.Apps.AppID(tenant), "err", err)
	case registered:
		c.log.Info("sync", "tenant", tenant, "app", c.opts.Apps.AppID(tenant), "functions", len(c.opts.Apps.Functions(tenant)))
	default:
		c.log.Debug("sync: Inngest holds the app as registered", "tenant", tenant, "app", c.opts.Apps.AppID(tenant))
	}
	if rerr := c.opts.State.SetSyncState(ctx, tenant, state, msg); rerr != nil {
		c.log.Warn("cannot record the sync state", "tenant", tenant, "err", rerr)
	}
	return registered, err
}

// syncTenant serves a tenant's applied definitions as its app and makes
// sure Inngest holds it. When what it would register is what was last
// registered (the stored hash) and Inngest's view of the app has every
// function and no other, it registers nothing. Otherwise it registers the
// app, verifies Inngest's view (syncing once more on drift), sends its
// due one-shots and records what it registered. It reports whether it
// registered.
func (c *Controller) syncTenant(ctx context.Context, tenant string) (registered bool, err error) {
	st, apps := c.opts.State, c.opts.Apps
	defs, err := st.Definitions(ctx, tenant)
	if err != nil {
		return false, err
	}
	if err := apps.SetTenant(tenant, defs); err != nil {
		return false, err
	}
	versions := make(map[string]string, len(defs)) // code → the hash served
	for _, d := range defs {
		versions[d.Metadata.Code] = d.Hash
	}
	hash, err := apps.RegistrationHash(ctx, tenant)
	if err != nil {
		return false, err
	}
	last, err := st.RegisteredHash(ctx, tenant)
	if err != nil {
		return false, err
	}
	if hash == last {
		// Registered before: Inngest's view tells whether it still holds
		// the app (a server that lost its state does not). The view of
		// every app, read once per pass, answers for most; where it
		// does not, the app's own view decides.
		if c.heldAsRegistered(ctx, tenant) {
			return false, errors.Join(st.SetDefinitionsSynced(ctx, tenant, versions), c.seedFires(ctx, tenant))
		}
		drift, err := apps.Verify(ctx, tenant)
		if err != nil {
			return false, err
		}
		if drift.None() {
			return false, errors.Join(st.SetDefinitionsSynced(ctx, tenant, versions), c.seedFires(ctx, tenant))
		}
	}
	// Whatever happens to this registration, the next sync must not take
	// an earlier one's hash for what Inngest holds.
	if last != "" {
		if err := st.SetRegisteredHash(ctx, tenant, ""); err != nil {
			return false, err
		}
	}
	for attempt := 0; attempt < 2; attempt++ {
		rejected, err := apps.SyncIsolating(ctx, tenant)
		if err != nil {
			return true, err
		}
		for code, why := range rejected {
			if err := st.SetDefinitionSyncState(ctx, tenant, code, versions[code], SyncRejected, why); err != nil {
				return true, err
			}
		}
		if len(rejected) > 0 {
			// The rest of the app is synced: its one-shots are due too.
			// No hash is recorded: every resync tries the whole app again.
			synced := maps.Clone(versions)
			maps.DeleteFunc(synced, func(code, _ string) bool { _, ok := rejected[code]; return ok })
			if err := st.SetDefinitionsSynced(ctx, tenant, synced); err != nil {
				return true, err
			}
			if _, err := apps.SendOneShots(ctx, tenant, time.Now()); err != nil {
				return true, err
			}
			if err := c.seedFires(ctx, tenant); err != nil {
				return true, err
			}
			return true, fmt.Errorf("%w: kept out of the app: %v", errRejected, slices.Sorted(maps.Keys(rejected)))
		}
		drift, err := apps.Verify(ctx, tenant)
		if err != nil {
			return true, err
		}
		if drift.None() {
			if err := st.SetDefinitionsSynced(ctx, tenant, versions); err != nil {
				return true, err
			}
			if _, err := apps.SendOneShots(ctx, tenant, time.Now()); err != nil {
				return true, err
			}
			if err := c.seedFires(ctx, tenant); err != nil {
				return true, err
			}
			return true, st.SetRegisteredHash(ctx, tenant, hash)
		}
		if attempt == 1 {
			return true, fmt.Errorf("inngest still differs after a re-sync: missing %v, left over %v", drift.Missing, drift.Extra)
		}
	}
	return true, nil
}

// seedFires sends the next instant of each of the tenant's intervals
// driven by fire events (Apps.SeedFires): at every sync and resync, so a
// chain Inngest lost is re-seeded within one resync. An instant more than
// two resyncs ahead waits for a later resync (each run sends the next
// instant anyway); run --once, which has no resync, sends every one.
func (c *Controller) seedFires(ctx context.Context, tenant string) error {
	_, err := c.opts.Apps.SeedFires(ctx, tenant, time.Now(), 2*c.opts.Resync)
	return err
}

// serverViews is Inngest's view of every app (app id → function ids) and
// the tenants' applied versions, as read for one pass; apps is nil when
// Inngest's view could not be read, versions when the store could not.
type serverViews struct {
	mu       sync.Mutex
	fetched  bool
	gen      uint64
	apps     map[string][]string
	versions map[string]int64
}

// passViews returns the views read for the pass under way, reading them
// at its first call: the applied versions first, then Inngest's view.
func (c *Controller) passViews(ctx context.Context) (apps map[string][]string, versions map[string]int64) {
	gen := c.syncs.generation()
	v := &c.views
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.fetched || v.gen != gen {
		versions, err := c.opts.State.AppliedVersions(ctx)
		if err != nil {
			c.log.Warn("cannot read the applied versions; syncing each app in full", "err", err)
		}
		apps, err := c.opts.Apps.Views(ctx)
		if err != nil && !errors.Is(err, ErrNoBulkView) {
			c.log.Warn("cannot read Inngest's view of every app; reading each app's", "err", err)
		}
		v.fetched, v.gen, v.apps, v.versions = true, gen, apps, versions
	}
	return v.apps, v.versions
}

// syncedApps is what the leader knows of the apps it synced in this
// term: the applied version each app was built from (as read before its
// definitions), so that a pass's check of an app nothing changed for
// needs no read of the store, no rebuild of the app and no write.
type syncedApps struct {
	mu       sync.Mutex
	versions map[string]int64
}

func (s *syncedApps) get(tenant string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.versions[tenant]
	return v, ok
}

// set records the version a tenant's synced app was built from; ok false
// forgets it (the next check syncs the tenant in full).
func (s *syncedApps) set(tenant string, version int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok {
		delete(s.versions, tenant)
		return
	}
	if s.versions == nil {
		s.versions = map[string]int64{}
	}
	s.versions[tenant] = version
}

func (s *syncedApps) clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.versions = nil
}

// stillSynced reports whether a pass's check of a tenant's app can stop
// at once: the app was synced in this term from the applied version the
// pass read, and Inngest's view of every app shows it with exactly the
// functions it serves. A server that lost its state fails the second
// test, an applied change the first.
func (c *Controller) stillSynced(ctx context.Context, tenant string) bool {
	synced, ok := c.synced.get(tenant)
	if !ok {
		return false
	}
	if _, versions := c.passViews(ctx); versions == nil || versions[tenant] != synced {
		return false
	}
	return c.heldAsRegistered(ctx, tenant)
}

// heldAsRegistered reports whether Inngest's view of every app, read once
// for the pass under way, shows the tenant's app with exactly the
// functions it serves. false means "read the app's own view": the view
// may predate a registration made since.
func (c *Controller) heldAsRegistered(ctx context.Context, tenant string) bool {
	apps, _ := c.passViews(ctx)
	have, ok := apps[c.opts.Apps.AppID(tenant)]
	if !ok {
		return false
	}
	want := c.opts.Apps.Functions(tenant)
	return len(have) == len(want) && !slices.ContainsFunc(want, func(id string) bool { return !slices.Contains(have, id) })
}

// progressEvery is how often the leader logs the progress of a sync
// backlog and refreshes the gauges that show it.
const progressEvery = 5 * time.Second

// runSyncs syncs the tenants queued in c.syncs, SyncConcurrency at a
// time, until ctx ends; while a backlog drains it logs its progress
// every few seconds, and once more when it is done.
func (c *Controller) runSyncs(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	q := c.syncs
	var refreshedAt atomic.Int64 // c.fullSyncs when the gauges were last refreshed here
	refreshedAt.Store(-1)
	finish := func(tenant string, registered bool, err error) {
		if b, empty := q.done(tenant, registered, err != nil); empty {
			if b.done > 1 {
				c.log.Info("sync backlog done", "tenants", b.done, "registered", b.registered, "failed", b.failed,
					"duration", time.Since(b.since).Round(time.Millisecond))
			}
			// A backlog of quick checks changed no sync state.
			if n := c.fullSyncs.Load(); refreshedAt.Swap(n) != n {
				c.refreshGauges(ctx)
			}
		}
	}
	for range c.syncConcurrency() {
		wg.Go(func() {
			for {
				tenant, urgent, ok := q.pop()
				if !ok {
					select {
					case <-ctx.Done():
						return
					case <-q.wake:
						continue
					}
				}
				registered, err := c.syncOne(ctx, tenant, !urgent)
				finish(tenant, registered, err)
			}
		})
	}
	// One more worker, for edits only: an edited tenant's sync starts at
	// once, whatever syncs of a backlog the others are in.
	wg.Go(func() {
		for {
			tenant, ok := q.popUrgent()
			if !ok {
				select {
				case <-ctx.Done():
					return
				case <-q.wakeUrgent:
					continue
				}
			}
			registered, err := c.syncOne(ctx, tenant, false)
			finish(tenant, registered, err)
		}
	})
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if waiting, inFlight, b := q.progress(); waiting+inFlight > 0 && time.Since(b.since) >= progressEvery {
			c.log.Info("sync progress", "waiting", waiting, "in_flight", inFlight, "done", b.done,
				"registered", b.registered, "failed", b.failed, "elapsed", time.Since(b.since).Round(time.Second))
			c.refreshGauges(ctx)
		}
	}
}

// loadApps serves every tenant's applied definitions as its app, without
// syncing: a follower executes the runs Inngest sends it.
func (c *Controller) loadApps(ctx context.Context) error {
	if c.opts.Apps == nil {
		return nil
	}
	if scan, ok := c.opts.State.(DefinitionsScanner); ok {
		return scan.EachTenantDefinitions(ctx, c.opts.Apps.SetTenant)
	}
	tenants, err := c.opts.State.Tenants(ctx)
	if err != nil {
		return err
	}
	// Several at a time: at start, a replica is ready only once every
	// app is loaded, one query each.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(4, c.opts.Workers))
	for _, t := range tenants {
		g.Go(func() error {
			defs, err := c.opts.State.Definitions(gctx, t)
			if err != nil {
				return err
			}
			return c.opts.Apps.SetTenant(t, defs)
		})
	}
	return g.Wait()
}
