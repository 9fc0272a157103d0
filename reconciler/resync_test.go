package reconciler_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/store"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// TestResyncCatchesMissedChange: a file change no watcher reported (here
// none runs), which keeps the file's size and mtime, is applied by the
// next periodic resync, although resyncs reuse the parsed results of
// unchanged files: the rewrite changed the file's ctime.
func TestResyncCatchesMissedChange(t *testing.T) {
	r := newRig(t, map[string]string{"acme/tasks.yaml": controllerTask("nightly", "0 2 * * *")},
		rigOptions{reuse: time.Hour, resync: 200 * time.Millisecond})
	r.run(t)
	path := filepath.Join(r.dir, "acme", "tasks.yaml")
	old, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// A result is kept once its file is over a second old: wait until
	// resyncs reuse it.
	waittest.For(t, "a resync reusing the parsed file", 10*time.Second, func() bool {
		_, reused := r.tree.FileStats()
		return reused > 0
	})
	parsedBefore, _ := r.tree.FileStats()

	data := controllerTask("nightly", "0 7 * * *")
	if int64(len(data)) != old.Size() {
		t.Fatal("the new content must keep the size")
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, old.ModTime(), old.ModTime()); err != nil {
		t.Fatal(err)
	}
	now, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if now.Size() != old.Size() || !now.ModTime().Equal(old.ModTime()) || now.Sys().(*syscall.Stat_t).Ino != old.Sys().(*syscall.Stat_t).Ino {
		t.Fatal("the rewrite changed the size, mtime or inode; only the ctime may tell")
	}
	waittest.For(t, "the silent change applied by a resync", 10*time.Second, func() bool {
		defs, err := r.st.Definitions(context.Background(), "acme")
		return err == nil && len(defs) == 1 && defs[0].Spec.Trigger.Cron == "0 7 * * *"
	})
	if parsed, _ := r.tree.FileStats(); parsed == parsedBefore {
		t.Error("the change was applied without the file being parsed again")
	}
}

// TestResyncSkipsUnchangedTenants: a full apply reads and diffs only the
// tenants whose files' stamp or applied version moved since an apply
// that wrote nothing: a silent edit (no watcher) of one tenant is read
// and applied, the other tenant is skipped; an applied state changed by
// another writer (its version moved) is diffed again.
//
// It runs with the loader's parsed results kept, and with none kept
// (definitions.Options.KeepParsed), as for the tenants beyond the
// default's capacity: a tenant is skipped all the same, and a tenant
// read again is parsed again into the same definitions.
func TestResyncSkipsUnchangedTenants(t *testing.T) {
	for _, keep := range []struct {
		name string
		n    int
	}{{"results kept", 0}, {"no results kept", -1}} {
		t.Run(keep.name, func(t *testing.T) { testResyncSkipsUnchangedTenants(t, keep.n) })
	}
}

