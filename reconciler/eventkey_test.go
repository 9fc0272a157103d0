package reconciler_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
)

// TestEventMAC: tasksync's own events verify only under the key that
// signed them and only as signed: changing the tenant, code, version,
// fire, catch-up flag, nonce or name breaks the MAC. Inngest's own events
// (a direct invocation, a cron's timer) and the tenant's carry none and
// pass. A manual run's event is refused an hour after it was signed, and
// the refusal names no version.
func TestEventMAC(t *testing.T) {
	key, other := reconciler.RandomEventKey(), reconciler.RandomEventKey()
	now := time.Now()
	signed := func(name string) map[string]any {
		data := map[string]any{"tenant_id": "acme", "code": "nightly", "hash": strings.Repeat("ab", 32),
			"scheduled_for": "2026-01-01T00:00:00Z", "catchup": false, "customer_id": "c-1"}
		key.Sign(name, data)
		return data
	}
	in := func(name string, data map[string]any) reconciler.RunInput {
		return reconciler.RunInput{RunID: "r", Event: map[string]any{"name": name, "data": data}}
	}
	for _, name := range []string{reconciler.ManualRunEvent, reconciler.FireEventName, reconciler.OneShotEventName} {
		if err := reconciler.CheckSigned(key, in(name, signed(name)), now); err != nil {
			t.Errorf("%s signed: %v", name, err)
		}
		if err := reconciler.CheckSigned(other, in(name, signed(name)), now); !errors.Is(err, reconciler.ErrUnsigned) || !errors.Is(err, reconciler.ErrStale) {
			t.Errorf("%s under another key: %v; want ErrUnsigned", name, err)
		}
		if err := reconciler.CheckSigned(nil, in(name, signed(name)), now); !errors.Is(err, reconciler.ErrUnsigned) {
			t.Errorf("%s with no key: %v; want ErrUnsigned", name, err)
		}
		for field, v := range map[string]any{"tenant_id": "evil", "code": "other", "hash": "00", "scheduled_for": "2030-01-01T00:00:00Z",
			"catchup": true, "nonce": "1-2", "mac": strings.Repeat("00", 32)} {
			d := signed(name)
			d[field] = v
			if err := reconciler.CheckSigned(key, in(name, d), now); !errors.Is(err, reconciler.ErrUnsigned) {
				t.Errorf("%s with %s changed: %v; want ErrUnsigned", name, field, err)
			}
			delete(d, field)
			if err := reconciler.CheckSigned(key, in(name, d), now); !errors.Is(err, reconciler.ErrUnsigned) {
				t.Errorf("%s without %s: %v; want ErrUnsigned", name, field, err)
			}
		}
	}
	// Signed as a one-shot, posted as a manual run.
	if err := reconciler.CheckSigned(key, in(reconciler.ManualRunEvent, signed(reconciler.OneShotEventName)), now); !errors.Is(err, reconciler.ErrUnsigned) {
		t.Errorf("a one-shot's data as a manual run: %v; want ErrUnsigned", err)
	}
	for _, name := range []string{reconciler.InvokedEvent, reconciler.CronEventName, "app/ping"} {
		if err := reconciler.CheckSigned(key, in(name, map[string]any{"tenant_id": "acme"}), now); err != nil {
			t.Errorf("%s: %v; want it to pass", name, err)
		}
	}
	err := reconciler.CheckSigned(key, in(reconciler.ManualRunEvent, signed(reconciler.ManualRunEvent)), now.Add(reconciler.ManualEventTTL+time.Minute))
	if !errors.Is(err, reconciler.ErrStale) || errors.Is(err, reconciler.ErrUnsigned) {
		t.Errorf("a manual event an hour old: %v; want it stale", err)
	}
	// The run's start is its run id's time: a workflow's later call,
	// hours on, still passes; a run started an hour after the signing
	// does not.
	ulid := func(at time.Time) string {
		const a = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
		ms, b := uint64(at.UnixMilli()), make([]byte, 10)
		for i := 9; i >= 0; i-- {
			b[i], ms = a[ms&31], ms>>5
		}
		return string(b) + "0000000000000000"
	}
	run := in(reconciler.ManualRunEvent, signed(reconciler.ManualRunEvent))
	run.RunID = ulid(now)
	if err := reconciler.CheckSigned(key, run, now.Add(5*time.Hour)); err != nil {
		t.Errorf("a later call of a run started at once: %v", err)
	}
	run.RunID = ulid(now.Add(reconciler.ManualEventTTL + time.Minute))
	if err := reconciler.CheckSigned(key, run, now); !errors.Is(err, reconciler.ErrStale) {
		t.Errorf("a run started an hour after the signing: %v; want it stale", err)
	}
	if got := reconciler.ErrUnsigned.Error(); got != "not signed by tasksync" {
		t.Errorf("ErrUnsigned says %q", got)
	}
	// The refusal of a manual run for another version names none.
	h := strings.Repeat("cd", 32)
	for _, asked := range []string{"", strings.Repeat("ef", 32)} {
		data := map[string]any{"hash": asked}
		err := reconciler.CheckManual(in(reconciler.ManualRunEvent, data), "nightly", h)
		if err == nil || strings.Contains(err.Error(), h[:8]) || strings.Contains(err.Error(), "efefefef") || !strings.Contains(err.Error(), "status API") {
			t.Errorf("CheckManual for %q: %v; want a refusal naming no version", asked, err)
		}
	}
}

