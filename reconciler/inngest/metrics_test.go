package inngest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/inngest"
	"github.com/riveredge/tasksync/reconciler/store"
	"github.com/riveredge/tasksync/reconciler/store/storetest"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// TestRunMetricsCountRunsAndAttempts runs, through the dev server, a task
// and a workflow that always fail (retries: 2) and a task and a workflow
// that fail once and then succeed: tasksync_task_runs_total counts each
// run once by its final outcome, tasksync_task_attempts_total each
// attempt as retrying, succeeded or failed. A task whose template fails
// on the event (the sample's customer/created without customer_id) fails
// at its first attempt, says it is not retried, and is counted as one
// failed run.
func TestRunMetricsCountRunsAndAttempts(t *testing.T) {
	ctx := context.Background()
	rec := newRecorder(t)
	st, url := pg.NewStore(t, store.Options{})
	tree := t.TempDir()
	task := func(code, event, path string) string {
		return deftest.Task{Code: code, Trigger: "{event: " + event + "}",
			Config: fmt.Sprintf(`{method: POST, url: "%s%s"}`, rec.URL, path), Spec: []string{"retries: 2", "retry_delay: 1s"}}.String()
	}
	flow := func(code, event, path string) string {
		return fmt.Sprintf(`apiVersion: tasksync/v1
kind: Workflow
metadata: {code: %s}
spec:
  trigger: {event: %s}
  retries: 2
  retry_delay: 1s
  steps:
    - id: first
      api_call: {method: POST, url: "%s/ok/%s"}
    - id: flaky
      api_call: {method: POST, url: "%s%s"}
`, code, event, rec.URL, code, rec.URL, path)
	}
	welcome := deftest.Task{Code: "welcome", Trigger: "{event: customer/created}",
		Config: fmt.Sprintf(`{method: POST, url: "%s/welcome", body: {customer_id: "{{ event.data.customer_id }}"}}`, rec.URL),
		Spec:   []string{"retries: 1"}}.String()
	deftest.WriteFile(t, filepath.Join(tree, "acme", "defs.yaml"), strings.Join([]string{
		task("always", "t/always", "/fail/always"), task("once", "t/once", "/fail/once"),
		flow("wf-always", "w/always", "/fail/wf-always"), flow("wf-once", "w/once", "/fail/wf-once"), welcome}, "---\n"))
	rec.failFirst("/fail/once", 1)
	rec.failFirst("/fail/wf-once", 1)

	v, err := definitions.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	loader := v.NewLoader(os.DirFS(tree), definitions.Options{})
	if res, err := (&reconciler.Reconciler{Tree: loader, Store: st, Workers: 1}).Apply(ctx); err != nil || res.Err() != nil || len(res.Problems()) > 0 {
		t.Fatalf("apply: %v %v %v", err, res.Err(), res.Problems())
	}
	metrics := prometheus.NewRegistry()
	reg := newRegistryB(t, metrics)
	serveApplied(t, reg, st, newRunner(t, st, nil, nil), "acme")
	for _, e := range []string{"t/always", "t/once", "w/always", "w/once", "customer/created"} {
		sendEvent(t, e, map[string]any{"tenant_id": "acme", "email": "a@example.com"})
	}

	value := func(name, kind, status string) float64 {
		return counterValue(t, metrics, name, map[string]string{"tenant": "acme", "kind": kind, "status": status})
	}
	type want struct {
		name, kind, status string
		n                  float64
	}
	wants := []want{
		// always (2), wf-always (2), once (1), wf-once (1)
		{"tasksync_task_runs_total", "task", "failed", 2}, // always, welcome
		{"tasksync_task_runs_total", "task", "succeeded", 1},
		{"tasksync_task_runs_total", "workflow", "failed", 1},
		{"tasksync_task_runs_total", "workflow", "succeeded", 1},
		{"tasksync_task_attempts_total", "task", "retrying", 3}, // always 2, once 1
		{"tasksync_task_attempts_total", "task", "failed", 2},   // always, welcome
		{"tasksync_task_attempts_total", "task", "succeeded", 1},
		{"tasksync_task_attempts_total", "workflow", "retrying", 3}, // wf-always 2, wf-once 1
		{"tasksync_task_attempts_total", "workflow", "failed", 1},
		{"tasksync_task_attempts_total", "workflow", "succeeded", 1},
	}
	all := func() bool {
		for _, w := range wants {
			if value(w.name, w.kind, w.status) != w.n {
				return false
			}
		}
		return true
	}
	if !waittest.Within(60*time.Second, all) {
		for _, w := range wants {
			t.Errorf("%s{kind=%s,status=%s} = %v, want %v", w.name, w.kind, w.status, value(w.name, w.kind, w.status), w.n)
		}
		t.FailNow()
	}
	if n := rec.count("/fail/wf-always"); n != 3 {
		t.Errorf("the always-failing step ran %d times, want 3", n)
	}
	// Nothing more is counted once the runs have ended (a workflow's
	// failed step is replayed to it once more, and is not counted again).
	waittest.Never(t, "the counts to change after the runs ended", 3*time.Second, func() bool { return !all() })
	if got := counterValue(t, metrics, "tasksync_panics_total", nil); got != 0 {
		t.Errorf("tasksync_panics_total = %v, want 0", got)
	}

	// The template's failure: one attempt, final, recorded as such, and
	// the endpoint never called.
	if n := rec.count("/welcome"); n != 0 {
		t.Errorf("the welcome endpoint was called %d times", n)
	}
	conn := storetest.Conn(t, url)
	var attempts int
	var status, errText string
	if err := conn.QueryRow(ctx, `select count(*), max(r.status), coalesce(max(r.error), '') from root_task_runs r
		join root_scheduled_tasks d on d.id = r.task_id where d.code = 'welcome'`).Scan(&attempts, &status, &errText); err != nil {
		t.Fatal(err)
	}
	if attempts != 1 || status != "failed" || !strings.Contains(errText, `expression "event.data.customer_id": no such key`) || !strings.Contains(errText, "not retried") {
		t.Errorf("welcome: %d attempts, status %s, error %q; want 1 failed attempt naming the expression and saying it is not retried", attempts, status, errText)
	}
}

