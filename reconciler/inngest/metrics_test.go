package inngest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/store"
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
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
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
