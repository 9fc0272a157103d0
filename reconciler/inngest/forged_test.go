package inngest_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/inngest"
	"github.com/riveredge/tasksync/reconciler/store"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// keyedRegistry is newRegistry with a key the test knows.
func keyedRegistry(t *testing.T, key *reconciler.EventKey) *inngest.Registry {
	return servedRegistry(t, inngest.Options{AppPrefix: fmt.Sprintf("f%d", time.Now().UnixNano()%1e6), Signer: key})
}

// fireData is a fire event's data for d's fire at, signed with key
// (unsigned for nil) under a nonce of its own.
func fireData(key *reconciler.EventKey, d reconciler.Definition, at time.Time, catchUp bool, nonce string) map[string]any {
	data := map[string]any{"tenant_id": "acme", "code": d.Metadata.Code, "hash": d.Hash,
		"scheduled_for": at.UTC().Format(time.RFC3339Nano), "catchup": catchUp, "nonce": nonce}
	if key != nil {
		key.Sign(reconciler.FireEventName, data)
	}
	return data
}

// callCounter counts the calls of Run that pass the MAC check, by code.
type callCounter struct {
	inngest.Runner
	mu sync.Mutex
	n  map[string]int
}

func (c *callCounter) Run(ctx context.Context, tenant string, def reconciler.Definition, in reconciler.RunInput) (any, error) {
	c.mu.Lock()
	c.n[def.Metadata.Code]++
	c.mu.Unlock()
	return c.Runner.Run(ctx, tenant, def, in)
}

func (c *callCounter) count(code string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[code]
}

