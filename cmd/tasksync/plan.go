package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/executor"
)

type planOptions struct {
	treeOptions
	format string
}

func planFlags(f *flagSet) {
	o := &planOptions{}
	o.treeOptions.flags(f)
	f.string(&o.format, "format", "TASKSYNC_FORMAT", formatText, "output `format`: text or json")
	f.opts = o
}

func runPlan(ctx context.Context, c *invocation) error {
	o := c.flags.opts.(*planOptions)
	if len(c.args) > 0 {
		return usageError("plan takes no arguments; the tree is --dir")
	}
	if o.format != formatText && o.format != formatJSON {
		return usageError("plan: --format must be text or json, got %q", o.format)
	}
	if err := o.check(); err != nil {
		return err
	}
	if err := executor.NewSecrets(o.secretsDir, c.getenv).CheckDir(); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	o.grants = grantCheck(o.secretsDir, c.getenv, false)
	st, err := o.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.CheckSchema(ctx); err != nil {
		return err
	}
	r, err := o.reconciler(st)
	if err != nil {
		return err
	}
	res, err := r.Plan(ctx, true)
	if err != nil {
		return err
	}
	now := time.Now()
	if o.format == formatJSON {
		err = writePlanJSON(c.stdout, res, now)
	} else {
		writePlanText(c.stdout, res, now)
	}
	if err != nil {
		return err
	}
	switch {
	case len(res.Problems()) > 0:
		return errExit1
	case res.Pending() || res.Counts.Held > 0:
		// 2: changes pending, including retirements the budget holds:
		// the tree and the applied state differ.
		return &exitError{code: exitUsage}
	}
	return nil
}

// fireTimes is how many upcoming runs a plan shows for a schedule.
const fireTimes = 3

func writePlanText(w io.Writer, res *reconciler.Result, now time.Time) {
	for _, p := range res.TopProblems {
		fmt.Fprintf(w, "! %s\n", p)
	}
	for _, p := range res.Plans {
		c := p.Counts()
		var kept []reconciler.Change
		var lines []string
		for _, ch := range p.Changes {
			switch {
			case ch.Kept != "":
				kept = append(kept, ch)
			case ch.Action != reconciler.ChangeUnchanged:
				lines = append(lines, changeText(ch, now)...)
			}
		}
		if len(lines) == 0 && len(kept) == 0 && len(p.Problems) == 0 {
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
		if c.Held > 0 {
			applied := 0
			for _, ch := range p.Changes {
				if ch.Applied != nil {
					applied++
				}
			}
			fmt.Fprintf(w, "  ! %s held: retiring %d of %d applied definitions exceeds the prune budget; raise --max-retire to apply\n",
				plural(c.Held, "retirement"), c.Held, applied)
		}
	}
	fmt.Fprintf(w, "Plan: %s.\n", res.Summary())
}

// changeText renders one change and its details.
func changeText(ch reconciler.Change, now time.Time) []string {
	var lines []string
	switch ch.Action {
	case reconciler.ChangeCreate:
		lines = append(lines, fmt.Sprintf("  + create %s (%s) from %s", ch.Code, ch.Kind, ch.Desired.Source))
		lines = append(lines, scheduleText("    next runs", ch.Desired.Spec.Trigger, now)...)
	case reconciler.ChangeRetire:
		if ch.Held {
			lines = append(lines, fmt.Sprintf("  - retire %s (%s), held by the prune budget", ch.Code, ch.Kind))
		} else {
			lines = append(lines, fmt.Sprintf("  - retire %s (%s), last in %s", ch.Code, ch.Kind, ch.Applied.Source))
		}
	case reconciler.ChangeUpdate:
		what := "update"
		if ch.SourceOnly {
			what = "move"
		}
		lines = append(lines, fmt.Sprintf("  ~ %s %s (%s)", what, ch.Code, ch.Kind))
		triggerChanged := false
		for _, f := range ch.Fields {
			lines = append(lines, "      "+fieldText(f))
			triggerChanged = triggerChanged || strings.HasPrefix(f.Path, "trigger.")
		}
		if triggerChanged {
			if before, ok := appliedTrigger(ch.Applied); ok {
				lines = append(lines, scheduleText("    runs before", before, now)...)
			}
			lines = append(lines, scheduleText("    runs after ", ch.Desired.Spec.Trigger, now)...)
		}
	}
	return lines
}

func fieldText(f reconciler.FieldChange) string {
	switch {
	case f.Before == nil:
		return fmt.Sprintf("%s: + %s", f.Path, f.After)
	case f.After == nil:
		return fmt.Sprintf("%s: - %s", f.Path, f.Before)
	}
	return fmt.Sprintf("%s: %s → %s", f.Path, f.Before, f.After)
}

// scheduleText shows the next runs of t in its time zone.
func scheduleText(label string, t reconciler.Trigger, now time.Time) []string {
	fires := reconciler.NextFires(t, now, fireTimes)
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
func appliedTrigger(a *reconciler.Applied) (reconciler.Trigger, bool) {
	if a == nil || len(a.Spec) == 0 {
		return reconciler.Trigger{}, false
	}
	var doc struct {
		Spec struct {
			Trigger reconciler.Trigger `json:"trigger"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(a.Spec, &doc); err != nil {
		return reconciler.Trigger{}, false
	}
	return doc.Spec.Trigger, true
}

// planJSON is the --format json output of plan.
type planJSON struct {
	Tenants  []tenantPlanJSON     `json:"tenants"`
	Problems []reconciler.Problem `json:"problems"`
	Summary  reconciler.Counts    `json:"summary"`
	Pending  bool                 `json:"pending"`
}

type tenantPlanJSON struct {
	reconciler.TenantPlan
	Changes []changeJSON `json:"changes"`
}

type changeJSON struct {
	reconciler.Change
	Source     string      `json:"source,omitempty"`
	RunsBefore []time.Time `json:"runs_before,omitempty"`
	RunsAfter  []time.Time `json:"runs_after,omitempty"`
}

func writePlanJSON(w io.Writer, res *reconciler.Result, now time.Time) error {
	out := planJSON{Problems: res.Problems(), Summary: res.Counts, Pending: res.Pending(), Tenants: []tenantPlanJSON{}}
	for _, p := range res.Plans {
		tp := tenantPlanJSON{TenantPlan: p, Changes: []changeJSON{}}
		for _, ch := range p.Changes {
			cj := changeJSON{Change: ch}
			switch {
			case ch.Desired != nil:
				cj.Source = ch.Desired.Source.String()
			case ch.Applied != nil:
				cj.Source = ch.Applied.Source.String()
			}
			if ch.Action == reconciler.ChangeCreate || ch.Action == reconciler.ChangeUpdate && !ch.SourceOnly {
				if before, ok := appliedTrigger(ch.Applied); ok {
					cj.RunsBefore = reconciler.NextFires(before, now, fireTimes)
				}
				cj.RunsAfter = reconciler.NextFires(ch.Desired.Spec.Trigger, now, fireTimes)
			}
			tp.Changes = append(tp.Changes, cj)
		}
		out.Tenants = append(out.Tenants, tp)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}
