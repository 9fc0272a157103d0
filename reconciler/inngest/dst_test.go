package inngest_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/inngest"
)

// inngestServerVersion is the Inngest server the tests run (the
// Makefile's INNGEST_VERSION).
const inngestServerVersion = "v1.44.0"

// inngestSource returns the directory of the Inngest server's module
// source, as the Makefile's build of the dev server finds it.
func inngestSource(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", "github.com/inngest/inngest@"+inngestServerVersion).Output()
	if err != nil {
		t.Fatalf("go mod download github.com/inngest/inngest@%s (the module the dev server is built from): %v", inngestServerVersion, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download: no Dir in %s (%v)", out, err)
	}
	return mod.Dir
}

// requiredVersion is the version go.mod text requires of module.
func requiredVersion(t *testing.T, gomod, module string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?` + regexp.QuoteMeta(module) + `\s+(v\S+)`).FindStringSubmatch(gomod)
	if m == nil {
		t.Fatalf("go.mod requires no %s", module)
	}
	return m[1]
}

// inngestParser builds the cron parser Inngest's scheduler uses, from the
// options its source names (pkg/execution/cron/cron.go), after checking
// that its Next parses the expression with it and steps from the time it
// is given, and that the server and tasksync build against the same
// robfig/cron version.
func inngestParser(t *testing.T) (cron.Parser, string) {
	t.Helper()
	dir := inngestSource(t)
	src, err := os.ReadFile(filepath.Join(dir, "pkg", "execution", "cron", "cron.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"github.com/robfig/cron/v3"`, "schedule, err := parser.Parse(expr)", "return schedule.Next(from), nil"} {
		if !strings.Contains(string(src), want) {
			t.Fatalf("Inngest's scheduler (pkg/execution/cron/cron.go) no longer has %q: review how it computes a cron's next time", want)
		}
	}
	m := regexp.MustCompile(`parser\s*=\s*cron\.NewParser\(([^)]*)\)`).FindSubmatch(src)
	if m == nil {
		t.Fatal("Inngest's scheduler builds no cron.NewParser(...) parser")
	}
	names := map[string]cron.ParseOption{"cron.Second": cron.Second, "cron.SecondOptional": cron.SecondOptional, "cron.Minute": cron.Minute,
		"cron.Hour": cron.Hour, "cron.Dom": cron.Dom, "cron.Month": cron.Month, "cron.Dow": cron.Dow, "cron.DowOptional": cron.DowOptional,
		"cron.Descriptor": cron.Descriptor}
	var opts cron.ParseOption
	for _, f := range strings.Split(string(m[1]), "|") {
		o, ok := names[strings.TrimSpace(f)]
		if !ok {
			t.Fatalf("Inngest's cron parser has option %q, unknown to this test", strings.TrimSpace(f))
		}
		opts |= o
	}
	if want := cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor; opts != want {
		t.Errorf("Inngest's cron parser options = %b, tasksync's reconciler.CronParser uses %b", opts, want)
	}
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	ours, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	theirs, mine := requiredVersion(t, string(gomod), "github.com/robfig/cron/v3"), requiredVersion(t, string(ours), "github.com/robfig/cron/v3")
	if theirs != mine {
		t.Errorf("Inngest %s builds with robfig/cron %s, tasksync with %s: the previews may differ from its schedule", inngestServerVersion, theirs, mine)
	}
	return cron.NewParser(opts), theirs
}

