package reconciler

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
)

// DefaultFollowerPoll is how often a follower checks for applied changes
// when ControllerOptions.Poll is not set.
const DefaultFollowerPoll = 3 * time.Second

// missedFireGrace is how long after a scheduled fire its run may start:
// Inngest's own scheduling delay, retries of a failed start, a leader
// change. (Kubernetes CronJob calls it startingDeadlineSeconds.)
const missedFireGrace = 5 * time.Minute

// ControllerOptions are what a Controller runs with.
type ControllerOptions struct {
	// Tree, Budget and Workers make the Reconciler of each leadership
	// term, whose writes the term's lease fences.
	Tree    TreeSource
	Budget  RetireBudget
	Workers int
	// State is the applied state, read and recorded unfenced.
	State   AppliedState
	Elector Elector
	// Apps are the tenants' Inngest apps; nil when Inngest is not
	// configured (run --once then applies to Postgres only).
	Apps Apps
	// SyncConcurrency is how many tenants' apps sync at once; 0 means
	// DefaultSyncConcurrency.
	SyncConcurrency int
	// Changes are the tree watcher's; nil for none.
	Changes <-chan TreeChange
	// Rescan asks for a pass over the whole tree that syncs every app
	// (SIGHUP in the daemon); nil for none.
	Rescan <-chan struct{}
	// Resync is how often the whole tree is reconciled and every app
	// verified; the missed fires are counted then too.
	Resync time.Duration
	// MissedFireGrace is how long after a fire its run may start before
	// the fire counts as missed; default 5 minutes.
	MissedFireGrace time.Duration
	// Poll is how often a follower checks which tenants' applied state
	// changed (one query); default DefaultFollowerPoll, at most Resync.
	Poll time.Duration
	// Grace bounds how long a reconcile under way may finish after Run's
	// context ends.
	Grace  time.Duration
	Logger *slog.Logger
	// Registerer receives the controller's metrics; default none.
	Registerer prometheus.Registerer
	// Runs are the run records the leader tends every Resync: attempts
	// still running AbandonGrace (default DefaultAbandonGrace) after
	// their deadline are closed as abandoned, and runs older than
	// RunRetention (0: kept forever) are deleted. nil: neither.
	Runs         RunHistory
	AbandonGrace time.Duration
	RunRetention time.Duration
}

// Controller keeps the applied state and the Inngest apps in step with the
// definitions tree. The replica holding the leader lock reconciles: the
// whole tree when it starts leading and every Resync, the tenants each
// TreeChange names in between, syncing the apps that changed. Every
// replica serves the applied state as the tenants' apps.
type Controller struct {
	opts    ControllerOptions
	log     *slog.Logger
	metrics *metrics
	ready   atomic.Bool
	leader  atomic.Bool
	notices notices
	// syncs are the tenants waiting for their app's sync while this
	// replica leads (runSyncs).
	syncs *syncQueue
	// views is Inngest's view of every app, read once per pass.
	views serverViews
	// heldSince is, per tenant, since when the leader has seen Inngest
	// hold its app without a break (checkMissedFires, its one goroutine).
	heldSince map[string]time.Time
	// synced are the apps synced in this leadership term.
	synced syncedApps
	// gaugesSet: refreshGauges has set the state gauges once; fullSyncs
	// counts the syncs that went past the quick check (stillSynced), so
	// that a backlog of quick checks leaves the gauges as they are.
	gaugesSet atomic.Bool
	fullSyncs atomic.Int64
	// now is the clock of the missed-fire checks (time.Now).
	now func() time.Time
	// rescanLeader and reloadFollower take a rescan request to the role
	// this replica has (see routeRescans); each holds at most one.
	rescanLeader, reloadFollower chan struct{}
}

// NewController returns a controller; Run or Once starts it.
func NewController(opts ControllerOptions) *Controller {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultFollowerPoll
	}
	if opts.MissedFireGrace <= 0 {
		opts.MissedFireGrace = missedFireGrace
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry() // counted, but shown nowhere
	}
	c := &Controller{opts: opts, log: opts.Logger, metrics: newMetrics(opts.Registerer), syncs: newSyncQueue(),
		heldSince: map[string]time.Time{}, now: time.Now,
		rescanLeader: make(chan struct{}, 1), reloadFollower: make(chan struct{}, 1)}
	c.metrics.syncQueue(opts.Registerer, c.syncs)
	return c
}

