package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// definitionDetail is the status API's document of a definition: its
// "definition" object.
func definitionDetail(t *testing.T, base, tenant, code string) map[string]any {
	t.Helper()
	status, body := get(base + "/v1/tenants/" + tenant + "/definitions/" + code)
	if status != 200 {
		t.Fatalf("detail of %s/%s: %d %s", tenant, code, status, body)
	}
	var doc struct {
		Definition map[string]any `json:"definition"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || doc.Definition == nil {
		t.Fatalf("detail of %s/%s: %v\n%s", tenant, code, err, body)
	}
	return doc.Definition
}

func cronDoc(code, cron string) string {
	return deftest.Task{Code: code, Trigger: fmt.Sprintf("{cron: '%s'}", cron)}.String()
}

// TestDaemonFollowsGitSync: the daemon given --dir ROOT/current/tasks.d
// of a git-sync checkout follows each sync (a new worktree, the link
// swapped, the old worktree deleted) within the watcher's debounce, not
// the resync: the edit is live in Inngest, the edited definition's
// commit in the status API is the new one, the others keep theirs and
// their source paths. A moment where the link leads nowhere fails the
// reconcile and retires nothing; the next sync is followed.
func TestDaemonFollowsGitSync(t *testing.T) {
	g := deftest.NewGitSync(t, map[string]string{
		"tasks.d/acme/a.yaml":   cronDoc("a", "0 1 * * *"),
		"tasks.d/acme/b.yaml":   cronDoc("b", "0 2 * * *"),
		"tasks.d/globex/g.yaml": cronDoc("g", "0 3 * * *"),
	})
	first := deftest.Git(t, g.Src, "rev-parse", "HEAD")
	bin := buildBinary(t)
	prefix := fmt.Sprintf("gs%d", time.Now().UnixNano()%1e6)
	base, cmd, logs, exited := startDaemon(t, bin, []string{"DATABASE_URL=" + pg.NewDatabase(t), "TASKSYNC_DIR=" + filepath.Join(g.Link, "tasks.d"),
		"INNGEST_DEV=" + dev.URL, "TASKSYNC_APP_PREFIX=" + prefix}, "5m")
	waittest.For(t, "the daemon to be ready", 30*time.Second, func() bool { code, _ := get(base + "/readyz"); return code == 200 })
	acme, globex := prefix+"-acme", prefix+"-globex"
	waittest.For(t, "the apps in Inngest", 30*time.Second, func() bool { return len(appCrons(t, acme)) == 2 && len(appCrons(t, globex)) == 1 })
	if d := definitionDetail(t, base, "acme", "a"); d["source_commit"] != first || d["source_path"] != "acme/a.yaml" {
		t.Errorf("detail of a = commit %v, source %v; want %s, acme/a.yaml", d["source_commit"], d["source_path"], first)
	}

	// A sync with one edit: live in Inngest within seconds (the resync
	// is 5 minutes away).
	g.Commit(map[string]string{"tasks.d/acme/a.yaml": cronDoc("a", "30 1 * * *")})
	start := time.Now()
	second := g.Sync()
	waittest.For(t, "the synced edit in Inngest", 10*time.Second, func() bool { return appCrons(t, acme)[acme+"-_a"] == "TZ=UTC 30 1 * * *" })
	t.Logf("a sync live in Inngest after %v", time.Since(start).Round(time.Millisecond))
	if d := definitionDetail(t, base, "acme", "a"); d["source_commit"] != second || d["source_path"] != "acme/a.yaml" || d["revision"] != 2.0 {
		t.Errorf("detail of a after the sync = commit %v, source %v, revision %v; want %s, acme/a.yaml, 2", d["source_commit"], d["source_path"], d["revision"], second)
	}
	// The others are unchanged: their commit and revision are as they were.
	for _, c := range []struct{ tenant, code string }{{"acme", "b"}, {"globex", "g"}} {
		if d := definitionDetail(t, base, c.tenant, c.code); d["source_commit"] != first || d["revision"] != 1.0 || d["source_path"] != c.tenant+"/"+c.code+".yaml" {
			t.Errorf("detail of %s/%s after the sync = commit %v, revision %v, source %v; want unchanged", c.tenant, c.code, d["source_commit"], d["revision"], d["source_path"])
		}
	}

	// A moment where the link leads nowhere: the reconcile fails, nothing
	// is retired.
	failed := strings.Count(logs.String(), `"result":"error"`)
	g.Point(filepath.Join(".worktrees", "not-checked-out-yet"))
	waittest.For(t, "a reconcile that fails", 10*time.Second, func() bool { return strings.Count(logs.String(), `"result":"error"`) > failed })
	if _, body := get(base + "/v1/status"); !strings.Contains(body, `"result": "error"`) || !strings.Contains(body, `"retired": 0`) {
		t.Errorf("/v1/status while the link leads nowhere = %s, want the last reconcile an error that retired nothing", body)
	}
	if a, gl := appCrons(t, acme), appCrons(t, globex); len(a) != 2 || len(gl) != 1 {
		t.Errorf("functions while the link leads nowhere: %v %v, want all kept", a, gl)
	}

	// The next sync is followed from there.
	g.Commit(map[string]string{"tasks.d/globex/g.yaml": cronDoc("g", "45 3 * * *")})
	third := g.Sync()
	waittest.For(t, "the next sync's edit in Inngest", 10*time.Second, func() bool { return appCrons(t, globex)[globex+"-_g"] == "TZ=UTC 45 3 * * *" })
	if d := definitionDetail(t, base, "globex", "g"); d["source_commit"] != third {
		t.Errorf("detail of g = commit %v, want %s", d["source_commit"], third)
	}
	if a := appCrons(t, acme); len(a) != 2 || a[acme+"-_a"] != "TZ=UTC 30 1 * * *" {
		t.Errorf("acme's functions after the next sync: %v", a)
	}
	_, metrics := get(base + "/metrics")
	if strings.Contains(metrics, `tasksync_changes_total{action="retire"`) && !strings.Contains(metrics, `tasksync_changes_total{action="retire",tenant="acme"} 0`) {
		t.Errorf("a retirement was counted:\n%s", metrics)
	}
	stopDaemon(t, cmd, exited, 15*time.Second)
}
