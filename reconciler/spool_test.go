package reconciler_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// fakeSpoolStore records what is written to it; while down it refuses
// every write as unreachable, and it refuses the run ids in refuse for
// another reason.
type fakeSpoolStore struct {
	mu      sync.Mutex
	down    bool
	refuse  map[string]bool
	written []string // "runID status"
	tries   int
}

func (f *fakeSpoolStore) WriteSpooledRun(_ context.Context, rec reconciler.SpooledRun) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tries++
	if f.down {
		return fmt.Errorf("connect: %w", reconciler.ErrStoreUnavailable)
	}
	if f.refuse[rec.RunID] {
		return errors.New("no definition to file it under")
	}
	f.written = append(f.written, rec.RunID+" "+string(rec.Status))
	return nil
}

func (f *fakeSpoolStore) setDown(b bool) {
	f.mu.Lock()
	f.down = b
	f.mu.Unlock()
}

func (f *fakeSpoolStore) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.written...)
}

func rec(id string, status reconciler.RunStatus) reconciler.SpooledRun {
	return reconciler.SpooledRun{RunID: id, Status: status, StartedAt: time.Now()}
}

// TestSpoolOrderAndBound: records are written in the order they were
// spooled; past Max the oldest are dropped and counted; nothing is lost
// or reordered while the store cannot be reached.
func TestSpoolOrderAndBound(t *testing.T) {
	st := &fakeSpoolStore{down: true}
	s := reconciler.NewRunSpool(st, reconciler.SpoolOptions{Max: 3})
	for i := range 5 {
		s.Add(rec(fmt.Sprint("r", i), reconciler.RunRunning))
	}
	if s.Len() != 3 || s.Dropped() != 2 {
		t.Errorf("after 5 records into a spool of 3: len %d, dropped %d; want 3 and 2", s.Len(), s.Dropped())
	}
	n, err := s.Flush(context.Background())
	if n != 0 || !errors.Is(err, reconciler.ErrStoreUnavailable) || s.Len() != 3 {
		t.Errorf("Flush while down = %d, %v, len %d; want 0, ErrStoreUnavailable, 3 kept", n, err, s.Len())
	}
	st.setDown(false)
	s.Add(rec("r2", reconciler.RunSucceeded)) // drops r2's start: the outcome still lands
	n, err = s.Flush(context.Background())
	want := []string{"r3 running", "r4 running", "r2 succeeded"}
	if n != 3 || err != nil || fmt.Sprint(st.got()) != fmt.Sprint(want) {
		t.Errorf("Flush = %d, %v, wrote %v; want %v in order", n, err, st.got(), want)
	}
	if s.Len() != 0 || s.Dropped() != 3 || s.Flushed() != 3 {
		t.Errorf("after the flush: len %d, dropped %d, flushed %d; want 0, 3, 3", s.Len(), s.Dropped(), s.Flushed())
	}
}

// TestSpoolDropsWhatTheStoreRefuses: a record the store refuses for
// another reason than an outage is tried a few times, then dropped and
// counted, and does not hold up the records behind it.
func TestSpoolDropsWhatTheStoreRefuses(t *testing.T) {
	st := &fakeSpoolStore{refuse: map[string]bool{"bad": true}}
	s := reconciler.NewRunSpool(st, reconciler.SpoolOptions{})
	s.Add(rec("bad", reconciler.RunRunning))
	s.Add(rec("good", reconciler.RunRunning))
	for i := 0; i < 5 && s.Len() > 0; i++ {
		if _, err := s.Flush(context.Background()); err != nil && errors.Is(err, reconciler.ErrStoreUnavailable) {
			t.Fatalf("Flush = %v", err)
		}
	}
	if got := st.got(); fmt.Sprint(got) != "[good running]" || s.Dropped() != 1 || st.tries != 4 {
		t.Errorf("wrote %v, dropped %d, %d tries; want [good running], 1 dropped after 3 tries", got, s.Dropped(), st.tries)
	}
}

