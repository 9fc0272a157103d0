package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/loopback"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// inngestProxy stands between a daemon and the dev server: it counts the
// registrations (POST /fn/register) and the reads of an app's functions,
// and can slow every registration down or hold it until the test ends.
type inngestProxy struct {
	URL string
	// registrations, checks and views count the requests that reached
	// the server: POST /fn/register, GET /v1/apps/<app>/functions (one
	// app's view), POST /v0/gql (every app's view, or another query).
	registrations, checks, views atomic.Int64
}

// newInngestProxy starts a proxy to the dev server. Each registration
// waits delay first; with block, it waits until the test ends instead.
func newInngestProxy(t *testing.T, delay time.Duration, block bool) *inngestProxy {
	t.Helper()
	target, err := url.Parse(dev.URL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	held := make(chan struct{})
	p := &inngestProxy{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/fn/register" {
			wait := time.After(delay)
			if block {
				wait = nil
			}
			select {
			case <-wait:
			case <-held:
				http.Error(w, "the test ended", http.StatusServiceUnavailable)
				return
			case <-r.Context().Done():
				return
			}
			p.registrations.Add(1)
		}
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/apps/") {
			p.checks.Add(1)
		}
		if r.Method == http.MethodPost && r.URL.Path == "/v0/gql" {
			p.views.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { close(held); srv.Close() })
	p.URL = srv.URL
	return p
}

// exportGrant grants the generated trees' EXPORT_TOKEN to every tenant,
// so that their def-00.yaml applies (deftest.Generate).
var exportGrant = []string{"TASKSYNC_SECRET_EXPORT_TOKEN=x", "TASKSYNC_GRANT_EXPORT_TOKEN=*"}

// syncCounts reads /v1/status's count of apps by sync state.
func syncCounts(base string) map[string]int {
	_, body := get(base + "/v1/status")
	var status struct {
		Sync map[string]int `json:"inngest_sync"`
	}
	if json.Unmarshal([]byte(body), &status) != nil {
		return nil
	}
	return status.Sync
}

// TestRestartRegistersNothing: a daemon restarted on an unchanged tree,
// against a server that holds its apps, checks each app and registers
// none; when the server then loses its state, every app is back within
// one resync interval.
func TestRestartRegistersNothing(t *testing.T) {
	const tenants = 6
	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "tree")
	if err := deftest.Generate(dir, tenants); err != nil {
		t.Fatal(err)
	}
	proxy := newInngestProxy(t, 0, false)
	prefix := fmt.Sprintf("r%d", time.Now().UnixNano()%1e6)
	env := append([]string{"DATABASE_URL=" + pg.NewDatabase(t), "TASKSYNC_DIR=" + dir, "INNGEST_DEV=" + proxy.URL, "TASKSYNC_APP_PREFIX=" + prefix}, exportGrant...)
	// The same address both times: the apps' URL is part of what is
	// registered, as a deployment's serve origin stays the same.
	addr, err := loopback.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	base, cmd, _, exited := startDaemonAt(t, bin, addr, env, "2s")
	waittest.For(t, "every app synced", 60*time.Second, func() bool { return syncCounts(base)["synced"] == tenants })
	if n := proxy.registrations.Load(); n < tenants {
		t.Fatalf("first start: %d registrations, want at least %d", n, tenants)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}

	before, checked, viewed := proxy.registrations.Load(), proxy.checks.Load(), proxy.views.Load()
	base, _, logs, _ := startDaemonAt(t, bin, addr, env, "2s")
	waittest.For(t, "the restarted daemon to be ready", 30*time.Second, func() bool { code, _ := get(base + "/readyz"); return code == 200 })
	// Every app checked twice, at the start and at a resync after it,
	// each time with one read of every app's view.
	waittest.For(t, "two reads of every app's view", 30*time.Second, func() bool { return proxy.views.Load()-viewed >= 2 })
	waittest.For(t, "the second check done", 10*time.Second, func() bool {
		return strings.Count(logs.String(), `"msg":"sync backlog done","tenants":6,"registered":0`) >= 2
	})
	if n := proxy.registrations.Load() - before; n != 0 {
		t.Errorf("restart with an unchanged tree: %d registrations, want 0", n)
	}
	if n := proxy.checks.Load() - checked; n != 0 {
		t.Errorf("restart with an unchanged tree: %d reads of single apps' views, want none (one read of every app's per pass)", n)
	}
	_, metrics := get(base + "/metrics")
	if strings.Contains(metrics, `tasksync_inngest_sync_total{result="success"`) {
		t.Errorf("/metrics counts successful syncs after a restart with nothing changed:\n%s", grepLines(metrics, "tasksync_inngest_sync_total"))
	}

	// The server loses every app: the next resync (2 s) puts them back.
	if err := dev.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	waittest.For(t, "every app back after the server lost its state", 15*time.Second, func() bool {
		for i := range tenants {
			app := fmt.Sprintf("%s-tenant-%05d", prefix, i)
			if len(appCrons(t, app)) != 10 {
				return false
			}
		}
		return true
	})
	t.Logf("apps back %v after the server restarted", time.Since(restarted).Round(time.Millisecond))
}

