package inngest_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/inngest"
	"github.com/riveredge/tasksync/reconciler/store"
	"github.com/riveredge/tasksync/reconciler/store/storetest"
)

// lockedBuffer is a log sink safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// panickingRunner panics in every run, as a bug in a runner would.
type panickingRunner struct{ nopRunner }

func (panickingRunner) Run(context.Context, string, reconciler.Definition, reconciler.RunInput) (any, error) {
	var m map[string]int
	m["boom"]++ // a nil map: panics
	return nil, nil
}

// panickingActions panic in every action.
type panickingActions struct{ reconciler.Actions }

func (panickingActions) APICall(context.Context, string, reconciler.APICall, map[string]any) (any, error) {
	panic("action bug")
}

// TestPanicsAreRecoveredLoggedAndCounted: a panic in the daemon's handler
// chain, in a function's runner (the SDK recovers it) and in a run's
// action (the runner recovers it, and the attempt is recorded as failed)
// is logged with its tenant, function and run, and counted in
// tasksync_panics_total.
func TestPanicsAreRecoveredLoggedAndCounted(t *testing.T) {
	ctx := context.Background()
	st, url := pg.NewStore(t, store.Options{})
	tree := t.TempDir()
	deftest.WriteFile(t, filepath.Join(tree, "acme", "a.yaml"), deftest.Task{Code: "buggy", Trigger: "{event: app/bug}", Spec: []string{"retries: 0"}}.String())
	v, err := definitions.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	if res, err := (&reconciler.Reconciler{Tree: v.NewLoader(os.DirFS(tree), definitions.Options{}), Store: st, Workers: 1}).Apply(ctx); err != nil || res.Err() != nil {
		t.Fatalf("apply: %v %v", err, res.Err())
	}
	defs, err := st.Definitions(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	metrics := prometheus.NewRegistry()
	reg, err := inngest.New(inngest.Options{ServeOrigin: "http://127.0.0.1:1", DevURL: dev.URL, Registerer: metrics,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	panics := func() float64 { return counterValue(t, metrics, "tasksync_panics_total", nil) }

	// The handler chain.
	h := reg.Recover(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("handler bug") }))
	res := httptest.NewRecorder()
	h.ServeHTTP(res, httptest.NewRequest(http.MethodPost, inngest.ServePath+"acme?fnId=some-fn", nil))
	if res.Code != http.StatusInternalServerError || panics() != 1 || !strings.Contains(logs.String(), `"tenant":"acme","function":"some-fn","panic":"handler bug"`) {
		t.Errorf("handler panic: status %d, tasksync_panics_total %v, log %s", res.Code, panics(), logs.String())
	}

	// The runner, under the SDK.
	if err := reg.SetTenant("acme", defs, panickingRunner{}); err != nil {
		t.Fatal(err)
	}
	invoke(t, reg, "acme", "buggy", "app/bug", map[string]any{"tenant_id": "acme"}, "run-runner", 0)
	if panics() != 2 || !strings.Contains(logs.String(), `"run_id":"run-runner"`) {
		t.Errorf("runner panic: tasksync_panics_total %v, log %s", panics(), logs.String())
	}

	// An action, under the task runner: the attempt is recorded.
	runner := newRunner(t, st, nil, nil)
	runner.Actions = panickingActions{runner.Actions}
	if err := reg.SetTenant("acme", defs, runner); err != nil {
		t.Fatal(err)
	}
	r := invoke(t, reg, "acme", "buggy", "app/bug", map[string]any{"tenant_id": "acme"}, "run-action", 0)
	if panics() != 3 || !strings.Contains(logs.String(), `"run_id":"run-action"`) || !strings.Contains(r.Body.String(), "action panicked") {
		t.Errorf("action panic: tasksync_panics_total %v, response %s, log %s", panics(), r.Body, logs.String())
	}
	conn := storetest.Conn(t, url)
	var status, errText string
	if err := conn.QueryRow(ctx, `select status, coalesce(error, '') from root_task_runs where inngest_run_id = 'run-action'`).Scan(&status, &errText); err != nil ||
		status != "failed" || !strings.Contains(errText, "action bug") {
		t.Errorf("the action's attempt: %s %q %v, want failed with the panic", status, errText, err)
	}
}
