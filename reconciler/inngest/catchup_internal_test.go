package inngest

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/inngest/inngestgo"

	"github.com/riveredge/tasksync/reconciler"
)

// sendClient records the events sent.
type sendClient struct {
	inngestgo.Client
	sent []inngestgo.Event
}

func (c *sendClient) Send(_ context.Context, e any) (string, error) {
	c.sent = append(c.sent, e.(inngestgo.Event))
	return "", nil
}

// catchUpRun is the run input of a catch-up event as Inngest delivers it.
func catchUpRun(t *testing.T, d reconciler.Definition, ev inngestgo.Event) reconciler.RunInput {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	ri := reconciler.RunInput{RunID: "r"}
	if err := json.Unmarshal(b, &ri.Event); err != nil {
		t.Fatal(err)
	}
	at, catchUp, ok := reconciler.ScheduledFire(d.Spec.Trigger, ri.Event)
	if !ok {
		t.Fatalf("the event names no fire: %s", b)
	}
	ri.ScheduledFor, ri.CatchUp = at, catchUp
	return ri
}

// TestCatchUpsChainOldestFirst: the catch-ups of catchup: all go out one
// at a time, each run sending the next as it starts, oldest first; a
// forged or mangled chain (out of order, no fire of the schedule, ahead
// of now, too long, another version or policy) sends nothing.
func TestCatchUpsChainOldestFirst(t *testing.T) {
	r, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := reconciler.Definition{Hash: "h1"}
	d.Metadata.Code = "cron-all"
	d.Spec.Active = true
	d.Spec.Trigger = reconciler.Trigger{Cron: "* * * * *", CatchUp: reconciler.CatchUpAll}
	base := time.Now().UTC().Truncate(time.Minute).Add(-40 * time.Minute)
	m := func(i int) time.Time { return base.Add(time.Duration(i) * time.Minute) }

	// The chain: 1 names 2 and 3; 2 names 3; 3 names none.
	client := &sendClient{}
	ev := r.fireEvent(r.AppID("acme"), "acme", d, m(1), true, m(2), m(3))
	var order []time.Time
	for range 5 {
		ri := catchUpRun(t, d, ev)
		order = append(order, ri.ScheduledFor)
		n := len(client.sent)
		r.chainCatchUp(t.Context(), client, "acme", d, ri)
		if len(client.sent) == n {
			break
		}
		ev = client.sent[n]
	}
	if !slices.EqualFunc(order, []time.Time{m(1), m(2), m(3)}, time.Time.Equal) {
		t.Errorf("catch-ups ran for %v, want minutes 1, 2, 3 in order", order)
	}
	if id := *client.sent[0].ID; id != r.FireEventID(r.AppID("acme"), d, m(2), true) {
		t.Errorf("the chained event's id is %q, want the catch-up's own (a second send starts nothing)", id)
	}

	bad := map[string]struct {
		d    func(reconciler.Definition) reconciler.Definition
		then []time.Time
	}{
		"out of order":    {then: []time.Time{m(3), m(2)}},
		"the fire itself": {then: []time.Time{m(1)}},
		"no fire":         {then: []time.Time{m(2).Add(time.Second)}},
		"ahead of now":    {then: []time.Time{m(60)}},
		"too long": {then: func() (ts []time.Time) {
			for i := range reconciler.MaxCatchUpRuns {
				ts = append(ts, m(1).Add(time.Duration(i+1)*time.Second*60))
			}
			return
		}()},
		"another version": {d: func(d reconciler.Definition) reconciler.Definition { d.Hash = "h2"; return d }, then: []time.Time{m(2)}},
		"policy latest": {d: func(d reconciler.Definition) reconciler.Definition {
			d.Spec.Trigger.CatchUp = reconciler.CatchUpLatest
			return d
		}, then: []time.Time{m(2)}},
	}
	for name, tc := range bad {
		client := &sendClient{}
		ri := catchUpRun(t, d, r.fireEvent(r.AppID("acme"), "acme", d, m(1), true, tc.then...))
		serving := d
		if tc.d != nil {
			serving = tc.d(d)
		}
		r.chainCatchUp(t.Context(), client, "acme", serving, ri)
		if len(client.sent) != 0 {
			t.Errorf("%s: sent %d events, want none", name, len(client.sent))
		}
	}
}
