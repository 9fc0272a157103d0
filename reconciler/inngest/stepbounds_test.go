package inngest_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/store"
	"github.com/riveredge/tasksync/reconciler/store/storetest"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// TestSleepUntilOutOfRange: a sleep_until from the event's data far in the
// past continues at once (and does not jam the function: a later run of it
// still runs); one more than Inngest's longest sleep ahead fails the run
// at once, final, its row failed at that step, never left running with a
// deadline in year 10000.
func TestSleepUntilOutOfRange(t *testing.T) {
	ctx := context.Background()
	rec := newRecorder(t)
	st, url := pg.NewStore(t, store.Options{})
	tree := t.TempDir()
	deftest.WriteFile(t, filepath.Join(tree, "acme", "flow.yaml"), fmt.Sprintf(`apiVersion: tasksync/v1
kind: Workflow
metadata: {code: sleeper}
spec:
  trigger: {event: sleeper/start}
  retries: 2
  steps:
    - id: nap
      sleep_until: event.data.until
    - id: after
      api_call: {method: POST, url: "%s/after"}
`, rec.URL))
	applyTree(t, st, tree)
	serveApplied(t, newRegistry(t), st, newRunner(t, st, nil, nil), "acme")
	conn := storetest.Conn(t, url)

	sendEvent(t, "sleeper/start", map[string]any{"tenant_id": "acme", "until": "1500-01-01T00:00:00Z"})
	waittest.For(t, "the step after a past sleep_until", 30*time.Second, func() bool { return rec.count("/after") == 1 })
	sendEvent(t, "sleeper/start", map[string]any{"tenant_id": "acme", "until": "1500-01-01T00:00:00Z"})
	waittest.For(t, "a later run of the same function", 30*time.Second, func() bool { return rec.count("/after") == 2 })
	// Both runs' rows are final before the next run is counted: an
	// attempt's row may be written after its last call.
	waittest.For(t, "both runs recorded as ended", 30*time.Second, func() bool {
		final := 0
		for _, r := range attemptRows(t, conn, "sleeper") {
			if r.Final {
				final++
			}
		}
		return final == 2
	})

	for _, until := range []string{"9999-12-31T23:59:59Z", time.Now().Add(400 * 24 * time.Hour).UTC().Format(time.RFC3339)} {
		before := len(attemptRows(t, conn, "sleeper"))
		sendEvent(t, "sleeper/start", map[string]any{"tenant_id": "acme", "until": until})
		var rows []attemptRow
		waittest.For(t, "a final attempt for "+until, 30*time.Second, func() bool {
			rows = attemptRows(t, conn, "sleeper")
			return len(rows) > before && rows[len(rows)-1].Final
		})
		last := rows[len(rows)-1]
		if last.Status != "failed" || last.FailedStep != "nap" || !strings.Contains(last.Error, until[:10]) || !last.Finished {
			t.Errorf("until %s: attempt row %+v, want failed at nap, final, naming the value", until, last)
		}
		var far int
		if err := conn.QueryRow(ctx, `select count(*) from root_task_runs where deadline_at > now() + interval '2 years'`).Scan(&far); err != nil {
			t.Fatal(err)
		}
		if far != 0 {
			t.Errorf("until %s: %d attempt rows have a deadline years ahead", until, far)
		}
	}
	waittest.Never(t, "an attempt left running", 2*time.Second, func() bool {
		for _, r := range attemptRows(t, conn, "sleeper") {
			if r.Status == "running" {
				return true
			}
		}
		return false
	})
	if n := rec.count("/after"); n != 2 {
		t.Errorf("after ran %d times, want 2", n)
	}
}

// TestSendEventFailureIsRecorded: a send_event whose data cannot be sent
// (a rendered +Inf) ends its attempt failed, final, at that step, and is
// counted.
func TestSendEventFailureIsRecorded(t *testing.T) {
	st, url := pg.NewStore(t, store.Options{})
	tree := t.TempDir()
	deftest.WriteFile(t, filepath.Join(tree, "acme", "flow.yaml"), `apiVersion: tasksync/v1
kind: Workflow
metadata: {code: sender}
spec:
  trigger: {event: sender/start}
  retries: 1
  steps:
    - id: tell
      send_event:
        name: sender/told
        data: {x: '{{ double(event.data.v) }}'}
`)
	applyTree(t, st, tree)
	serveApplied(t, newRegistry(t), st, newRunner(t, st, nil, nil), "acme")
	conn := storetest.Conn(t, url)
	sendEvent(t, "sender/start", map[string]any{"tenant_id": "acme", "v": "inf"})
	var rows []attemptRow
	waittest.For(t, "a final attempt", 30*time.Second, func() bool {
		rows = attemptRows(t, conn, "sender")
		return len(rows) > 0 && rows[len(rows)-1].Final
	})
	if len(rows) != 1 {
		t.Errorf("attempt rows = %+v, want one (the failure is final)", rows)
	}
	last := rows[len(rows)-1]
	if last.Status != "failed" || last.FailedStep != "tell" || !last.Finished || last.Error == "" {
		t.Errorf("attempt row %+v, want failed at tell, finished, with its error", last)
	}
}

// TestForgedOneShotFireRefused: a tenant posts the due event of its own
// one-shot an hour early (its code and hash are in the status API), and
// the due event of a one-shot applied after its time: neither executes.
func TestForgedOneShotFireRefused(t *testing.T) {
	ctx := context.Background()
	rec := newRecorder(t)
	st, _ := pg.NewStore(t, store.Options{})
	tree := t.TempDir()
	task := func(code string, at time.Time) string {
		return deftest.Task{Code: code, Trigger: fmt.Sprintf("{at: %q}", at.UTC().Format(time.RFC3339)), Config: fmt.Sprintf("{url: %q}", rec.URL+"/"+code)}.String()
	}
	deftest.WriteFile(t, filepath.Join(tree, "acme", "once.yaml"), task("later", time.Now().Add(time.Hour))+"---\n"+task("gone", time.Now().Add(-time.Hour)))
	applyTree(t, st, tree)
	defs := serveApplied(t, newRegistry(t), st, newRunner(t, st, nil, nil), "acme")
	for _, d := range defs {
		sendEvent(t, "tasksync/one-shot.due", map[string]any{"tenant_id": "acme", "code": d.Metadata.Code, "hash": d.Hash})
	}
	waittest.Never(t, "a forged one-shot run", 5*time.Second, func() bool { return rec.count("/later")+rec.count("/gone") > 0 })
	for _, code := range []string{"later", "gone"} {
		if runs, err := st.Runs(ctx, "acme", code, 10, 0); err != nil || len(runs) != 0 {
			t.Errorf("%s: runs %+v, %v; want none", code, runs, err)
		}
	}
}
