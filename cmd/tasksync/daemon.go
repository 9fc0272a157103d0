package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/executor"
	"github.com/riveredge/tasksync/reconciler/expr"
	"github.com/riveredge/tasksync/reconciler/inngest"
	"github.com/riveredge/tasksync/reconciler/statusapi"
	"github.com/riveredge/tasksync/reconciler/store"
	"github.com/riveredge/tasksync/reconciler/watch"
)

// shutdownGrace bounds draining HTTP and in-flight work on shutdown.
const shutdownGrace = 10 * time.Second

// Reasons /readyz gives for a 503: fixed phrases, never an error's text.
const (
	reasonStarting = "starting"
	reasonDatabase = "database unavailable"
)

// followerPoll is how often a follower checks for applied changes.
const followerPoll = 3 * time.Second

// daemon is the state of a running `tasksync run`.
type daemon struct {
	o       *runOptions
	logger  *slog.Logger
	st      *store.Store
	reg     *inngest.Registry
	runner  inngest.Runner
	metrics *daemonMetrics

	ready    atomic.Bool
	leader   atomic.Bool
	notReady atomic.Value // string: why /readyz says 503
}

// runDaemon is `tasksync run`: it serves every tenant's Inngest app and
// executes runs from the applied state; the replica holding the leader
// lock also watches the tree and reconciles it.
func runDaemon(ctx context.Context, o *runOptions, c *invocation, logger *slog.Logger, st *store.Store, reg *inngest.Registry, promReg *prometheus.Registry) error {
	if reg == nil {
		return usageError("run: Inngest is not configured: set INNGEST_DEV (the dev server's URL) or INNGEST_SIGNING_KEY")
	}
	envs, err := expr.NewEnvs()
	if err != nil {
		return err
	}
	allow, err := executor.ParseCIDRs(strings.Split(o.allowCIDRs, ","))
	if err != nil {
		return usageError("%v", err)
	}
	mask := []string{}
	if abs, err := realAbs(o.dir); err == nil {
		mask = append(mask, abs)
	}
	if o.secretsDir != "" {
		if abs, err := realAbs(o.secretsDir); err == nil {
			mask = append(mask, abs)
		}
	}
	uids, err := executor.ParseUIDRange(o.sandboxUIDs)
	if err != nil {
		return usageError("--sandbox-uids: %v", err)
	}
	sandbox := &executor.Sandbox{Python: o.python, UIDs: uids, Mask: mask, Cgroup: o.sandboxCgroup, Logger: logger}
	if err := sandbox.Check(ctx); err != nil {
		logger.Warn("python_script runs will be refused", "err", err)
	} else {
		if os.Geteuid() == 0 {
			logger.Info("python_script sandbox ready: each run as a uid of its own (running the daemon as a non-root user is recommended)", "uids", uids.String(), "cgroups", sandbox.CgroupMode())
		} else {
			logger.Info("python_script sandbox ready: each run in a user namespace of its own", "uid", os.Geteuid(), "cgroups", sandbox.CgroupMode())
		}
		if o.sandboxCgroup == executor.CgroupNone {
			logger.Warn("python_script runs have no cgroup (--sandbox-cgroup none): each process has its own memory and CPU limits, so one run may use memory_mb times 64 processes and every core")
		}
	}
	guard := executor.NewGuard(allow)
	if o.dnsServer != "" {
		guard.UseDNSServer(o.dnsServer)
	}
	spool := reconciler.NewRunSpool(st, reconciler.SpoolOptions{Logger: logger})
	registerSpoolMetrics(promReg, spool)
	d := &daemon{
		o: o, logger: logger, st: st, reg: reg,
		runner: &reconciler.TaskRunner{Records: st, Spool: spool, Actions: &executor.Actions{
			HTTP:    executor.NewHTTP(guard, envs, executor.NewSecrets(o.secretsDir, c.getenv)),
			Sandbox: sandbox,
		}},
		metrics: newDaemonMetrics(promReg),
	}
	d.notReady.Store(reasonStarting)

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	if err := checkListener(ln, c.getenv("INNGEST_DEV") != "", o.allowInsecureListen); err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: d.routes(promReg), ReadHeaderTimeout: 10 * time.Second}
	logger.Info("serving", "listen", ln.Addr().String(), "inngest_apps", reg.ServeOrigin()+inngest.ServePath+"<tenant>")

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	changes := make(chan watch.Change, 1)
	g.Go(func() error {
		return watch.New(o.dir, watch.Options{Logger: logger}).Run(gctx, changes)
	})
	// One attempt at the lock first, so that a replica that will lead
	// does not report ready as a follower before its first reconcile.
	first, err := st.AcquireLeadership(ctx, store.LeaderOptions{Logger: logger, Once: true})
	if err != nil && !errors.Is(err, store.ErrNotLeader) {
		logger.Warn("leader election", "err", err)
	}
	if first != nil {
		d.leader.Store(true)
	}
	g.Go(func() error { return d.serveApplied(gctx) })
	g.Go(func() error { return d.lead(gctx, first, changes) })
	g.Go(func() error { return spool.Run(gctx) })
	err = g.Wait()
	// Runs drained by the HTTP server's shutdown may have spooled records
	// after the spool's own last flush.
	spool.Close(context.WithoutCancel(ctx))
	if ctx.Err() != nil {
		logger.Info("stopped")
		return nil
	}
	return err
}