// fireRecords is a RunRecorder with fire claims, for the workflow's fire
// checks.
type fireRecords struct {
	manualRecords
	holders map[time.Time]string
	ranFor  bool
}

func (f *fireRecords) FireHolder(_ context.Context, _ reconciler.AppliedRef, at time.Time) (string, bool, error) {
	h, ok := f.holders[at]
	return h, ok, nil
}

func (f *fireRecords) ClaimFire(_ context.Context, _ reconciler.AppliedRef, at time.Time, runID string) (string, error) {
	if h, ok := f.holders[at]; ok {
		return h, nil
	}
	f.holders[at] = runID
	return runID, nil
}

// manualClaims is a fireRecords that claims manual events too.
type manualClaims struct {
	fireRecords
	nonces map[string]string
}

func (m *manualClaims) ClaimManual(_ context.Context, nonce, runID string) (string, error) {
	if h, ok := m.nonces[nonce]; ok {
		return h, nil
	}
	m.nonces[nonce] = runID
	return runID, nil
}

func (f *fireRecords) RanFor(context.Context, reconciler.AppliedRef, time.Time, string) (bool, error) {
	return f.ranFor, nil
}

// TestWorkflowFireCheckedAtNow: a workflow run's first call checks its
// fire as a task's run is checked (the attack: a fire a year ahead, as a
// catch-up under catchup: skip, passed the workflow's check made without
// a time); it claims the fire, so a second run for it is refused as a
// fire that ran, and the holder's later calls (after a sleep) pass. A
// fire from before the version was applied is refused.
func TestWorkflowFireCheckedAtNow(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	tr := reconciler.Trigger{Cron: "* * * * *", Timezone: "UTC"}
	ref := reconciler.AppliedRef{ID: 7, Hash: "h", AppliedAt: now.Add(-time.Hour)}
	fire := func(runID string, at time.Time, catchUp bool) reconciler.RunInput {
		ev := map[string]any{"name": reconciler.FireEventName, "data": map[string]any{
			"tenant_id": "acme", "code": "wf", "hash": "h", "scheduled_for": at.UTC().Format(time.RFC3339), "catchup": catchUp}}
		in := reconciler.RunInput{RunID: runID, Event: ev}
		in.ScheduledFor, in.CatchUp, _ = reconciler.ScheduledFire(tr, ev)
		return in
	}
	rec := &fireRecords{holders: map[time.Time]string{}}
	due := now.Truncate(time.Minute)
	for _, tc := range []struct {
		in   reconciler.RunInput
		want string
	}{
		{fire("ahead", now.Truncate(time.Minute).Add(365*24*time.Hour), true), "not due yet"},
		{fire("late", due.Add(-time.Hour+time.Minute), false), "counts as missed"},
		{fire("catchup", due.Add(-2*time.Minute), true), "catch-up runs are off"},
		{fire("before-apply", due.Add(-3*time.Hour), false), "missed"},
	} {
		err := reconciler.CheckWorkflowFire(ctx, rec, tr, ref, tc.in, now)
		if !errors.Is(err, reconciler.ErrStale) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", tc.in.RunID, err, tc.want)
		}
	}
	if len(rec.holders) != 0 {
		t.Errorf("refused fires were claimed: %v", rec.holders)
	}
	if err := reconciler.CheckWorkflowFire(ctx, rec, tr, ref, fire("first", due, false), now); err != nil {
		t.Fatalf("a due fire's first call: %v", err)
	}
	if err := reconciler.CheckWorkflowFire(ctx, rec, tr, ref, fire("first", due, false), now.Add(3*time.Hour)); err != nil {
		t.Errorf("the holder's later call, hours on: %v", err)
	}
	err := reconciler.CheckWorkflowFire(ctx, rec, tr, ref, fire("second", due, false), now)
	if !errors.Is(err, reconciler.ErrFireRan) || !strings.Contains(err.Error(), "this fire already ran") {
		t.Errorf("a second run for the fire: %v; want ErrFireRan", err)
	}
	rec.ranFor = true
	if err := reconciler.CheckWorkflowFire(ctx, rec, tr, ref, fire("third", due.Add(-time.Minute), false), now); !errors.Is(err, reconciler.ErrFireRan) {
		t.Errorf("a fire with a run recorded (no claim): %v; want ErrFireRan", err)
	}
	rec.ranFor = false
	// Applied a minute from now: the due fire predates the version.
	late := ref
	late.AppliedAt = now.Add(2 * time.Minute)
	if err := reconciler.CheckWorkflowFire(ctx, &fireRecords{holders: map[time.Time]string{}}, tr, late, fire("x", due, false), now); !errors.Is(err, reconciler.ErrStale) ||
		!strings.Contains(err.Error(), "before this version was applied") {
		t.Errorf("a fire before the apply: %v", err)
	}
}

