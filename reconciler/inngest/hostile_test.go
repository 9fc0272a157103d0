package inngest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/executor"
	"github.com/riveredge/tasksync/reconciler/inngest"
	"github.com/riveredge/tasksync/reconciler/store"
	"github.com/riveredge/tasksync/reconciler/store/storetest"
)

// sampleTree copies the sample tree (tasks.d: acme, globex) and the
// examples (as tenant "examples") into a tree of its own.
func sampleTree(t *testing.T) string {
	t.Helper()
	tree := t.TempDir()
	for src, dst := range map[string]string{"../../tasks.d": "", "../../examples": "examples"} {
		if err := os.CopyFS(filepath.Join(tree, dst), os.DirFS(src)); err != nil && !os.IsExist(err) {
			t.Fatalf("copy %s: %v", src, err)
		}
	}
	// examples/ also holds monitoring and deployment files, which are no
	// definitions.
	for _, dir := range []string{"monitoring", "deploy"} {
		if err := os.RemoveAll(filepath.Join(tree, "examples", dir)); err != nil {
			t.Fatal(err)
		}
	}
	return tree
}

// closedPort returns a loopback UDP address nothing listens on: a DNS
// server there answers every question with "connection refused", so
// that no test leaves the loopback interface.
func closedPort(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	return addr
}

// hostileRunner runs every action for real as far as it goes without
// leaving the machine: api_call resolves names through a DNS server that
// refuses (and reaches loopback only), python_script renders its args and
// env and then finds no interpreter, and every secret is set and granted.
func hostileRunner(t *testing.T, st *store.Store) *reconciler.TaskRunner {
	t.Helper()
	getenv := func(k string) string {
		switch {
		case strings.HasPrefix(k, executor.SecretEnvPrefix):
			return "s3cr3t-" + strings.ToLower(strings.TrimPrefix(k, executor.SecretEnvPrefix))
		case strings.HasPrefix(k, executor.GrantEnvPrefix):
			return "acme,globex,examples"
		}
		return ""
	}
	return loopbackRunner(t, st, &executor.Sandbox{Python: filepath.Join(t.TempDir(), "no-python")}, closedPort(t), getenv)
}

// eventDataFields are the event.data fields a definition's templates and
// expressions read.
var eventDataFields = regexp.MustCompile(`event\.data\.([A-Za-z_][A-Za-z0-9_]*)`)

// hostileData returns, for the fields a definition reads, event data that
// lacks them, holds null, holds every wrong type, and holds huge values.
func hostileData(tenant string, fields []string) map[string]map[string]any {
	huge := strings.Repeat("x", 1<<20)
	long := make([]any, 100_000)
	for i := range long {
		long[i] = i
	}
	deep := any("bottom")
	for range 200 {
		deep = map[string]any{"d": []any{deep}}
	}
	each := func(v any) map[string]any {
		d := map[string]any{"tenant_id": tenant}
		for _, f := range fields {
			d[f] = v
		}
		return d
	}
	return map[string]map[string]any{
		"missing":      {"tenant_id": tenant},
		"null":         each(nil),
		"object":       each(map[string]any{"a": 1}),
		"list":         each([]any{1, "two", nil}),
		"number":       each(1e308),
		"negative":     each(-1),
		"bool":         each(true),
		"string":       each("not-a-number"),
		"control":      each("a\r\nInjected: 1\x00"),
		"huge string":  each(huge),
		"long list":    each(long),
		"deep":         each(deep),
		"no tenant":    {},
		"other tenant": {"tenant_id": "someone-else"},
	}
}

// invoke calls a function of the registry's app in-process, as Inngest
// calls it, and returns the response. A panic out of the handler fails
// the test with its stack; one the SDK recovered shows in the response.
func invoke(t testing.TB, reg *inngest.Registry, tenant, code, event string, data map[string]any, runID string, attempt int) (res *httptest.ResponseRecorder) {
	t.Helper()
	ev := map[string]any{"name": event, "data": data, "ts": 1700000000000}
	body, err := json.Marshal(map[string]any{"event": ev, "events": []any{ev}, "steps": map[string]any{},
		"ctx": map[string]any{"run_id": runID, "attempt": attempt, "step_id": "step", "fn_id": "00000000-0000-0000-0000-000000000000"}})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, inngest.ServePath+tenant+"?fnId="+reg.FunctionID(tenant, code)+"&stepId=step", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	res = httptest.NewRecorder()
	defer func() {
		if p := recover(); p != nil {
			t.Errorf("%s/%s: the handler panicked: %v\n%s", tenant, code, p, debug.Stack())
		}
	}()
	reg.ServeHTTP(res, req)
	return res
}