// TestAbandonedRunsCountAsFailed: a run the leader closed as abandoned is
// a failed run, and its attempts failed attempts, with tenant and kind.
func TestAbandonedRunsCountAsFailed(t *testing.T) {
	prom := prometheus.NewRegistry()
	reg := newRegistryB(t, prom)
	var _ reconciler.AbandonedCounter = reg.WithRunner(nopRunner{})
	reg.CountAbandoned([]reconciler.AbandonedRun{
		{Tenant: "acme", Kind: reconciler.KindWorkflow, Attempts: 2},
		{Tenant: "acme", Kind: reconciler.KindScheduledTask, Attempts: 1},
	})
	for _, c := range []struct {
		name, kind string
		want       float64
	}{
		{"tasksync_task_runs_total", "workflow", 1}, {"tasksync_task_attempts_total", "workflow", 2},
		{"tasksync_task_runs_total", "task", 1}, {"tasksync_task_attempts_total", "task", 1},
	} {
		if got := counterValue(t, prom, c.name, map[string]string{"tenant": "acme", "kind": c.kind, "status": "failed"}); got != c.want {
			t.Errorf("%s{kind=%q,status=failed} = %v, want %v", c.name, c.kind, got, c.want)
		}
	}
}

// runLines are the `run` lines a JSON log holds for a definition.
func runLines(t *testing.T, logs string, code string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil || m["msg"] != "run" || m["code"] != code {
			continue
		}
		out = append(out, m)
	}
	return out
}

// histogramSum reads the sum of one series of a histogram.
func histogramSum(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	return series(t, reg, name, labels).GetHistogram().GetSampleSum()
}

