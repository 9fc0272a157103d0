package definitions_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// The loader's reuse of parsed files (Options.Reuse) is tested on trees on
// disk, as the daemon reads them: the stamps are the kernel's.

// reuseLoader is a loader of dir that reuses parsed files.
func reuseLoader(t *testing.T, dir string, opts definitions.Options) *definitions.Loader {
	t.Helper()
	v, err := definitions.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	opts.AbsRoot = filepath.ToSlash(dir)
	if opts.Reuse == 0 {
		opts.Reuse = time.Hour
	}
	return v.NewLoader(definitions.DirFS(dir), opts)
}

// settle waits until every file under dir last changed over a second ago:
// only then may a parsed result be kept (a change within the same tick of
// the kernel's clock could keep the stamp).
func settle(t *testing.T, dir string) {
	t.Helper()
	newest := time.Time{}
	err := filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		for _, at := range []time.Time{info.ModTime(), time.Unix(st.Ctim.Unix())} {
			if at.After(newest) {
				newest = at
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	waittest.For(t, "the tree to settle", 5*time.Second, func() bool { return time.Since(newest) > 1100*time.Millisecond })
}

// loadStats loads a tenant and returns it with the files parsed and
// reused by that load.
func loadStats(l *definitions.Loader, tenant string) (tree *reconciler.TenantTree, parsed, reused int64) {
	p0, r0 := l.FileStats()
	tree = l.LoadTenant(tenant)
	p1, r1 := l.FileStats()
	return tree, p1 - p0, r1 - r0
}

// crons lists a tenant's definitions as code=cron.
func crons(tree *reconciler.TenantTree) []string {
	var out []string
	for _, d := range tree.Definitions {
		out = append(out, d.Metadata.Code+"="+d.Spec.Trigger.Cron)
	}
	return out
}

func cronTask(code, cron string) string {
	return deftest.Task{Code: code, Trigger: "{cron: '" + cron + "'}"}.String()
}

// TestReuseSkipsUnchangedFiles: a second load parses no file; an edited
// file alone is parsed again; the results are the same as a fresh load's.
func TestReuseSkipsUnchangedFiles(t *testing.T) {
	dir := deftest.WriteTree(t, map[string]string{
		"acme/a.yaml":         cronTask("alpha", "0 2 * * *"),
		"acme/b.yaml":         cronTask("beta", "0 3 * * *") + "---\n" + cronTask("beta", "0 4 * * *"), // a duplicate code
		"acme/scripts/job.py": "print('hi')\n",
		"acme/c.yaml": deftest.Task{Code: "gamma", Type: "python_script", Config: "{file: scripts/job.py}",
			Trigger: "{cron: '0 5 * * *'}"}.String(),
		"acme/bad.yaml": "kind: [\n",
	})
	settle(t, dir)
	l := reuseLoader(t, dir, definitions.Options{})
	first, parsed, reused := loadStats(l, "acme")
	if parsed != 4 || reused != 0 {
		t.Fatalf("first load parsed %d, reused %d; want 4, 0", parsed, reused)
	}
	second, parsed, reused := loadStats(l, "acme")
	if parsed != 0 || reused != 4 {
		t.Errorf("second load parsed %d, reused %d; want 0, 4", parsed, reused)
	}
	if !reflect.DeepEqual(first, second) {
		t.Errorf("reused load differs from the first:\n%+v\nwant\n%+v", second, first)
	}

	deftest.WriteFile(t, filepath.Join(dir, "acme", "a.yaml"), cronTask("alpha", "30 2 * * *"))
	third, parsed, reused := loadStats(l, "acme")
	if parsed != 1 || reused != 3 {
		t.Errorf("load after one edit parsed %d, reused %d; want 1, 3", parsed, reused)
	}
	fresh := reuseLoader(t, dir, definitions.Options{Reuse: -1}).LoadTenant("acme")
	if !reflect.DeepEqual(fresh, third) {
		t.Errorf("load after an edit differs from a fresh load:\n%+v\nwant\n%+v", third, fresh)
	}
}

// TestReuseCatchesMissedChange: a change no watcher reported, which keeps
// the file's size and mtime (an mtime-preserving copy, an editor that
// restores it), is still seen at the next load: the rewrite changes the
// ctime, a copy renamed over the file its inode. The same holds for a
// script file.
func TestReuseCatchesMissedChange(t *testing.T) {
	cases := []struct {
		name    string
		replace func(t *testing.T, path, data string)
	}{
		{"rewritten in place", func(t *testing.T, path, data string) {
			if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"copy renamed over it", func(t *testing.T, path, data string) {
			tmp := filepath.Join(filepath.Dir(path), ".incoming")
			if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := deftest.WriteTree(t, map[string]string{
				"acme/a.yaml":         cronTask("alpha", "0 2 * * *"),
				"acme/scripts/job.py": "print('one')\n",
				"acme/c.yaml": deftest.Task{Code: "gamma", Type: "python_script", Config: "{file: scripts/job.py}",
					Trigger: "{cron: '0 5 * * *'}"}.String(),
			})
			settle(t, dir)
			l := reuseLoader(t, dir, definitions.Options{})
			loadStats(l, "acme")
			if _, parsed, _ := loadStats(l, "acme"); parsed != 0 {
				t.Fatalf("second load parsed %d files, want 0", parsed)
			}

			// Same size, mtime set back: only the ctime or inode tells.
			for path, data := range map[string]string{
				filepath.Join(dir, "acme", "a.yaml"):         cronTask("alpha", "0 9 * * *"),
				filepath.Join(dir, "acme", "scripts/job.py"): "print('two')\n",
			} {
				old, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if int64(len(data)) != old.Size() {
					t.Fatalf("test data for %s changes the size", path)
				}
				tc.replace(t, path, data)
				if err := os.Chtimes(path, old.ModTime(), old.ModTime()); err != nil {
					t.Fatal(err)
				}
			}
			tree, parsed, reused := loadStats(l, "acme")
			if parsed != 2 || reused != 0 {
				t.Errorf("load after the silent changes parsed %d, reused %d; want 2, 0", parsed, reused)
			}
			if got, want := crons(tree), []string{"alpha=0 9 * * *", "gamma=0 5 * * *"}; !slices.Equal(got, want) {
				t.Errorf("definitions = %v, want %v", got, want)
			}
			for _, d := range tree.Definitions {
				if d.Metadata.Code == "gamma" && d.Spec.Config.PythonScript.FileContent != "print('two')\n" {
					t.Errorf("gamma's script = %q, want the new one", d.Spec.Config.PythonScript.FileContent)
				}
			}
		})
	}
}

// TestReuseRacyFile: a file read within a second of its last change is
// not kept, so that a rewrite within the same clock tick, at the same
// size and mtime (a stamp that may not change at all), is still seen.
func TestReuseRacyFile(t *testing.T) {
	dir := deftest.WriteTree(t, map[string]string{"acme/a.yaml": cronTask("alpha", "0 2 * * *")})
	path := filepath.Join(dir, "acme", "a.yaml")
	old, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	l := reuseLoader(t, dir, definitions.Options{})
	loadStats(l, "acme")
	deftest.WriteFile(t, path, cronTask("alpha", "0 7 * * *"))
	if err := os.Chtimes(path, old.ModTime(), old.ModTime()); err != nil {
		t.Fatal(err)
	}
	tree, parsed, _ := loadStats(l, "acme")
	if parsed != 1 {
		t.Errorf("load after a racy rewrite parsed %d files, want 1", parsed)
	}
	if got, want := crons(tree), []string{"alpha=0 7 * * *"}; !slices.Equal(got, want) {
		t.Errorf("definitions = %v, want %v", got, want)
	}
}

// grants is a grant check whose answers a test changes.
type grants struct {
	mu      sync.Mutex
	granted map[string]bool
}

func (g *grants) check(tenant, name string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.granted[tenant+"/"+name] {
		return nil
	}
	return errors.New("secret " + name + " is not granted to tenant " + tenant)
}

func (g *grants) set(key string, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.granted[key] = ok
}

// TestReuseRechecksGrants: a grant revoked or given, with no file
// changed, shows at the next load: each answer a file's result depends on
// is asked again, and a changed answer parses the file again.
func TestReuseRechecksGrants(t *testing.T) {
	dir := deftest.WriteTree(t, map[string]string{
		"acme/a.yaml": deftest.Task{Code: "alpha", Config: "{url: 'https://a.example.com', headers: {Authorization: 'Bearer ${secret:TOKEN}'}}"}.String(),
		"acme/b.yaml": cronTask("beta", "0 3 * * *"),
	})
	settle(t, dir)
	g := &grants{granted: map[string]bool{"acme/TOKEN": true}}
	l := reuseLoader(t, dir, definitions.Options{Secrets: g.check})
	if tree, _, _ := loadStats(l, "acme"); len(tree.Problems) != 0 {
		t.Fatalf("problems with the grant given: %v", tree.Problems)
	}
	g.set("acme/TOKEN", false)
	tree, parsed, reused := loadStats(l, "acme")
	if parsed != 1 || reused != 1 {
		t.Errorf("load after the grant was revoked parsed %d, reused %d; want 1, 1", parsed, reused)
	}
	if len(tree.Problems) != 1 || tree.Problems[0].Path != "acme/a.yaml" {
		t.Errorf("problems after the grant was revoked = %v, want one at acme/a.yaml", tree.Problems)
	}
	g.set("acme/TOKEN", true)
	if tree, _, _ := loadStats(l, "acme"); len(tree.Problems) != 0 {
		t.Errorf("problems after the grant was given back: %v", tree.Problems)
	}
}

// TestReuseExpires: a one-shot's result is parsed again once its time
// passes (its warning shows), every result once its lifetime ends, and
// everything after Forget.
func TestReuseExpires(t *testing.T) {
	at := time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC)
	dir := deftest.WriteTree(t, map[string]string{
		"acme/once.yaml": deftest.Task{Code: "once", Trigger: "{at: '2030-01-01T09:00:00Z'}"}.String(),
		"acme/b.yaml":    cronTask("beta", "0 3 * * *"),
	})
	settle(t, dir)
	var mu sync.Mutex
	now := at.Add(-time.Minute)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	setClock := func(t time.Time) { mu.Lock(); defer mu.Unlock(); now = t }
	l := reuseLoader(t, dir, definitions.Options{Now: clock, Reuse: time.Hour})
	if tree, _, _ := loadStats(l, "acme"); len(tree.Warnings) != 0 {
		t.Fatalf("warnings before the one-shot's time: %v", tree.Warnings)
	}
	setClock(at.Add(time.Minute))
	tree, parsed, reused := loadStats(l, "acme")
	if parsed != 1 || reused != 1 || len(tree.Warnings) != 1 {
		t.Errorf("load after the one-shot's time parsed %d, reused %d, warned %v; want 1, 1, its warning", parsed, reused, tree.Warnings)
	}
	setClock(at.Add(2*time.Hour + time.Minute)) // past any lifetime
	if _, parsed, _ := loadStats(l, "acme"); parsed != 2 {
		t.Errorf("load after every lifetime parsed %d, want 2", parsed)
	}
	l.Forget()
	if _, parsed, _ := loadStats(l, "acme"); parsed != 2 {
		t.Errorf("load after Forget parsed %d, want 2", parsed)
	}
}

// strippedTree is a tree of three tenants whose files name a script and
// a secret: acme's, globex's and initech's.
func strippedTree(t *testing.T) string {
	t.Helper()
	files := map[string]string{}
	for _, tenant := range []string{"acme", "globex", "initech"} {
		files[tenant+"/a.yaml"] = cronTask("alpha", "0 2 * * *")
		files[tenant+"/scripts/job.py"] = "print('one')\n"
		files[tenant+"/c.yaml"] = deftest.Task{Code: "gamma", Type: "python_script", Config: "{file: scripts/job.py}",
			Trigger: "{cron: '0 5 * * *'}"}.String()
		files[tenant+"/s.yaml"] = deftest.Task{Code: "sigma",
			Config: "{url: 'https://a.example.com', headers: {Authorization: 'Bearer ${secret:TOKEN}'}}"}.String()
	}
	dir := deftest.WriteTree(t, files)
	settle(t, dir)
	return dir
}

// stampStats is TenantStamp of a tenant, with the files it parsed (none,
// ever) and found reusable.
func stampStats(t *testing.T, l *definitions.Loader, tenant string) (stamp string, reused int64) {
	t.Helper()
	p0, r0 := l.FileStats()
	stamp = l.TenantStamp(tenant)
	p1, r1 := l.FileStats()
	if p1 != p0 {
		t.Errorf("TenantStamp(%s) parsed %d files", tenant, p1-p0)
	}
	return stamp, r1 - r0
}

// TestReuseStrippedTenant: beyond Options.KeepParsed tenants, a tenant's
// parsed results are dropped, and what its stamp is made of is kept: an
// unchanged tenant keeps the stamp of its load, found without a parse,
// and a load of it parses its files again into the same result and the
// same stamp. With KeepParsed negative no tenant keeps its results.
func TestReuseStrippedTenant(t *testing.T) {
	dir := strippedTree(t)
	for _, keep := range []int{1, -1} {
		t.Run(fmt.Sprintf("keep %d", keep), func(t *testing.T) {
			g := &grants{granted: map[string]bool{"acme/TOKEN": true, "globex/TOKEN": true, "initech/TOKEN": true}}
			l := reuseLoader(t, dir, definitions.Options{Secrets: g.check, KeepParsed: keep})
			first := map[string]*reconciler.TenantTree{}
			for _, tenant := range []string{"acme", "globex", "initech"} {
				tree, parsed, _ := loadStats(l, tenant)
				if parsed != 3 || tree.Stamp == "" || len(tree.Problems) != 0 {
					t.Fatalf("first load of %s parsed %d, stamp %q, problems %v; want 3, a stamp, none", tenant, parsed, tree.Stamp, tree.Problems)
				}
				first[tenant] = tree
			}
			// acme and globex are stripped (initech is the one kept, or none).
			for range 2 {
				for tenant, tree := range first {
					if stamp, reused := stampStats(t, l, tenant); stamp != tree.Stamp || reused != 3 {
						t.Errorf("TenantStamp(%s) = %q, found %d reusable; want the load's %q, 3", tenant, stamp, reused, tree.Stamp)
					}
				}
			}
			again, parsed, reused := loadStats(l, "acme")
			if parsed != 3 || reused != 0 {
				t.Errorf("load of the stripped acme parsed %d, reused %d; want 3, 0", parsed, reused)
			}
			if !reflect.DeepEqual(again, first["acme"]) {
				t.Errorf("load of the stripped acme differs from its first:\n%+v\nwant\n%+v", again, first["acme"])
			}
			if stamp, _ := stampStats(t, l, "acme"); stamp != first["acme"].Stamp {
				t.Errorf("acme's stamp after its load = %q, want %q", stamp, first["acme"].Stamp)
			}
			if keep > 0 {
				// acme is now the tenant kept.
				if _, parsed, reused := loadStats(l, "acme"); parsed != 0 || reused != 3 {
					t.Errorf("load of the kept acme parsed %d, reused %d; want 0, 3", parsed, reused)
				}
				if _, parsed, _ := loadStats(l, "initech"); parsed != 3 {
					t.Errorf("load of initech, stripped since acme's load, parsed %d, want 3", parsed)
				}
			}
		})
	}
}

// TestReuseStrippedTenantChanges: a change to a stripped tenant (its
// parsed results dropped: see TestReuseStrippedTenant) moves its stamp and
// shows at its next load: an edited file, an edited script, a changed
// grant answer.
func TestReuseStrippedTenantChanges(t *testing.T) {
	dir := strippedTree(t)
	g := &grants{granted: map[string]bool{"acme/TOKEN": true, "globex/TOKEN": true, "initech/TOKEN": true}}
	l := reuseLoader(t, dir, definitions.Options{Secrets: g.check, KeepParsed: -1})
	stamps := map[string]string{}
	for _, tenant := range []string{"acme", "globex", "initech"} {
		stamps[tenant] = l.LoadTenant(tenant).Stamp
	}
	// Same size, mtime set back: only the ctime tells.
	silently := func(path, data string) {
		t.Helper()
		old, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(data)) != old.Size() {
			t.Fatalf("test data for %s changes the size", path)
		}
		deftest.WriteFile(t, path, data)
		if err := os.Chtimes(path, old.ModTime(), old.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
	silently(filepath.Join(dir, "acme", "a.yaml"), cronTask("alpha", "0 9 * * *"))
	silently(filepath.Join(dir, "globex", "scripts", "job.py"), "print('two')\n")
	g.set("initech/TOKEN", false)
	for tenant, old := range stamps {
		if stamp, _ := stampStats(t, l, tenant); stamp == old {
			t.Errorf("TenantStamp(%s) after its change = the stamp before it", tenant)
		}
	}

	acme := l.LoadTenant("acme")
	if got, want := crons(acme), []string{"alpha=0 9 * * *", "gamma=0 5 * * *", "sigma="}; !slices.Equal(got, want) {
		t.Errorf("acme's definitions after the edit = %v, want %v", got, want)
	}
	globex := l.LoadTenant("globex")
	for _, d := range globex.Definitions {
		if d.Metadata.Code == "gamma" && d.Spec.Config.PythonScript.FileContent != "print('two')\n" {
			t.Errorf("globex's script after the edit = %q, want the new one", d.Spec.Config.PythonScript.FileContent)
		}
	}
	initech := l.LoadTenant("initech")
	if len(initech.Problems) != 1 || initech.Problems[0].Path != "initech/s.yaml" {
		t.Errorf("initech's problems after the grant was revoked = %v, want one at initech/s.yaml", initech.Problems)
	}
	for _, tree := range []*reconciler.TenantTree{acme, globex, initech} {
		if tree.Stamp == stamps[tree.Tenant] {
			t.Errorf("%s's load after its change has the stamp before it", tree.Tenant)
		}
	}
}

// TestReuseKeptTenantsLastLoaded: the tenants that keep their parsed
// results are the last loaded: a load of one of them reuses its
// unchanged files (an edited one alone is parsed), and loading another
// tenant strips the one loaded the longest ago.
func TestReuseKeptTenantsLastLoaded(t *testing.T) {
	dir := strippedTree(t)
	g := &grants{granted: map[string]bool{"acme/TOKEN": true, "globex/TOKEN": true, "initech/TOKEN": true}}
	l := reuseLoader(t, dir, definitions.Options{Secrets: g.check, KeepParsed: 2})
	l.LoadTenant("acme")
	l.LoadTenant("globex")
	deftest.WriteFile(t, filepath.Join(dir, "acme", "a.yaml"), cronTask("alpha", "30 2 * * *"))
	tree, parsed, reused := loadStats(l, "acme")
	if parsed != 1 || reused != 2 {
		t.Errorf("load of the kept acme after one edit parsed %d, reused %d; want 1, 2", parsed, reused)
	}
	if got, want := crons(tree), []string{"alpha=30 2 * * *", "gamma=0 5 * * *", "sigma="}; !slices.Equal(got, want) {
		t.Errorf("acme's definitions after the edit = %v, want %v", got, want)
	}
	l.LoadTenant("initech") // strips globex, loaded before acme
	// a.yaml, edited within a second of its read, may not have been kept.
	if _, parsed, reused := loadStats(l, "acme"); parsed > 1 || reused < 2 {
		t.Errorf("load of acme, still kept, parsed %d, reused %d; want at most a.yaml parsed", parsed, reused)
	}
	if _, parsed, reused := loadStats(l, "globex"); parsed != 3 || reused != 0 {
		t.Errorf("load of the stripped globex parsed %d, reused %d; want 3, 0", parsed, reused)
	}
}