// TestCronPreviewAgreesWithInngest: for crons in zones with daylight
// saving time, the next fires tasksync shows (plan, the status API's
// detail: reconciler.NextFires) are the times Inngest's scheduler
// computes for the expression tasksync registers, across the year's
// clock changes, and the daylight-saving warning says of each day it
// names what the scheduler does: no run on a skipped day, two on a
// repeated one.
func TestCronPreviewAgreesWithInngest(t *testing.T) {
	parser, version := inngestParser(t)
	t.Logf("Inngest %s schedules crons with robfig/cron %s", inngestServerVersion, version)
	v, err := definitions.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	dated := regexp.MustCompile(`(\d\d:\d\d) (does not exist|happens twice) on \w{3} (\d{4}-\d\d-\d\d)`)
	cases := []struct {
		zone, cron string
		warned     bool
	}{
		{"America/New_York", "30 2 * * *", true},
		{"America/New_York", "30 1 * * *", true},
		{"America/New_York", "0 9 * * 1-5", false},
		{"Europe/Berlin", "0 2 * * *", true},
		{"Europe/Berlin", "30 2 * * 0", true},
		{"Europe/London", "15 1 * * *", true},
		{"Australia/Sydney", "30 2 * * *", true},
		{"America/Santiago", "0 0 * * *", true}, // DST changes at midnight
		{"Asia/Kolkata", "30 2 * * *", false},   // no DST
		{"Europe/Berlin", "@daily", false},
	}
	for _, tc := range cases {
		t.Run(tc.zone+" "+tc.cron, func(t *testing.T) {
			doc := fmt.Sprintf("apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: c}\nspec:\n  trigger: {cron: %q, timezone: %s}\n  type: api_call\n  config: {url: 'https://a.example.com'}\n", tc.cron, tc.zone)
			r := v.NewLoader(fstest.MapFS{"acme/a.yaml": {Data: []byte(doc)}}, definitions.Options{Now: func() time.Time { return from }}).LoadTenant("acme")
			if len(r.Problems) > 0 || len(r.Definitions) != 1 {
				t.Fatalf("problems %v; want the definition loaded", r.Problems)
			}
			trig := r.Definitions[0].Spec.Trigger
			sched, err := inngest.ScheduleOf("acme", "c", trig)
			if err != nil || sched.Trigger.CronTrigger == nil {
				t.Fatalf("ScheduleOf = %+v, %v; want a cron trigger", sched, err)
			}
			expr := sched.Trigger.CronTrigger.Cron
			theirs, err := parser.Parse(expr)
			if err != nil {
				t.Fatalf("Inngest's parser refuses %q, which tasksync registers: %v", expr, err)
			}
			// A year and a little of daily fires covers every change.
			const n = 400
			ours := reconciler.NextFires(trig, from, n)
			if len(ours) != n {
				t.Fatalf("NextFires gave %d fires, want %d", len(ours), n)
			}
			loc, err := time.LoadLocation(tc.zone)
			if err != nil {
				t.Fatal(err)
			}
			perDay := map[string][]time.Time{}
			next := from
			for i := range n {
				next = theirs.Next(next) // as Inngest's ScheduleNext: from the previous fire
				if !next.Equal(ours[i]) {
					t.Fatalf("fire %d: tasksync previews %s, Inngest schedules %s (%s)", i, ours[i].UTC(), next.UTC(), expr)
				}
				day := next.In(loc).Format("2006-01-02")
				perDay[day] = append(perDay[day], next)
			}
			var warning string
			for _, w := range r.Warnings {
				warning += w.Message
			}
			if (warning != "") != tc.warned {
				t.Fatalf("warning %q; want one: %v", warning, tc.warned)
			}
			claims := dated.FindAllStringSubmatch(warning, -1)
			if tc.warned && len(claims) == 0 {
				t.Fatalf("the warning names no date: %q", warning)
			}
			for _, c := range claims {
				at, what, day := c[1], c[2], c[3]
				var atTime int
				for _, f := range perDay[day] {
					if f.In(loc).Format("15:04") == at {
						atTime++
					}
				}
				switch {
				case what == "does not exist" && atTime != 0:
					t.Errorf("the warning says %s does not exist on %s; Inngest runs it then: %v", at, day, perDay[day])
				case what == "happens twice" && atTime != 2:
					t.Errorf("the warning says %s happens twice on %s; Inngest runs it %d times then: %v", at, day, atTime, perDay[day])
				}
			}
		})
	}
}
