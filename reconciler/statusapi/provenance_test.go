package statusapi_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/statusapi"
	"github.com/riveredge/tasksync/reconciler/store"
)

// TestDefinitionCommit: a tree in a git checkout stores, with each
// applied version, the commit it came from, and the detail shows it; a
// commit that leaves a definition as it was keeps its commit (and its
// revision), one that changes it moves both.
func TestDefinitionCommit(t *testing.T) {
	ctx := context.Background()
	st, _ := pg.NewStore(t, store.Options{})
	dir := t.TempDir()
	deftest.Git(t, dir, "init", "-q")
	put := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, "tasks.d", "acme", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		deftest.Git(t, dir, "add", ".")
		deftest.Git(t, dir, "commit", "-q", "-m", name)
	}
	var l *definitions.Loader
	apply := func() {
		t.Helper()
		if _, err := (&reconciler.Reconciler{Tree: l, Store: st, Workers: 1}).Apply(ctx); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(statusapi.NewHandler(statusapi.Options{Reader: st}))
	t.Cleanup(srv.Close)
	detail := func(code string) (string, float64) {
		t.Helper()
		status, body := call(t, srv, "GET", "/v1/tenants/acme/definitions/"+code, "")
		def, _ := body["definition"].(map[string]any)
		if status != 200 {
			t.Fatalf("%s = %d %v", code, status, body)
		}
		c, _ := def["source_commit"].(string)
		rev, _ := def["revision"].(float64)
		return c, rev
	}

	put("a.yaml", task("alpha", "{interval: 5m}"))
	first := deftest.Git(t, dir, "rev-parse", "HEAD")
	l, err := definitions.NewDirLoader(filepath.Join(dir, "tasks.d"), definitions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	apply()
	if c, rev := detail("alpha"); c != first || rev != 1 {
		t.Errorf("alpha: commit %q revision %v, want %s, 1", c, rev, first)
	}
	put("b.yaml", task("beta", "{interval: 5m}"))
	second := deftest.Git(t, dir, "rev-parse", "HEAD")
	apply()
	if c, rev := detail("alpha"); c != first || rev != 1 {
		t.Errorf("alpha, unchanged by the second commit: commit %q revision %v, want %s, 1", c, rev, first)
	}
	if c, _ := detail("beta"); c != second {
		t.Errorf("beta: commit %q, want %s", c, second)
	}
	put("a.yaml", task("alpha", "{interval: 10m}"))
	third := deftest.Git(t, dir, "rev-parse", "HEAD")
	apply()
	if c, rev := detail("alpha"); c != third || rev != 2 {
		t.Errorf("alpha, changed: commit %q revision %v, want %s, 2", c, rev, third)
	}

	// plan shows the tree's commit and each change's.
	put("a.yaml", task("alpha", "{interval: 15m}"))
	fourth := deftest.Git(t, dir, "rev-parse", "HEAD")
	res, err := (&reconciler.Reconciler{Tree: l, Store: st, Workers: 1}).Plan(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	res.WritePlanText(&b, res.StartedAt)
	if want := "commit: \"" + third[:12] + "\" → \"" + fourth[:12] + "\""; !strings.Contains(b.String(), want) {
		t.Errorf("plan text lacks %q:\n%s", want, b.String())
	}
	res.Commit = l.Revision().Commit
	b.Reset()
	if err := res.WritePlanJSON(&b, res.StartedAt); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"commit": "` + fourth + `"`, `"applied_commit": "` + third + `"`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("plan JSON lacks %s:\n%s", want, b.String())
		}
	}
}
