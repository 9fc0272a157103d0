package reconciler_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
)

func def(code, path string, line int, hash string) reconciler.Definition {
	return reconciler.Definition{Tenant: "acme", Kind: reconciler.KindScheduledTask, Metadata: reconciler.Metadata{Code: code},
		Source: reconciler.Source{Path: path, Line: line}, Hash: hash}
}

func applied(defs ...reconciler.Definition) reconciler.AppliedTenant {
	a := reconciler.AppliedTenant{Tenant: "acme", Definitions: map[string]reconciler.Applied{}}
	for i, d := range defs {
		a.Definitions[d.Metadata.Code] = reconciler.Applied{ID: int64(i + 1), Code: d.Metadata.Code, Kind: d.Kind, Hash: d.Hash, Source: d.Source}
	}
	return a
}

func actions(p reconciler.TenantPlan) string {
	s := ""
	for _, c := range p.Changes {
		s += fmt.Sprintf("%s:%s", c.Code, c.Action)
		if c.Held {
			s += "(held)"
		}
		if c.Kept != "" {
			s += "(kept)"
		}
		if c.SourceOnly {
			s += "(source)"
		}
		s += " "
	}
	return s
}

func TestDiff(t *testing.T) {
	a, b, c, d := def("a", "acme/x.yaml", 1, "h1"), def("b", "acme/x.yaml", 9, "h2"), def("c", "acme/y.yaml", 1, "h3"), def("d", "acme/z.yaml", 1, "h4")
	cases := []struct {
		name    string
		tree    reconciler.TenantTree
		applied reconciler.AppliedTenant
		budget  string
		want    string
	}{
		{"create", reconciler.TenantTree{Definitions: []reconciler.Definition{a}}, applied(), "", "a:create "},
		{"unchanged", reconciler.TenantTree{Definitions: []reconciler.Definition{a}}, applied(a), "", "a:unchanged "},
		{"update", reconciler.TenantTree{Definitions: []reconciler.Definition{def("a", "acme/x.yaml", 1, "h9")}}, applied(a), "", "a:update "},
		{"move", reconciler.TenantTree{Definitions: []reconciler.Definition{def("a", "acme/new.yaml", 3, "h1")}}, applied(a), "", "a:update(source) "},
		{"retire one of four", reconciler.TenantTree{Definitions: []reconciler.Definition{a, b, c}}, applied(a, b, c, d), "", "a:unchanged b:unchanged c:unchanged d:retire "},
		{"retire half", reconciler.TenantTree{Definitions: []reconciler.Definition{a, b}}, applied(a, b, c, d), "", "a:unchanged b:unchanged c:retire d:retire "},
		{"retire more than half", reconciler.TenantTree{Definitions: []reconciler.Definition{a}}, applied(a, b, c, d), "", "a:unchanged b:retire(held) c:retire(held) d:retire(held) "},
		{"retire all", reconciler.TenantTree{}, applied(a), "", "a:retire(held) "},
		{"retire all allowed", reconciler.TenantTree{}, applied(a), "all", "a:retire "},
		{"retire within a number", reconciler.TenantTree{}, applied(a, b), "2", "a:retire b:retire "},
		{"retire beyond a number", reconciler.TenantTree{}, applied(a, b), "1", "a:retire(held) b:retire(held) "},
		{"broken file keeps its definitions", reconciler.TenantTree{Definitions: []reconciler.Definition{c}, Files: []reconciler.TreeFile{{Path: "acme/x.yaml", Failed: true}}}, applied(a, b, c), "all", "a:unchanged(kept) b:unchanged(kept) c:unchanged "},
		{"code moved into a broken file is kept", reconciler.TenantTree{Files: []reconciler.TreeFile{{Path: "acme/y.yaml"}, {Path: "acme/w.yaml", Failed: true, Codes: []string{"c"}}}}, applied(c), "all", "c:unchanged(kept) "},
		{"read error applies and retires nothing", reconciler.TenantTree{ReadError: true, Definitions: []reconciler.Definition{d}}, applied(a), "all", "a:unchanged(kept) "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := reconciler.ParseRetireBudget(tc.budget)
			if err != nil {
				t.Fatal(err)
			}
			tc.tree.Tenant = "acme"
			if got := actions(reconciler.Diff(&tc.tree, tc.applied, b)); got != tc.want {
				t.Errorf("Diff = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseRetireBudget(t *testing.T) {
	for _, s := range []string{"", "half", "all", "0", "12"} {
		if _, err := reconciler.ParseRetireBudget(s); err != nil {
			t.Errorf("ParseRetireBudget(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"-1", "most", "1.5"} {
		if _, err := reconciler.ParseRetireBudget(s); err == nil {
			t.Errorf("ParseRetireBudget(%q) = nil error, want one", s)
		}
	}
}

// TestNextFiresInterval: an interval fires exactly every interval, across
// hour and day boundaries, wherever the clock starts.
func TestNextFiresInterval(t *testing.T) {
	for _, d := range []time.Duration{7 * time.Minute, 90 * time.Minute, 5 * time.Minute, 25 * time.Hour} {
		tr := reconciler.Trigger{Interval: reconciler.Duration(d)}
		start := time.Date(2026, 12, 31, 23, 50, 0, 0, time.UTC)
		fires := reconciler.NextFires(tr, start, 50)
		if len(fires) != 50 || !fires[0].After(start) || fires[0].Sub(start) > d {
			t.Fatalf("%v: first fire %v after %v", d, fires[0], start)
		}
		for i := 1; i < len(fires); i++ {
			if gap := fires[i].Sub(fires[i-1]); gap != d {
				t.Errorf("%v: gap %v between %v and %v", d, gap, fires[i-1], fires[i])
			}
		}
		// The schedule is the same whichever instant it is computed from.
		if again := reconciler.NextFires(tr, fires[10].Add(-time.Second), 1); !again[0].Equal(fires[10]) {
			t.Errorf("%v: recomputed %v, want %v", d, again[0], fires[10])
		}
	}
}

func TestNextFiresCronInItsZone(t *testing.T) {
	tr := reconciler.Trigger{Cron: "0 2 * * *", Timezone: "Asia/Shanghai"}
	fires := reconciler.NextFires(tr, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 3)
	want := []string{"2026-01-02 02:00 CST", "2026-01-03 02:00 CST", "2026-01-04 02:00 CST"}
	for i, f := range fires {
		if got := f.Format("2006-01-02 15:04 MST"); got != want[i] {
			t.Errorf("fire %d = %s, want %s", i, got, want[i])
		}
	}
}

// TestCanonicalRoundTrip: a definition decoded from its canonical document
// is the definition, hash for hash.
func TestCanonicalRoundTrip(t *testing.T) {
	at := time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC)
	defs := []reconciler.Definition{
		{Kind: reconciler.KindScheduledTask, Metadata: reconciler.Metadata{Code: "a", Labels: map[string]string{"t": "x"}},
			Spec: reconciler.Spec{Active: true, Trigger: reconciler.Trigger{Cron: "0 2 * * *", Timezone: "UTC", Jitter: reconciler.Duration(time.Second)},
				Type: reconciler.TaskAPICall, Config: &reconciler.TaskConfig{APICall: &reconciler.APICall{Method: "POST", URL: "https://a.example.com",
					Body: map[string]any{"n": 1.5}, Timeout: reconciler.Duration(time.Minute), ExpectStatus: []int{200}}}, Retries: 3, Concurrency: 1}},
		{Kind: reconciler.KindScheduledTask, Metadata: reconciler.Metadata{Code: "p"},
			Spec: reconciler.Spec{Active: true, Trigger: reconciler.Trigger{At: &at}, Type: reconciler.TaskPythonScript,
				Config: &reconciler.TaskConfig{PythonScript: &reconciler.PythonScript{File: "s.py", FileSHA256: "ab", FileContent: "print(1)", Timeout: reconciler.Duration(time.Minute), MemoryMB: 64}}}},
		{Kind: reconciler.KindWorkflow, Metadata: reconciler.Metadata{Code: "w"},
			Spec: reconciler.Spec{Active: true, Trigger: reconciler.Trigger{Event: "x/y", If: "true"}, Retries: 1, Concurrency: 2,
				Steps: []reconciler.Step{{ID: "s", Sleep: reconciler.Duration(time.Hour)}, {ID: "w", WaitForEvent: &reconciler.WaitForEvent{Event: "a/b", Timeout: reconciler.Duration(time.Hour)}}}}},
	}
	for _, d := range defs {
		doc, err := d.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		back, err := reconciler.DecodeCanonical("acme", doc, map[string]string{"s.py": "print(1)"})
		if err != nil {
			t.Fatalf("%s: %v", d.Metadata.Code, err)
		}
		again, err := back.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(doc) {
			t.Errorf("%s: round trip changed the document:\n%s\n%s", d.Metadata.Code, doc, again)
		}
		if d.Spec.Config != nil && d.Spec.Config.PythonScript != nil && back.Spec.Config.PythonScript.FileContent != "print(1)" {
			t.Errorf("%s: script content not restored", d.Metadata.Code)
		}
	}
}

func TestMissedFires(t *testing.T) {
	tr := reconciler.Trigger{Cron: "0 * * * *", Timezone: "UTC"}
	from := time.Date(2026, 1, 1, 0, 30, 0, 0, time.UTC)
	to := time.Date(2026, 1, 1, 4, 30, 0, 0, time.UTC)
	at := func(h, m int) time.Time { return time.Date(2026, 1, 1, h, m, 0, 0, time.UTC) }
	// Fires at 1:00, 2:00, 3:00, 4:00; runs were for 1:00 and 3:00 (a
	// run's fire is what it names, however late it started).
	missed := reconciler.MissedFires(tr, from, to, []time.Time{at(3, 0), at(1, 0)})
	if fmt.Sprint(missed) != fmt.Sprint([]time.Time{at(2, 0), at(4, 0)}) {
		t.Errorf("missed = %v, want 2:00 and 4:00", missed)
	}
	if m := reconciler.MissedFires(reconciler.Trigger{Event: "x/y"}, from, to, nil); m != nil {
		t.Errorf("an event trigger has no schedule to miss: %v", m)
	}
}

// TestMissedFiresAfterAnOutage is the case of an engine down from 12:52:30
// to 12:55:50: a per-minute cron ran for 12:52, then for 12:56 to 13:05.
// Exactly 12:53, 12:54 and 12:55 are missed: a run for a later fire
// covers no earlier one.
func TestMissedFiresAfterAnOutage(t *testing.T) {
	tr := reconciler.Trigger{Cron: "* * * * *", Timezone: "UTC"}
	at := func(h, m int) time.Time { return time.Date(2026, 3, 1, h, m, 0, 0, time.UTC) }
	fired := []time.Time{at(12, 52)}
	for m := 56; m <= 65; m++ {
		fired = append(fired, at(12, m))
	}
	missed := reconciler.MissedFires(tr, at(12, 51), at(13, 5), fired)
	want := []time.Time{at(12, 53), at(12, 54), at(12, 55)}
	if fmt.Sprint(missed) != fmt.Sprint(want) {
		t.Errorf("missed = %v, want %v", missed, want)
	}
	// An interval the same: 7m from the epoch's grid.
	iv := reconciler.Trigger{Interval: reconciler.Duration(7 * time.Minute)}
	fires := reconciler.FiresBetween(iv, at(12, 0), at(14, 0), 100)
	var ran []time.Time
	for i, f := range fires {
		if i != 3 && i != 4 {
			ran = append(ran, f)
		}
	}
	if m := reconciler.MissedFires(iv, at(12, 0), at(14, 0), ran); fmt.Sprint(m) != fmt.Sprint(fires[3:5]) {
		t.Errorf("interval: missed = %v, want %v", m, fires[3:5])
	}
}

// TestMissedFiresWithJitter: with a jitter the engine may name the
// jittered time of a run rather than its fire; a run named up to the
// jitter after its fire covers it, and never the next fire.
func TestMissedFiresWithJitter(t *testing.T) {
	tr := reconciler.Trigger{Cron: "*/5 * * * *", Timezone: "UTC", Jitter: reconciler.Duration(2 * time.Minute)}
	at := func(m, s int) time.Time { return time.Date(2026, 3, 1, 10, m, s, 0, time.UTC) }
	// Fires at 10:05, 10:10, 10:15, 10:20. Runs named 10:05 (the fire
	// itself), 10:11:40 (jittered, within 2m) and 10:22:30 (beyond its
	// jitter: no fire's).
	fired := []time.Time{at(5, 0), at(11, 40), at(22, 30)}
	missed := reconciler.MissedFires(tr, at(1, 0), at(21, 0), fired)
	if want := []time.Time{at(15, 0), at(20, 0)}; fmt.Sprint(missed) != fmt.Sprint(want) {
		t.Errorf("missed = %v, want %v", missed, want)
	}
	if f, ok := reconciler.FireAt(tr, at(11, 40)); !ok || !f.Equal(at(10, 0)) {
		t.Errorf("FireAt(10:11:40) = %v, %v; want 10:10", f, ok)
	}
	if _, ok := reconciler.FireAt(tr, at(12, 30)); ok {
		t.Error("FireAt(10:12:30): beyond the jitter, no fire")
	}
}

// TestScheduledFire: the fire a run is for comes from the cron event's
// scheduledAt (or timestamp) or the fire event's scheduled_for, which must
// be one of the schedule's fires.
func TestScheduledFire(t *testing.T) {
	tr := reconciler.Trigger{Cron: "* * * * *", Timezone: "UTC"}
	f := time.Date(2026, 3, 1, 10, 7, 0, 0, time.UTC)
	cases := []struct {
		name    string
		event   map[string]any
		want    time.Time
		catchUp bool
	}{
		{"cron scheduledAt", map[string]any{"name": reconciler.CronEventName, "data": map[string]any{"scheduledAt": "2026-03-01T10:07:00Z"}}, f, false},
		{"cron ts", map[string]any{"name": reconciler.CronEventName, "ts": float64(f.Add(300 * time.Millisecond).UnixMilli())}, f, false},
		{"fire event", map[string]any{"name": reconciler.FireEventName, "data": map[string]any{"scheduled_for": "2026-03-01T10:07:00Z", "catchup": true}}, f, true},
		{"fire event off the schedule", map[string]any{"name": reconciler.FireEventName, "data": map[string]any{"scheduled_for": "2026-03-01T10:07:30Z"}}, time.Time{}, false},
		{"another event", map[string]any{"name": "acme/thing", "ts": float64(f.UnixMilli())}, time.Time{}, false},
	}
	for _, tc := range cases {
		at, c, ok := reconciler.ScheduledFire(tr, tc.event)
		if ok != !tc.want.IsZero() || !at.Equal(tc.want) || c != tc.catchUp {
			t.Errorf("%s: %v, %v, %v; want %v, %v", tc.name, at, c, ok, tc.want, tc.catchUp)
		}
	}
}

// TestCatchUps: skip runs nothing, latest the most recent missed fire in
// the window, all each in the window up to MaxCatchUpRuns.
func TestCatchUps(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var missed []time.Time
	for i := 90; i >= 1; i-- {
		missed = append(missed, now.Add(-time.Duration(i)*time.Minute))
	}
	tr := reconciler.Trigger{Cron: "* * * * *", Timezone: "UTC"}
	if got := tr.CatchUps(missed, now); got != nil {
		t.Errorf("skip: %v", got)
	}
	tr.CatchUp = reconciler.CatchUpLatest
	if got := tr.CatchUps(missed, now); len(got) != 1 || !got[0].Equal(missed[89]) {
		t.Errorf("latest: %v", got)
	}
	tr.CatchUp, tr.CatchUpWindow = reconciler.CatchUpAll, reconciler.Duration(10*time.Minute)
	if got := tr.CatchUps(missed, now); len(got) != 10 || !got[0].Equal(missed[80]) {
		t.Errorf("all within 10m: %v", got)
	}
	tr.CatchUpWindow = 0 // an hour: 60 fires, bounded by the count
	if got := tr.CatchUps(missed, now); len(got) != reconciler.MaxCatchUpRuns || !got[len(got)-1].Equal(missed[89]) {
		t.Errorf("all within 1h: %d, want the last %d", len(got), reconciler.MaxCatchUpRuns)
	}
}

// TestPlanTextOneShot: plan says what happens to a one-shot: the time it
// runs at, or, when that has passed, that it is applied as expired and
// fires nothing.
func TestPlanTextOneShot(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	oneShot := func(code string, at time.Time) reconciler.Change {
		d := def(code, "acme/once.yaml", 1, "h-"+code)
		d.Spec.Trigger.At = &at
		return reconciler.Change{Action: reconciler.ChangeCreate, Code: code, Kind: d.Kind, Desired: &d}
	}
	res := &reconciler.Result{Plans: []reconciler.TenantPlan{{Tenant: "acme", Changes: []reconciler.Change{
		oneShot("ahead", now.Add(time.Hour)), oneShot("passed", now.Add(-time.Hour)),
	}}}}
	var b strings.Builder
	res.WritePlanText(&b, now)
	for _, want := range []string{
		"  + create ahead (ScheduledTask) from acme/once.yaml:1\n    next runs: 2026-12-01 13:00 UTC\n",
		"  + create passed (ScheduledTask) from acme/once.yaml:1\n    next runs: none: 2026-12-01 11:00 UTC has passed; this one-shot is applied as expired and fires nothing\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("plan text lacks %q:\n%s", want, b.String())
		}
	}
}

// TestCheckFireRefusesForgedFireEvents: a fire event (tasksync/fire.due)
// can be posted by anyone holding the event key. The run refuses one for
// another version, an instant off the schedule, a fire not yet due, a fire
// more than the grace late that was not caught up, a catch-up of a
// definition whose policy is skip, and one older than the window. A
// cron's first attempt more than the grace late is refused too (it was
// counted missed); its retries are not.
func TestCheckFireRefusesForgedFireEvents(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)
	tr := reconciler.Trigger{Interval: reconciler.Duration(7 * time.Minute)}
	fire := reconciler.NextFires(tr, now.Add(-7*time.Minute), 1)[0] // the last fire at or before now
	ev := func(hash string, at time.Time, catchUp bool) reconciler.RunInput {
		return reconciler.RunInput{Event: map[string]any{"name": reconciler.FireEventName,
			"data": map[string]any{"hash": hash, "scheduled_for": at.UTC().Format(time.RFC3339Nano), "catchup": catchUp}}}
	}
	latest := tr
	latest.CatchUp = reconciler.CatchUpLatest
	cron := reconciler.Trigger{Cron: "* * * * *", Timezone: "UTC"}
	cronEv := reconciler.RunInput{Event: map[string]any{"name": reconciler.CronEventName, "data": map[string]any{"scheduledAt": fire.Format(time.RFC3339)}}}
	cronRetry := cronEv
	cronRetry.Attempt = 1
	cases := []struct {
		name string
		t    reconciler.Trigger
		in   reconciler.RunInput
		now  time.Time
		ok   bool
	}{
		{"its fire, on time", tr, ev("h1", fire, false), fire.Add(time.Second), true},
		{"another version", tr, ev("h0", fire, false), fire.Add(time.Second), false},
		{"off the schedule", tr, ev("h1", fire.Add(time.Minute), false), fire.Add(2 * time.Minute), false},
		{"not due yet", tr, ev("h1", fire.Add(14*time.Minute), false), fire, false},
		{"late, not a catch-up", tr, ev("h1", fire, false), fire.Add(6 * time.Minute), false},
		{"catch-up under skip", tr, ev("h1", fire, true), fire.Add(6 * time.Minute), false},
		{"catch-up under latest", latest, ev("h1", fire, true), fire.Add(6 * time.Minute), true},
		{"catch-up beyond the window", latest, ev("h1", fire, true), fire.Add(2 * time.Hour), false},
		{"another event", tr, reconciler.RunInput{Event: map[string]any{"name": "acme/x"}}, now, true},
		{"a cron's run on time", cron, cronEv, fire.Add(10 * time.Second), true},
		{"a cron's run late", cron, cronEv, fire.Add(6 * time.Minute), false},
		{"a cron's retry late", cron, cronRetry, fire.Add(6 * time.Minute), true},
	}
	for _, tc := range cases {
		err := reconciler.CheckFire(tc.t, "h1", tc.in, tc.now)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, reconciler.ErrStale)) {
			t.Errorf("%s: %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}
