package inngest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/executor"
	"github.com/riveredge/tasksync/reconciler/expr"
	"github.com/riveredge/tasksync/reconciler/inngest"
	"github.com/riveredge/tasksync/reconciler/store"
	"github.com/riveredge/tasksync/reconciler/store/storetest"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// recorder is a loopback HTTP server that remembers what reached it.
type recorder struct {
	*httptest.Server
	failures map[string]int // path prefix → failures left before it succeeds
	mu       sync.Mutex
	hits     []string    // "path body"
	at       []time.Time // when each hit arrived
}

func newRecorder(t testing.TB) *recorder {
	r := &recorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.hits = append(r.hits, req.URL.Path+" "+string(b))
		r.at = append(r.at, time.Now())
		r.mu.Unlock()
		r.mu.Lock()
		left, limited := r.failures[req.URL.Path]
		if limited && left > 0 {
			r.failures[req.URL.Path] = left - 1
		}
		r.mu.Unlock()
		if strings.HasPrefix(req.URL.Path, "/fail") && (!limited || left > 0) {
			http.Error(w, "down for maintenance", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(r.Close)
	return r
}

// failFirst makes path fail n times, then succeed.
func (r *recorder) failFirst(path string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failures == nil {
		r.failures = map[string]int{}
	}
	r.failures[path] = n
}

func (r *recorder) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, h := range r.hits {
		if strings.HasPrefix(h, prefix) {
			n++
		}
	}
	return n
}

// newRunner is the task runner over st, with api_call allowed to reach
// loopback, the sandbox sb (may be nil) and the secrets in env.
func newRunner(t testing.TB, st *store.Store, sb *executor.Sandbox, env map[string]string) *reconciler.TaskRunner {
	return loopbackRunner(t, st, sb, "", func(k string) string { return env[k] })
}

// loopbackRunner is the task runner over st whose api_call may reach
// 127.0.0.1 only, resolving names through dnsServer ("" for the system's
// resolver), with the sandbox sb (may be nil) and the secrets getenv sets.
func loopbackRunner(t testing.TB, st *store.Store, sb *executor.Sandbox, dnsServer string, getenv func(string) string) *reconciler.TaskRunner {
	t.Helper()
	envs, err := expr.NewEnvs()
	if err != nil {
		t.Fatal(err)
	}
	allow, err := executor.ParseCIDRs([]string{"127.0.0.1/32"})
	if err != nil {
		t.Fatal(err)
	}
	guard := executor.NewGuard(allow)
	if dnsServer != "" {
		guard.UseDNSServer(dnsServer)
	}
	http := executor.NewHTTP(guard, envs, executor.NewSecrets("", getenv))
	return &reconciler.TaskRunner{Records: st, Actions: &executor.Actions{HTTP: http, Sandbox: sb}}
}

// sendEvent sends an event to the dev server and returns its id.
func sendEvent(t *testing.T, name string, data map[string]any) string {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"name": name, "data": data})
	res, err := http.Post(dev.URL+"/e/test-key", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var sent struct{ IDs []string }
	if err := json.NewDecoder(res.Body).Decode(&sent); err != nil || res.StatusCode/100 != 2 || len(sent.IDs) != 1 {
		t.Fatalf("send event: %d %v %v", res.StatusCode, sent.IDs, err)
	}
	return sent.IDs[0]
}

