package reconciler

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// ChangeAction is what a reconcile does with one definition.
type ChangeAction string

// The change actions.
const (
	ChangeCreate    ChangeAction = "create"
	ChangeUpdate    ChangeAction = "update"
	ChangeRetire    ChangeAction = "retire"
	ChangeUnchanged ChangeAction = "unchanged"
)

// Change is the planned fate of one definition of a tenant.
type Change struct {
	Action ChangeAction `json:"action"`
	Code   string       `json:"code"`
	Kind   Kind         `json:"kind"`
	// Held marks a retirement the prune budget holds back.
	Held bool `json:"held,omitempty"`
	// Kept says why an applied definition stays as it is although the tree
	// does not hold a valid version of it (last known good).
	Kept string `json:"kept,omitempty"`
	// SourceOnly marks an update that only moves the definition to another
	// file or line.
	SourceOnly bool          `json:"source_only,omitempty"`
	Fields     []FieldChange `json:"fields,omitempty"`

	Desired *Definition `json:"-"`
	Applied *Applied    `json:"-"`
}

// FieldChange is one field of a definition that an update changes, by its
// path in the canonical document ("trigger.cron", "steps[1].if").
type FieldChange struct {
	Path   string          `json:"path"`
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
}

// TenantPlan is every change a reconcile would make to one tenant.
type TenantPlan struct {
	Tenant  string   `json:"tenant"`
	Changes []Change `json:"changes"`
	// Problems are the tenant's current validation problems.
	Problems []Problem `json:"problems,omitempty"`
	// Warnings are the tenant's current warnings (TenantTree.Warnings):
	// they hold nothing back, plan shows them.
	Warnings []Problem `json:"warnings,omitempty"`
	// ReadError: the tenant's directory could not be read completely, so
	// nothing of it is applied or retired.
	ReadError bool `json:"read_error,omitempty"`
	// Budget is the prune budget the plan was made with: the tenant's
	// TenantSettings spec.maxRetire, or the operator's default.
	Budget RetireBudget `json:"-"`
}

// Counts sums a plan's changes.
type Counts struct {
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Retired   int `json:"retired"`
	Unchanged int `json:"unchanged"`
	Held      int `json:"held"`
	Errors    int `json:"errors"`
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Created += o.Created
	c.Updated += o.Updated
	c.Retired += o.Retired
	c.Unchanged += o.Unchanged
	c.Held += o.Held
	c.Errors += o.Errors
}

// Counts sums p's changes. A held retirement counts as held, not retired.
func (p TenantPlan) Counts() Counts {
	c := Counts{Errors: len(p.Problems)}
	for _, ch := range p.Changes {
		switch {
		case ch.Action == ChangeRetire && ch.Held:
			c.Held++
		case ch.Action == ChangeCreate:
			c.Created++
		case ch.Action == ChangeUpdate:
			c.Updated++
		case ch.Action == ChangeRetire:
			c.Retired++
		default:
			c.Unchanged++
		}
	}
	return c
}

// Pending reports whether applying p would write anything.
func (p TenantPlan) Pending() bool {
	c := p.Counts()
	return c.Created+c.Updated+c.Retired > 0
}

// Diff plans how to bring a tenant's applied state to what its tree says.
//
// Definitions of files that failed to load stay as they are applied (last
// known good), as do all of a tenant whose directory could not be read
// completely. A definition that moved to another file is an update of its
// source. Retirements beyond the budget are held: the tenant's own
// (TenantSettings spec.maxRetire) when its tree sets one, else budget.
func Diff(tree *TenantTree, applied AppliedTenant, budget RetireBudget) TenantPlan {
	if tree.Settings != nil && tree.Settings.MaxRetire != nil {
		budget = *tree.Settings.MaxRetire
	}
	plan := TenantPlan{Tenant: tree.Tenant, Problems: tree.Problems, Warnings: tree.Warnings, ReadError: tree.ReadError, Budget: budget}
	if tree.ReadError {
		for _, a := range sortedApplied(applied) {
			plan.Changes = append(plan.Changes, Change{Action: ChangeUnchanged, Code: a.Code, Kind: a.Kind, Applied: &a,
				Kept: "the tenant directory could not be read completely"})
		}
		return plan
	}
	failedFiles := map[string]bool{}
	failedCodes := map[string]string{}
	for _, f := range tree.Files {
		if f.Failed {
			failedFiles[f.Path] = true
			for _, c := range f.Codes {
				failedCodes[c] = f.Path
			}
		}
	}
	desired := map[string]bool{}
	for i := range tree.Definitions {
		d := &tree.Definitions[i]
		code := d.Metadata.Code
		desired[code] = true
		a, ok := applied.Definitions[code]
		switch {
		case !ok:
			plan.Changes = append(plan.Changes, Change{Action: ChangeCreate, Code: code, Kind: d.Kind, Desired: d})
		case a.Hash == d.Hash && a.Source == d.Source:
			plan.Changes = append(plan.Changes, Change{Action: ChangeUnchanged, Code: code, Kind: d.Kind, Desired: d, Applied: &a})
		default:
			ch := Change{Action: ChangeUpdate, Code: code, Kind: d.Kind, Desired: d, Applied: &a}
			if a.Hash == d.Hash {
				ch.SourceOnly = true
			}
			if a.Source != d.Source {
				ch.Fields = append(ch.Fields, FieldChange{Path: "source", Before: quote(a.Source.String()), After: quote(d.Source.String())})
			}
			if !ch.SourceOnly {
				ch.Fields = append(ch.Fields, specChanges(a, d)...)
			}
			plan.Changes = append(plan.Changes, ch)
		}
	}
	var retire []int
	for _, a := range sortedApplied(applied) {
		if desired[a.Code] {
			continue
		}
		ch := Change{Action: ChangeRetire, Code: a.Code, Kind: a.Kind, Applied: &a}
		switch {
		case failedFiles[a.Source.Path]:
			ch.Action, ch.Kept = ChangeUnchanged, fmt.Sprintf("%s has errors; its last valid version stays applied", a.Source.Path)
		case failedCodes[a.Code] != "":
			ch.Action, ch.Kept = ChangeUnchanged, fmt.Sprintf("%s has errors; its last valid version stays applied", failedCodes[a.Code])
		default:
			retire = append(retire, len(plan.Changes))
		}
		plan.Changes = append(plan.Changes, ch)
	}
	if len(retire) > 0 && !budget.Allows(len(retire), len(applied.Definitions)) {
		for _, i := range retire {
			plan.Changes[i].Held = true
		}
	}
	slices.SortFunc(plan.Changes, func(a, b Change) int { return strings.Compare(a.Code, b.Code) })
	return plan
}