// TestSpoolRunFlushesWhenTheStoreAnswers: Run writes the records once the
// store answers again, and on shutdown makes a last attempt.
func TestSpoolRunFlushesWhenTheStoreAnswers(t *testing.T) {
	st := &fakeSpoolStore{down: true}
	s := reconciler.NewRunSpool(st, reconciler.SpoolOptions{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	s.Add(rec("a", reconciler.RunRunning))
	s.Add(rec("a", reconciler.RunSucceeded))
	st.setDown(false)
	waittest.For(t, "the records to be flushed", 10*time.Second, func() bool { return len(st.got()) == 2 })
	st.setDown(true)
	s.Add(rec("b", reconciler.RunSucceeded)) // spooled while down, the store back at shutdown
	waittest.For(t, "a failed flush of b", 10*time.Second, func() bool { st.mu.Lock(); defer st.mu.Unlock(); return st.tries >= 4 })
	st.setDown(false)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if got := st.got(); fmt.Sprint(got) != "[a running a succeeded b succeeded]" {
		t.Errorf("wrote %v, want a's start and outcome, then b at shutdown", got)
	}
}

// fakeRecords is a RunRecorder whose every call fails as unreachable
// while down; up, it knows one applied version and records attempts.
type fakeRecords struct {
	down     bool
	finishUp bool // FinishRun works even while down
	ref      reconciler.AppliedRef
	started  []string
	finished []string
}

var errDown = fmt.Errorf("dial: %w", reconciler.ErrStoreUnavailable)

func (f *fakeRecords) Current(context.Context, string, string) (reconciler.AppliedRef, bool, error) {
	if f.down {
		return reconciler.AppliedRef{}, false, errDown
	}
	return f.ref, true, nil
}

func (f *fakeRecords) AppliedDefinition(context.Context, string, string) (reconciler.Definition, bool, error) {
	return reconciler.Definition{}, false, errDown
}

func (f *fakeRecords) StartRun(_ context.Context, _ reconciler.AppliedRef, in reconciler.RunInput, _ time.Time) (int64, error) {
	if f.down {
		return 0, errDown
	}
	f.started = append(f.started, in.RunID)
	return 1, nil
}

func (f *fakeRecords) RanBefore(context.Context, reconciler.AppliedRef, string) (bool, error) {
	return false, errDown
}

func (f *fakeRecords) FinishRun(_ context.Context, _ reconciler.AppliedRef, _ int64, end reconciler.AttemptEnd) error {
	if f.down && !f.finishUp {
		return errDown
	}
	f.finished = append(f.finished, string(end.Status))
	return nil
}

// fakeActions counts api_calls.
type fakeActions struct{ calls int }

func (a *fakeActions) APICall(context.Context, string, reconciler.APICall, map[string]any) (any, error) {
	a.calls++
	return map[string]any{"status": 200}, nil
}

func (a *fakeActions) PythonScript(context.Context, string, reconciler.PythonScript, map[string]any) (any, error) {
	return nil, errors.New("no scripts here")
}

func (a *fakeActions) StepAPICall(context.Context, string, reconciler.APICall, map[string]any, map[string]any) (any, error) {
	return nil, errors.New("no steps here")
}

func (a *fakeActions) StepPythonScript(context.Context, string, reconciler.PythonScript, map[string]any, map[string]any) (any, error) {
	return nil, errors.New("no steps here")
}

func eventTask() reconciler.Definition {
	return reconciler.Definition{Tenant: "acme", Kind: reconciler.KindScheduledTask, Metadata: reconciler.Metadata{Code: "ping"}, Hash: "h1",
		Spec: reconciler.Spec{Active: true, Trigger: reconciler.Trigger{Event: "app/ping"},
			Config: &reconciler.TaskConfig{APICall: &reconciler.APICall{Method: "POST", URL: "https://example.com/"}}}}
}

// TestRunDuringAnOutage: with the store unreachable, a run executes the
// served version and its start and outcome go to the spool, in order,
// named by tenant, code and hash; without a spool it fails without
// executing, as before.
func TestRunDuringAnOutage(t *testing.T) {
	records := &fakeRecords{down: true}
	actions := &fakeActions{}
	st := &fakeSpoolStore{}
	spool := reconciler.NewRunSpool(st, reconciler.SpoolOptions{})
	r := &reconciler.TaskRunner{Records: records, Actions: actions, Spool: spool}
	out, err := r.Run(context.Background(), "acme", eventTask(), reconciler.RunInput{RunID: "run-1"})
	if err != nil || out == nil || actions.calls != 1 {
		t.Fatalf("Run during an outage = %v, %v after %d calls; want the action executed once", out, err, actions.calls)
	}
	if spool.Len() != 2 {
		t.Fatalf("spool holds %d records, want the start and the outcome", spool.Len())
	}
	if _, err := spool.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(st.got()); got != "[run-1 running run-1 succeeded]" {
		t.Errorf("flushed %s, want the start then the outcome", got)
	}

	r.Spool = nil
	_, err = r.Run(context.Background(), "acme", eventTask(), reconciler.RunInput{RunID: "run-2"})
	if !errors.Is(err, reconciler.ErrStoreUnavailable) || actions.calls != 1 {
		t.Errorf("Run without a spool = %v after %d calls; want ErrStoreUnavailable, nothing executed", err, actions.calls)
	}
}

// TestOutcomeSpooledWhenTheStoreGoesAway: a run whose start was recorded
// and whose outcome cannot be spools the outcome under the applied ref,
// and while the spool holds records, later runs spool theirs too, so that
// they reach the store in order.
func TestOutcomeSpooledWhenTheStoreGoesAway(t *testing.T) {
	records := &fakeRecords{ref: reconciler.AppliedRef{ID: 7, Revision: 2, Hash: "h1"}}
	st := &fakeSpoolStore{down: true}
	spool := reconciler.NewRunSpool(st, reconciler.SpoolOptions{})
	r := &reconciler.TaskRunner{Records: records, Actions: &fakeActions{}, Spool: spool}
	// The store answers the look-up and the start, then goes away.
	act := &goneAfterStart{fakeActions: &fakeActions{}, records: records}
	r.Actions = act
	if _, err := r.Run(context.Background(), "acme", eventTask(), reconciler.RunInput{RunID: "run-1"}); err != nil {
		t.Fatal(err)
	}
	if len(records.started) != 1 || len(records.finished) != 0 || spool.Len() != 1 {
		t.Fatalf("started %v, finished %v, spooled %d; want the outcome spooled", records.started, records.finished, spool.Len())
	}
	records.down = false
	records.finishUp = true
	if _, err := r.Run(context.Background(), "acme", eventTask(), reconciler.RunInput{RunID: "run-2"}); err != nil {
		t.Fatal(err)
	}
	if len(records.started) != 1 || spool.Len() != 3 {
		t.Errorf("with records waiting, run-2 started in the store (%v) or spooled %d; want both of its records spooled behind run-1's", records.started, spool.Len())
	}
	st.setDown(false)
	if _, err := spool.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(st.got()); got != "[run-1 succeeded run-2 running run-2 succeeded]" {
		t.Errorf("flushed %s, want run-1's outcome, then run-2's start and outcome", got)
	}
}

// goneAfterStart takes the store away while the action runs.
type goneAfterStart struct {
	*fakeActions
	records *fakeRecords
}

func (g *goneAfterStart) APICall(ctx context.Context, tenant string, c reconciler.APICall, ev map[string]any) (any, error) {
	g.records.down = true
	return g.fakeActions.APICall(ctx, tenant, c, ev)
}