// TestForgedFireEvents: an event-key holder posts tasksync/fire.due for
// acme's definitions with their (public) version hash. Unsigned, they
// run nothing, task or workflow. Signed (a replay of tasksync's own), a
// workflow's fire still has to be due now and within its catch-up policy,
// as a task's has: not a year ahead, not years late, not a catch-up under
// catchup: skip. Ten signed events for one fire at once start one run
// (the claim on the fire), task or workflow.
func TestForgedFireEvents(t *testing.T) {
	ctx := context.Background()
	rec := newRecorder(t)
	st, _ := pg.NewStore(t, store.Options{})
	tree := t.TempDir()
	workflow := func(code, cron string) string {
		return fmt.Sprintf(`apiVersion: tasksync/v1
kind: Workflow
metadata: {code: %[1]s}
spec:
  trigger: %[2]s
  retries: 0
  steps:
    - id: call
      api_call: {url: "%[3]s/%[1]s"}
`, code, cron, rec.URL)
	}
	deftest.WriteFile(t, filepath.Join(tree, "acme", "defs.yaml"), strings.Join([]string{
		workflow("yearly-wf", "{cron: '0 0 1 1 *'}"), workflow("minutely-wf", "{cron: '* * * * *'}"),
		deftest.Task{Code: "minutely", Trigger: "{cron: '* * * * *'}", Config: fmt.Sprintf("{url: %q}", rec.URL+"/minutely"), Spec: []string{"retries: 0"}}.String(),
	}, "---\n"))
	applyTree(t, st, tree)
	key := reconciler.RandomEventKey()
	runner := &callCounter{Runner: newRunner(t, st, nil, nil), n: map[string]int{}}
	defs := serveApplied(t, keyedRegistry(t, key), st, runner, "acme")
	byCode := map[string]reconciler.Definition{}
	for _, d := range defs {
		byCode[d.Metadata.Code] = d
	}

	// Unsigned, at a due instant: nothing runs.
	// The engine runs them every minute too: the checks of the unsigned
	// and the late events end before the next minute starts, and that
	// minute's fire has one run, the engine's or one of the ten's.
	if left := time.Until(time.Now().Truncate(time.Minute).Add(time.Minute)); left < 20*time.Second {
		time.Sleep(left + 2*time.Second)
	}
	next := time.Now().Truncate(time.Minute).Add(time.Minute)
	for _, code := range []string{"minutely", "minutely-wf"} {
		sendEvent(t, reconciler.FireEventName, fireData(nil, byCode[code], next, false, "forged"))
	}
	// Signed, for the yearly workflow: a year ahead as a catch-up, years
	// late, and late as a catch-up (its policy is skip).
	yearly := byCode["yearly-wf"]
	for i, f := range []struct {
		at      time.Time
		catchUp bool
	}{
		{time.Date(time.Now().Year()+1, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{time.Date(time.Now().Year()+1, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{time.Date(time.Now().Year(), 1, 1, 0, 0, 0, 0, time.UTC), true},
	} {
		sendEvent(t, reconciler.FireEventName, fireData(key, yearly, f.at, f.catchUp, fmt.Sprintf("replay-%d", i)))
	}
	// The engine's own run of the minute before may still arrive (late,
	// on a loaded machine): only runs for the forged instant count.
	forRuns := func(code string, at time.Time) int {
		runs, err := st.Runs(ctx, "acme", code, 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range runs {
			if r.ScheduledFor != nil && r.ScheduledFor.Equal(at) {
				n++
			}
		}
		return n
	}
	waittest.Never(t, "a forged fire's run", 5*time.Second, func() bool {
		return rec.count("/yearly-wf") > 0 || forRuns("minutely", next) > 0 || forRuns("minutely-wf", next) > 0
	})
	// The yearly workflow has no fire of its own in the test: any run of
	// it is a forged one's. (The minutely ones may have the engine's own
	// run of the next minute by now, on a loaded machine: the window
	// above is what tells of them.)
	if runs, err := st.Runs(ctx, "acme", "yearly-wf", 10, 0); err != nil || len(runs) != 0 {
		t.Errorf("yearly-wf: runs %+v, %v; want none", runs, err)
	}

	// Ten signed events for one due fire at once, each under an id of its
	// own: one run per fire.
	var wg sync.WaitGroup
	for _, code := range []string{"minutely", "minutely-wf"} {
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sendEvent(t, reconciler.FireEventName, fireData(key, byCode[code], next, false, fmt.Sprintf("race-%d", i)))
			}()
		}
	}
	wg.Wait()
	waittest.For(t, "the ten events' task calls", 60*time.Second, func() bool { return runner.count("minutely") >= 10 })
	// The workflow's calls have no counter: its run for the fire, and no
	// second one while the ten events' calls land.
	waittest.For(t, "the workflow's run of the fire", 60*time.Second, func() bool { return forRuns("minutely-wf", next) >= 1 })
	waittest.Never(t, "a second run of the fire", 3*time.Second, func() bool {
		return forRuns("minutely", next) > 1 || forRuns("minutely-wf", next) > 1
	})
	for _, code := range []string{"minutely", "minutely-wf"} {
		if n := forRuns(code, next); n != 1 {
			t.Errorf("%s: %d runs for the fire at %s, want 1", code, n, next.Format(time.RFC3339))
		}
	}
}

// TestEventIDsAreKeyed: the ids of tasksync's fire and one-shot events
// derive from its key: nobody without it can send an event under the id
// tasksync will use (Inngest would drop tasksync's as a duplicate).
func TestEventIDsAreKeyed(t *testing.T) {
	d := reconciler.Definition{Hash: strings.Repeat("ab", 32)}
	d.Metadata.Code = "nightly"
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	a, b := keyedRegistry(t, reconciler.RandomEventKey()), keyedRegistry(t, reconciler.RandomEventKey())
	app := "tasksync-acme"
	for _, ids := range [][2]string{
		{a.FireEventID(app, d, at, false), b.FireEventID(app, d, at, false)},
		{a.FireEventID(app, d, at, true), b.FireEventID(app, d, at, true)},
		{a.OneShotEventID(app, d), b.OneShotEventID(app, d)},
	} {
		if ids[0] == ids[1] || strings.Contains(ids[0], d.Hash[:16]) {
			t.Errorf("event ids %v: the same under two keys, or naming the hash", ids)
		}
	}
	if a.FireEventID(app, d, at, false) == a.FireEventID(app, d, at, true) || a.FireEventID(app, d, at, false) != a.FireEventID(app, d, at, false) {
		t.Error("a fire's id and its catch-up's are the same, or an id is not stable")
	}
}