// serveApplied serves a tenant's applied definitions with runner, syncs
// and verifies the app, and returns the definitions.
func serveApplied(t *testing.T, reg *inngest.Registry, st *store.Store, runner inngest.Runner, tenant string) []reconciler.Definition {
	t.Helper()
	defs, err := st.Definitions(context.Background(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.SetTenant(tenant, defs, runner); err != nil {
		t.Fatal(err)
	}
	syncAndVerify(t, reg, tenant)
	return defs
}

// sendUntil sends an event every second until cond holds, for at most d.
// A run reaching wait_for_event stores its pause a moment after the step
// before it finished; an event sent earlier is, rightly, not matched, so
// a test resuming a run sends until the run resumes.
func sendUntil(t *testing.T, name string, data map[string]any, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		sendEvent(t, name, data)
		if waittest.Within(time.Second, cond) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

// applyTree applies the definitions tree in dir to st, and fails the test
// on an error or a problem.
func applyTree(t *testing.T, st *store.Store, dir string) {
	t.Helper()
	v, err := definitions.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&reconciler.Reconciler{Tree: v.NewLoader(os.DirFS(dir), definitions.Options{}), Store: st, Workers: 1}).Apply(context.Background())
	if err != nil || res.Err() != nil || len(res.Problems()) > 0 {
		t.Fatalf("apply: %v %v %v", err, res.Err(), res.Problems())
	}
}

// TestTenantEventsRunAndRecord: an event for acme runs acme's function and
// never globex's; a failing endpoint is retried the configured number of
// times with the configured delay, every attempt recorded in Postgres.
func TestTenantEventsRunAndRecord(t *testing.T) {
	ctx := context.Background()
	rec := newRecorder(t)
	st, url := pg.NewStore(t, store.Options{})
	tree := t.TempDir()
	task := func(code, event, path string, retries int) string {
		return deftest.Task{Code: code, Trigger: "{event: " + event + "}",
			Config: fmt.Sprintf(`{method: POST, url: "%s%s", body: {msg: "{{ event.data.msg }}", tenant: "{{ tenant }}"}}`, rec.URL, path),
			Spec:   []string{fmt.Sprintf("retries: %d", retries), "retry_delay: 1s"}}.String()
	}
	deftest.WriteFile(t, filepath.Join(tree, "acme", "a.yaml"), task("ping", "app/ping", "/acme/ping", 3)+"---\n"+task("flaky", "app/fail", "/fail/acme", 2))
	deftest.WriteFile(t, filepath.Join(tree, "globex", "g.yaml"), task("ping", "app/ping", "/globex/ping", 3))

	v, err := definitions.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	loader := v.NewLoader(os.DirFS(tree), definitions.Options{})
	res, err := (&reconciler.Reconciler{Tree: loader, Store: st, Workers: 2}).Apply(ctx)
	if err != nil || res.Err() != nil || res.Counts.Created != 3 {
		t.Fatalf("apply: %+v %v %v", res.Counts, err, res.Err())
	}

	runner := newRunner(t, st, nil, nil)
	metrics := prometheus.NewRegistry()
	reg := newRegistryB(t, metrics)
	for _, tenant := range []string{"acme", "globex"} {
		if err := reg.SetTenant(tenant, loader.LoadTenant(tenant).Definitions, runner); err != nil {
			t.Fatal(err)
		}
		syncAndVerify(t, reg, tenant)
	}

	sendEvent(t, "app/ping", map[string]any{"tenant_id": "acme", "msg": "hello"})
	waittest.For(t, "acme's function to run", 30*time.Second, func() bool { return rec.count("/acme/ping") == 1 })
	if got := rec.count("/globex/ping"); got != 0 {
		t.Errorf("globex's function ran %d times on acme's event", got)
	}
	rec.mu.Lock()
	if hit := rec.hits[0]; hit != `/acme/ping {"msg":"hello","tenant":"acme"}` {
		t.Errorf("request = %s", hit)
	}
	rec.mu.Unlock()

	// An event without the tenant, or for an unknown one, starts nothing.
	sendEvent(t, "app/ping", map[string]any{"msg": "nobody's"})
	sendEvent(t, "app/ping", map[string]any{"tenant_id": "initech", "msg": "x"})

	sendEvent(t, "app/fail", map[string]any{"tenant_id": "acme", "msg": "try"})
	waittest.For(t, "three attempts of the failing function", 60*time.Second, func() bool { return rec.count("/fail/acme") >= 3 })
	// Each retry waits the retry_delay (1s), and less than a second more:
	// Inngest schedules retries to the whole second.
	rec.mu.Lock()
	var failAt []time.Time
	for i, h := range rec.hits {
		if strings.HasPrefix(h, "/fail/acme") {
			failAt = append(failAt, rec.at[i])
		}
	}
	rec.mu.Unlock()
	for i := 1; i < len(failAt); i++ {
		if gap := failAt[i].Sub(failAt[i-1]); gap < time.Second || gap > 3*time.Second {
			t.Errorf("gap before attempt %d = %v, want about the 1s retry_delay", i+1, gap)
		}
	}

	conn := storetest.Conn(t, url)
	var attempts, failed int
	var lastStatus, lastError string
	waittest.For(t, "the attempts to be recorded", 30*time.Second, func() bool {
		err := conn.QueryRow(ctx, `select count(*), count(*) filter (where r.status = 'failed'), coalesce(max(d.last_run_status), ''), coalesce(max(d.last_error), '')
			from root_task_runs r join root_scheduled_tasks d on d.id = r.task_id where d.code = 'flaky'`).Scan(&attempts, &failed, &lastStatus, &lastError)
		return err == nil && failed == 3
	})
	if attempts != 3 || lastStatus != "failed" || !strings.Contains(lastError, "unexpected status 500") {
		t.Errorf("records: %d attempts, %d failed, last %s %q", attempts, failed, lastStatus, lastError)
	}
	if rec.count("/fail/acme") != 3 {
		t.Errorf("the failing endpoint was called %d times, want 3 (retries: 2)", rec.count("/fail/acme"))
	}
	var pingStatus string
	if err := conn.QueryRow(ctx, `select d.last_run_status from root_scheduled_tasks d join root_tenants t on t.id = d.tenant_id where t.code = 'acme' and d.code = 'ping'`).Scan(&pingStatus); err != nil || pingStatus != "succeeded" {
		t.Errorf("acme/ping last_run_status = %q, %v", pingStatus, err)
	}
	if rec.count("/globex/ping") != 0 {
		t.Errorf("globex's function ran")
	}
	// A run counts once, by its final outcome; its attempts count apart.
	for status, want := range map[string]float64{"succeeded": 1, "failed": 1} {
		labels := map[string]string{"tenant": "acme", "kind": "task", "status": status}
		if got := counterValue(t, metrics, "tasksync_task_runs_total", labels); got != want {
			t.Errorf("tasksync_task_runs_total%v = %v, want %v", labels, got, want)
		}
	}
	for status, want := range map[string]float64{"succeeded": 1, "retrying": 2, "failed": 1} {
		labels := map[string]string{"tenant": "acme", "kind": "task", "status": status}
		if got := counterValue(t, metrics, "tasksync_task_attempts_total", labels); got != want {
			t.Errorf("tasksync_task_attempts_total%v = %v, want %v", labels, got, want)
		}
	}
	if got := counterValue(t, metrics, "tasksync_inngest_sync_total", map[string]string{"tenant": "acme", "result": "success"}); got < 1 {
		t.Errorf("tasksync_inngest_sync_total{acme,success} = %v", got)
	}

	// The status API's lookups of these runs: by Inngest's run id (for
	// its tenant only), and across the tenant's definitions.
	var flakyRun string
	if err := conn.QueryRow(ctx, `select r.inngest_run_id from root_task_runs r join root_scheduled_tasks d on d.id = r.task_id where d.code = 'flaky' limit 1`).Scan(&flakyRun); err != nil {
		t.Fatal(err)
	}
	byID, err := st.Run(ctx, flakyRun, "acme")
	if err != nil || len(byID) != 3 || byID[2].Attempt != 2 || !byID[2].Final || byID[0].Code != "flaky" || byID[0].Tenant != "acme" {
		t.Errorf("Run(%s, acme) = %+v, %v; want its 3 attempts, the last final", flakyRun, byID, err)
	}
	if _, err := st.Run(ctx, flakyRun, "globex"); !errors.Is(err, reconciler.ErrNotFound) {
		t.Errorf("Run(%s, globex) = %v, want ErrNotFound: another tenant's run", flakyRun, err)
	}
	failedRuns, err := st.TenantRuns(ctx, "acme", reconciler.RunFilter{Status: reconciler.RunFailed, Limit: 10})
	if err != nil || len(failedRuns) != 3 || failedRuns[0].InngestRunID != flakyRun || failedRuns[0].Attempt != 2 {
		t.Errorf("acme's failed runs = %+v, %v; want flaky's 3 attempts, newest first", failedRuns, err)
	}
}

// counterValue reads one series of a counter from a registry.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	return series(t, reg, name, labels).GetCounter().GetValue()
}

// series finds the series of a metric whose labels hold the ones given;
// nil (whose values read as 0) when there is none.
func series(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue next
				}
			}
			return m
		}
	}
	return nil
}