// TestManualEventMACCoversData (the attack: a signed manual event posted
// again with a field added to its data, or one of the caller's values
// changed, the MAC unchanged, started a run with that data): a manual
// run's MAC covers all of its data but the MAC. The data it covers is
// canonical JSON: the event verifies after a trip through JSON, with its
// keys in another order and its numbers decoded as float64 (as a run
// reads the event back from Inngest), and the caller's numbers as
// `trigger --data` decodes them (json.Number).
func TestManualEventMACCoversData(t *testing.T) {
	key := reconciler.RandomEventKey()
	now := time.Now()
	in := func(data map[string]any) reconciler.RunInput {
		return reconciler.RunInput{RunID: "r", Event: map[string]any{"name": reconciler.ManualRunEvent, "data": data}}
	}
	signed := func() map[string]any {
		data := map[string]any{"tenant_id": "acme", "code": "nightly", "hash": strings.Repeat("ab", 32), "customer_id": "c-1",
			"n": json.Number("1.50"), "big": json.Number("12345678901234567890"), "nested": map[string]any{"b": []any{1, "x"}, "a": "<&>"}}
		key.Sign(reconciler.ManualRunEvent, data)
		return data
	}
	// As the run reads it: through JSON, as map[string]any.
	trip := func(data map[string]any) map[string]any {
		b, err := json.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if err := reconciler.CheckSigned(key, in(signed()), now); err != nil {
		t.Errorf("as signed: %v", err)
	}
	if err := reconciler.CheckSigned(key, in(trip(signed())), now); err != nil {
		t.Errorf("after a trip through JSON: %v", err)
	}
	// Reordered and respaced by hand, numbers written otherwise.
	d := trip(signed())
	raw := fmt.Sprintf(`{"nested": {"a": "<&>", "b": [1.0, "x"]}, "n": 1.5e0, "big": 12345678901234567890, "customer_id": "c-1",
		"mac": %q, "nonce": %q, "hash": %q, "code": "nightly", "tenant_id": "acme"}`, d["mac"], d["nonce"], d["hash"])
	var re map[string]any
	if err := json.Unmarshal([]byte(raw), &re); err != nil {
		t.Fatal(err)
	}
	if err := reconciler.CheckSigned(key, in(re), now); err != nil {
		t.Errorf("reordered, respaced, numbers rewritten: %v", err)
	}
	for name, change := range map[string]func(map[string]any){
		"a field added":          func(d map[string]any) { d["injected"] = "attacker" },
		"a value changed":        func(d map[string]any) { d["customer_id"] = "c-evil" },
		"a number changed":       func(d map[string]any) { d["n"] = 2.5 },
		"a nested value changed": func(d map[string]any) { d["nested"].(map[string]any)["a"] = "b" },
		"a field removed":        func(d map[string]any) { delete(d, "customer_id") },
		"a null added":           func(d map[string]any) { d["x"] = nil },
	} {
		d := trip(signed())
		change(d)
		if err := reconciler.CheckSigned(key, in(d), now); !errors.Is(err, reconciler.ErrUnsigned) {
			t.Errorf("%s: %v; want ErrUnsigned", name, err)
		}
	}
	// The nonce is the manual run's, for the store's claim; other events
	// have none.
	d = signed()
	if got := in(d).ManualNonce(); got == "" || got != d["nonce"] {
		t.Errorf("ManualNonce = %q, want the event's %v", got, d["nonce"])
	}
	fire := reconciler.RunInput{Event: map[string]any{"name": reconciler.FireEventName, "data": d}}
	if got := fire.ManualNonce(); got != "" {
		t.Errorf("a fire event's ManualNonce = %q, want none", got)
	}
	if !errors.Is(reconciler.ErrManualRan, reconciler.ErrAlreadyRan) || errors.Is(reconciler.ErrManualRan, reconciler.ErrStale) {
		t.Error("ErrManualRan must wrap ErrAlreadyRan (a skipped run), not ErrStale")
	}
}

// TestWorkflowManualClaimed (the attack: the same signed manual event
// posted again started another workflow run): a workflow's manual run
// claims its event on every call; a second run of the same event is
// refused with ErrManualRan, and the holder's later calls (a retry, a
// step after a sleep) pass. Another manual event, and a fire, claim
// nothing of it.
func TestWorkflowManualClaimed(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	tr := reconciler.Trigger{Cron: "* * * * *", Timezone: "UTC"}
	ref := reconciler.AppliedRef{ID: 7, Hash: "h", AppliedAt: now.Add(-time.Hour)}
	manual := func(runID, nonce string, attempt int) reconciler.RunInput {
		return reconciler.RunInput{RunID: runID, Attempt: attempt, Event: map[string]any{"name": reconciler.ManualRunEvent,
			"data": map[string]any{"tenant_id": "acme", "code": "wf", "hash": "h", "nonce": nonce}}}
	}
	rec := &manualClaims{fireRecords: fireRecords{holders: map[time.Time]string{}}, nonces: map[string]string{}}
	if err := reconciler.CheckWorkflowFire(ctx, rec, tr, ref, manual("first", "n1", 0), now); err != nil {
		t.Fatalf("a manual run's first call: %v", err)
	}
	if err := reconciler.CheckWorkflowFire(ctx, rec, tr, ref, manual("first", "n1", 1), now.Add(3*time.Hour)); err != nil {
		t.Errorf("the holder's retry, hours on: %v", err)
	}
	err := reconciler.CheckWorkflowFire(ctx, rec, tr, ref, manual("replay", "n1", 0), now)
	if !errors.Is(err, reconciler.ErrManualRan) || !errors.Is(err, reconciler.ErrAlreadyRan) || !strings.Contains(err.Error(), "already started a run") {
		t.Errorf("a second run of the same event: %v; want ErrManualRan", err)
	}
	if err := reconciler.CheckWorkflowFire(ctx, rec, tr, ref, manual("other", "n2", 0), now); err != nil {
		t.Errorf("another manual event: %v", err)
	}
	if len(rec.nonces) != 2 || len(rec.holders) != 0 {
		t.Errorf("claims %v, fires %v; want 2 events claimed, no fire", rec.nonces, rec.holders)
	}
}
