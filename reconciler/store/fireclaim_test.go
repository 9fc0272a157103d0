package store_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/store"
	"github.com/riveredge/tasksync/reconciler/store/storetest"
)

// TestOneRunPerFire: ten runs for one fire start at once (ten events for
// the same scheduled_for under ids of their own); StartRun's claim lets
// one of them record and refuses the others with ErrFireRan, which says
// "fire", not "one-shot". The run holding the claim records its retries;
// ClaimFire and FireHolder agree with it.
func TestOneRunPerFire(t *testing.T) {
	ctx := ctxT(t)
	s, _ := pg.NewStore(t, store.Options{})
	reconcile(t, s, baseTree(), "all")
	ref, _, err := s.Current(ctx, "acme", "alpha")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Truncate(time.Minute)
	deadline := time.Now().Add(time.Hour)
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.StartRun(ctx, ref, reconciler.RunInput{RunID: fmt.Sprintf("race-%d", i), ScheduledFor: at}, deadline)
		}()
	}
	wg.Wait()
	won := ""
	for i, err := range errs {
		switch {
		case err == nil && won == "":
			won = fmt.Sprintf("race-%d", i)
		case err == nil:
			t.Errorf("race-%d and %s both started a run for the fire at %s", i, won, at)
		case !errors.Is(err, reconciler.ErrFireRan) || !errors.Is(err, reconciler.ErrAlreadyRan):
			t.Errorf("race-%d: %v; want ErrFireRan", i, err)
		}
	}
	if won == "" {
		t.Fatalf("no run started: %v", errs)
	}
	if err := errors.Join(errs...); err != nil && !strings.Contains(err.Error(), "this fire already ran") {
		t.Errorf("the refusal does not say the fire ran: %v", err)
	}
	if _, err := s.StartRun(ctx, ref, reconciler.RunInput{RunID: won, Attempt: 1, ScheduledFor: at}, deadline); err != nil {
		t.Errorf("the retry of the run holding the fire: %v", err)
	}
	if holder, ok, err := s.FireHolder(ctx, ref, at); err != nil || !ok || holder != won {
		t.Errorf("FireHolder = %q %v %v, want %q", holder, ok, err, won)
	}
	if holder, err := s.ClaimFire(ctx, ref, at, "late"); err != nil || holder != won {
		t.Errorf("ClaimFire by another run = %q %v, want %q", holder, err, won)
	}
	if holder, err := s.ClaimFire(ctx, ref, at.Add(time.Minute), "next"); err != nil || holder != "next" {
		t.Errorf("ClaimFire of the next fire = %q %v, want next", holder, err)
	}
}

// TestOneRunPerManualEvent (the attack: a signed manual event posted four
// times started four runs): ten runs of one manual event (the same nonce)
// start at once; StartRun's claim lets one of them record and refuses the
// others with ErrManualRan. The run holding the claim records its
// retries; another event's run records; ClaimManual agrees. PruneRuns
// keeps a claim within the event's hour, whatever the retention, and
// drops it after.
func TestOneRunPerManualEvent(t *testing.T) {
	ctx := ctxT(t)
	s, dbURL := pg.NewStore(t, store.Options{})
	reconcile(t, s, baseTree(), "all")
	ref, _, err := s.Current(ctx, "acme", "alpha")
	if err != nil {
		t.Fatal(err)
	}
	manual := func(runID, nonce string, attempt int) reconciler.RunInput {
		return reconciler.RunInput{RunID: runID, Attempt: attempt, Event: map[string]any{"name": reconciler.ManualRunEvent,
			"data": map[string]any{"tenant_id": "acme", "code": "alpha", "nonce": nonce}}}
	}
	deadline := time.Now().Add(time.Hour)
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.StartRun(ctx, ref, manual(fmt.Sprintf("replay-%d", i), "n-1", 0), deadline)
		}()
	}
	wg.Wait()
	won := ""
	for i, err := range errs {
		switch {
		case err == nil && won == "":
			won = fmt.Sprintf("replay-%d", i)
		case err == nil:
			t.Errorf("replay-%d and %s both started a run of one manual event", i, won)
		case !errors.Is(err, reconciler.ErrManualRan) || !errors.Is(err, reconciler.ErrAlreadyRan):
			t.Errorf("replay-%d: %v; want ErrManualRan", i, err)
		}
	}
	if won == "" {
		t.Fatalf("no run started: %v", errs)
	}
	if _, err := s.StartRun(ctx, ref, manual(won, "n-1", 1), deadline); err != nil {
		t.Errorf("the retry of the run holding the event: %v", err)
	}
	if _, err := s.StartRun(ctx, ref, manual("next", "n-2", 0), deadline); err != nil {
		t.Errorf("another manual event's run: %v", err)
	}
	if holder, err := s.ClaimManual(ctx, "n-1", "late"); err != nil || holder != won {
		t.Errorf("ClaimManual by another run = %q %v, want %q", holder, err, won)
	}
	var runs int
	conn := storetest.Conn(t, dbURL)
	if err := conn.QueryRow(ctx, `select count(distinct inngest_run_id) from root_task_runs where manual`).Scan(&runs); err != nil || runs != 2 {
		t.Errorf("%d manual runs recorded (%v), want 2", runs, err)
	}
	count := func() (n int) {
		t.Helper()
		if err := conn.QueryRow(ctx, `select count(*) from root_manual_claims`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if _, _, err := s.PruneRuns(ctx, time.Now().Add(time.Hour), 100); err != nil || count() != 2 {
		t.Errorf("a prune with a retention in the future: %v, %d claims left; want both kept within the hour", err, count())
	}
	if _, err := conn.Exec(ctx, `update root_manual_claims set claimed_at = now() - interval '2 hours' where nonce = 'n-1'`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PruneRuns(ctx, time.Now().Add(time.Hour), 100); err != nil || count() != 1 {
		t.Errorf("a prune after the hour: %v, %d claims left; want 1", err, count())
	}
}

// TestEventKeyIsShared: the event key is generated once; every reader
// (each replica, tasksync trigger) gets the same, and it signs what the
// others verify.
func TestEventKeyIsShared(t *testing.T) {
	ctx := ctxT(t)
	s, _ := pg.NewStore(t, store.Options{})
	a, err := s.EventKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.EventKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data := map[string]any{"tenant_id": "acme", "code": "alpha", "hash": "h"}
	a.Sign(reconciler.ManualRunEvent, data)
	if !b.Verify(reconciler.ManualRunEvent, data) {
		t.Error("a key read twice does not verify its own signature")
	}
	if fmt.Sprint(a) != "EventKey(redacted)" || fmt.Sprintf("%#v %+v", a, a) != "EventKey(redacted) EventKey(redacted)" {
		t.Errorf("the key prints as %v / %#v", a, a)
	}
}