func testResyncSkipsUnchangedTenants(t *testing.T, keepParsed int) {
	ctx := context.Background()
	dir := deftest.WriteTree(t, map[string]string{
		"acme/tasks.yaml":   controllerTask("nightly", "0 2 * * *"),
		"globex/tasks.yaml": controllerTask("hourly", "0 * * * *"),
	})
	st, _ := pg.NewStore(t, store.Options{AppPrefix: "skip"})
	v, err := definitions.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	tree := v.NewLoader(definitions.DirFS(dir), definitions.Options{AbsRoot: filepath.ToSlash(dir), Reuse: time.Hour, KeepParsed: keepParsed})
	all, err := reconciler.ParseRetireBudget("all")
	if err != nil {
		t.Fatal(err)
	}
	r := &reconciler.Reconciler{Tree: tree, Store: st, Budget: all, Workers: 2}
	apply := func(what string) *reconciler.Result {
		t.Helper()
		res, err := r.Apply(ctx)
		if err != nil || res.Err() != nil {
			t.Fatalf("%s: %v %v", what, err, res.Err())
		}
		return res
	}
	if res := apply("first apply"); res.Written != 2 || res.Skipped != 0 {
		t.Fatalf("first apply: written %d, skipped %d; want 2, 0", res.Written, res.Skipped)
	}
	// A parsed file is kept once it is over a second old (racyWindow);
	// until both tenants are kept and found unchanged, they are read.
	waittest.For(t, "both tenants skipped", 10*time.Second, func() bool {
		res := apply("no-op apply")
		return res.Skipped == 2 && res.Written == 0 && res.Counts.Unchanged == 2
	})

	// A silent edit of acme: same size, same mtime; only the ctime moves.
	path := filepath.Join(dir, "acme", "tasks.yaml")
	old, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(controllerTask("nightly", "0 7 * * *")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, old.ModTime(), old.ModTime()); err != nil {
		t.Fatal(err)
	}
	res := apply("apply after a silent edit")
	if res.Skipped != 1 || !slices.Equal(res.WrittenTenants, []string{"acme"}) {
		t.Fatalf("after a silent edit of acme: skipped %d, written %v; want 1 skipped, acme written", res.Skipped, res.WrittenTenants)
	}
	defs, err := st.Definitions(ctx, "acme")
	if err != nil || len(defs) != 1 || defs[0].Spec.Trigger.Cron != "0 7 * * *" {
		t.Fatalf("acme's applied definitions after the edit: %v %v", defs, err)
	}

	// Another writer changes globex's applied state (here a second
	// reconciler over a tree without it): its version moves, and the
	// next apply diffs globex again and restores it.
	other := &reconciler.Reconciler{Tree: v.NewLoader(definitions.DirFS(t.TempDir()), definitions.Options{}), Store: st,
		Budget: all, Workers: 1}
	if res, err := other.ApplyTenants(ctx, []string{"globex"}); err != nil || res.Written != 1 {
		t.Fatalf("the other writer: %v, %+v", err, res)
	}
	if defs, err := st.Definitions(ctx, "globex"); err != nil || len(defs) != 0 {
		t.Fatalf("globex after the other writer retired it: %v %v", defs, err)
	}
	res = apply("apply after another writer")
	if !slices.Equal(res.WrittenTenants, []string{"globex"}) {
		t.Fatalf("after another writer changed globex: written %v; want globex", res.WrittenTenants)
	}
	if defs, err := st.Definitions(ctx, "globex"); err != nil || len(defs) != 1 {
		t.Fatalf("globex not restored: %v %v", defs, err)
	}
	// Once an apply of globex wrote nothing, both are skipped again.
	waittest.For(t, "both tenants skipped again", 10*time.Second, func() bool {
		res := apply("no-op apply")
		return res.Skipped == 2 && res.Written == 0
	})
}

// countingApps counts, per tenant, the rebuilds of its app (SetTenant).
type countingApps struct {
	reconciler.Apps
	mu   sync.Mutex
	sets map[string]int
}

func (a *countingApps) SetTenant(tenant string, defs []reconciler.Definition) error {
	a.mu.Lock()
	a.sets[tenant]++
	a.mu.Unlock()
	return a.Apps.SetTenant(tenant, defs)
}

func (a *countingApps) count(tenant string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sets[tenant]
}

// TestResyncRebuildsOnlyChangedApps: once every app is synced, the
// periodic resync of an unchanged tree skips every tenant and rebuilds no
// app (it checks them against one read of Inngest's view of every app);
// a change no watcher reported is still found by the next resync, and
// only its tenant's app is rebuilt and registered.
func TestResyncRebuildsOnlyChangedApps(t *testing.T) {
	apps := &countingApps{sets: map[string]int{}}
	r := newRig(t, map[string]string{
		"acme/tasks.yaml":   controllerTask("skipa", "0 2 * * *"),
		"globex/tasks.yaml": controllerTask("skipg", "0 3 * * *"),
	}, rigOptions{inngest: true, reuse: time.Hour, resync: 300 * time.Millisecond, apps: func(a reconciler.Apps) reconciler.Apps {
		apps.Apps = a
		return apps
	}})
	r.run(t)
	skips := func() int {
		return strings.Count(r.log.String(), "msg=reconcile ") - strings.Count(r.log.String(), "skipped=0 ")
	}
	waittest.For(t, "two resyncs that skipped every tenant", 30*time.Second, func() bool {
		return strings.Count(r.log.String(), "skipped=2 ") >= 2
	})
	acme, globex := apps.count("acme"), apps.count("globex")
	n := skips()
	waittest.For(t, "three more resyncs", 30*time.Second, func() bool { return skips() >= n+3 })
	if a, g := apps.count("acme"), apps.count("globex"); a != acme || g != globex {
		t.Errorf("resyncs of an unchanged tree rebuilt the apps: acme %d → %d, globex %d → %d", acme, a, globex, g)
	}

	// A silent edit: no tree change is sent.
	r.write(t, "acme/tasks.yaml", controllerTask("skipa", "30 4 * * *"))
	waittest.For(t, "the silent edit live in Inngest", 30*time.Second, func() bool {
		return strings.Join(devServer(t).Functions(t, "ctl-acme")["ctl-acme-_skipa"].Crons(), ",") == "TZ=UTC 30 4 * * *"
	})
	if a := apps.count("acme"); a == acme {
		t.Error("the edited tenant's app was not rebuilt")
	}
	if g := apps.count("globex"); g != globex {
		t.Errorf("the unchanged tenant's app was rebuilt: %d → %d", globex, g)
	}
}