// TestOneShot: an `at` task fires once at its time, however often its
// event is sent; a one-shot retired before its time never fires.
func TestOneShot(t *testing.T) {
	ctx := context.Background()
	rec := newRecorder(t)
	st, _ := pg.NewStore(t, store.Options{})
	at := time.Now().Add(4 * time.Second).Truncate(time.Second).Format(time.RFC3339)
	task := func(code string) string {
		return deftest.Task{Code: code, Trigger: fmt.Sprintf("{at: %q}", at), Config: fmt.Sprintf("{url: %q}", rec.URL+"/"+code)}.String()
	}
	tree := t.TempDir()
	if err := os.MkdirAll(filepath.Join(tree, "acme"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeTree := func(docs ...string) {
		if err := os.WriteFile(filepath.Join(tree, "acme", "once.yaml"), []byte(strings.Join(docs, "---\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeTree(task("keep"), task("drop"))
	v, _ := definitions.NewValidator()
	loader := v.NewLoader(os.DirFS(tree), definitions.Options{})
	apply := func() {
		t.Helper()
		res, err := (&reconciler.Reconciler{Tree: loader, Store: st, Workers: 1, Budget: mustAll(t)}).Apply(ctx)
		if err != nil || res.Err() != nil || len(res.Problems()) > 0 {
			t.Fatalf("apply: %v %v %v", err, res.Err(), res.Problems())
		}
	}
	apply()
	runner := newRunner(t, st, nil, nil)
	reg := newRegistry(t)
	publish := func() {
		t.Helper()
		serveApplied(t, reg, st, runner, "acme")
		if _, err := reg.SendOneShots(ctx, "acme", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	publish()
	publish() // a second sync sends the same events again: nothing more runs

	// Retire "drop" before its time.
	writeTree(task("keep"))
	apply()
	publish()

	waittest.For(t, "the one-shot to fire", 30*time.Second, func() bool { return rec.count("/keep") >= 1 })
	// A duplicate, or the retired one, would show up within seconds.
	waittest.Never(t, "a second run of the one-shot, or a run of the retired one", 3*time.Second, func() bool {
		return rec.count("/keep") > 1 || rec.count("/drop") > 0
	})
}

// TestOneShotFiredIsHistory: a one-shot fires at its time, then shows as
// fired with its run; its file, unchanged, applies again after its time
// with no problem and nothing new; a change to it after it fired makes a
// version that is expired and fires nothing.
func TestOneShotFiredIsHistory(t *testing.T) {
	ctx := context.Background()
	rec := newRecorder(t)
	st, _ := pg.NewStore(t, store.Options{})
	at := time.Now().Add(4 * time.Second).Truncate(time.Second)
	task := func(path string) string {
		return deftest.Task{Code: "launch", Trigger: fmt.Sprintf("{at: %q}", at.Format(time.RFC3339)), Config: fmt.Sprintf("{url: %q}", rec.URL+path)}.String()
	}
	tree := t.TempDir()
	file := filepath.Join(tree, "acme", "once.yaml")
	deftest.WriteFile(t, file, task("/launch"))
	v, _ := definitions.NewValidator()
	loader := v.NewLoader(os.DirFS(tree), definitions.Options{})
	apply := func() reconciler.Counts {
		t.Helper()
		res, err := (&reconciler.Reconciler{Tree: loader, Store: st, Workers: 1, Budget: mustAll(t)}).Apply(ctx)
		if err != nil || res.Err() != nil || len(res.Problems()) > 0 {
			t.Fatalf("apply: %v %v %v", err, res.Err(), res.Problems())
		}
		return res.Counts
	}
	oneShot := func() reconciler.OneShotStatus {
		t.Helper()
		d, err := st.Definition(ctx, "acme", "launch")
		if err != nil || d.OneShot == nil {
			t.Fatalf("Definition = %+v, %v; want a one-shot", d, err)
		}
		return *d.OneShot
	}
	apply()
	if s := oneShot(); s.State != reconciler.OneShotScheduled || !s.At.Equal(at) {
		t.Errorf("before its time: %+v, want scheduled at %s", s, at)
	}
	reg := newRegistry(t)
	runner := newRunner(t, st, nil, nil)
	serveApplied(t, reg, st, runner, "acme")
	if n, err := reg.SendOneShots(ctx, "acme", time.Now()); err != nil || n != 1 {
		t.Fatalf("SendOneShots = %d, %v; want 1 sent", n, err)
	}

	waittest.For(t, "the one-shot to fire and show as fired", 30*time.Second, func() bool {
		return rec.count("/launch") == 1 && oneShot().State == reconciler.OneShotFired
	})
	runs, err := st.Runs(ctx, "acme", "launch", 10, 0)
	if err != nil || len(runs) != 1 {
		t.Fatalf("Runs = %+v, %v; want one", runs, err)
	}
	s := oneShot()
	if s.RunID != runs[0].InngestRunID || s.FiredAt == nil || !s.FiredAt.Equal(runs[0].StartedAt) || s.FiredAt.Before(at.Add(-time.Second)) {
		t.Errorf("fired = %+v, want run %s started at %s, not before %s", s, runs[0].InngestRunID, runs[0].StartedAt, at)
	}
	list, err := st.ListDefinitions(ctx, "acme", reconciler.DefinitionFilter{Limit: 10})
	if err != nil || len(list) != 1 || list[0].OneShot == nil || list[0].OneShot.RunID != s.RunID {
		t.Errorf("ListDefinitions = %+v, %v; want launch as fired with run %s", list, err, s.RunID)
	}

	// The file, unchanged, after its time: no problem, nothing applied.
	if c := apply(); c.Unchanged != 1 || c.Created+c.Updated+c.Retired != 0 {
		t.Errorf("apply after its time = %+v, want 1 unchanged", c)
	}
	if ps, err := st.Problems(ctx, "acme"); err != nil || len(ps) > 0 {
		t.Errorf("problems = %v, %v; want none", ps, err)
	}
	if got := oneShot(); got.State != reconciler.OneShotFired || got.RunID != s.RunID {
		t.Errorf("after a second apply: %+v, want still fired with run %s", got, s.RunID)
	}

	// A change after it fired is a version whose time had passed when it
	// was applied: expired, sent nothing, run never.
	deftest.WriteFile(t, file, task("/changed"))
	if c := apply(); c.Updated != 1 {
		t.Errorf("apply of the change = %+v, want 1 updated", c)
	}
	if got := oneShot(); got.State != reconciler.OneShotExpired || got.FiredAt != nil {
		t.Errorf("changed after it fired: %+v, want expired", got)
	}
	serveApplied(t, reg, st, runner, "acme")
	if n, err := reg.SendOneShots(ctx, "acme", time.Now()); err != nil || n != 0 {
		t.Errorf("SendOneShots after the change = %d, %v; want none sent", n, err)
	}
	waittest.Never(t, "a run of the changed one-shot, or a second of the first", 3*time.Second, func() bool {
		return rec.count("/changed") > 0 || rec.count("/launch") > 1
	})
}

func mustAll(t *testing.T) reconciler.RetireBudget {
	b, err := reconciler.ParseRetireBudget("all")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRunsKeepSecretsAndRunScripts: a python_script task runs in the
// sandbox through Inngest, concurrency limits hold, and a secret's value
// reaches the endpoint and the script but no run record, in no encoding
// (percent-encoded, JSON-escaped, base64, hex) either.
func TestRunsKeepSecretsAndRunScripts(t *testing.T) {
	const secret = "pa55+w0rd/=for tests é<&>"
	ctx := context.Background()
	var mu sync.Mutex
	inFlight, maxInFlight := 0, 0
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		mu.Unlock()
		time.Sleep(300 * time.Millisecond) // hold the run, so that overlapping runs would show
		mu.Lock()
		inFlight--
		mu.Unlock()
		http.Error(w, "rejected token "+r.Header.Get("Authorization")+" query "+r.URL.RawQuery, http.StatusForbidden)
	}))
	defer echo.Close()
	st, url := pg.NewStore(t, store.Options{})
	tree := t.TempDir()
	if err := os.MkdirAll(filepath.Join(tree, "acme"), 0o755); err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf(`apiVersion: tasksync/v1
kind: ScheduledTask
metadata: {code: call}
spec:
  trigger: {event: app/call}
  type: api_call
  config: {url: "%s/x", headers: {Authorization: "Bearer ${secret:TOKEN}"}, query: {token: "${secret:TOKEN}"}}
  retries: 0
  concurrency: 1
---
apiVersion: tasksync/v1
kind: ScheduledTask
metadata: {code: script}
spec:
  trigger: {event: app/script}
  type: python_script
  config:
    script: |
      import base64, json, os, sys, urllib.parse
      tok = os.environ["TOKEN"]
      print("token", tok)
      print(json.dumps(tok), base64.b64encode(tok.encode()).decode(), tok.encode().hex(), urllib.parse.quote_plus(tok))
      print(json.dumps({"n": int(sys.argv[1]), "len": len(tok), "raw": tok}))
    args: ["{{ event.data.n }}"]
    env: {TOKEN: "${secret:TOKEN}"}
  retries: 0
`, echo.URL)
	if err := os.WriteFile(filepath.Join(tree, "acme", "a.yaml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	applyTree(t, st, tree)
	sb := &executor.Sandbox{Python: "/usr/bin/python3"}
	if err := sb.Check(ctx); err != nil {
		t.Fatal(err)
	}
	runner := newRunner(t, st, sb, map[string]string{"TASKSYNC_SECRET_TOKEN": secret, "TASKSYNC_GRANT_TOKEN": "acme"})
	reg := newRegistry(t)
	serveApplied(t, reg, st, runner, "acme")

	for range 3 {
		sendEvent(t, "app/call", map[string]any{"tenant_id": "acme"})
	}
	sendEvent(t, "app/script", map[string]any{"tenant_id": "acme", "n": 7})

	conn := storetest.Conn(t, url)
	waittest.For(t, "three calls and the script to finish", 60*time.Second, func() bool {
		var done int
		err := conn.QueryRow(ctx, `select count(*) from root_task_runs where status <> 'running'`).Scan(&done)
		return err == nil && done == 4
	})
	var status, output string
	if err := conn.QueryRow(ctx, `select r.status, coalesce(r.output::text, '') from root_task_runs r join root_scheduled_tasks d on d.id = r.task_id where d.code = 'script'`).Scan(&status, &output); err != nil {
		t.Fatal(err)
	}
	if status != "succeeded" || !strings.Contains(output, fmt.Sprintf(`"result": {"n": 7, "len": %d, "raw": "[redacted]"}`, utf8.RuneCountInString(secret))) || !strings.Contains(output, "token "+executor.Redacted) {
		t.Errorf("script run: %s %s", status, output)
	}
	var callErr string
	if err := conn.QueryRow(ctx, `select coalesce(max(r.error), '') from root_task_runs r join root_scheduled_tasks d on d.id = r.task_id where d.code = 'call'`).Scan(&callErr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(callErr, "unexpected status 403") || !strings.Contains(callErr, executor.Redacted) {
		t.Errorf("call error = %q, want the 403 with the token redacted", callErr)
	}
	mu.Lock()
	if maxInFlight != 1 {
		t.Errorf("%d calls ran at once; concurrency is 1", maxInFlight)
	}
	mu.Unlock()
	var leaked bool
	if err := conn.QueryRow(ctx, `select exists (select 1 from root_task_runs r where r::text like '%' || $1 || '%')
		or exists (select 1 from root_scheduled_tasks d where d::text like '%' || $1 || '%')`, secret).Scan(&leaked); err != nil || leaked {
		t.Errorf("the secret's value is stored in Postgres (%v)", err)
	}
	rows, err := conn.Query(ctx, `select coalesce(output::text, '') || ' ' || coalesce(error, '') from root_task_runs`)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	j, _ := json.Marshal(secret)
	forms := []string{secret, neturl.QueryEscape(secret), neturl.PathEscape(secret), string(j[1 : len(j)-1]), `pa55+w0rd/=for tests \u00e9<&>`,
		base64.StdEncoding.EncodeToString([]byte(secret)), hex.EncodeToString([]byte(secret))}
	for _, text := range stored {
		for _, f := range forms {
			if strings.Contains(text, f) {
				t.Errorf("a run record holds the secret as %q: %s", f, text)
			}
		}
	}
}

// TestLaggingReplicaRunsTheAppliedVersion: a replica whose app still
// serves an older version (a follower before its reload) executes the
// version applied in Postgres, and a run of a definition made inactive or
// retired since executes nothing.
func TestLaggingReplicaRunsTheAppliedVersion(t *testing.T) {
	rec := newRecorder(t)
	st, _ := pg.NewStore(t, store.Options{})
	tree := t.TempDir()
	apply := func(path, active string) {
		t.Helper()
		deftest.WriteFile(t, filepath.Join(tree, "acme", "lag.yaml"), fmt.Sprintf(`apiVersion: tasksync/v1
kind: ScheduledTask
metadata: {code: lag}
spec:
  trigger: {event: app/lag}
  active: %s
  type: api_call
  config: {method: POST, url: "%s%s"}
`, active, rec.URL, path))
		applyTree(t, st, tree)
	}
	apply("/v1", "true")
	metrics := prometheus.NewRegistry()
	reg := newRegistryB(t, metrics)
	serveApplied(t, reg, st, newRunner(t, st, nil, nil), "acme")

	// The leader applies v2; this replica has not reloaded.
	apply("/v2", "true")
	sendEvent(t, "app/lag", map[string]any{"tenant_id": "acme"})
	waittest.For(t, "the applied version to run", 30*time.Second, func() bool { return rec.count("/v2") == 1 })
	if n := rec.count("/v1"); n != 0 {
		t.Errorf("the served, older version ran %d times", n)
	}

	// Made inactive since: the run is skipped.
	apply("/v3", "false")
	skipped := map[string]string{"tenant": "acme", "kind": "task", "status": "skipped"}
	sendEvent(t, "app/lag", map[string]any{"tenant_id": "acme"})
	waittest.For(t, "the run to be skipped", 30*time.Second, func() bool { return counterValue(t, metrics, "tasksync_task_runs_total", skipped) == 1 })
	if n := rec.count("/v3") + rec.count("/v1"); n != 0 {
		t.Errorf("an inactive definition ran %d times", n)
	}
}

// TestPostgresOutageLosesNoRun: while Postgres cannot be reached, an
// event's run (retries: 0) executes the version this replica serves, and
// once Postgres answers again its attempt is in root_task_runs, finished.
func TestPostgresOutageLosesNoRun(t *testing.T) {
	ctx := context.Background()
	rec := newRecorder(t)
	st, url := pg.NewStore(t, store.Options{})
	tree := t.TempDir()
	deftest.WriteFile(t, filepath.Join(tree, "acme", "out.yaml"), deftest.Task{Code: "outage", Trigger: "{event: app/outage}",
		Config: fmt.Sprintf(`{method: POST, url: "%s/outage", body: {n: "{{ event.data.n }}"}}`, rec.URL), Spec: []string{"retries: 0"}}.String())
	applyTree(t, st, tree)
	runner := newRunner(t, st, nil, nil)
	runner.Spool = reconciler.NewRunSpool(st, reconciler.SpoolOptions{MinBackoff: 100 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})
	runner.StoreTimeout = 5 * time.Second
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- runner.Spool.Run(sctx) }()
	t.Cleanup(func() { stop(); <-done })
	reg := newRegistry(t)
	serveApplied(t, reg, st, runner, "acme")

	restore := pg.CutOff(t, url)
	sendEvent(t, "app/outage", map[string]any{"tenant_id": "acme", "n": "1"})
	waittest.For(t, "the run to execute during the outage", 30*time.Second, func() bool { return rec.count("/outage") == 1 })
	waittest.For(t, "the outcome to be spooled", 10*time.Second, func() bool { return runner.Spool.Len() == 2 })
	restore()

	conn := storetest.Conn(t, url)
	var status string
	var finished *time.Time
	waittest.For(t, "the attempt to be recorded once Postgres is back", 30*time.Second, func() bool {
		err := conn.QueryRow(ctx, `select r.status, r.finished_at from root_task_runs r join root_scheduled_tasks d on d.id = r.task_id where d.code = 'outage'`).Scan(&status, &finished)
		return err == nil && finished != nil
	})
	if status != "succeeded" {
		t.Errorf("recorded status = %q, want succeeded", status)
	}
	var lastStatus string
	if err := conn.QueryRow(ctx, `select coalesce(last_run_status, '') from root_scheduled_tasks where code = 'outage'`).Scan(&lastStatus); err != nil || lastStatus != "succeeded" {
		t.Errorf("last_run_status = %q, %v; want succeeded", lastStatus, err)
	}
	if n := rec.count("/outage"); n != 1 {
		t.Errorf("the endpoint was called %d times, want once", n)
	}
	if runner.Spool.Len() != 0 || runner.Spool.Dropped() != 0 || runner.Spool.Flushed() != 2 {
		t.Errorf("spool: %d left, %d dropped, %d flushed; want 0, 0, 2", runner.Spool.Len(), runner.Spool.Dropped(), runner.Spool.Flushed())
	}
}