// TestRunLinesTellEachAttempt: a task and a workflow with `retries: 1`
// that always fail each log one `run` line per attempt, through the dev
// server: the first says it will be retried (status=retrying,
// final=false), the last that it failed for good (status=failed,
// final=true), both with the error, the workflow's with its failed step,
// as the attempt metric and the rows say. The workflow's first attempt
// sleeps 2 s before its step fails, and its duration is the attempt's,
// not that of its last call.
func TestRunLinesTellEachAttempt(t *testing.T) {
	rec := newRecorder(t)
	st, url := pg.NewStore(t, store.Options{})
	tree := t.TempDir()
	deftest.WriteFile(t, filepath.Join(tree, "acme", "defs.yaml"), deftest.Task{Code: "flaky", Trigger: "{event: t/flaky}",
		Config: fmt.Sprintf(`{method: POST, url: "%s/fail/task"}`, rec.URL), Spec: []string{"retries: 1", "retry_delay: 1s"}}.String()+"---\n"+
		fmt.Sprintf(`apiVersion: tasksync/v1
kind: Workflow
metadata: {code: slow}
spec:
  trigger: {event: w/slow}
  retries: 1
  retry_delay: 1s
  steps:
    - id: pause
      sleep: 2s
    - id: record
      api_call: {method: POST, url: "%s/fail/record"}
`, rec.URL))
	applyTree(t, st, tree)
	var logs lockedBuffer
	metrics := prometheus.NewRegistry()
	reg := servedRegistry(t, inngest.Options{AppPrefix: fmt.Sprintf("l%d", time.Now().UnixNano()%1e6), Registerer: metrics,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	serveApplied(t, reg, st, newRunner(t, st, nil, nil), "acme")
	sendEvent(t, "t/flaky", map[string]any{"tenant_id": "acme"})
	sendEvent(t, "w/slow", map[string]any{"tenant_id": "acme"})
	waittest.For(t, "two run lines of each", 60*time.Second, func() bool {
		return len(runLines(t, logs.String(), "flaky")) >= 2 && len(runLines(t, logs.String(), "slow")) >= 2
	})
	for _, code := range []string{"flaky", "slow"} {
		lines := runLines(t, logs.String(), code)
		if len(lines) != 2 {
			t.Errorf("%s: %d run lines, want 2: %v", code, len(lines), lines)
			continue
		}
		for i, l := range lines {
			wantStatus, wantFinal := "retrying", false
			if i == 1 {
				wantStatus, wantFinal = "failed", true
			}
			if l["status"] != wantStatus || l["final"] != wantFinal || l["level"] != "WARN" || !strings.Contains(fmt.Sprint(l["err"]), "500") {
				t.Errorf("%s: run line %d = %v, want status %s, final %v, at WARN, with the error", code, i, l, wantStatus, wantFinal)
			}
			if code == "slow" && l["failed_step"] != "record" {
				t.Errorf("%s: run line %d = %v, want failed_step record", code, i, l)
			}
		}
	}
	conn := storetest.Conn(t, url)
	for _, code := range []string{"flaky", "slow"} {
		rows := attemptRows(t, conn, code)
		if len(rows) != 2 || rows[0].Final || !rows[1].Final {
			t.Errorf("%s: attempt rows %+v, want 2, only the last final", code, rows)
		}
	}
	for _, kind := range []string{"task", "workflow"} {
		if got := counterValue(t, metrics, "tasksync_task_attempts_total", map[string]string{"tenant": "acme", "kind": kind, "status": "retrying"}); got != 1 {
			t.Errorf("attempts{kind=%s,status=retrying} = %v, want 1", kind, got)
		}
	}
	if got := histogramSum(t, metrics, "tasksync_task_run_duration_seconds", map[string]string{"tenant": "acme", "kind": "workflow"}); got < 2 {
		t.Errorf("workflow attempt durations sum to %.2fs, want at least the first attempt's 2 s sleep", got)
	}
}

// TestRunCountersPresentBeforeFirstRun: a tenant's app makes its
// failed-run counters present at 0 before any run ends, so that an alert
// on their increase (examples/monitoring) sees the first failed run; no
// other status is made present (a series for every tenant, read by no
// alert).
func TestRunCountersPresentBeforeFirstRun(t *testing.T) {
	prom := prometheus.NewRegistry()
	reg := newRegistryB(t, prom)
	if err := reg.SetTenant("acme", []reconciler.Definition{def("nightly", reconciler.Trigger{Cron: "0 2 * * *"})}, nopRunner{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"tenant": "acme", "kind": "task", "status": "failed"}
	if m := series(t, prom, "tasksync_task_runs_total", labels); m == nil || m.GetCounter().GetValue() != 0 {
		t.Errorf("tasksync_task_runs_total%v = %v, want present at 0", labels, m)
	}
	if m := series(t, prom, "tasksync_task_runs_total", map[string]string{"tenant": "acme", "kind": "task", "status": "succeeded"}); m != nil {
		t.Errorf("a succeeded-run counter before any run: %v", m)
	}
	if m := series(t, prom, "tasksync_task_runs_total", map[string]string{"tenant": "acme", "kind": "workflow", "status": "failed"}); m != nil {
		t.Errorf("a workflow counter for a tenant without workflows: %v", m)
	}
}
