package reconciler

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestNoticeProblemsSaysKeptOnlyWhenApplied: a problem of a file with an
// applied version says the file keeps it; a problem of a brand-new file
// (nothing of it applied) does not claim a version it never had.
func TestNoticeProblemsSaysKeptOnlyWhenApplied(t *testing.T) {
	var buf bytes.Buffer
	c := &Controller{log: slog.New(slog.NewTextHandler(&buf, nil))}
	applied := Applied{Code: "old", Kind: KindScheduledTask, Source: Source{Path: "acme/old.yaml", Line: 1}}
	moved := Applied{Code: "moved", Kind: KindScheduledTask, Source: Source{Path: "acme/elsewhere.yaml", Line: 1}}
	res := &Result{
		TopProblems: []Problem{{Path: "stray.yaml", Message: "misplaced"}},
		Plans: []TenantPlan{{
			Tenant: "acme",
			Problems: []Problem{
				{Path: "acme/old.yaml", Line: 3, Column: 1, Tenant: "acme", Message: "broken old"},
				{Path: "acme/new.yaml", Line: 3, Column: 1, Tenant: "acme", Message: "broken new"},
				{Path: "acme/moved-to.yaml", Line: 3, Column: 1, Tenant: "acme", Code: "moved", Message: "broken moved"},
			},
			Changes: []Change{
				{Action: ChangeUnchanged, Code: "old", Kind: KindScheduledTask, Applied: &applied, Kept: "acme/old.yaml has errors; its last valid version stays applied"},
				{Action: ChangeUnchanged, Code: "moved", Kind: KindScheduledTask, Applied: &moved, Kept: "acme/moved-to.yaml has errors; its last valid version stays applied"},
			},
		}},
	}
	c.noticeChanges(res)
	lines := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		for _, what := range []string{"broken old", "broken new", "broken moved", "misplaced"} {
			if strings.Contains(l, what) {
				lines[what] = l
			}
		}
	}
	const kept = "keeps its last applied version"
	for what, wantKept := range map[string]bool{"broken old": true, "broken moved": true, "broken new": false, "misplaced": false} {
		l, ok := lines[what]
		if !ok {
			t.Errorf("no log line for %q in:\n%s", what, buf.String())
			continue
		}
		if got := strings.Contains(l, kept); got != wantKept {
			t.Errorf("%q: says %q: %v, want %v\n%s", what, kept, got, wantKept, l)
		}
		if !wantKept && !strings.Contains(l, "not applied") {
			t.Errorf("%q: does not say the file is not applied:\n%s", what, l)
		}
	}
}
