package reconciler

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// How plan shows a Result.

// fireTimes is how many upcoming runs a plan shows for a schedule.
const fireTimes = 3

// WritePlanText writes the plan for people: per tenant, each change with
// its details and upcoming runs, kept versions, problems and held
// retirements, then a summary line.
func (res *Result) WritePlanText(w io.Writer, now time.Time) {
	for _, p := range res.TopProblems {
		fmt.Fprintf(w, "! %s\n", p)
	}
	for _, p := range res.Plans {
		c := p.Counts()
		var kept []Change
		var lines []string
		for _, ch := range p.Changes {
			switch {
			case ch.Kept != "":
				kept = append(kept, ch)
			case ch.Action != ChangeUnchanged:
				lines = append(lines, changeText(ch, now)...)
			}
		}
		if len(lines) == 0 && len(kept) == 0 && len(p.Problems) == 0 && len(p.Warnings) == 0 {
			continue
		}
		fmt.Fprintf(w, "tenant %s\n", p.Tenant)
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
		for _, ch := range kept {
			fmt.Fprintf(w, "  = keep %s: %s\n", ch.Code, ch.Kept)
		}
		if c.Unchanged-len(kept) > 0 {
			fmt.Fprintf(w, "  = %d unchanged\n", c.Unchanged-len(kept))
		}
		if p.ReadError {
			fmt.Fprintln(w, "  ! the tenant directory could not be read completely: nothing of it is applied or retired")
		}
		for _, pr := range p.Problems {
			fmt.Fprintf(w, "  ! %s\n", pr)
		}
		for _, pr := range p.Warnings {
			fmt.Fprintf(w, "  ? %s\n", pr)
		}
		if c.Held > 0 {
			applied := 0
			for _, ch := range p.Changes {
				if ch.Applied != nil {
					applied++
				}
			}
			fmt.Fprintf(w, "  ! %s held: retiring %d of %d applied definitions exceeds the prune budget (%s); raise spec.maxRetire in the tenant's TenantSettings document to apply\n",
				Plural(c.Held, "retirement"), c.Held, applied, p.Budget)
		}
	}
	fmt.Fprintf(w, "Plan: %s.\n", res.Summary())
}

// changeText renders one change and its details.
func changeText(ch Change, now time.Time) []string {
	var lines []string
	switch ch.Action {
	case ChangeCreate:
		lines = append(lines, fmt.Sprintf("  + create %s (%s) from %s%s", ch.Code, ch.Kind, ch.Desired.Source, atCommit(ch.Desired.Commit)))
		lines = append(lines, scheduleText("    next runs", ch.Desired.Spec.Trigger, now, true)...)
	case ChangeRetire:
		if ch.Held {
			lines = append(lines, fmt.Sprintf("  - retire %s (%s), held by the prune budget", ch.Code, ch.Kind))
		} else {
			lines = append(lines, fmt.Sprintf("  - retire %s (%s), last in %s", ch.Code, ch.Kind, ch.Applied.Source))
		}
	case ChangeUpdate:
		what := "update"
		if ch.SourceOnly {
			what = "move"
		}
		lines = append(lines, fmt.Sprintf("  ~ %s %s (%s)", what, ch.Code, ch.Kind))
		if a, d := ch.Applied.Commit, ch.Desired.Commit; d != "" && a != d {
			lines = append(lines, "      "+fieldText(FieldChange{Path: "commit", Before: shortCommitJSON(a), After: shortCommitJSON(d)}))
		}
		triggerChanged := false
		for _, f := range ch.Fields {
			lines = append(lines, "      "+fieldText(f))
			triggerChanged = triggerChanged || strings.HasPrefix(f.Path, "trigger.")
		}
		if triggerChanged {
			if before, ok := appliedTrigger(ch.Applied); ok {
				lines = append(lines, scheduleText("    runs before", before, now, false)...)
			}
			lines = append(lines, scheduleText("    runs after ", ch.Desired.Spec.Trigger, now, true)...)
		}
	}
	return lines
}

// atCommit is " at commit <short>" for a known commit, else "".
func atCommit(commit string) string {
	if commit == "" {
		return ""
	}
	return " at commit " + shortCommit(commit)
}