func sortedApplied(a AppliedTenant) []Applied {
	out := make([]Applied, 0, len(a.Definitions))
	for _, d := range a.Definitions {
		out = append(out, d)
	}
	slices.SortFunc(out, func(x, y Applied) int { return strings.Compare(x.Code, y.Code) })
	return out
}

func quote(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// specChanges lists the fields that differ between the applied document
// and the desired one. Without the applied document (not loaded) it
// returns nothing.
func specChanges(a Applied, d *Definition) []FieldChange {
	if len(a.Spec) == 0 {
		return nil
	}
	after, err := d.Canonical()
	if err != nil {
		return nil
	}
	var bv, av any
	if json.Unmarshal(a.Spec, &bv) != nil || json.Unmarshal(after, &av) != nil {
		return nil
	}
	before, now := map[string]any{}, map[string]any{}
	flatten("", bv, before)
	flatten("", av, now)
	paths := map[string]bool{}
	for p := range before {
		paths[p] = true
	}
	for p := range now {
		paths[p] = true
	}
	var out []FieldChange
	for _, p := range slices.Sorted(maps.Keys(paths)) {
		b, bok := before[p]
		n, nok := now[p]
		bj, _ := json.Marshal(b)
		nj, _ := json.Marshal(n)
		if bok && nok && bytes.Equal(bj, nj) {
			continue
		}
		fc := FieldChange{Path: p}
		if bok {
			fc.Before = bj
		}
		if nok {
			fc.After = nj
		}
		out = append(out, fc)
	}
	return out
}

// flatten maps every scalar (and empty container) of v to its path. The
// "spec." prefix is dropped: "trigger.cron" reads better than
// "spec.trigger.cron".
func flatten(prefix string, v any, out map[string]any) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 && prefix != "" {
			out[prefix] = x
		}
		for k, e := range x {
			p := k
			switch {
			case prefix == "" && k == "spec":
				flatten("", e, out)
				continue
			case prefix != "":
				p = prefix + "." + k
			}
			flatten(p, e, out)
		}
	case []any:
		if len(x) == 0 {
			out[prefix] = x
		}
		for i, e := range x {
			flatten(prefix+"["+strconv.Itoa(i)+"]", e, out)
		}
	default:
		out[prefix] = x
	}
}

// RetireBudget bounds how many definitions one reconcile may retire in a
// tenant. The zero value is the default: hold the retirements when they
// would remove all of a tenant's definitions or more than half of them.
type RetireBudget struct {
	max   int  // with set: at most this many per tenant
	set   bool // a number was given
	unset bool // "all": no limit
}

// ParseRetireBudget reads --max-retire: "" or "half" (the default), "all"
// (no limit), or a number N (up to N retirements per tenant and
// reconcile, even all of a tenant's definitions).
func ParseRetireBudget(s string) (RetireBudget, error) {
	switch s {
	case "", "half":
		return RetireBudget{}, nil
	case "all":
		return RetireBudget{unset: true}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return RetireBudget{}, fmt.Errorf("max-retire must be half, all or a number of definitions, got %q", s)
	}
	return RetireBudget{max: n, set: true}, nil
}

// String is the flag form of b.
func (b RetireBudget) String() string {
	switch {
	case b.unset:
		return "all"
	case b.set:
		return strconv.Itoa(b.max)
	}
	return "half"
}

// Allows reports whether retiring n of a tenant's total definitions at
// once fits the budget.
func (b RetireBudget) Allows(n, total int) bool {
	switch {
	case b.unset:
		return true
	case b.set:
		return n <= b.max
	}
	return n < total && 2*n <= total
}