// TestHostileEventsNeverPanic sends, to every sample (tasks.d) and
// example definition, through the SDK's handler in-process, events whose
// data lacks the fields the definition reads, holds null, wrong types or
// huge values: no invocation panics, every attempt of a task is
// recorded as finished, and every workflow attempt is recorded (failed
// and final where the call ended it with a final error).
func TestHostileEventsNeverPanic(t *testing.T) {
	ctx := context.Background()
	st, url := pg.NewStore(t, store.Options{})
	tree := sampleTree(t)
	v, err := definitions.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	loader := v.NewLoader(os.DirFS(tree), definitions.Options{})
	res, err := (&reconciler.Reconciler{Tree: loader, Store: st, Workers: 2}).Apply(ctx)
	if err != nil || res.Err() != nil {
		t.Fatalf("apply the samples: %v %v", err, res.Err())
	}
	metrics := prometheus.NewRegistry()
	reg := newRegistryB(t, metrics)
	runner := hostileRunner(t, st)
	type target struct {
		tenant string
		def    reconciler.Definition
	}
	var targets []target
	for _, tenant := range []string{"acme", "globex", "examples"} {
		defs, err := st.Definitions(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		if len(defs) == 0 {
			t.Fatalf("tenant %s has no applied definitions", tenant)
		}
		if err := reg.SetTenant(tenant, defs, runner); err != nil {
			t.Fatal(err)
		}
		for _, d := range defs {
			if d.Spec.Active {
				targets = append(targets, target{tenant, d})
			}
		}
	}
	taskRuns := map[string]bool{}
	flowRuns := map[string]bool{} // run id: the call ended it with a final error
	n := 0
	for _, tg := range targets {
		spec, _ := json.Marshal(tg.def.Spec)
		var fields []string
		for _, m := range eventDataFields.FindAllStringSubmatch(string(spec), -1) {
			if !slices.Contains(fields, m[1]) {
				fields = append(fields, m[1])
			}
		}
		event := tg.def.Spec.Trigger.Event
		if event == "" {
			event = "inngest/scheduled.timer"
		}
		for name, data := range hostileData(tg.tenant, fields) {
			n++
			runID := fmt.Sprintf("hostile-%04d", n)
			r := invoke(t, reg, tg.tenant, tg.def.Metadata.Code, event, data, runID, 0)
			if r.Code == http.StatusNotFound {
				t.Fatalf("%s/%s: the function is not served: %s", tg.tenant, tg.def.Metadata.Code, r.Body)
			}
			if tg.def.Kind == reconciler.KindScheduledTask && tg.def.Spec.Trigger.Type() != reconciler.TriggerDate {
				taskRuns[runID] = true
			}
			if tg.def.Kind == reconciler.KindWorkflow {
				// One call runs a workflow up to its first step action,
				// sleep or wait, so its attempt may stay running for the
				// next call; one that failed for good says so.
				flowRuns[runID] = strings.Contains(r.Body.String(), "(not retried:")
			}
			if strings.Contains(r.Body.String(), "panic") {
				t.Errorf("%s/%s %s: the function panicked: %s", tg.tenant, tg.def.Metadata.Code, name, r.Body)
			}
			if strings.Contains(r.Body.String(), "(not retried:") && r.Code >= 500 && r.Header().Get("X-Inngest-No-Retry") != "true" {
				t.Errorf("%s/%s %s: a final error without the no-retry header: %s", tg.tenant, tg.def.Metadata.Code, name, r.Body)
			}
			t.Logf("%s/%s %s: %d %.200s", tg.tenant, tg.def.Metadata.Code, name, r.Code, r.Body)
		}
	}
	if got := counterValue(t, metrics, "tasksync_panics_total", nil); got != 0 {
		t.Errorf("tasksync_panics_total = %v, want 0", got)
	}

	conn := storetest.Conn(t, url)
	rows, err := conn.Query(ctx, `select inngest_run_id, status || case when final then ' final' else '' end from root_task_runs where inngest_run_id like 'hostile-%'`)
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]string{}
	for rows.Next() {
		var id, status string
		if err := rows.Scan(&id, &status); err != nil {
			t.Fatal(err)
		}
		recorded[id] = status
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for id := range taskRuns {
		if s, ok := recorded[id]; !ok || s == string(reconciler.RunRunning) {
			t.Errorf("task run %s: recorded %q (present %v), want a finished attempt", id, s, ok)
		}
	}
	for id, failed := range flowRuns {
		s, ok := recorded[id]
		switch {
		case !ok:
			t.Errorf("workflow run %s: no attempt recorded", id)
		case failed && s != "failed final":
			t.Errorf("workflow run %s: recorded %q after a final error, want failed final", id, s)
		}
	}
	finalFlows := 0
	for _, failed := range flowRuns {
		if failed {
			finalFlows++
		}
	}
	t.Logf("%d hostile invocations over %d definitions: %d task attempts, %d workflow attempts (%d failed for good)",
		n, len(targets), len(taskRuns), len(flowRuns), finalFlows)
}
