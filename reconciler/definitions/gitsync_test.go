package definitions_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
)

// appliedOf is the applied state of a loaded tenant, as if it had been
// applied.
func appliedOf(tree *reconciler.TenantTree) reconciler.AppliedTenant {
	a := reconciler.AppliedTenant{Tenant: tree.Tenant, Known: true, Definitions: map[string]reconciler.Applied{}}
	for _, d := range tree.Definitions {
		a.Definitions[d.Metadata.Code] = reconciler.Applied{Tenant: tree.Tenant, Code: d.Metadata.Code, Kind: d.Kind, Hash: d.Hash,
			Active: true, Source: d.Source, Commit: d.Commit}
	}
	return a
}

// actions counts a plan's changes by action ("update" and so on), held
// retirements apart.
func actions(p reconciler.TenantPlan) map[string][]string {
	out := map[string][]string{}
	for _, ch := range p.Changes {
		k := string(ch.Action)
		if ch.Held {
			k += " (held)"
		}
		out[k] = append(out[k], ch.Code)
	}
	return out
}

// noLimit is the prune budget "all": a retirement the loader caused would
// not be held.
func noLimit(t *testing.T) reconciler.RetireBudget {
	b, err := reconciler.ParseRetireBudget("all")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDirLoaderFollowsGitSync: a loader of ROOT/current/tasks.d reads the
// worktree the link leads to at each load, not the one it led to when it
// was made: after a sync, the edited file is an update, the others are
// unchanged (their source paths, relative to the tree, stay as they
// were), and the definitions read carry the new commit.
func TestDirLoaderFollowsGitSync(t *testing.T) {
	g := deftest.NewGitSync(t, map[string]string{
		"tasks.d/acme/a.yaml":   cronTask("a", "0 1 * * *"),
		"tasks.d/acme/b.yaml":   cronTask("b", "0 2 * * *"),
		"tasks.d/globex/g.yaml": cronTask("g", "0 3 * * *"),
	})
	first := deftest.Git(t, g.Src, "rev-parse", "HEAD")
	l, err := definitions.NewDirLoader(filepath.Join(g.Link, "tasks.d"), definitions.Options{Reuse: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	before := l.LoadTenant("acme")
	if len(before.Definitions) != 2 || before.ReadError || len(before.Problems) > 0 {
		t.Fatalf("first load = %+v", before)
	}
	for _, d := range before.Definitions {
		if d.Commit != first {
			t.Errorf("%s: commit %q, want %s", d.Metadata.Code, d.Commit, first)
		}
	}
	applied := appliedOf(before)

	all := noLimit(t)
	g.Commit(map[string]string{"tasks.d/acme/a.yaml": cronTask("a", "30 1 * * *"), "tasks.d/initech/i.yaml": cronTask("i", "0 4 * * *")})
	second := g.Sync()
	if _, err := os.Stat(filepath.Join(g.Root, ".worktrees", first)); !os.IsNotExist(err) {
		t.Fatalf("the old worktree is still there: %v", err)
	}
	if got := l.Revision().Commit; got != second {
		t.Errorf("Revision() after the sync = %s, want %s", got, second)
	}
	tenants, _, err := l.Tenants()
	if err != nil || strings.Join(tenants, ",") != "acme,globex,initech" {
		t.Errorf("Tenants() after the sync = %v, %v; want acme, globex, initech", tenants, err)
	}
	after := l.LoadTenant("acme")
	if after.ReadError || len(after.Problems) > 0 {
		t.Fatalf("load after the sync = %+v", after)
	}
	got := actions(reconciler.Diff(after, applied, all))
	if strings.Join(got["update"], ",") != "a" || strings.Join(got["unchanged"], ",") != "b" || len(got) != 2 {
		t.Errorf("plan after the sync = %v, want a updated and b unchanged", got)
	}
	for _, d := range after.Definitions {
		if want := "acme/" + d.Metadata.Code + ".yaml"; d.Source.Path != want {
			t.Errorf("%s: source %q, want %q", d.Metadata.Code, d.Source.Path, want)
		}
		if d.Commit != second {
			t.Errorf("%s: commit %q, want %s", d.Metadata.Code, d.Commit, second)
		}
	}
}

// TestDirLoaderDanglingLink: while the link leads nowhere (its target not
// there yet, or deleted), listing the tree is an error and every tenant is
// unreadable, which retires nothing; once it leads somewhere again, the
// tree is read there.
func TestDirLoaderDanglingLink(t *testing.T) {
	g := deftest.NewGitSync(t, map[string]string{"tasks.d/acme/a.yaml": cronTask("a", "0 1 * * *"), "tasks.d/acme/b.yaml": cronTask("b", "0 2 * * *")})
	l, err := definitions.NewDirLoader(filepath.Join(g.Link, "tasks.d"), definitions.Options{Reuse: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	applied := appliedOf(l.LoadTenant("acme"))
	g.Point(filepath.Join(".worktrees", "not-there-yet"))
	if tenants, _, err := l.Tenants(); err == nil {
		t.Errorf("Tenants() through a dangling link = %v, want an error", tenants)
	}
	res := l.LoadTenant("acme")
	if !res.ReadError || len(res.Definitions) > 0 {
		t.Errorf("LoadTenant through a dangling link = %+v, want a read error", res)
	}
	if len(res.Problems) != 1 || !strings.Contains(res.Problems[0].Message, "does not resolve") || strings.Contains(res.Problems[0].Message, g.Root) {
		t.Errorf("problems = %+v, want one saying the tree's path does not resolve, without the path on disk", res.Problems)
	}
	if got := actions(reconciler.Diff(res, applied, noLimit(t))); strings.Join(got["unchanged"], ",") != "a,b" || len(got) != 1 {
		t.Errorf("plan through a dangling link = %v, want nothing retired", got)
	}
	g.Point(filepath.Join(".worktrees", filepath.Base(g.Current())))
	if res := l.LoadTenant("acme"); res.ReadError || len(res.Definitions) != 2 {
		t.Errorf("LoadTenant once the link leads somewhere again = %+v", res)
	}
}

// swapTree is a tree ROOT/current -> v<n> whose link a test swaps to a
// copy with one edit, while a load is under way (from the secret grant
// check, which the loader calls while it parses a file).
type swapTree struct {
	t    *testing.T
	root string
	n    int
}

const swapFiles = 12

// version writes ROOT/v<n>: acme/f00..f11.yaml, f00 asking for a secret,
// each with the minute min.
func (s *swapTree) version(min int) string {
	s.n++
	dir := filepath.Join(s.root, fmt.Sprintf("v%d", s.n))
	for i := range swapFiles {
		task := deftest.Task{Code: fmt.Sprintf("f%02d", i), Trigger: fmt.Sprintf("{cron: '%d 1 * * *'}", min)}
		if i == 0 {
			task.Config = "{url: 'https://a.example.com', headers: {Authorization: 'Bearer ${secret:TOKEN}'}}"
		}
		write(s.t, filepath.Join(dir, "acme", fmt.Sprintf("f%02d.yaml", i)), task.String())
	}
	return dir
}

func (s *swapTree) point(dir string) {
	tmp := filepath.Join(s.root, "tmp-link")
	if err := os.Symlink(filepath.Base(dir), tmp); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.root, "current")); err != nil {
		s.t.Fatal(err)
	}
}

// TestDirLoaderSwapDuringRead: the link is swapped while a tenant is read
// and the old tree deleted: what was read of the old tree is dropped, and
// the tenant is read again, whole, from the new one.
func TestDirLoaderSwapDuringRead(t *testing.T) {
	s := &swapTree{t: t, root: t.TempDir()}
	old := s.version(10)
	s.point(old)
	calls := 0
	grants := func(tenant, name string) error {
		calls++
		if calls == 1 {
			s.point(s.version(20))
			if err := os.RemoveAll(old); err != nil {
				t.Fatal(err)
			}
		}
		return nil
	}
	l, err := definitions.NewDirLoader(filepath.Join(s.root, "current"), definitions.Options{Secrets: grants})
	if err != nil {
		t.Fatal(err)
	}
	res := l.LoadTenant("acme")
	if res.ReadError || len(res.Problems) > 0 || len(res.Definitions) != swapFiles {
		t.Fatalf("load during a swap = read error %v, %d definitions, problems %v; want every definition of the new tree", res.ReadError, len(res.Definitions), res.Problems)
	}
	for _, d := range res.Definitions {
		if c := d.Spec.Trigger.Cron; !strings.HasPrefix(c, "20 ") {
			t.Errorf("%s: cron %v, want the new tree's", d.Metadata.Code, d.Spec.Trigger.Cron)
		}
	}
	if calls != 2 {
		t.Errorf("the secret was checked %d times, want twice (the tenant read again)", calls)
	}
}

// TestDirLoaderKeepsSwapping: a link swapped during every read of a
// tenant makes the tenant unreadable after a few tries, which retires
// nothing.
func TestDirLoaderKeepsSwapping(t *testing.T) {
	s := &swapTree{t: t, root: t.TempDir()}
	v1, v2 := s.version(10), s.version(20)
	s.point(v1)
	calls := 0
	grants := func(tenant, name string) error {
		calls++
		if calls%2 == 1 {
			s.point(v2)
		} else {
			s.point(v1)
		}
		return nil
	}
	l, err := definitions.NewDirLoader(filepath.Join(s.root, "current"), definitions.Options{Secrets: grants})
	if err != nil {
		t.Fatal(err)
	}
	still, err := definitions.NewDirLoader(filepath.Join(s.root, "current"), definitions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	applied := appliedOf(still.LoadTenant("acme"))
	res := l.LoadTenant("acme")
	if !res.ReadError || len(res.Problems) != 1 || !strings.Contains(res.Problems[0].Message, "replaced while it was read") {
		t.Fatalf("load while the link keeps moving = read error %v, problems %v; want a read error saying the tree was replaced", res.ReadError, res.Problems)
	}
	if calls != 3 {
		t.Errorf("%d reads, want 3", calls)
	}
	if got := actions(reconciler.Diff(res, applied, noLimit(t))); len(got["unchanged"]) != swapFiles || len(got) != 1 {
		t.Errorf("plan = %v, want nothing retired", got)
	}
}

// TestDirLoaderUnderSyncs: loads while syncs swap the link and delete the
// old tree, again and again: each load is either the whole of one tree
// (every definition, all of the same version) or a read error, never a
// part of a tree that would retire the rest.
func TestDirLoaderUnderSyncs(t *testing.T) {
	s := &swapTree{t: t, root: t.TempDir()}
	cur := s.version(0)
	s.point(cur)
	l, err := definitions.NewDirLoader(filepath.Join(s.root, "current"), definitions.Options{Reuse: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= 30; i++ {
			next := s.version(i)
			s.point(next)
			if err := os.RemoveAll(cur); err != nil {
				t.Error(err)
				return
			}
			cur = next
		}
	}()
	whole, unreadable := 0, 0
	for loads := 0; loads < 2000; loads++ {
		select {
		case <-done:
			loads = 2000
		default:
		}
		if _, _, err := l.Tenants(); err != nil {
			unreadable++
			continue
		}
		res := l.LoadTenant("acme")
		if res.ReadError {
			unreadable++
			continue
		}
		minutes := map[string]bool{}
		for _, d := range res.Definitions {
			minutes[strings.Fields(d.Spec.Trigger.Cron)[0]] = true
		}
		if len(res.Definitions) != swapFiles || len(minutes) != 1 || len(res.Problems) > 0 {
			t.Fatalf("a load under syncs gave %d definitions of versions %v, problems %v; want all %d of one version, or a read error",
				len(res.Definitions), minutes, res.Problems, swapFiles)
		}
		whole++
	}
	<-done
	t.Logf("%d whole loads, %d read errors", whole, unreadable)
}
