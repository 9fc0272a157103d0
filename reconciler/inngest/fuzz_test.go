package inngest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/store"
	"github.com/riveredge/tasksync/reconciler/store/storetest"
)

// FuzzRunEventData feeds event data into a task's and a workflow's run,
// through the SDK's handler in-process, with the records in Postgres: no
// input panics anything, every task attempt is recorded as finished and
// every workflow attempt is recorded.
// `go test` runs it over its seeds; `go test -run '^$' -fuzz FuzzRunEventData
// ./reconciler/inngest/` searches further.
func FuzzRunEventData(f *testing.F) {
	for _, seed := range []string{
		`{}`, `null`, `[]`, `"text"`, `1e308`, `{"customer_id": null}`, `{"customer_id": {"a": [1, {"b": null}]}}`,
		`{"customer_id": "C-1", "plan": "pro", "amount": 2000, "to": "a@example.com"}`,
		`{"amount": "2000"}`, `{"amount": -1e308}`, `{"amount": 9223372036854775808}`, `{"customer_id": "a\r\nX: 1\u0000"}`,
		`{"customer_id": "{{ tenant }}", "plan": "${secret:TOKEN}"}`, `{"steps": {"x": 1}, "tenant_id": "globex"}`,
		`{"customer_id": [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}`, `{"1": 2, "": ""}`,
	} {
		f.Add([]byte(seed))
	}
	ctx := context.Background()
	rec := newRecorder(f)
	st, url := pg.NewStore(f, store.Options{})
	tree := f.TempDir()
	deftest.WriteFile(f, filepath.Join(tree, "acme", "defs.yaml"), fmt.Sprintf(`apiVersion: tasksync/v1
kind: ScheduledTask
metadata: {code: task}
spec:
  trigger: {event: fuzz/task}
  type: api_call
  config:
    method: POST
    url: "%[1]s/task/{{ event.data.customer_id }}"
    query: {plan: "{{ event.data.plan }}"}
    headers: {X-Amount: "{{ event.data.amount }}"}
    body: {all: "{{ event.data }}", id: "{{ event.data.customer_id }}", big: "{{ event.data.amount > 1000 }}"}
  retries: 0
---
apiVersion: tasksync/v1
kind: Workflow
metadata: {code: flow}
spec:
  trigger: {event: fuzz/flow}
  retries: 0
  steps:
    - id: check
      if: event.data.amount > 1000 && has(event.data.customer_id)
      api_call: {method: POST, url: "%[1]s/flow", body: {id: "{{ event.data.customer_id }}", data: "{{ event.data }}"}}
    - id: tell
      send_event: {name: fuzz/told, data: {id: "{{ event.data.customer_id }}", checked: "{{ steps.check }}"}}
`, rec.URL))
	v, err := definitions.NewValidator()
	if err != nil {
		f.Fatal(err)
	}
	if res, err := (&reconciler.Reconciler{Tree: v.NewLoader(os.DirFS(tree), definitions.Options{}), Store: st, Workers: 1}).Apply(ctx); err != nil || res.Err() != nil || len(res.Problems()) > 0 {
		f.Fatalf("apply: %v %v %v", err, res.Err(), res.Problems())
	}
	metrics := prometheus.NewRegistry()
	reg := newRegistryB(f, metrics)
	defs, err := st.Definitions(ctx, "acme")
	if err != nil {
		f.Fatal(err)
	}
	if err := reg.SetTenant("acme", defs, newRunner(f, st, nil, nil)); err != nil {
		f.Fatal(err)
	}
	conn := storetest.Conn(f, url)
	var n atomic.Int64

	f.Fuzz(func(t *testing.T, raw []byte) {
		var v any
		if json.Unmarshal(raw, &v) != nil {
			return // an event's data is JSON
		}
		data, ok := v.(map[string]any)
		if !ok {
			data = map[string]any{"customer_id": v}
		}
		data["tenant_id"] = "acme"
		id := fmt.Sprintf("fuzz-%d", n.Add(1))
		for _, call := range []struct{ code, event string }{{"task", "fuzz/task"}, {"flow", "fuzz/flow"}} {
			res := invoke(t, reg, "acme", call.code, call.event, data, id+"-"+call.code, 0)
			if strings.Contains(res.Body.String(), "panic") {
				t.Fatalf("%s with data %s: %s", call.code, raw, res.Body)
			}
		}
		if p := counterValue(t, metrics, "tasksync_panics_total", nil); p != 0 {
			t.Fatalf("tasksync_panics_total = %v after data %s", p, raw)
		}
		var status string
		if err := conn.QueryRow(ctx, `select status from root_task_runs where inngest_run_id = $1`, id+"-task").Scan(&status); err != nil || status == string(reconciler.RunRunning) {
			t.Fatalf("the task's attempt with data %s: %q %v, want a finished record", raw, status, err)
		}
		if err := conn.QueryRow(ctx, `select status from root_task_runs where inngest_run_id = $1`, id+"-flow").Scan(&status); err != nil {
			t.Fatalf("the workflow's attempt with data %s: %v, want a record", raw, err)
		}
	})
}
