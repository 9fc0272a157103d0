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