// shortCommit is a commit id's first 12 digits, as plan shows it.
func shortCommit(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

// shortCommitJSON is the short commit as a field value; nil for none.
func shortCommitJSON(commit string) json.RawMessage {
	if commit == "" {
		return nil
	}
	return quote(shortCommit(commit))
}

func fieldText(f FieldChange) string {
	switch {
	case f.Before == nil:
		return fmt.Sprintf("%s: + %s", f.Path, f.After)
	case f.After == nil:
		return fmt.Sprintf("%s: - %s", f.Path, f.Before)
	}
	return fmt.Sprintf("%s: %s → %s", f.Path, f.Before, f.After)
}

// scheduleText shows the next runs of t in its time zone; for a one-shot
// whose time has passed, none, and, when the plan would apply it
// (desired), that it is applied as expired.
func scheduleText(label string, t Trigger, now time.Time, desired bool) []string {
	if t.At != nil && !t.At.After(now) {
		line := fmt.Sprintf("%s: none: %s has passed", label, t.At.Format("2006-01-02 15:04 MST"))
		if desired {
			line += "; this one-shot is applied as expired and fires nothing"
		}
		return []string{line}
	}
	fires := NextFires(t, now, fireTimes)
	if len(fires) == 0 {
		return nil
	}
	parts := make([]string, len(fires))
	for i, f := range fires {
		parts[i] = f.Format("2006-01-02 15:04 MST")
	}
	return []string{fmt.Sprintf("%s: %s", label, strings.Join(parts, ", "))}
}

// appliedTrigger reads the trigger of an applied definition's document.
func appliedTrigger(a *Applied) (Trigger, bool) {
	if a == nil || len(a.Spec) == 0 {
		return Trigger{}, false
	}
	var doc struct {
		Spec struct {
			Trigger Trigger `json:"trigger"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(a.Spec, &doc); err != nil {
		return Trigger{}, false
	}
	return doc.Spec.Trigger, true
}

// PlanJSON is the --format json output of plan.
type PlanJSON struct {
	// Commit is the git commit the tree is at; "" when it is no checkout.
	Commit   string           `json:"commit,omitempty"`
	Tenants  []TenantPlanJSON `json:"tenants"`
	Problems []Problem        `json:"problems"`
	Summary  Counts           `json:"summary"`
	Pending  bool             `json:"pending"`
}

// TenantPlanJSON is one tenant's plan in PlanJSON.
type TenantPlanJSON struct {
	TenantPlan
	Changes []ChangeJSON `json:"changes"`
}

// ChangeJSON is one change in TenantPlanJSON: the change, the file it
// comes from, and the next runs before and after it.
type ChangeJSON struct {
	Change
	Source string `json:"source,omitempty"`
	// Commit is the git commit the change comes from (the tree's, or
	// for a retirement the one its last version came from);
	// AppliedCommit the one the applied version came from.
	Commit        string      `json:"commit,omitempty"`
	AppliedCommit string      `json:"applied_commit,omitempty"`
	RunsBefore    []time.Time `json:"runs_before,omitempty"`
	RunsAfter     []time.Time `json:"runs_after,omitempty"`
}

// WritePlanJSON writes the plan for tools (plan --format json).
func (res *Result) WritePlanJSON(w io.Writer, now time.Time) error {
	out := PlanJSON{Commit: res.Commit, Problems: res.Problems(), Summary: res.Counts, Pending: res.Pending(), Tenants: []TenantPlanJSON{}}
	for _, p := range res.Plans {
		tp := TenantPlanJSON{TenantPlan: p, Changes: []ChangeJSON{}}
		for _, ch := range p.Changes {
			cj := ChangeJSON{Change: ch}
			switch {
			case ch.Desired != nil:
				cj.Source, cj.Commit = ch.Desired.Source.String(), ch.Desired.Commit
			case ch.Applied != nil:
				cj.Source, cj.Commit = ch.Applied.Source.String(), ch.Applied.Commit
			}
			if ch.Applied != nil {
				cj.AppliedCommit = ch.Applied.Commit
			}
			if ch.Action == ChangeCreate || ch.Action == ChangeUpdate && !ch.SourceOnly {
				if before, ok := appliedTrigger(ch.Applied); ok {
					cj.RunsBefore = NextFires(before, now, fireTimes)
				}
				cj.RunsAfter = NextFires(ch.Desired.Spec.Trigger, now, fireTimes)
			}
			tp.Changes = append(tp.Changes, cj)
		}
		out.Tenants = append(out.Tenants, tp)
	}
	return writeJSON(w, out)
}

// WriteProblemsJSON writes problems as tasksync validate --format json
// does: an indented JSON array.
func WriteProblemsJSON(w io.Writer, problems []Problem) error {
	return writeJSON(w, problems)
}

// writeJSON writes v as the reports' JSON: indented, with <, > and &
// as they are.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// Plural is "1 word" or "n words": how the reports count things.
func Plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
