package store_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/riveredge/tasksync/migrations"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/store"
	"github.com/riveredge/tasksync/reconciler/store/storetest"
)

var pg *storetest.Cluster

func TestMain(m *testing.M) { os.Exit(storetest.Main(m, &pg)) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// task is the store tests' definition: named after its code, on a cron,
// with a secret in a header.
func task(code, cron string) string {
	return deftest.Task{Code: code, Name: code, Trigger: fmt.Sprintf("{cron: %q}", cron),
		Config: fmt.Sprintf("{url: 'https://a.example.com/%s', headers: {Authorization: 'Bearer ${secret:TOKEN}'}}", code)}.String()
}

// reconcile applies tree to s with budget and returns the result.
func reconcile(t *testing.T, s *store.Store, tree fstest.MapFS, budget string) *reconciler.Result {
	t.Helper()
	res, err := recon(t, s, tree, budget).Apply(ctxT(t))
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if err := res.Err(); err != nil {
		t.Fatalf("apply: %v", err)
	}
	return res
}

func recon(t *testing.T, s *store.Store, tree fstest.MapFS, budget string) *reconciler.Reconciler {
	t.Helper()
	v, err := definitions.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	b, err := reconciler.ParseRetireBudget(budget)
	if err != nil {
		t.Fatal(err)
	}
	return &reconciler.Reconciler{Tree: v.NewLoader(tree, definitions.Options{}), Store: s, Budget: b, Workers: 4}
}

func plan(t *testing.T, s *store.Store, tree fstest.MapFS) *reconciler.Result {
	t.Helper()
	res, err := recon(t, s, tree, "").Plan(ctxT(t), true)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return res
}

func change(t *testing.T, res *reconciler.Result, tenant, code string) reconciler.Change {
	t.Helper()
	for _, p := range res.Plans {
		if p.Tenant != tenant {
			continue
		}
		for _, c := range p.Changes {
			if c.Code == code {
				return c
			}
		}
	}
	t.Fatalf("no change for %s/%s", tenant, code)
	return reconciler.Change{}
}

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

func baseTree() fstest.MapFS {
	return fstest.MapFS{
		"acme/a.yaml":   file(task("alpha", "0 2 * * *")),
		"acme/b.yaml":   file(task("beta", "0 3 * * *") + "---\n" + task("gamma", "0 4 * * *")),
		"globex/x.yaml": file(task("xray", "*/5 * * * *")),
	}
}

type row struct {
	uuid      string
	revision  int64
	updatedAt time.Time
	deleted   bool
	source    string
}

func rows(t *testing.T, url string) map[string][]row {
	t.Helper()
	conn := storetest.Conn(t, url)
	rs, err := conn.Query(ctxT(t), `select t.code || '/' || d.code, d.uuid::text, d.revision, d.updated_at, d.deleted_at is not null, d.source_path || ':' || d.source_line
		from root_scheduled_tasks d join root_tenants t on t.id = d.tenant_id order by d.id`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]row{}
	for rs.Next() {
		var k string
		var r row
		if err := rs.Scan(&k, &r.uuid, &r.revision, &r.updatedAt, &r.deleted, &r.source); err != nil {
			t.Fatal(err)
		}
		out[k] = append(out[k], r)
	}
	return out
}

func TestMigrateTwiceAndConcurrently(t *testing.T) {
	url := pg.NewDatabase(t)
	var wg sync.WaitGroup
	applied := make([]int, 4)
	errs := make([]error, 4)
	for i := range 4 {
		wg.Go(func() {
			s, err := store.Open(ctxT(t), url, store.Options{})
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			applied[i], errs[i] = s.Migrate(ctxT(t))
		})
	}
	wg.Wait()
	total := 0
	for i := range 4 {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		total += applied[i]
	}
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if total != len(files) {
		t.Errorf("migrations applied across replicas = %d, want each of the %d once", total, len(files))
	}
	s, err := store.Open(ctxT(t), url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.Migrate(ctxT(t)); err != nil || n != 0 {
		t.Errorf("second migrate: applied %d, err %v; want 0, nil", n, err)
	}
	if err := s.CheckSchema(ctxT(t)); err != nil {
		t.Errorf("CheckSchema after migrate: %v", err)
	}
	fresh, err := store.Open(ctxT(t), pg.NewDatabase(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if err := fresh.CheckSchema(ctxT(t)); !errors.Is(err, store.ErrNotMigrated) {
		t.Errorf("CheckSchema on an empty database = %v, want ErrNotMigrated", err)
	}
}

// TestApplyIsIdempotent: the first apply creates everything; applying the
// same tree again writes nothing and bumps no updated_at.
func TestApplyIsIdempotent(t *testing.T) {
	s, url := pg.NewStore(t, store.Options{})
	res := reconcile(t, s, baseTree(), "")
	if res.Counts.Created != 4 || res.Written != 2 {
		t.Fatalf("first apply: %+v, written %d; want 4 created in 2 tenants", res.Counts, res.Written)
	}
	before := rows(t, url)
	stmts := s.Statements()
	res = reconcile(t, s, baseTree(), "")
	if res.Counts.Unchanged != 4 || res.Written != 0 || res.Pending() {
		t.Errorf("re-apply: %+v, written %d; want 4 unchanged, nothing written", res.Counts, res.Written)
	}
	if got := s.Statements() - stmts; got > 6 {
		t.Errorf("re-apply sent %d statements; want only the loads", got)
	}
	if after := rows(t, url); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("rows changed on re-apply:\nbefore %v\nafter  %v", before, after)
	}
	// Nothing about a secret's value is stored: only the reference.
	conn := storetest.Conn(t, url)
	var config string
	if err := conn.QueryRow(ctxT(t), `select task_config::text from root_scheduled_tasks where code = 'alpha'`).Scan(&config); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(config, "${secret:TOKEN}") {
		t.Errorf("task_config = %s, want the secret reference as written", config)
	}
}

func TestPlanCases(t *testing.T) {
	s, url := pg.NewStore(t, store.Options{})
	reconcile(t, s, baseTree(), "")
	tree := baseTree()
	// alpha changes its cron, beta moves to another file, gamma stays in b.yaml,
	// delta is new.
	tree["acme/a.yaml"] = file(task("alpha", "15 4 * * *"))
	tree["acme/b.yaml"] = file(task("gamma", "0 4 * * *"))
	tree["acme/moved/c.yaml"] = file(task("beta", "0 3 * * *") + "---\n" + task("delta", "@hourly"))
	res := plan(t, s, tree)

	alpha := change(t, res, "acme", "alpha")
	if alpha.Action != reconciler.ChangeUpdate || len(alpha.Fields) != 1 || alpha.Fields[0].Path != "trigger.cron" ||
		string(alpha.Fields[0].Before) != `"0 2 * * *"` || string(alpha.Fields[0].After) != `"15 4 * * *"` {
		t.Errorf("alpha = %+v, want an update of trigger.cron from 0 2 * * * to 15 4 * * *", alpha)
	}
	beta := change(t, res, "acme", "beta")
	if beta.Action != reconciler.ChangeUpdate || !beta.SourceOnly {
		t.Errorf("beta = %+v, want a source-only update (moved file), not retire + create", beta)
	}
	gamma := change(t, res, "acme", "gamma")
	if gamma.Action != reconciler.ChangeUpdate || !gamma.SourceOnly {
		t.Errorf("gamma = %+v, want a source-only update (its line moved)", gamma)
	}
	if d := change(t, res, "acme", "delta"); d.Action != reconciler.ChangeCreate {
		t.Errorf("delta = %+v, want create", d)
	}
	if x := change(t, res, "globex", "xray"); x.Action != reconciler.ChangeUnchanged {
		t.Errorf("xray = %+v, want unchanged", x)
	}
	// Plan never writes.
	before := rows(t, url)
	plan(t, s, tree)
	if after := rows(t, url); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("plan wrote: before %v after %v", before, after)
	}

	// Apply: the move keeps uuid and revision; the cron change bumps it.
	reconcile(t, s, tree, "")
	after := rows(t, url)
	if b := after["acme/beta"]; len(b) != 1 || b[0].uuid != before["acme/beta"][0].uuid || b[0].revision != 1 || b[0].source != "acme/moved/c.yaml:1" {
		t.Errorf("beta rows = %+v, want the same row moved to acme/moved/c.yaml:1 at revision 1", b)
	}
	if a := after["acme/alpha"]; len(a) != 1 || a[0].revision != 2 {
		t.Errorf("alpha rows = %+v, want revision 2", a)
	}
}

// TestLastKnownGood: a broken file keeps its applied definitions exactly as
// they were while other files apply; its problems are stored; once fixed
// it applies.
func TestLastKnownGood(t *testing.T) {
	s, url := pg.NewStore(t, store.Options{})
	reconcile(t, s, baseTree(), "")
	before := rows(t, url)
	tree := baseTree()
	tree["acme/b.yaml"] = file(task("beta", "0 3 * *") + "---\n" + task("gamma", "0 5 * * *"))
	tree["acme/a.yaml"] = file(task("alpha", "0 9 * * *"))
	res := reconcile(t, s, tree, "")
	if c := change(t, res, "acme", "beta"); c.Action != reconciler.ChangeUnchanged || c.Kept == "" {
		t.Errorf("beta = %+v, want kept unchanged", c)
	}
	if c := change(t, res, "acme", "gamma"); c.Action != reconciler.ChangeUnchanged || c.Kept == "" {
		t.Errorf("gamma = %+v, want kept unchanged: its file is broken", c)
	}
	after := rows(t, url)
	for _, code := range []string{"acme/beta", "acme/gamma"} {
		if fmt.Sprint(after[code]) != fmt.Sprint(before[code]) {
			t.Errorf("%s changed: %v → %v", code, before[code], after[code])
		}
	}
	if after["acme/alpha"][0].revision != 2 {
		t.Errorf("alpha was not applied: %+v", after["acme/alpha"])
	}
	applied, err := s.LoadTenant(ctxT(t), "acme", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied.Problems) != 1 || applied.Problems[0].Path != "acme/b.yaml" || applied.Problems[0].Line != 5 || applied.Problems[0].Column != 19 {
		t.Errorf("stored problems = %+v, want one at acme/b.yaml:5:19", applied.Problems)
	}
	// Fixed: it applies and the problem is cleared.
	tree["acme/b.yaml"] = file(task("beta", "0 3 * * *") + "---\n" + task("gamma", "0 5 * * *"))
	reconcile(t, s, tree, "")
	if r := rows(t, url)["acme/gamma"]; r[0].revision != 2 {
		t.Errorf("gamma after the fix: %+v, want revision 2", r)
	}
	applied, _ = s.LoadTenant(ctxT(t), "acme", false)
	if len(applied.Problems) != 0 {
		t.Errorf("problems after the fix: %v", applied.Problems)
	}
}

// brokenFS fails to read one directory, as an I/O error would.
type brokenFS struct {
	fstest.MapFS
	bad string
}

func (b brokenFS) ReadDir(name string) ([]os.DirEntry, error) {
	if name == b.bad {
		return nil, errors.New("input/output error")
	}
	return b.MapFS.ReadDir(name)
}

func TestReadErrorsRetireNothing(t *testing.T) {
	s, url := pg.NewStore(t, store.Options{})
	tree := baseTree()
	tree["acme/sub/d.yaml"] = file(task("delta", "@daily"))
	reconcile(t, s, tree, "all")
	before := rows(t, url)

	// A sub-directory cannot be read: the tenant applies and retires nothing,
	// even with an unlimited budget.
	v, _ := definitions.NewValidator()
	r := &reconciler.Reconciler{Tree: v.NewLoader(brokenFS{tree, "acme/sub"}, definitions.Options{}), Store: s, Budget: mustBudget(t, "all"), Workers: 2}
	res, err := r.Apply(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if c := change(t, res, "acme", "delta"); c.Action != reconciler.ChangeUnchanged {
		t.Errorf("delta = %+v, want kept", c)
	}
	// The tree's root cannot be read: the reconcile fails as a whole.
	r.Tree = v.NewLoader(brokenFS{tree, "."}, definitions.Options{})
	if _, err := r.Apply(ctxT(t)); err == nil {
		t.Errorf("apply with an unreadable root: err = nil")
	}
	if after := rows(t, url); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("rows changed: %v → %v", before, after)
	}
	// The database cannot be read: nothing happens either.
	closed, err := store.Open(ctxT(t), url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	r = recon(t, closed, fstest.MapFS{"acme/a.yaml": file(task("alpha", "@daily"))}, "all")
	if _, err := r.Apply(ctxT(t)); err == nil {
		t.Errorf("apply with a closed database: err = nil")
	}
}

func mustBudget(t *testing.T, s string) reconciler.RetireBudget {
	b, err := reconciler.ParseRetireBudget(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPruneBudget: removing more than half of a tenant's definitions, or a
// whole tenant directory, is held until the budget allows it.
func TestPruneBudget(t *testing.T) {
	s, url := pg.NewStore(t, store.Options{})
	reconcile(t, s, baseTree(), "")
	tree := fstest.MapFS{"acme/a.yaml": file(task("alpha", "0 2 * * *"))} // beta, gamma gone; globex vanished
	res := reconcile(t, s, tree, "")
	if res.Counts.Held != 3 || res.Counts.Retired != 0 {
		t.Errorf("counts = %+v, want 3 held, 0 retired", res.Counts)
	}
	applied, _ := s.LoadAll(ctxT(t), false)
	if h := applied["acme"].Held; fmt.Sprint(h) != "[beta gamma]" {
		t.Errorf("acme held = %v, want [beta gamma]", h)
	}
	if h := applied["globex"].Held; fmt.Sprint(h) != "[xray]" {
		t.Errorf("globex held = %v, want [xray]", h)
	}
	for code, rs := range rows(t, url) {
		if rs[0].deleted {
			t.Errorf("%s retired despite the budget", code)
		}
	}
	// One of three is within the default budget.
	tree = baseTree()
	tree["acme/b.yaml"] = file(task("beta", "0 3 * * *"))
	res = reconcile(t, s, tree, "")
	if res.Counts.Retired != 1 || res.Counts.Held != 0 {
		t.Errorf("one of three: %+v, want 1 retired", res.Counts)
	}
	// A number allows that many; "all" allows a whole tenant.
	res = reconcile(t, s, fstest.MapFS{"acme/a.yaml": file(task("alpha", "0 2 * * *"))}, "1")
	if res.Counts.Retired != 2 || res.Counts.Held != 0 {
		t.Errorf("budget 1: %+v, want beta retired and globex's one retired", res.Counts)
	}
	applied, _ = s.LoadAll(ctxT(t), false)
	if len(applied["acme"].Held)+len(applied["globex"].Held) != 0 {
		t.Errorf("held after release: %v %v", applied["acme"].Held, applied["globex"].Held)
	}
}

// TestSoftDeleteAndReAdd: retiring keeps the row; adding the code again
// creates a fresh row with a fresh uuid.
func TestSoftDeleteAndReAdd(t *testing.T) {
	s, url := pg.NewStore(t, store.Options{})
	reconcile(t, s, baseTree(), "")
	tree := baseTree()
	delete(tree, "acme/a.yaml")
	reconcile(t, s, tree, "")
	reconcile(t, s, baseTree(), "")
	rs := rows(t, url)["acme/alpha"]
	if len(rs) != 2 || !rs[0].deleted || rs[1].deleted || rs[0].uuid == rs[1].uuid {
		t.Errorf("alpha rows = %+v, want a retired row and a fresh live one with another uuid", rs)
	}
}

// TestLeader: one replica holds the lock; a second waits; when the
// holder's connection is killed the holder steps down at once, its fenced
// writes are refused, and the second takes over.
func TestLeader(t *testing.T) {
	s1, url := pg.NewStore(t, store.Options{})
	s2, err := store.Open(ctxT(t), url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	opts := store.LeaderOptions{Poll: 100 * time.Millisecond, Check: 100 * time.Millisecond}
	l1, err := s1.AcquireLeadership(ctxT(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctxT(t), 500*time.Millisecond)
	defer cancel()
	if _, err := s2.AcquireLeadership(wait, opts); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second replica: err = %v, want to wait while the first leads", err)
	}
	if _, err := s1.WithFence(l1).Apply(ctxT(t), reconciler.Diff(&reconciler.TenantTree{Tenant: "acme"}, reconciler.AppliedTenant{Tenant: "acme"}, reconciler.RetireBudget{}), reconciler.AppliedTenant{Tenant: "acme", Problems: []reconciler.Problem{{Message: "x"}}}); err != nil {
		t.Fatalf("fenced write while leading: %v", err)
	}

	got := make(chan *store.Leadership, 1)
	go func() {
		l2, err := s2.AcquireLeadership(ctxT(t), opts)
		if err != nil {
			t.Error(err)
		}
		got <- l2
	}()
	admin := storetest.Conn(t, url)
	if _, err := admin.Exec(ctxT(t), `select pg_terminate_backend(pid) from pg_locks where locktype = 'advisory' and granted and objsubid = 1`); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l1.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("the first leader did not notice it lost the lock")
	}
	if _, err := s1.WithFence(l1).Apply(ctxT(t), reconciler.TenantPlan{Tenant: "acme"}, reconciler.AppliedTenant{Tenant: "acme", Problems: []reconciler.Problem{{Message: "y"}}}); !errors.Is(err, store.ErrNotLeader) {
		t.Errorf("fenced write after losing the lock: err = %v, want ErrNotLeader", err)
	}
	select {
	case l2 := <-got:
		if l2 == nil {
			t.Fatal("no second leader")
		}
		if _, err := s2.WithFence(l2).Apply(ctxT(t), reconciler.TenantPlan{Tenant: "acme"}, reconciler.AppliedTenant{Tenant: "acme", Problems: []reconciler.Problem{{Message: "z"}}}); err != nil {
			t.Errorf("fenced write by the new leader: %v", err)
		}
		if err := l2.Release(ctxT(t)); err != nil {
			t.Errorf("release: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second replica did not take over")
	}
}

// TestMissedFireAccounting: fires since the last check that no run was
// for are counted on the definition, each window once (a second check of
// it, as by a former leader, counts nothing), and the last ones are kept.
func TestMissedFireAccounting(t *testing.T) {
	s, url := pg.NewStore(t, store.Options{})
	reconcile(t, s, fstest.MapFS{"acme/a.yaml": file(task("minutely", "* * * * *"))}, "")
	conn := storetest.Conn(t, url)
	base := time.Now().Truncate(time.Minute).Add(-30 * time.Minute)
	if _, err := conn.Exec(ctxT(t), `update root_scheduled_tasks set updated_at = $1, fires_checked_at = null`, base); err != nil {
		t.Fatal(err)
	}
	ref, _, err := s.Current(ctxT(t), "acme", "minutely")
	if err != nil {
		t.Fatal(err)
	}
	// Runs for the first 10 of the 20 fires the check will cover, each
	// started late; then one for minute 16 started long after.
	for i := 1; i <= 10; i++ {
		in := reconciler.RunInput{RunID: fmt.Sprintf("r%d", i), ScheduledFor: base.Add(time.Duration(i) * time.Minute)}
		if _, err := s.StartRun(ctxT(t), ref, in, time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.StartRun(ctxT(t), ref, reconciler.RunInput{RunID: "late", ScheduledFor: base.Add(16 * time.Minute), CatchUp: true}, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if ran, err := s.RanFor(ctxT(t), ref, base.Add(16*time.Minute), "other"); err != nil || !ran {
		t.Errorf("RanFor(16) = %v, %v; want true", ran, err)
	}
	to := base.Add(20 * time.Minute)
	checks, err := s.FireChecks(ctxT(t), to)
	if err != nil || len(checks) != 1 {
		t.Fatalf("FireChecks = %v, %v", checks, err)
	}
	c := checks[0]
	missed := reconciler.MissedFires(c.Trigger, c.From, to, c.Fired)
	if len(missed) != 9 {
		t.Errorf("missed = %v, want the 9 fires without a run", missed)
	}
	owed := missed[len(missed)-2:]
	if counted, err := s.RecordFireCheck(ctxT(t), c, to, missed, owed); err != nil || !counted {
		t.Fatalf("RecordFireCheck = %v, %v", counted, err)
	}
	// A former leader's check of the same window records nothing.
	if counted, err := s.RecordFireCheck(ctxT(t), c, to, missed, nil); err != nil || counted {
		t.Errorf("a second record of the same window: counted %v, %v", counted, err)
	}
	checks, err = s.FireChecks(ctxT(t), to)
	if err != nil || len(checks) != 1 || !checks[0].From.Equal(to) {
		t.Fatalf("FireChecks after the record = %v, %v", checks, err)
	}
	// The catch-ups owed are kept for the version they were counted
	// under, and the runs are read from the oldest of them on.
	if got := checks[0].Pending; len(got) != 2 || !got[0].Equal(owed[0]) || !got[1].Equal(owed[1]) {
		t.Errorf("pending = %v, want %v", got, owed)
	}
	if _, err := conn.Exec(ctxT(t), `update root_scheduled_tasks set catchup_pending = array[$1::timestamptz], fires_checked_at = $2`,
		base.Add(time.Minute), base.Add(200*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if checks, err = s.FireChecks(ctxT(t), to); err != nil || len(checks) != 1 || !slices.ContainsFunc(checks[0].Fired, base.Add(time.Minute).Equal) {
		t.Errorf("FireChecks with a catch-up owed long before the window: fired %v, %v; want the run of minute 1", checks, err)
	}
	if _, err := conn.Exec(ctxT(t), `update root_scheduled_tasks set catchup_pending_hash = 'another version'`); err != nil {
		t.Fatal(err)
	}
	if checks, err = s.FireChecks(ctxT(t), to); err != nil || len(checks) != 1 || len(checks[0].Pending) != 0 {
		t.Errorf("FireChecks: catch-ups owed under another version = %v, %v; want none", checks, err)
	}
	d, err := s.Definition(ctxT(t), "acme", "minutely")
	if err != nil || d.MissedFires != 9 || d.LastMissedFireAt == nil || !d.LastMissedFireAt.Equal(to) {
		t.Errorf("definition: missed %d, last %v, err %v; want 9 and %v", d.MissedFires, d.LastMissedFireAt, err, to)
	}
	if len(d.LastMissedFires) != 9 || !d.LastMissedFires[0].Equal(base.Add(11*time.Minute)) {
		t.Errorf("last missed fires = %v", d.LastMissedFires)
	}
	runs, err := s.Runs(ctxT(t), "acme", "minutely", 1, 0)
	if err != nil || len(runs) != 1 || runs[0].ScheduledFor == nil || !runs[0].ScheduledFor.Equal(base.Add(16*time.Minute)) || !runs[0].CatchUp {
		t.Errorf("newest run = %+v, %v; want the catch-up for minute 16", runs, err)
	}
}

// TestDefinitionSyncStateIsPerVersion: a definition's sync state is
// recorded against the version that was synced; a late answer for an
// older version leaves the newer one pending.
func TestDefinitionSyncStateIsPerVersion(t *testing.T) {
	s, url := pg.NewStore(t, store.Options{})
	reconcile(t, s, baseTree(), "")
	defs, err := s.Definitions(ctxT(t), "acme")
	if err != nil {
		t.Fatal(err)
	}
	old := map[string]string{}
	for _, d := range defs {
		old[d.Metadata.Code] = d.Hash
	}
	state := func(code string) (st, msg string) {
		t.Helper()
		conn := storetest.Conn(t, url)
		if err := conn.QueryRow(ctxT(t), `select sync_state, coalesce(sync_error, '') from root_scheduled_tasks
			where code = $1 and deleted_at is null`, code).Scan(&st, &msg); err != nil {
			t.Fatal(err)
		}
		return st, msg
	}
	if err := s.SetDefinitionSyncState(ctxT(t), "acme", "alpha", old["alpha"], reconciler.SyncRejected, "invalid cron"); err != nil {
		t.Fatal(err)
	}
	if st, msg := state("alpha"); st != "rejected" || msg != "invalid cron" {
		t.Errorf("alpha = %s %q, want rejected", st, msg)
	}
	if err := s.SetDefinitionsSynced(ctxT(t), "acme", old); err != nil {
		t.Fatal(err)
	}
	if st, msg := state("alpha"); st != "synced" || msg != "" {
		t.Errorf("alpha = %s %q, want synced without an error", st, msg)
	}

	// alpha changes; the sync of its old version answers late.
	tree := baseTree()
	tree["acme/a.yaml"] = file(task("alpha", "30 2 * * *"))
	reconcile(t, s, tree, "")
	if err := s.SetDefinitionsSynced(ctxT(t), "acme", old); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDefinitionSyncState(ctxT(t), "acme", "alpha", old["alpha"], reconciler.SyncRejected, "late"); err != nil {
		t.Fatal(err)
	}
	if st, _ := state("alpha"); st != "pending" {
		t.Errorf("changed alpha = %s after a late answer for its old version, want pending", st)
	}
	if st, _ := state("beta"); st != "synced" {
		t.Errorf("unchanged beta = %s, want synced", st)
	}
}

// TestAppliedVersions: a tenant's applied version moves with every apply
// that changes what its app serves (a create, an update, a moved source,
// a retirement) and with nothing else: not a no-op apply, not another
// tenant's change, not a new problem.
func TestAppliedVersions(t *testing.T) {
	s, _ := pg.NewStore(t, store.Options{})
	versions := func() map[string]int64 {
		t.Helper()
		v, err := s.AppliedVersions(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tree := baseTree()
	reconcile(t, s, tree, "")
	v0 := versions()
	if len(v0) != 2 || v0["acme"] == 0 || v0["globex"] == 0 {
		t.Fatalf("versions after the first apply = %v, want acme and globex, non-zero", v0)
	}
	steps := []struct {
		name  string
		edit  func()
		moved []string // the tenants whose version must move
	}{
		{"no-op", func() {}, nil},
		{"update", func() { tree["acme/a.yaml"] = file(task("alpha", "0 5 * * *")) }, []string{"acme"}},
		{"moved source", func() { tree["acme/b.yaml"] = file("\n" + string(tree["acme/b.yaml"].Data)) }, []string{"acme"}},
		{"problem only", func() { tree["globex/bad.yaml"] = file("kind: [") }, nil},
		{"retire", func() { delete(tree, "acme/a.yaml") }, []string{"acme"}},
		{"create", func() { tree["globex/y.yaml"] = file(task("yankee", "0 1 * * *")) }, []string{"globex"}},
	}
	for _, st := range steps {
		before := versions()
		st.edit()
		res, err := recon(t, s, tree, "all").Apply(ctxT(t))
		if err != nil || res.Err() != nil {
			t.Fatalf("%s: apply: %v %v", st.name, err, res.Err())
		}
		after := versions()
		for _, tenant := range []string{"acme", "globex"} {
			want := before[tenant]
			if slices.Contains(st.moved, tenant) {
				want = before[tenant] + 1
			}
			if after[tenant] != want {
				t.Errorf("%s: version of %s = %d, want %d", st.name, tenant, after[tenant], want)
			}
		}
	}
}

// TestRegisteredHash: what was last registered for a tenant's app is kept
// per tenant, and "" forgets it.
func TestRegisteredHash(t *testing.T) {
	s, _ := pg.NewStore(t, store.Options{})
	reconcile(t, s, baseTree(), "")
	if h, err := s.RegisteredHash(ctxT(t), "acme"); err != nil || h != "" {
		t.Fatalf("RegisteredHash before any registration = %q, %v; want \"\"", h, err)
	}
	if err := s.SetRegisteredHash(ctxT(t), "acme", "h1"); err != nil {
		t.Fatal(err)
	}
	if h, err := s.RegisteredHash(ctxT(t), "acme"); err != nil || h != "h1" {
		t.Errorf("RegisteredHash(acme) = %q, %v; want h1", h, err)
	}
	if h, err := s.RegisteredHash(ctxT(t), "nobody"); err != nil || h != "" {
		t.Errorf("RegisteredHash(nobody) = %q, %v; want \"\"", h, err)
	}
	if err := s.SetRegisteredHash(ctxT(t), "acme", ""); err != nil {
		t.Fatal(err)
	}
	if h, err := s.RegisteredHash(ctxT(t), "acme"); err != nil || h != "" {
		t.Errorf("RegisteredHash after forgetting = %q, %v; want \"\"", h, err)
	}
}

// TestLoadTenants: LoadTenants loads the named tenants only, as LoadAll
// loads them, and leaves out those the store does not know.
func TestLoadTenants(t *testing.T) {
	s, _ := pg.NewStore(t, store.Options{})
	reconcile(t, s, baseTree(), "")
	all, err := s.LoadAll(ctxT(t), false)
	if err != nil {
		t.Fatal(err)
	}
	some, err := s.LoadTenants(ctxT(t), []string{"acme", "nobody"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(some) != 1 || len(some["acme"].Definitions) != 3 || !some["acme"].Known {
		t.Fatalf("LoadTenants(acme, nobody) = %+v, want acme with its 3 definitions", some)
	}
	for code, a := range all["acme"].Definitions {
		if some["acme"].Definitions[code].Hash != a.Hash {
			t.Errorf("%s: LoadTenants and LoadAll disagree", code)
		}
	}
	if none, err := s.LoadTenants(ctxT(t), nil, false); err != nil || len(none) != 0 {
		t.Errorf("LoadTenants(none) = %v, %v; want nothing", none, err)
	}
}

// TestFiresDue: a definition whose next fire is recorded as due later is
// left out of the fire checks until then; an update of the definition
// forgets the time, and so does a recorded check.
func TestFiresDue(t *testing.T) {
	s, _ := pg.NewStore(t, store.Options{})
	reconcile(t, s, fstest.MapFS{"acme/a.yaml": file(task("daily", "0 2 * * *"))}, "")
	now := time.Now()
	checks := func(to time.Time) int {
		t.Helper()
		cs, err := s.FireChecks(ctxT(t), to)
		if err != nil {
			t.Fatal(err)
		}
		return len(cs)
	}
	if n := checks(now); n != 1 {
		t.Fatalf("fire checks before any due time = %d, want 1", n)
	}
	ref, _, err := s.Current(ctxT(t), "acme", "daily")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetFiresDue(ctxT(t), map[int64]time.Time{ref.ID: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if n := checks(now); n != 0 {
		t.Errorf("fire checks up to now, next fire due in an hour = %d, want 0", n)
	}
	if n := checks(now.Add(2 * time.Hour)); n != 1 {
		t.Errorf("fire checks up to when the fire is due = %d, want 1", n)
	}
	cs, err := s.FireChecks(ctxT(t), now.Add(2*time.Hour))
	if err != nil || len(cs) != 1 {
		t.Fatalf("FireChecks = %v, %v", cs, err)
	}
	if _, err := s.RecordFireCheck(ctxT(t), cs[0], now, nil, nil); err != nil {
		t.Fatal(err)
	}
	if n := checks(now); n != 1 {
		t.Errorf("fire checks after a recorded check = %d, want 1 (due time forgotten)", n)
	}
	if err := s.SetFiresDue(ctxT(t), map[int64]time.Time{ref.ID: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	reconcile(t, s, fstest.MapFS{"acme/a.yaml": file(task("daily", "* * * * *"))}, "")
	if n := checks(now); n != 1 {
		t.Errorf("fire checks after the schedule changed = %d, want 1 (due time forgotten)", n)
	}
}

// TestEachTenantDefinitions: one scan gives every known tenant's applied
// definitions as Definitions does, in order, a tenant whose definitions
// were all retired with none; an error from the callback stops it.
func TestEachTenantDefinitions(t *testing.T) {
	s, _ := pg.NewStore(t, store.Options{})
	reconcile(t, s, baseTree(), "")
	tree := baseTree()
	delete(tree, "globex/x.yaml")
	tree["initech/i.yaml"] = file(task("india", "0 5 * * *"))
	reconcile(t, s, tree, "all")
	var order []string
	got := map[string][]reconciler.Definition{}
	err := s.EachTenantDefinitions(ctxT(t), func(tenant string, defs []reconciler.Definition) error {
		order = append(order, tenant)
		got[tenant] = defs
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(order) != "[acme globex initech]" {
		t.Fatalf("tenants = %v, want [acme globex initech]", order)
	}
	if len(got["globex"]) != 0 {
		t.Errorf("globex = %d definitions, want none (retired)", len(got["globex"]))
	}
	for _, tenant := range order {
		want, err := s.Definitions(ctxT(t), tenant)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) != len(got[tenant]) {
			t.Fatalf("%s: %d definitions, Definitions gives %d", tenant, len(got[tenant]), len(want))
		}
		for i := range want {
			w, g := want[i], got[tenant][i]
			if w.Hash != g.Hash || w.Source != g.Source || w.Metadata.Code != g.Metadata.Code || w.Tenant != g.Tenant {
				t.Errorf("%s #%d: %+v, Definitions gives %+v", tenant, i, g, w)
			}
		}
	}
	stop := errors.New("stop")
	calls := 0
	err = s.EachTenantDefinitions(ctxT(t), func(string, []reconciler.Definition) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("a callback error: %v after %d calls, want it after 1", err, calls)
	}
}

// TestApplyInParts: an apply that loads the applied state a few tenants
// at a time (Reconciler.Part) applies, then skips and changes, exactly
// what one that loads every tenant at once does.
func TestApplyInParts(t *testing.T) {
	tree := baseTree()
	for _, tenant := range []string{"hooli", "initech", "umbrella"} {
		tree[tenant+"/t.yaml"] = file(task("tango", "0 6 * * *"))
	}
	s, _ := pg.NewStore(t, store.Options{})
	r := recon(t, s, tree, "")
	r.Part = 2
	res, err := r.Apply(ctxT(t))
	if err != nil || res.Err() != nil {
		t.Fatalf("apply: %v %v", err, res.Err())
	}
	if res.Counts.Created != 7 || res.Written != 5 || len(res.Plans) != 5 {
		t.Fatalf("first apply in parts of 2: %+v, %d written, %d plans; want 7 created in 5 tenants", res.Counts, res.Written, len(res.Plans))
	}
	tree["umbrella/t.yaml"] = file(task("tango", "0 7 * * *"))
	res, err = r.Apply(ctxT(t))
	if err != nil || res.Err() != nil {
		t.Fatalf("apply: %v %v", err, res.Err())
	}
	if res.Counts.Updated != 1 || fmt.Sprint(res.WrittenTenants) != "[umbrella]" || res.Counts.Unchanged != 6 {
		t.Errorf("second apply in parts of 2: %+v, written %v; want umbrella's one update and 6 unchanged", res.Counts, res.WrittenTenants)
	}
	for _, p := range res.Plans {
		for _, ch := range p.Changes {
			if ch.Desired != nil {
				t.Errorf("%s/%s: the applied plan still points to its definition", p.Tenant, ch.Code)
			}
		}
	}
}

// TestTenantOverMaxDefinitions: a tenant with more definitions than a
// tenant may have (Options.MaxDefinitions) is a problem of its
// directory, and applies none of them, its applied definitions kept;
// the other tenants apply as usual; back under the limit, it applies.
func TestTenantOverMaxDefinitions(t *testing.T) {
	s, _ := pg.NewStore(t, store.Options{})
	tree := baseTree()
	reconcile(t, s, tree, "")
	v, err := definitions.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	var bulk strings.Builder
	for i := range 5 {
		if i > 0 {
			bulk.WriteString("---\n")
		}
		bulk.WriteString(task(fmt.Sprintf("bulk-%d", i), "0 5 * * *"))
	}
	tree["acme/bulk.yaml"] = file(bulk.String())
	tree["globex/y.yaml"] = file(task("yankee", "0 6 * * *"))
	r := &reconciler.Reconciler{Tree: v.NewLoader(tree, definitions.Options{MaxDefinitions: 4}), Store: s, Budget: mustBudget(t, "all"), Workers: 2}
	res, err := r.Apply(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	var acme reconciler.TenantPlan
	for _, p := range res.Plans {
		if p.Tenant == "acme" {
			acme = p
		}
	}
	if len(acme.Problems) != 1 || acme.Problems[0].Path != "acme" || !strings.Contains(acme.Problems[0].Message, "8 definitions, more than the 4") {
		t.Errorf("acme's problems = %+v, want one of its directory naming 8 over 4", acme.Problems)
	}
	if n := acme.Counts(); n.Created+n.Updated+n.Retired != 0 || n.Unchanged != 3 {
		t.Errorf("acme over the limit: %+v, want its 3 applied definitions kept and nothing created", n)
	}
	if c := change(t, res, "globex", "yankee"); c.Action != reconciler.ChangeCreate {
		t.Errorf("globex's new definition = %+v, want created", c)
	}
	delete(tree, "acme/bulk.yaml")
	tree["acme/bulk.yaml"] = file(task("bulk-0", "0 5 * * *"))
	res, err = r.Apply(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if c := change(t, res, "acme", "bulk-0"); c.Action != reconciler.ChangeCreate {
		t.Errorf("acme back under the limit: bulk-0 = %+v, want created", c)
	}
}
