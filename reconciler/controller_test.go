package reconciler_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/inngest"
	"github.com/riveredge/tasksync/reconciler/inngest/inngesttest"
	"github.com/riveredge/tasksync/reconciler/store"
	"github.com/riveredge/tasksync/reconciler/store/storetest"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// The controller's tests run it in this process against a real PostgreSQL
// (storetest) and, where apps are synced, a real Inngest dev server
// (inngesttest), started on first use.

var (
	pg      *storetest.Cluster
	devOnce sync.Once
	dev     *inngesttest.Server
	devErr  error
)

func TestMain(m *testing.M) {
	code := storetest.Main(m, &pg)
	if dev != nil {
		dev.Stop()
	}
	os.Exit(code)
}

// devServer is the dev server shared by the tests that sync apps.
func devServer(t *testing.T) *inngesttest.Server {
	t.Helper()
	devOnce.Do(func() { dev, devErr = inngesttest.Start() })
	if devErr != nil {
		t.Fatalf("inngest dev server: %v", devErr)
	}
	return dev
}

// controllerTask is a definition file of one api_call task.
func controllerTask(code, cron string) string {
	return deftest.Task{Code: code, Trigger: fmt.Sprintf("{cron: %q}", cron)}.String()
}

// rig is a controller over a tree in a temporary directory, a fresh
// database and, when asked, the dev server.
type rig struct {
	dir     string
	url     string
	st      *store.Store
	reg     *inngest.Registry // nil without Inngest
	changes chan reconciler.TreeChange
	metrics *prometheus.Registry
	log     *waittest.Buffer
	tree    *definitions.Loader
	ctrl    *reconciler.Controller
}

type rigOptions struct {
	inngest bool
	elector reconciler.Elector                    // default the store's
	apps    func(reconciler.Apps) reconciler.Apps // wraps the apps, when set
	budget  string                                // --max-retire; default all
	rescan  chan struct{}                         // default none
	reuse   time.Duration                         // the loader's Options.Reuse; default none
	resync  time.Duration                         // default an hour
}

func newRig(t *testing.T, files map[string]string, o rigOptions) *rig {
	t.Helper()
	r := &rig{dir: deftest.WriteTree(t, files), changes: make(chan reconciler.TreeChange), metrics: prometheus.NewRegistry(), log: &waittest.Buffer{}}
	st, url := pg.NewStore(t, store.Options{AppPrefix: "ctl"})
	r.st, r.url = st, url
	logger := slog.New(slog.NewTextHandler(r.log, nil))
	var apps reconciler.Apps
	if o.inngest {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { r.reg.ServeHTTP(w, req) }))
		t.Cleanup(srv.Close)
		reg, err := inngest.New(inngest.Options{AppPrefix: "ctl", ServeOrigin: srv.URL, DevURL: devServer(t).URL, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		r.reg, apps = reg, reg.WithRunner(inngest.RefuseRuns{})
		if o.apps != nil {
			apps = o.apps(apps)
		}
	}
	v, err := definitions.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	elector := o.elector
	if elector == nil {
		elector = st.Elector(store.LeaderOptions{Logger: logger, Poll: 100 * time.Millisecond, Check: 100 * time.Millisecond})
	}
	if o.budget == "" {
		o.budget = "all"
	}
	budget, err := reconciler.ParseRetireBudget(o.budget)
	if err != nil {
		t.Fatal(err)
	}
	if o.resync == 0 {
		o.resync = time.Hour
	}
	r.tree = v.NewLoader(definitions.DirFS(r.dir), definitions.Options{AbsRoot: filepath.ToSlash(r.dir), Reuse: o.reuse})
	r.ctrl = reconciler.NewController(reconciler.ControllerOptions{
		Tree:   r.tree,
		Budget: budget, Workers: 2,
		State: st, Elector: elector, Apps: apps, Changes: r.changes,
		Resync: o.resync, Grace: 5 * time.Second, Logger: logger, Registerer: r.metrics,
		Rescan: o.rescan,
	})
	return r
}

func (r *rig) write(t *testing.T, name, data string) {
	t.Helper()
	deftest.WriteFile(t, filepath.Join(r.dir, filepath.FromSlash(name)), data)
}

func (r *rig) remove(t *testing.T, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(r.dir, filepath.FromSlash(name))); err != nil {
		t.Fatal(err)
	}
}