// routes are the daemon's HTTP endpoints.
func (d *daemon) routes(promReg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !d.ready.Load() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "reason": d.notReady.Load()})
			return
		}
		if err := d.st.Ping(r.Context()); err != nil {
			// Anyone may read /readyz: the reason is a fixed phrase, the
			// error (with the database's address) goes to the log only.
			d.logger.Warn("readiness: the database does not answer", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "reason": reasonDatabase})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"ready": true, "leader": d.leader.Load()})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(promReg, promhttp.HandlerOpts{}))
	mux.Handle(inngest.ServePath, d.reg)
	mux.Handle("/v1/", statusapi.NewHandler(statusapi.Options{Reader: d.st, Leader: d.leader.Load, TokensFile: d.o.tokensFile, Logger: d.logger}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "no such endpoint: " + r.URL.Path, "status": http.StatusNotFound})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return // the client went away; nothing else to tell it
	}
}

// serveApplied keeps every tenant's app serving the applied state while
// this replica is not the leader (the leader refreshes the apps it syncs),
// so that a follower executes the runs Inngest sends it.
func (d *daemon) serveApplied(ctx context.Context) error {
	// A follower checks for applied changes every few seconds (one cheap
	// query) so that the runs Inngest sends it are of the current version.
	tick := time.NewTicker(min(d.o.resyncInterval, followerPoll))
	defer tick.Stop()
	loaded, lastLoad := "", time.Time{}
	for {
		if !d.leader.Load() {
			fp, err := d.st.Fingerprint(ctx)
			if err == nil && (fp != loaded || time.Since(lastLoad) >= d.o.resyncInterval) {
				if err = d.loadApps(ctx); err == nil {
					loaded, lastLoad = fp, time.Now()
				}
			}
			if err != nil {
				d.logger.Warn("cannot load the applied definitions", "err", err)
			} else if !d.leader.Load() && !d.ready.Load() {
				d.ready.Store(true)
				d.logger.Info("ready", "role", "follower")
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (d *daemon) loadApps(ctx context.Context) error {
	tenants, err := d.st.Tenants(ctx)
	if err != nil {
		return err
	}
	for _, t := range tenants {
		defs, err := d.st.Definitions(ctx, t)
		if err != nil {
			return err
		}
		if err := d.reg.SetTenant(t, defs, d.runner); err != nil {
			return err
		}
	}
	return nil
}

// lead campaigns for the leader lock and, while holding it, reconciles:
// a full reconcile and sync first, then the tenants each watch change
// names, and everything again every resync interval.
func (d *daemon) lead(ctx context.Context, lead *store.Leadership, changes <-chan watch.Change) error {
	for ctx.Err() == nil {
		if lead == nil {
			var err error
			lead, err = d.st.AcquireLeadership(ctx, store.LeaderOptions{Logger: d.logger})
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
		d.leader.Store(true)
		d.metrics.leader.Set(1)
		d.logger.Info("leading")
		err := d.whileLeading(ctx, lead, changes)
		d.leader.Store(false)
		d.metrics.leader.Set(0)
		if rerr := lead.Release(context.WithoutCancel(ctx)); rerr != nil {
			d.logger.Warn("release the leader lock", "err", rerr)
		}
		if err != nil && ctx.Err() == nil {
			d.logger.Error("stepped down", "err", err)
		}
		lead = nil
	}
	return nil
}

func (d *daemon) whileLeading(ctx context.Context, lead *store.Leadership, changes <-chan watch.Change) error {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// lost ends the moment the lock is: a reconcile under way stops at
	// once then, not after the shutdown grace.
	lost, loseNow := context.WithCancel(context.Background())
	defer loseNow()
	go func() {
		select {
		case <-lead.Lost():
			d.logger.Error("leader lock lost: stepping down")
			loseNow()
			cancel()
		case <-lctx.Done():
		}
	}()
	r, err := d.o.reconciler(d.st.WithFence(lead))
	if err != nil {
		return err
	}
	d.reconcile(lctx, lost, r, nil)
	if !d.ready.Load() {
		d.ready.Store(true)
		d.logger.Info("ready", "role", "leader")
	}
	tick := time.NewTicker(d.o.resyncInterval)
	defer tick.Stop()
	for {
		select {
		case <-lctx.Done():
			return lctx.Err()
		case ch := <-changes:
			if ch.Full {
				d.reconcile(lctx, lost, r, nil)
			} else {
				d.reconcile(lctx, lost, r, ch.Tenants)
			}
		case <-tick.C:
			d.reconcile(lctx, lost, r, nil)
			d.checkMissedFires(lctx)
		}
	}
}

// graceful returns a context that ends shutdownGrace after ctx does, so
// that a reconcile under way when a signal arrives can finish. (A lost
// leader lock needs no such care: every write is fenced by the lock.)
func graceful(ctx context.Context) (context.Context, context.CancelFunc) {
	gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(shutdownGrace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-gctx.Done():
		}
	})
	return gctx, func() { stop(); cancel() }
}

// reconcile applies the tree (or the named tenants) and syncs the
// tenants whose applied state changed; a full reconcile syncs and
// verifies every tenant. A reconcile under way when the daemon is asked
// to stop is finished (within shutdownGrace).
func (d *daemon) reconcile(parent, lost context.Context, r *reconciler.Reconciler, tenants []string) {
	ctx, cancel := graceful(parent)
	defer cancel()
	defer context.AfterFunc(lost, cancel)()
	start := time.Now()
	var res *reconciler.Result
	var err error
	if tenants == nil {
		res, err = r.Apply(ctx)
	} else {
		res, err = r.ApplyTenants(ctx, tenants)
	}
	result := "success"
	switch {
	case err != nil:
		result = "error"
	case res.Err() != nil:
		// Some tenants failed; the others applied and are synced below.
		result = "error"
		d.logger.Error("reconcile: some tenants could not be applied", "err", res.Err())
	case len(res.Problems()) > 0:
		result = "invalid"
	}
	d.metrics.reconciles.WithLabelValues(result).Inc()
	d.metrics.reconcileDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		d.logger.Error("reconcile failed: nothing applied", "err", err, "duration", time.Since(start).Round(time.Millisecond))
		return
	}
	if result != "error" {
		d.metrics.lastSuccess.SetToCurrentTime()
	}
	msg := ""
	if res.Err() != nil {
		msg = fmt.Sprintf("%d tenants could not be applied", len(res.Failed))
	}
	if rerr := d.st.RecordReconcile(ctx, res.StartedAt, res.FinishedAt, result, res.Counts, msg); rerr != nil {
		d.logger.Warn("cannot record the reconcile", "err", rerr)
	}
	logChanges(d.logger, res)
	d.logger.Info("reconcile", "result", result, "tenants", len(res.Plans), "created", res.Counts.Created, "updated", res.Counts.Updated,
		"retired", res.Counts.Retired, "unchanged", res.Counts.Unchanged, "held", res.Counts.Held, "errors", res.Counts.Errors,
		"duration", time.Since(start).Round(time.Millisecond))
	for _, p := range res.Plans {
		if res.Failed[p.Tenant] != nil {
			continue
		}
		c := p.Counts()
		d.metrics.changes.WithLabelValues(p.Tenant, string(reconciler.ChangeCreate)).Add(float64(c.Created))
		d.metrics.changes.WithLabelValues(p.Tenant, string(reconciler.ChangeUpdate)).Add(float64(c.Updated))
		d.metrics.changes.WithLabelValues(p.Tenant, string(reconciler.ChangeRetire)).Add(float64(c.Retired))
	}
	d.refreshGauges(ctx)
	// A full reconcile syncs and verifies every app (drift, a restarted
	// server); a watch change syncs only the tenants it changed.
	var only []string
	if tenants != nil {
		only = nonNilStrings(res.WrittenTenants)
	}
	if failed := syncTenants(ctx, d.st, d.reg, d.runner, d.logger, only); len(failed) > 0 {
		d.logger.Warn("some tenants are not synced; the next resync retries them", "tenants", len(failed))
	}
}

// missedFireGrace is how long after a scheduled fire its run may start:
// Inngest's own scheduling delay, retries of a failed start, a leader
// change. (Kubernetes CronJob calls it startingDeadlineSeconds.)
const missedFireGrace = 5 * time.Minute

// checkMissedFires counts, for every scheduled definition, the fires since
// the last check that started no run within their grace period, on the
// definition and in tasksync_missed_fires_total.
func (d *daemon) checkMissedFires(ctx context.Context) {
	checks, err := d.st.FireChecks(ctx)
	if err != nil {
		d.logger.Warn("missed fires", "err", err)
		return
	}
	to := time.Now().Add(-missedFireGrace)
	for _, c := range checks {
		if !c.From.Before(to) {
			continue
		}
		missed := reconciler.MissedFires(c.Trigger, c.From, to, c.Runs, missedFireGrace)
		if err := d.st.RecordFireCheck(ctx, c.ID, to, missed); err != nil {
			d.logger.Warn("missed fires", "err", err)
			return
		}
		if len(missed) > 0 {
			d.metrics.missedFires.WithLabelValues(c.Tenant).Add(float64(len(missed)))
			d.logger.Warn("missed fires", "tenant", c.Tenant, "definition_id", c.ID, "missed", len(missed), "last", missed[len(missed)-1])
		}
	}
}

// refreshGauges sets the state gauges from the store: definitions,
// validation problems and held retirements per tenant.
func (d *daemon) refreshGauges(ctx context.Context) {
	counts, err := d.st.DefinitionCounts(ctx)
	if err != nil {
		d.logger.Warn("metrics", "err", err)
		return
	}
	tenants, err := d.st.TenantStatuses(ctx)
	if err != nil {
		d.logger.Warn("metrics", "err", err)
		return
	}
	d.metrics.definitions.Reset()
	for _, c := range counts {
		d.metrics.definitions.WithLabelValues(c.Tenant, c.Kind, c.State).Set(float64(c.N))
	}
	d.metrics.definitionErrors.Reset()
	d.metrics.retireHeld.Reset()
	for _, t := range tenants {
		d.metrics.definitionErrors.WithLabelValues(t.Tenant).Set(float64(t.Errors))
		d.metrics.retireHeld.WithLabelValues(t.Tenant).Set(float64(len(t.HeldRetires)))
	}
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// daemonMetrics are the daemon's own metrics; the Inngest registry keeps
// the sync and run metrics.
type daemonMetrics struct {
	reconciles        *prometheus.CounterVec
	reconcileDuration prometheus.Histogram
	lastSuccess       prometheus.Gauge
	leader            prometheus.Gauge
	definitions       *prometheus.GaugeVec
	definitionErrors  *prometheus.GaugeVec
	changes           *prometheus.CounterVec
	retireHeld        *prometheus.GaugeVec
	missedFires       *prometheus.CounterVec
}

func newDaemonMetrics(reg prometheus.Registerer) *daemonMetrics {
	m := &daemonMetrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tasksync_reconcile_total", Help: "Reconciles, by result (success, invalid, error).",
		}, []string{"result"}),
		reconcileDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tasksync_reconcile_duration_seconds", Help: "Duration of reconciles.",
			Buckets: prometheus.ExponentialBuckets(0.005, 3, 10),
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tasksync_last_reconcile_success_timestamp_seconds", Help: "When a reconcile last applied without error.",
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tasksync_leader", Help: "1 while this replica holds the leader lock.",
		}),
		definitions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tasksync_definitions", Help: "Applied definitions by tenant, kind and state (active, inactive).",
		}, []string{"tenant", "kind", "state"}),
		definitionErrors: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tasksync_definition_errors", Help: "Current validation problems of a tenant's tree.",
		}, []string{"tenant"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tasksync_changes_total", Help: "Changes applied, by tenant and action (create, update, retire).",
		}, []string{"tenant", "action"}),
		retireHeld: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tasksync_retire_held", Help: "Retirements the prune budget holds, by tenant.",
		}, []string{"tenant"}),
		missedFires: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tasksync_missed_fires_total", Help: "Scheduled fires that started no run within their grace period, by tenant.",
		}, []string{"tenant"}),
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tasksync_build_info", Help: "The running version."}, []string{"version"})
	build.WithLabelValues(version).Set(1)
	reg.MustRegister(m.reconciles, m.reconcileDuration, m.lastSuccess, m.leader, m.definitions, m.definitionErrors, m.changes, m.retireHeld, m.missedFires, build)
	return m
}

// registerSpoolMetrics exposes the run record spool: what waits for the
// database, and what was written or lost.
func registerSpoolMetrics(reg prometheus.Registerer, s *reconciler.RunSpool) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tasksync_run_records_spooled", Help: "Run records kept in memory until the database answers.",
		}, func() float64 { return float64(s.Len()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tasksync_run_records_flushed_total", Help: "Spooled run records written once the database answered.",
		}, func() float64 { return float64(s.Flushed()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tasksync_run_records_dropped_total", Help: "Spooled run records lost: over the spool's bound, or refused by the database.",
		}, func() float64 { return float64(s.Dropped()) }),
	)
}
