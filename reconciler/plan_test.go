package reconciler_test

import (
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
	// Fires at 1:00, 2:00, 3:00, 4:00; runs at 1:00:05 and 3:01 (late but
	// within grace); 2:00 has none, 4:00 ran after its grace.
	runs := []time.Time{at(1, 0).Add(5 * time.Second), at(3, 1), at(4, 9)}
	missed := reconciler.MissedFires(tr, from, to, runs, 5*time.Minute)
	if fmt.Sprint(missed) != fmt.Sprint([]time.Time{at(2, 0), at(4, 0)}) {
		t.Errorf("missed = %v, want 2:00 and 4:00", missed)
	}
	if m := reconciler.MissedFires(reconciler.Trigger{Event: "x/y"}, from, to, nil, time.Minute); m != nil {
		t.Errorf("an event trigger has no schedule to miss: %v", m)
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