// Ready reports whether this replica serves the applied state: a leader
// once its first reconcile applied and it loaded the apps, a follower
// once it loaded the apps. It does not wait for Inngest: the apps'
// registration follows, its progress in the sync states, the metrics and
// the log.
func (c *Controller) Ready() bool { return c.ready.Load() }

// Leader reports whether this replica holds the leader lock.
func (c *Controller) Leader() bool { return c.leader.Load() }

// Run serves the applied state as the tenants' apps and, while this
// replica holds the leader lock, reconciles, until ctx ends. It returns
// nil then, or the error that stops it (the database cannot be reached to
// campaign for the lock).
func (c *Controller) Run(ctx context.Context) error {
	// One attempt at the lock first, so that a replica that will lead
	// does not report ready as a follower before its first reconcile.
	first, err := c.opts.Elector.Acquire(ctx, true)
	if err != nil && !errors.Is(err, ErrNotLeader) {
		c.log.Warn("leader election", "err", err)
	}
	if first != nil {
		c.leader.Store(true)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return c.serveApplied(gctx) })
	g.Go(func() error { return c.lead(gctx, first) })
	g.Go(func() error { c.routeRescans(gctx); return nil })
	return g.Wait()
}

// routeRescans hands each rescan request to the role this replica has:
// the leader reconciles the whole tree and syncs every app; a follower
// reloads the applied definitions into its apps. Requests that come while
// one is pending are folded into it.
func (c *Controller) routeRescans(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.opts.Rescan:
		}
		to := c.reloadFollower
		if c.leader.Load() {
			to = c.rescanLeader
		}
		select {
		case to <- struct{}{}:
		default:
		}
	}
}

// Once is run --once: it takes the leader lock, makes one pass of the
// loop over the whole tree (reconcile, record, sync every app) and gives
// the lock up. While another replica holds the lock it returns
// ErrNotLeader at once: that replica reconciles the tree itself.
func (c *Controller) Once(ctx context.Context) (*Pass, error) {
	lease, err := c.opts.Elector.Acquire(ctx, true)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := lease.Release(context.WithoutCancel(ctx)); err != nil {
			c.log.Warn("release the leader lock", "err", err)
		}
	}()
	pctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	defer context.AfterFunc(lostContext(lease), func() { stop(ErrNotLeader) })()
	return c.pass(pctx, c.reconciler(lease), nil), nil
}

// reconciler is the Reconciler of one leadership term.
func (c *Controller) reconciler(lease Lease) *Reconciler {
	return &Reconciler{Tree: c.opts.Tree, Store: lease.Store(), Budget: c.opts.Budget, Workers: c.opts.Workers}
}

// lostContext is a context that ends when the lease is lost.
func lostContext(lease Lease) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-lease.Lost()
		cancel()
	}()
	return ctx
}