// run runs the controller until the test ends, and waits for its first
// reconcile as the leader.
func (r *rig) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.ctrl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v, want nil after cancel", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return 30s after its context ended")
		}
	})
	waittest.For(t, "the first reconcile as the leader", 30*time.Second, func() bool { return r.ctrl.Ready() && r.ctrl.Leader() })
}

// change sends a tree change to the controller.
func (r *rig) change(t *testing.T, c reconciler.TreeChange) {
	t.Helper()
	select {
	case r.changes <- c:
	case <-time.After(30 * time.Second):
		t.Fatal("the controller took no tree change for 30s")
	}
}

func (r *rig) lastReconcile(t *testing.T) reconciler.ReconcileRecord {
	t.Helper()
	rec, err := r.st.LastReconcile(context.Background())
	if err != nil {
		t.Fatalf("LastReconcile: %v", err)
	}
	return rec
}

// reconciles is tasksync_reconcile_total{result}.
func (r *rig) reconciles(result reconciler.ReconcileResult) float64 {
	return r.metric("tasksync_reconcile_total", string(result))
}

// metric is the value of a gauge or counter of the controller's, with the
// label value given (none for an unlabelled one); -1 when it is not there.
func (r *rig) metric(name, label string) float64 {
	fams, err := r.metrics.Gather()
	if err != nil {
		return -1
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if label != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// TestControllerReconcilesAndSyncsTree: the leader's first pass applies
// the whole tree, records it, and syncs and verifies every tenant's app
// with the dev server.
func TestControllerReconcilesAndSyncsTree(t *testing.T) {
	r := newRig(t, map[string]string{
		"acme/tasks.yaml":   controllerTask("nightly", "0 2 * * *") + "---\n" + controllerTask("hourly", "0 * * * *"),
		"globex/tasks.yaml": controllerTask("sync", "*/5 * * * *"),
	}, rigOptions{inngest: true})
	r.run(t)

	rec := r.lastReconcile(t)
	if rec.Result != reconciler.ReconcileSuccess || rec.Counts.Created != 3 {
		t.Errorf("last reconcile = %s with %+v, want success with 3 created", rec.Result, rec.Counts)
	}
	if got := r.reconciles(reconciler.ReconcileSuccess); got != 1 {
		t.Errorf("tasksync_reconcile_total{result=success} = %v, want 1", got)
	}
	// Ready does not wait for Inngest: the apps sync after it.
	waittest.For(t, "every app synced", 30*time.Second, func() bool {
		tenants, err := r.st.TenantStatuses(context.Background())
		if err != nil || len(tenants) != 2 {
			return false
		}
		for _, ts := range tenants {
			if ts.SyncState != reconciler.SyncSynced {
				return false
			}
		}
		return true
	})
	want := map[string]map[string][]string{
		"ctl-acme":   {"ctl-acme-_nightly": {"TZ=UTC 0 2 * * *"}, "ctl-acme-_hourly": {"TZ=UTC 0 * * * *"}},
		"ctl-globex": {"ctl-globex-_sync": {"TZ=UTC */5 * * * *"}},
	}
	for app, fns := range want {
		got := devServer(t).Functions(t, app)
		for id, crons := range fns {
			if strings.Join(got[id].Crons(), ",") != strings.Join(crons, ",") {
				t.Errorf("%s: function %s has crons %v, want %v (server has %v)", app, id, got[id].Crons(), crons, got)
			}
		}
	}
}

// TestControllerWatchChangeGoesLive: a tree change naming a tenant is
// reconciled and live in Inngest: a changed schedule and a new task.
func TestControllerWatchChangeGoesLive(t *testing.T) {
	r := newRig(t, map[string]string{
		"acme/tasks.yaml":   controllerTask("nightly", "0 2 * * *"),
		"globex/tasks.yaml": controllerTask("sync", "*/5 * * * *"),
	}, rigOptions{inngest: true})
	r.run(t)

	r.write(t, "acme/tasks.yaml", controllerTask("nightly", "30 3 * * *")+"---\n"+controllerTask("weekly", "0 4 * * 1"))
	r.change(t, reconciler.TreeChange{Tenants: []string{"acme"}})
	waittest.For(t, "the edit live in Inngest", 30*time.Second, func() bool {
		fns := devServer(t).Functions(t, "ctl-acme")
		return strings.Join(fns["ctl-acme-_nightly"].Crons(), ",") == "TZ=UTC 30 3 * * *" && strings.Join(fns["ctl-acme-_weekly"].Crons(), ",") == "TZ=UTC 0 4 * * 1"
	})
	rec := r.lastReconcile(t)
	if rec.Result != reconciler.ReconcileSuccess || rec.Counts.Created != 1 || rec.Counts.Updated != 1 {
		t.Errorf("last reconcile = %s with %+v, want success with 1 created, 1 updated", rec.Result, rec.Counts)
	}
	defs, err := r.st.Definitions(context.Background(), "acme")
	if err != nil || len(defs) != 2 {
		t.Fatalf("acme's applied definitions = %d, %v; want 2", len(defs), err)
	}
}

// TestControllerRecordsFailedReconcile: a reconcile that fails as a whole
// (the tree cannot be read) is recorded, counted and logged like any
// other, so that /v1/status does not keep showing the previous one.
func TestControllerRecordsFailedReconcile(t *testing.T) {
	r := newRig(t, map[string]string{"acme/tasks.yaml": controllerTask("nightly", "0 2 * * *")}, rigOptions{})
	r.run(t)
	if rec := r.lastReconcile(t); rec.Result != reconciler.ReconcileSuccess {
		t.Fatalf("first reconcile = %s, want success", rec.Result)
	}
	first := r.lastReconcile(t).StartedAt

	if err := os.RemoveAll(r.dir); err != nil {
		t.Fatal(err)
	}
	r.change(t, reconciler.TreeChange{Full: true})
	waittest.For(t, "the failed reconcile counted", 30*time.Second, func() bool { return r.reconciles(reconciler.ReconcileError) == 1 })
	rec := r.lastReconcile(t)
	if rec.Result != reconciler.ReconcileError || !rec.StartedAt.After(first) {
		t.Errorf("last reconcile = %s started %v, want error after %v", rec.Result, rec.StartedAt, first)
	}
	if strings.Contains(rec.Message, r.dir) || rec.Message == "" {
		t.Errorf("message = %q, want a fixed phrase without the error's text", rec.Message)
	}
	if !strings.Contains(r.log.String(), "result=error") {
		t.Errorf("no reconcile log line with result=error in:\n%s", r.log.String())
	}
}

// TestControllerLostLock: when the leader lock's connection dies, the
// controller steps down, campaigns again, and leads a new term with a
// full reconcile.
func TestControllerLostLock(t *testing.T) {
	r := newRig(t, map[string]string{"acme/tasks.yaml": controllerTask("nightly", "0 2 * * *")}, rigOptions{})
	r.run(t)

	conn := storetest.Conn(t, r.url)
	var n int
	if err := conn.QueryRow(context.Background(), `
		select count(pg_terminate_backend(pid)) from pg_locks where locktype = 'advisory' and granted and database = (select oid from pg_database where datname = current_database())`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminate the lock's backend: %d ended, %v", n, err)
	}
	waittest.For(t, "a second term after the lock was lost", 30*time.Second, func() bool {
		return strings.Count(r.log.String(), "msg=leading") >= 2 && r.reconciles(reconciler.ReconcileSuccess) >= 2
	})
	if !strings.Contains(r.log.String(), "leader lock lost") {
		t.Errorf("no step-down in the log:\n%s", r.log.String())
	}
	if got := r.metric("tasksync_leader", ""); got != 1 {
		t.Errorf("tasksync_leader = %v, want 1 in the new term", got)
	}
}

// lostElector hands out leases lost from the start, whose store is the
// real one: the pass under way when the lock is lost is cut short.
type lostElector struct {
	st    reconciler.Store
	terms chan struct{}
}

type lostLease struct{ st reconciler.Store }

// stuckStore is an applied state whose reads last until their context
// ends: a pass over it ends only when something cuts it short.
type stuckStore struct{ reconciler.Store }

func (stuckStore) LoadAll(ctx context.Context, _ bool) (map[string]reconciler.AppliedTenant, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (lostLease) Lost() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
func (lostLease) Release(context.Context) error { return nil }
func (l lostLease) Store() reconciler.Store     { return stuckStore{l.st} }

func (e *lostElector) Acquire(ctx context.Context, once bool) (reconciler.Lease, error) {
	select {
	case <-e.terms:
		return lostLease{e.st}, nil
	default:
	}
	if once {
		return nil, reconciler.ErrNotLeader
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestControllerRecordsLostLockPass: a pass cut short by a lost lock is
// recorded as an error, saying so.
func TestControllerRecordsLostLockPass(t *testing.T) {
	e := &lostElector{terms: make(chan struct{}, 1)}
	r := newRig(t, map[string]string{"acme/tasks.yaml": controllerTask("nightly", "0 2 * * *")}, rigOptions{elector: e})
	e.st = r.st
	e.terms <- struct{}{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.ctrl.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waittest.For(t, "the cut-short pass counted", 30*time.Second, func() bool { return r.reconciles(reconciler.ReconcileError) == 1 })
	rec := r.lastReconcile(t)
	if rec.Result != reconciler.ReconcileError || !strings.Contains(rec.Message, "leader lock") {
		t.Errorf("last reconcile = %s %q, want error saying the leader lock was lost", rec.Result, rec.Message)
	}
}

// sendCount counts the one-shot events the real apps report sent.
type sendCount struct {
	reconciler.Apps
	mu    sync.Mutex
	calls int
	sent  int
}

func (c *sendCount) SendOneShots(ctx context.Context, tenant string, now time.Time) (int, error) {
	n, err := c.Apps.SendOneShots(ctx, tenant, now)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	c.sent += n
	return n, err
}

func (c *sendCount) counts() (calls, sent int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls, c.sent
}

// TestControllerPastOneShotIsExpired: a one-shot whose time passed before
// it was ever applied is applied, as expired: no problem recorded, no
// file held at its last applied version, tasksync_definition_errors 0,
// and no event sent. One whose time is ahead is scheduled and sent.
func TestControllerPastOneShotIsExpired(t *testing.T) {
	counter := &sendCount{}
	past := deftest.Task{Code: "launch", Trigger: "{at: '2001-01-01T00:00:00Z'}"}.String()
	ahead := deftest.Task{Code: "later", Trigger: fmt.Sprintf("{at: %q}", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))}.String()
	r := newRig(t, map[string]string{"acme/once.yaml": past, "acme/later.yaml": ahead}, rigOptions{
		inngest: true,
		apps:    func(a reconciler.Apps) reconciler.Apps { counter.Apps = a; return counter },
	})
	r.run(t)
	ctx := context.Background()

	rec := r.lastReconcile(t)
	if rec.Result != reconciler.ReconcileSuccess || rec.Counts.Created != 2 || rec.Counts.Errors != 0 {
		t.Errorf("last reconcile = %s with %+v, want success with 2 created, no error", rec.Result, rec.Counts)
	}
	if problems, err := r.st.Problems(ctx, "acme"); err != nil || len(problems) > 0 {
		t.Errorf("problems = %v, %v; want none", problems, err)
	}
	if got := r.metric("tasksync_definition_errors", "acme"); got != 0 {
		t.Errorf("tasksync_definition_errors{tenant=acme} = %v, want 0", got)
	}
	waittest.For(t, "the sync to send the one-shots", 30*time.Second, func() bool { calls, _ := counter.counts(); return calls > 0 })
	if _, sent := counter.counts(); sent != 1 {
		t.Errorf("one-shot events sent = %d, want 1 (the one ahead; none for the one whose time passed)", sent)
	}
	for code, want := range map[string]reconciler.OneShotState{"launch": reconciler.OneShotExpired, "later": reconciler.OneShotScheduled} {
		d, err := r.st.Definition(ctx, "acme", code)
		if err != nil {
			t.Fatalf("Definition(%s): %v", code, err)
		}
		if d.OneShot == nil || d.OneShot.State != want || d.OneShot.FiredAt != nil {
			t.Errorf("Definition(%s).OneShot = %+v, want %s", code, d.OneShot, want)
		}
	}
	list, err := r.st.ListDefinitions(ctx, "acme", reconciler.DefinitionFilter{Limit: 10})
	if err != nil || len(list) != 2 || list[1].Code != "launch" || list[1].OneShot == nil || list[1].OneShot.State != reconciler.OneShotExpired {
		t.Errorf("ListDefinitions = %+v, %v; want later, then launch listed as expired", list, err)
	}

	// A later pass over the unchanged file changes nothing and finds
	// nothing wrong.
	r.change(t, reconciler.TreeChange{Full: true})
	waittest.For(t, "the second reconcile", 30*time.Second, func() bool { return r.reconciles(reconciler.ReconcileSuccess) == 2 })
	if rec := r.lastReconcile(t); rec.Counts.Unchanged != 2 || rec.Counts.Errors != 0 {
		t.Errorf("second reconcile = %+v, want 2 unchanged, no error", rec.Counts)
	}
}
