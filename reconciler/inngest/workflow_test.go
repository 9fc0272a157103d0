package inngest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/store"
	"github.com/riveredge/tasksync/reconciler/store/storetest"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// TestApprovalWorkflow runs the approval flow end to end: below the
// threshold nothing starts; above it the manager is notified with the
// templated text; another tenant's decision with the same id does not
// resume the run; the tenant's own does, and its send_event reaches the
// same tenant's notification task only; without a decision the timeout
// branch runs.
func TestApprovalWorkflow(t *testing.T) {
	ctx := context.Background()
	rec := newRecorder(t)
	st, _ := pg.NewStore(t, store.Options{})
	tree := t.TempDir()
	deftest.WriteFile(t, filepath.Join(tree, "acme", "flow.yaml"), fmt.Sprintf(`apiVersion: tasksync/v1
kind: Workflow
metadata: {code: approval}
spec:
  trigger: {event: expense/submitted, if: "event.data.amount > 1000"}
  retries: 0
  steps:
    - id: notify
      api_call: {method: POST, url: "%[1]s/notify", body: {text: "Approve {{ event.data.id }} of {{ event.data.amount }}?"}}
    - id: decision
      wait_for_event: {event: expense/decided, match: data.expense_id, timeout: 4s}
    - id: approved
      if: steps.decision != null && steps.decision.data.approved == true
      send_event: {name: message/send, data: {text: "approved {{ event.data.id }}"}}
    - id: record
      api_call: {method: POST, url: "%[1]s/record/{{ event.data.id }}", body: {outcome: "{{ steps.decision == null ? 'timeout' : 'decided' }}", notified: "{{ steps.notify.status }}"}}
---
apiVersion: tasksync/v1
kind: ScheduledTask
metadata: {code: deliver}
spec:
  trigger: {event: message/send}
  type: api_call
  config: {method: POST, url: "%[1]s/deliver/acme", body: {text: "{{ event.data.text }}"}}
  retries: 0
`, rec.URL))
	deftest.WriteFile(t, filepath.Join(tree, "globex", "deliver.yaml"), deftest.Task{Code: "deliver", Trigger: "{event: message/send}",
		Config: fmt.Sprintf(`{method: POST, url: "%s/deliver/globex", body: {text: "{{ event.data.text }}"}}`, rec.URL), Spec: []string{"retries: 0"}}.String())
	applyTree(t, st, tree)
	runner := newRunner(t, st, nil, nil)
	reg := newRegistry(t)
	for _, tenant := range []string{"acme", "globex"} {
		defs, err := st.Definitions(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.SetTenant(tenant, defs, runner); err != nil {
			t.Fatal(err)
		}
		syncAndVerify(t, reg, tenant)
	}

	sendEvent(t, "expense/submitted", map[string]any{"tenant_id": "acme", "id": "small", "expense_id": "small", "amount": 500})
	e1 := sendEvent(t, "expense/submitted", map[string]any{"tenant_id": "acme", "id": "e1", "expense_id": "e1", "amount": 2000})
	waittest.For(t, "the manager to be notified", 30*time.Second, func() bool { return rec.count("/notify") == 1 })
	rec.mu.Lock()
	notify := ""
	for _, h := range rec.hits {
		if strings.HasPrefix(h, "/notify") {
			notify = h
		}
	}
	rec.mu.Unlock()
	if notify != `/notify {"text":"Approve e1 of 2000?"}` {
		t.Errorf("notification = %s", notify)
	}

	// Another tenant's decision for the same expense id resumes nothing.
	waittest.For(t, "the run to wait for the decision", 30*time.Second, func() bool { return waitingFor(t, e1) == "expense/decided" })
	sendEvent(t, "expense/decided", map[string]any{"tenant_id": "globex", "expense_id": "e1", "approved": true})
	waittest.Never(t, "globex's decision resuming acme's run", time.Second, func() bool {
		return rec.count("/record") != 0 || rec.count("/deliver") != 0
	})
	if got := waitingFor(t, e1); got != "expense/decided" {
		t.Fatalf("after globex's decision acme's run waits for %q, want expense/decided", got)
	}
	sendUntil(t, "expense/decided", map[string]any{"tenant_id": "acme", "expense_id": "e1", "approved": true},
		"the decided run to record", 30*time.Second, func() bool { return rec.count("/record/e1") >= 1 })
	if n := rec.count("/record/e1"); n != 1 {
		t.Errorf("the decided run recorded %d times, want once", n)
	}
	waittest.For(t, "the approval to be delivered", 30*time.Second, func() bool { return rec.count("/deliver/acme") == 1 })
	if rec.count("/deliver/globex") != 0 {
		t.Errorf("acme's send_event reached globex's task")
	}
	rec.mu.Lock()
	for _, h := range rec.hits {
		if strings.HasPrefix(h, "/record/e1") && h != `/record/e1 {"notified":200,"outcome":"decided"}` {
			t.Errorf("record = %s", h)
		}
		if strings.HasPrefix(h, "/deliver/acme") && h != `/deliver/acme {"text":"approved e1"}` {
			t.Errorf("delivery = %s", h)
		}
	}
	rec.mu.Unlock()

	// No decision: the timeout branch runs and nothing is sent.
	sendEvent(t, "expense/submitted", map[string]any{"tenant_id": "acme", "id": "e2", "expense_id": "e2", "amount": 5000})
	waittest.For(t, "the timed-out run to record", 30*time.Second, func() bool { return rec.count("/record/e2") == 1 })
	rec.mu.Lock()
	for _, h := range rec.hits {
		if strings.HasPrefix(h, "/record/e2") && h != `/record/e2 {"notified":200,"outcome":"timeout"}` {
			t.Errorf("record = %s", h)
		}
	}
	rec.mu.Unlock()
	if rec.count("/notify") != 2 || rec.count("/deliver") != 1 {
		t.Errorf("after the timeout: %d notifications, %d deliveries; the small expense must start nothing", rec.count("/notify"), rec.count("/deliver"))
	}

	// The status API's lookups: the tenant's workflow runs by code, and
	// one run by its id with its steps.
	var runs []reconciler.RunRecord
	waittest.For(t, "both workflow runs to be recorded as succeeded", 30*time.Second, func() bool {
		var err error
		runs, err = st.TenantRuns(ctx, "acme", reconciler.RunFilter{Code: "approval", Status: reconciler.RunSucceeded, Limit: 10})
		return err == nil && len(runs) == 2
	})
	attempts, err := st.Run(ctx, runs[0].InngestRunID, "acme")
	if err != nil || len(attempts) != 1 || attempts[0].Code != "approval" {
		t.Fatalf("Run(%s) = %+v, %v", runs[0].InngestRunID, attempts, err)
	}
	var steps []reconciler.StepOutcome
	if err := json.Unmarshal(attempts[0].Steps, &steps); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range steps {
		ids = append(ids, s.ID+":"+s.Status)
	}
	if got := strings.Join(ids, " "); got != "notify:completed decision:timed_out approved:skipped record:completed" {
		t.Errorf("the newest run's steps = %s, want the timed-out run's", got)
	}
}

// TestWorkflowResumes: a step that fails twice and then succeeds is
// retried without repeating the steps before it; a run waiting for an
// event survives tasksync being replaced (a new process, a new app
// handler) and completes after the decision; every attempt is recorded
// with its steps' outcomes.
func TestWorkflowResumes(t *testing.T) {
	ctx := context.Background()
	rec := newRecorder(t)
	st, url := pg.NewStore(t, store.Options{})
	tree := t.TempDir()
	deftest.WriteFile(t, filepath.Join(tree, "acme", "flow.yaml"), fmt.Sprintf(`apiVersion: tasksync/v1
kind: Workflow
metadata: {code: flaky}
spec:
  trigger: {event: job/start}
  retries: 3
  retry_delay: 1s
  steps:
    - id: first
      api_call: {method: POST, url: "%[1]s/first"}
    - id: second
      api_call: {method: POST, url: "%[1]s/fail/second"}
    - id: wait
      wait_for_event: {event: job/continue, match: data.job, timeout: 60s}
    - id: last
      api_call: {method: POST, url: "%[1]s/last", body: {got: "{{ steps.wait.data.note }}"}}
`, rec.URL))
	applyTree(t, st, tree)
	// /fail/second fails twice, then succeeds.
	rec.failFirst("/fail/second", 2)
	reg := newRegistry(t)
	defs := serveApplied(t, reg, st, newRunner(t, st, nil, nil), "acme")
	sendEvent(t, "job/start", map[string]any{"tenant_id": "acme", "job": "j1"})
	waittest.For(t, "the flaky step to succeed", 30*time.Second, func() bool { return rec.count("/fail/second") == 3 })
	if n := rec.count("/first"); n != 1 {
		t.Errorf("the first step ran %d times, want once: retries must not repeat finished steps", n)
	}

	// tasksync is replaced while the run waits: a new app handler for the
	// tenant, as a restarted process would build.
	if err := reg.SetTenant("acme", defs, newRunner(t, st, nil, nil)); err != nil {
		t.Fatal(err)
	}
	sendUntil(t, "job/continue", map[string]any{"tenant_id": "acme", "job": "j1", "note": "go on"},
		"the run to complete after the decision", 30*time.Second, func() bool { return rec.count("/last") >= 1 })
	if n := rec.count("/last"); n != 1 {
		t.Errorf("the last step ran %d times, want once", n)
	}
	if n := rec.count("/first"); n != 1 {
		t.Errorf("the first step ran %d times after the restart", n)
	}

	conn := storetest.Conn(t, url)
	var attempts int
	var steps, status string
	waittest.For(t, "the run's record", 10*time.Second, func() bool {
		err := conn.QueryRow(ctx, `select count(*), max(status) filter (where status = 'succeeded'), coalesce(max(steps::text) filter (where status = 'succeeded'), '')
			from root_task_runs`).Scan(&attempts, &status, &steps)
		return err == nil && status == "succeeded"
	})
	if attempts != 3 || strings.Count(steps, `"status": "completed"`) != 4 || !strings.Contains(steps, `"id": "last"`) || !strings.Contains(steps, `"note": "go on"`) {
		t.Errorf("records: %d attempts, succeeded steps %s", attempts, steps)
	}
}

// waitingFor returns the event that the run the event started waits for,
// as the dev server's trace of the run shows it: "" until the run has
// reached its wait_for_event step.
func waitingFor(t *testing.T, event string) string {
	t.Helper()
	var runs struct {
		Event struct{ FunctionRuns []struct{ ID string } }
	}
	devQuery(t, `query($id: ID!) { event(query: {workspaceId: "local", eventId: $id}) { functionRuns { id } } }`, event, &runs)
	for _, r := range runs.Event.FunctionRuns {
		type span struct {
			StepOp, Status string
			StepInfo       struct{ EventName string }
		}
		var trace struct {
			RunTrace struct {
				ChildrenSpans []struct {
					span
					ChildrenSpans []span
				}
			}
		}
		const fields = `stepOp status stepInfo { ... on WaitForEventStepInfo { eventName } }`
		devQuery(t, `query($id: String!) { runTrace(runID: $id) { childrenSpans { `+fields+` childrenSpans { `+fields+` } } } }`, r.ID, &trace)
		for _, c := range trace.RunTrace.ChildrenSpans {
			for _, sp := range append([]span{c.span}, c.ChildrenSpans...) {
				if sp.StepOp == "WAIT_FOR_EVENT" && sp.Status == "WAITING" {
					return sp.StepInfo.EventName
				}
			}
		}
	}
	return ""
}

// devQuery runs a GraphQL query with one variable, id, against the dev
// server and decodes its data into out.
func devQuery(t *testing.T, query, id string, out any) {
	t.Helper()
	q, _ := json.Marshal(map[string]any{"query": query, "variables": map[string]string{"id": id}})
	res, err := http.Post(dev.URL+"/v0/gql", "application/json", bytes.NewReader(q))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Data   json.RawMessage
		Errors []struct{ Message string }
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || len(body.Errors) > 0 {
		t.Fatalf("dev server query %s: %v %v", query, err, body.Errors)
	}
	if err := json.Unmarshal(body.Data, out); err != nil {
		t.Fatalf("dev server query %s: %v", query, err)
	}
}

// attemptRow is one root_task_runs row as a test reads it.
type attemptRow struct {
	Attempt    int
	Status     string
	Finished   bool
	Duration   bool
	Error      string
	FailedStep string
	Final      bool
	Steps      string
}

// attemptRows reads a definition's attempt rows, oldest first.
func attemptRows(t *testing.T, conn *pgx.Conn, code string) []attemptRow {
	t.Helper()
	rows, err := conn.Query(context.Background(), `
		select r.attempt, r.status, r.finished_at is not null, r.duration_ms is not null, coalesce(r.error, ''),
			coalesce(r.failed_step, ''), r.final, coalesce(r.steps::text, '')
		from root_task_runs r join root_scheduled_tasks d on d.id = r.task_id where d.code = $1 order by r.id`, code)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[attemptRow])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestWorkflowAttemptsEnd: a workflow whose third step always fails, with
// a second step that fails once: every attempt row ends failed or
// succeeded with its finish, duration, error and failed step; only the
// last is final; step outputs are JSON values; the definition's last run
// is the last attempt, and nothing is left running.
func TestWorkflowAttemptsEnd(t *testing.T) {
	ctx := context.Background()
	rec := newRecorder(t)
	st, url := pg.NewStore(t, store.Options{})
	tree := t.TempDir()
	deftest.WriteFile(t, filepath.Join(tree, "acme", "flow.yaml"), fmt.Sprintf(`apiVersion: tasksync/v1
kind: Workflow
metadata: {code: ends}
spec:
  trigger: {event: ends/start}
  retries: 2
  retry_delay: 1s
  steps:
    - id: first
      api_call: {method: POST, url: "%[1]s/first"}
    - id: second
      api_call: {method: POST, url: "%[1]s/fail/second"}
    - id: record
      api_call: {method: POST, url: "%[1]s/fail/record"}
`, rec.URL))
	applyTree(t, st, tree)
	rec.failFirst("/fail/second", 1)
	serveApplied(t, newRegistry(t), st, newRunner(t, st, nil, nil), "acme")
	conn := storetest.Conn(t, url)
	sendEvent(t, "ends/start", map[string]any{"tenant_id": "acme"})
	waittest.For(t, "the record step's last try", 60*time.Second, func() bool { return rec.count("/fail/record") == 3 })
	var rows []attemptRow
	waittest.For(t, "a final attempt", 30*time.Second, func() bool {
		rows = attemptRows(t, conn, "ends")
		return len(rows) > 0 && rows[len(rows)-1].Final
	})
	// Attempt 0 fails at second; 1 (second's retry) fails at record; 2
	// and 3 are record's retries.
	wantSteps := []string{"second", "record", "record", "record"}
	if len(rows) != len(wantSteps) {
		t.Fatalf("attempt rows = %+v, want %d", rows, len(wantSteps))
	}
	for i, r := range rows {
		if r.Attempt != i || r.Status != "failed" || !r.Finished || !r.Duration || r.Error == "" || r.FailedStep != wantSteps[i] || r.Final != (i == len(rows)-1) {
			t.Errorf("attempt row %d = %+v, want attempt %d failed at %s with finish, duration and error, final %v", i, r, i, wantSteps[i], i == len(rows)-1)
		}
	}
	if last := rows[len(rows)-1].Steps; !strings.Contains(last, `"id": "first"`) || !strings.Contains(last, `"output": {"body"`) || !strings.Contains(last, `"status": "failed"`) {
		t.Errorf("the last attempt's steps = %s, want first's output as a JSON value and record failed", last)
	}
	var status string
	var running bool
	if err := conn.QueryRow(ctx, `select coalesce(last_run_status, ''), is_running from root_scheduled_tasks where code = 'ends'`).Scan(&status, &running); err != nil {
		t.Fatal(err)
	}
	if status != "failed" || running {
		t.Errorf("definition: last_run_status %q, is_running %v; want failed, not running", status, running)
	}
	// A later invocation of the run (none is expected) would not reopen it.
	waittest.Never(t, "another attempt row", 2*time.Second, func() bool { return len(attemptRows(t, conn, "ends")) != len(wantSteps) })
}

// TestRetiredWorkflowStopsWaitingRun: a run waiting for an event when its
// workflow is retired does not go on when the event comes (its call is
// refused as stale), and its attempt, `running` while it waited, is
// closed at once as a final failure that says the definition was
// retired, not left for the leader to close as abandoned much later.
func TestRetiredWorkflowStopsWaitingRun(t *testing.T) {
	ctx := context.Background()
	rec := newRecorder(t)
	st, url := pg.NewStore(t, store.Options{})
	tree := t.TempDir()
	deftest.WriteFile(t, filepath.Join(tree, "acme", "keep.yaml"), deftest.Task{Code: "keep", Trigger: "{event: keep/x}"}.String())
	deftest.WriteFile(t, filepath.Join(tree, "acme", "flow.yaml"), fmt.Sprintf(`apiVersion: tasksync/v1
kind: Workflow
metadata: {code: waits}
spec:
  trigger: {event: waits/start}
  steps:
    - id: ask
      api_call: {method: POST, url: "%[1]s/ask"}
    - id: wait
      wait_for_event: {event: waits/decided, match: data.job, timeout: 1h}
    - id: after
      api_call: {method: POST, url: "%[1]s/after"}
`, rec.URL))
	applyTree(t, st, tree)
	serveApplied(t, newRegistry(t), st, newRunner(t, st, nil, nil), "acme")
	conn := storetest.Conn(t, url)
	sendEvent(t, "waits/start", map[string]any{"tenant_id": "acme", "job": "j1"})
	waittest.For(t, "the run to wait", 30*time.Second, func() bool {
		rows := attemptRows(t, conn, "waits")
		return len(rows) == 1 && rows[0].Status == "running" && strings.Contains(rows[0].Steps, `"id": "ask"`)
	})

	// Retired in Postgres; this replica has yet to reload, so the
	// decision's call reaches the run, which finds it retired.
	if err := os.Remove(filepath.Join(tree, "acme", "flow.yaml")); err != nil {
		t.Fatal(err)
	}
	applyTree(t, st, tree)
	var rows []attemptRow
	sendUntil(t, "waits/decided", map[string]any{"tenant_id": "acme", "job": "j1"}, "the waiting attempt to be closed", 30*time.Second, func() bool {
		rows = attemptRows(t, conn, "waits")
		return len(rows) == 1 && rows[0].Status != "running"
	})
	if r := rows[0]; r.Status != "failed" || !r.Final || !r.Finished || r.Error != reconciler.ErrRetired.Error() {
		t.Errorf("the waiting attempt = %+v, want failed, final, finished, with %q", r, reconciler.ErrRetired)
	}
	if n := rec.count("/after"); n != 0 {
		t.Errorf("the step after the wait ran %d times after the workflow was retired", n)
	}
	var running bool
	if err := conn.QueryRow(ctx, `select is_running from root_scheduled_tasks where code = 'waits'`).Scan(&running); err != nil || running {
		t.Errorf("the retired workflow is_running = %v (%v), want false", running, err)
	}
}