// TestReadyWhileInngestBlocks: with every registration held by the
// server, the daemon is still ready (it loaded the applied state and
// serves the apps), and /v1/status and the metrics show the apps pending.
func TestReadyWhileInngestBlocks(t *testing.T) {
	bin := buildBinary(t)
	proxy := newInngestProxy(t, 0, true)
	env := []string{"DATABASE_URL=" + pg.NewDatabase(t), "TASKSYNC_DIR=" + copyTree(t), "INNGEST_DEV=" + proxy.URL,
		"TASKSYNC_APP_PREFIX=" + fmt.Sprintf("b%d", time.Now().UnixNano()%1e6), "TASKSYNC_SECRETS_DIR=" + sampleSecrets(t, "s3cr3t")}
	base, _, _, _ := startDaemon(t, bin, env, "1m")
	waittest.For(t, "the daemon to be ready while Inngest holds every registration", 20*time.Second, func() bool {
		code, _ := get(base + "/readyz")
		return code == 200
	})
	code, body := get(base + "/api/inngest/acme")
	var in struct {
		Count int `json:"function_count"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &in) != nil || in.Count < 1 {
		t.Errorf("GET /api/inngest/acme once ready = %d %s, want the app's functions", code, body)
	}
	if c := syncCounts(base); c["pending"] < 2 || c["synced"] != 0 {
		t.Errorf("/v1/status inngest_sync = %v, want every app pending", c)
	}
	waittest.For(t, "the apps gauge", 10*time.Second, func() bool {
		_, m := get(base + "/metrics")
		return strings.Contains(m, `tasksync_inngest_apps{state="pending"} `) && !strings.Contains(m, `tasksync_inngest_apps{state="pending"} 0`)
	})
}

// TestEditedTenantSyncsFirst: an edit made while a backlog of first
// registrations drains is registered next, not after the backlog.
func TestEditedTenantSyncsFirst(t *testing.T) {
	const tenants = 30
	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "tree")
	if err := deftest.Generate(dir, tenants); err != nil {
		t.Fatal(err)
	}
	proxy := newInngestProxy(t, 250*time.Millisecond, false)
	prefix := fmt.Sprintf("q%d", time.Now().UnixNano()%1e6)
	env := append([]string{"DATABASE_URL=" + pg.NewDatabase(t), "TASKSYNC_DIR=" + dir, "INNGEST_DEV=" + proxy.URL,
		"TASKSYNC_APP_PREFIX=" + prefix, "TASKSYNC_SYNC_CONCURRENCY=1"}, exportGrant...)
	startDaemon(t, bin, env, "10m")
	waittest.For(t, "the backlog under way", 60*time.Second, func() bool { return proxy.registrations.Load() >= 2 })

	last := fmt.Sprintf("tenant-%05d", tenants-1)
	file := filepath.Join(dir, last, "def-00.yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	edited := regexp.MustCompile(`cron: "[^"]*"`).ReplaceAllString(string(data), `cron: "7 5 * * *"`)
	if err := os.WriteFile(file, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	app := prefix + "-" + last
	waittest.For(t, "the edit live in Inngest", 30*time.Second, func() bool {
		return appCrons(t, app)[app+"-_nightly-export"] == "TZ=Europe/Berlin 7 5 * * *"
	})
	if n := proxy.registrations.Load(); n >= tenants/2 {
		t.Errorf("the edited tenant went live after %d registrations of %d tenants, want it ahead of the backlog", n, tenants)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