// serveApplied keeps every tenant's app serving the applied state while
// this replica is not the leader (the leader refreshes the apps it syncs),
// so that a follower executes the runs Inngest sends it. Every Poll it
// reads the tenants' applied versions (one query) and reloads only the
// tenants whose version moved (one query each): O(what changed). Its
// first load (and one after a rescan) reads every tenant in one query.
func (c *Controller) serveApplied(ctx context.Context) error {
	tick := time.NewTicker(min(c.opts.Resync, c.opts.Poll))
	defer tick.Stop()
	var loaded map[string]int64 // tenant → the applied version its app serves
	for {
		if !c.leader.Load() {
			var err error
			loaded, err = c.reloadChanged(ctx, loaded)
			if err != nil {
				c.log.Warn("cannot load the applied definitions", "err", err)
			} else {
				c.metrics.followerLoaded.SetToCurrentTime()
				if !c.leader.Load() && !c.ready.Load() {
					c.ready.Store(true)
					c.log.Info("ready", "role", "follower")
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-c.reloadFollower:
			c.log.Info("rescan requested: not the leader, reloading the applied definitions")
			loaded = nil // reload every tenant on the next turn
		}
	}
}

// lead campaigns for the leader lock and, while holding it, reconciles:
// a full reconcile and sync first, then the tenants each tree change
// names, and everything again every resync interval.
func (c *Controller) lead(ctx context.Context, lease Lease) error {
	for ctx.Err() == nil {
		if lease == nil {
			var err error
			lease, err = c.opts.Elector.Acquire(ctx, false)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
		c.leader.Store(true)
		c.metrics.leader.Set(1)
		c.log.Info("leading")
		err := c.whileLeading(ctx, lease)
		c.leader.Store(false)
		c.metrics.leader.Set(0)
		if rerr := lease.Release(context.WithoutCancel(ctx)); rerr != nil {
			c.log.Warn("release the leader lock", "err", rerr)
		}
		if err != nil && ctx.Err() == nil {
			c.log.Error("stepped down", "err", err)
		}
		lease = nil
	}
	return nil
}

// whileLeading is one leadership term: it returns when the lease is lost
// or ctx ends.
func (c *Controller) whileLeading(ctx context.Context, lease Lease) error {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// lost ends the moment the lock is: a reconcile under way stops at
	// once then, not after the shutdown grace.
	lost, loseNow := context.WithCancel(context.Background())
	defer loseNow()
	go func() {
		select {
		case <-lease.Lost():
			c.log.Error("leader lock lost: stepping down")
			loseNow()
			cancel()
		case <-lctx.Done():
		}
	}()
	r := c.reconciler(lease)
	// The apps sync in the background, edited tenants first, while the
	// term lasts.
	c.syncs.clear()
	c.synced.clear() // a new term checks every app in full once
	var syncers sync.WaitGroup
	defer syncers.Wait()
	defer cancel()
	if c.opts.Apps != nil {
		syncers.Go(func() { c.runSyncs(lctx) })
	}
	c.reconcile(lctx, lost, r, nil)
	if !c.ready.Load() {
		// Serve what was applied before any app is synced: Inngest may
		// call the apps it already holds.
		if err := c.loadApps(lctx); err != nil {
			c.log.Warn("cannot load the applied definitions", "err", err)
		}
		c.ready.Store(true)
		c.log.Info("ready", "role", "leader")
	}
	clear(c.heldSince) // what a former term saw of Inngest is no evidence now
	tick := time.NewTicker(c.opts.Resync)
	defer tick.Stop()
	for {
		select {
		case <-lctx.Done():
			if lost.Err() != nil {
				return ErrNotLeader
			}
			return lctx.Err()
		case ch := <-c.opts.Changes:
			if ch.Full {
				c.reconcile(lctx, lost, r, nil)
			} else {
				c.reconcile(lctx, lost, r, ch.Tenants)
			}
		case <-tick.C:
			c.reconcile(lctx, lost, r, nil)
			c.checkMissedFires(lctx)
			c.tendRuns(lctx)
		case <-c.rescanLeader:
			c.log.Info("rescan requested: re-reading the whole tree, reconciling it and syncing every app")
			c.opts.Tree.Forget()
			c.synced.clear()
			c.reconcile(lctx, lost, r, nil)
		}
	}
}

// reconcile is one pass of the leader's loop: it applies the tree (or the
// named tenants) and queues the syncs. The tenants a tree change changed
// go ahead of every other; a pass over the whole tree queues every tenant
// behind them (its app is checked, and registered only when it differs),
// the tenants it changed first. A
// reconcile under way when ctx ends may finish within the grace period;
// one under way when the lock is lost stops at once.
func (c *Controller) reconcile(parent, lost context.Context, r *Reconciler, tenants []string) {
	ctx, cancel := c.graceful(parent)
	defer cancel(nil)
	defer context.AfterFunc(lost, func() { cancel(ErrNotLeader) })()
	p := c.apply(ctx, r, tenants)
	if p.Applied == nil {
		return
	}
	// The gauges show the stored state: a pass that wrote nothing (an
	// idle resync) leaves them as they are.
	if p.Applied.Written > 0 || !c.gaugesSet.Load() {
		c.refreshGauges(ctx)
	}
	if c.opts.Apps == nil {
		return
	}
	if tenants != nil {
		c.syncs.push(p.Applied.WrittenTenants, nil)
		return
	}
	// A pass over the whole tree queues behind the edits: first the
	// tenants it changed (on a cold start, every one), then the others.
	all, err := c.opts.State.Tenants(ctx)
	if err != nil {
		c.log.Warn("cannot list the tenants to check their apps; the next resync retries", "err", err)
	}
	c.syncs.push(nil, slices.Concat(p.Applied.WrittenTenants, all))
}

// errStopped ends a pass that the grace period after a stop cut short.
var errStopped = errors.New("stopped before the reconcile finished")

// graceful returns a context that ends Grace after ctx does, so that a
// reconcile under way when the controller is asked to stop can finish. (A
// lost leader lock needs no such care: every write is fenced by the lock.)
func (c *Controller) graceful(ctx context.Context) (context.Context, context.CancelCauseFunc) {
	gctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(c.opts.Grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel(errStopped)
		case <-gctx.Done():
		}
	})
	return gctx, func(cause error) { stop(); cancel(cause) }
}

// checkMissedFires counts, for every scheduled definition, the fires
// since the last check that no run was for and whose grace has passed, on
// the definition and in tasksync_missed_fires_total, whatever its policy,
// and sends the catch-up runs its policy (latest, all) owes. A window is
// recorded (and counted) once: the record is conditional on the window's
// start, so a former leader's check of the same window counts nothing.
// The catch-ups owed are recorded with the count (FireCheck.Pending) and
// stay owed until each fire has a run or leaves the catch-up window: they
// are sent once Inngest has held the tenant's app again for the grace,
// and sent again at every resync until they ran (their events' ids make
// a second send start nothing), so a leader change loses none.
func (c *Controller) checkMissedFires(ctx context.Context) {
	now := c.now()
	to := now.Add(-c.opts.MissedFireGrace)
	checks, err := c.opts.State.FireChecks(ctx, to)
	if err != nil {
		c.log.Warn("missed fires", "err", err)
		return
	}
	// The definitions with no fire due in their window and no catch-up
	// owed: nothing to count, and no check to record (the next check
	// covers the same window again, and finds it as empty). When their
	// next fire is due is recorded instead, and the checks leave them out
	// until then: an idle resync reads the definitions with a fire due,
	// not every one.
	due := map[int64]time.Time{}
	defer func() {
		if err := c.opts.State.SetFiresDue(ctx, due); err != nil {
			c.log.Warn("missed fires", "err", err)
		}
	}()
	// Whether Inngest holds each tenant's app, asked at every resync for
	// the tenants with a catch-up policy: since when it has held it
	// without a break is what tells that an outage is over.
	held := map[string]bool{}
	if c.opts.Apps != nil {
		for _, fc := range checks {
			if _, ok := held[fc.Tenant]; ok || !fc.Trigger.CatchesUp() {
				continue
			}
			h := c.appHeld(ctx, fc.Tenant)
			held[fc.Tenant] = h
			if !h {
				delete(c.heldSince, fc.Tenant)
			} else if _, ok := c.heldSince[fc.Tenant]; !ok {
				c.heldSince[fc.Tenant] = now
			}
		}
	}
	for tenant := range c.heldSince {
		if _, ok := held[tenant]; !ok {
			delete(c.heldSince, tenant)
		}
	}
	for _, fc := range checks {
		if ctx.Err() != nil {
			return
		}
		if !fc.From.Before(to) {
			continue
		}
		if next := NextFires(fc.Trigger, fc.From, 1); len(fc.Pending) == 0 && (len(next) == 0 || next[0].After(to)) {
			at := to.Add(24 * time.Hour) // none ahead: look again in a day
			if len(next) > 0 {
				at = next[0]
			}
			due[fc.ID] = at
			continue
		}
		missed := MissedFires(fc.Trigger, fc.From, to, fc.Fired)
		pending := fc.Trigger.Owed(fc.Pending, missed, fc.Fired, now)
		counted, err := c.opts.State.RecordFireCheck(ctx, fc, to, missed, pending)
		if err != nil {
			c.log.Warn("missed fires", "err", err)
			return
		}
		if !counted {
			continue // a former leader's check, or a new version
		}
		if len(missed) > 0 {
			c.metrics.missedFires.WithLabelValues(fc.Tenant).Add(float64(len(missed)))
			c.log.Warn("missed fires", "tenant", fc.Tenant, "code", fc.Code, "definition_id", fc.ID, "missed", len(missed),
				"first", missed[0], "last", missed[len(missed)-1], "catch_up_owed", len(pending))
		}
		if len(pending) == 0 || c.opts.Apps == nil {
			continue
		}
		// The catch-ups wait until the outage is over and all of it is
		// known: Inngest holds the app again (events sent before would
		// start nothing), and has held it since before `to` (every fire
		// the outage took is past its grace and counted, so latest picks
		// the last of them, once).
		if since, ok := c.heldSince[fc.Tenant]; !held[fc.Tenant] || !ok || since.After(to) {
			if len(missed) > 0 {
				c.log.Info("missed fires: the catch-up runs wait for the outage to end", "tenant", fc.Tenant, "code", fc.Code,
					"owed", len(pending))
			}
			continue
		}
		// Oldest first: the first is sent, naming the others, and each
		// run sends the next as it starts (Fire.Then).
		fire := Fire{Code: fc.Code, Hash: fc.Hash, At: pending[0], CatchUp: true, Then: pending[1:]}
		if _, err := c.opts.Apps.SendFires(ctx, fc.Tenant, []Fire{fire}); err != nil {
			c.log.Warn("missed fires: cannot send the catch-up runs; the next resync tries again", "tenant", fc.Tenant,
				"code", fc.Code, "owed", len(pending), "err", err)
			continue
		}
		c.log.Info("catch-up runs sent", "tenant", fc.Tenant, "code", fc.Code, "policy", fc.Trigger.CatchUp, "fires", len(pending),
			"first", pending[0], "last", pending[len(pending)-1])
	}
}

// appHeld reports whether Inngest holds the tenant's app as it is served:
// Inngest's view of every app (read once per pass), else the app's own.
func (c *Controller) appHeld(ctx context.Context, tenant string) bool {
	if c.heldAsRegistered(ctx, tenant) {
		return true
	}
	d, err := c.opts.Apps.Verify(ctx, tenant)
	return err == nil && d.None()
}

// refreshGauges sets the state gauges from the store: definitions,
// validation problems, held retirements and failed syncs per tenant.
func (c *Controller) refreshGauges(ctx context.Context) {
	counts, err := c.opts.State.DefinitionCounts(ctx)
	if err != nil {
		c.log.Warn("metrics", "err", err)
		return
	}
	tenants, err := c.opts.State.TenantStatuses(ctx)
	if err != nil {
		c.log.Warn("metrics", "err", err)
		return
	}
	c.metrics.definitions.Reset()
	for _, n := range counts {
		c.metrics.definitions.WithLabelValues(n.Tenant, n.Kind, n.State).Set(float64(n.N))
	}
	c.metrics.definitionErrors.Reset()
	c.metrics.retireHeld.Reset()
	c.metrics.syncFailed.Reset()
	apps := map[SyncState]int{SyncPending: 0, SyncSynced: 0, SyncFailed: 0}
	for _, t := range tenants {
		apps[t.SyncState]++
		c.metrics.definitionErrors.WithLabelValues(t.Tenant).Set(float64(t.Errors))
		c.metrics.retireHeld.WithLabelValues(t.Tenant).Set(float64(len(t.HeldRetires)))
		failed := 0.0
		if t.SyncState == SyncFailed {
			failed = 1
		}
		c.metrics.syncFailed.WithLabelValues(t.Tenant).Set(failed)
		// Present at 0 from the start, so that an alert on its increase
		// sees a tenant's first missed fire.
		c.metrics.missedFires.WithLabelValues(t.Tenant)
	}
	for state, n := range apps {
		c.metrics.apps.WithLabelValues(string(state)).Set(float64(n))
	}
	c.gaugesSet.Store(true)
}
