package reconciler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// TreeSource reads the definitions tree (definitions.Loader).
type TreeSource interface {
	// Tenants lists the tenant directories and the problems of the tree's
	// top level; it fails when the tree itself cannot be read.
	Tenants() ([]string, []Problem, error)
	// LoadTenant reads and validates one tenant directory.
	LoadTenant(tenant string) *TenantTree
	// Forget drops what the source keeps of earlier reads, so that the
	// next read of each file parses it afresh (a rescan).
	Forget()
}

// Store holds the applied state (store.Store).
type Store interface {
	// LoadAll returns every known tenant's applied state; withSpec also
	// loads the canonical documents that field-level plans compare.
	LoadAll(ctx context.Context, withSpec bool) (map[string]AppliedTenant, error)
	// Apply writes one tenant's plan in one transaction and reports
	// whether anything needed writing.
	Apply(ctx context.Context, plan TenantPlan, current AppliedTenant) (bool, error)
}

// Reconciler compares the tree with the applied state and, when asked,
// applies the difference, one tenant at a time.
type Reconciler struct {
	Tree   TreeSource
	Store  Store
	Budget RetireBudget
	// Workers bounds how many tenants are read and applied at once.
	Workers int
	// Part is how many tenants an apply reads, diffs and writes with one
	// load of their applied state (0: DefaultApplyPart): a pass over a
	// large tree holds the applied state of one part, not of every
	// tenant.
	Part int

	// clean is what this reconciler knows of the tenants whose last
	// apply wrote nothing (unchanged.go).
	mu    sync.Mutex
	clean map[string]cleanTenant
}

// Result is the outcome of one reconcile (or plan).
type Result struct {
	StartedAt, FinishedAt time.Time
	// Plans holds one plan per tenant in the tree or the store, by tenant.
	Plans []TenantPlan
	// TopProblems are problems of the tree's top level (misplaced files,
	// invalid tenant directory names).
	TopProblems []Problem
	Counts      Counts
	// Written counts the tenants whose stored state changed.
	Written int
	// WrittenTenants names them, sorted.
	WrittenTenants []string
	// Failed maps tenants whose apply failed to the error.
	Failed map[string]error
	// Commit is the git commit the tree was at, when the caller knows it
	// (plan shows it); "" otherwise.
	Commit string
	// Skipped counts the tenants a full apply found unchanged by their
	// stamps and applied versions, and neither read nor diffed; their
	// plans are those of their last diff.
	Skipped int
}

// Problems returns every problem of the result, sorted.
func (r *Result) Problems() []Problem {
	ps := slices.Clone(r.TopProblems)
	for _, p := range r.Plans {
		ps = append(ps, p.Problems...)
	}
	SortProblems(ps)
	return ps
}

// Plan computes every tenant's plan without writing anything.
func (r *Reconciler) Plan(ctx context.Context, withSpec bool) (*Result, error) {
	return r.run(ctx, withSpec, false, nil)
}

// Apply computes every tenant's plan and applies it. A tenant whose apply
// fails is reported in Result.Failed and does not stop the others; the
// returned error is for failures that stop the whole reconcile (the tree
// or the store cannot be read), in which case nothing was applied.
func (r *Reconciler) Apply(ctx context.Context) (*Result, error) {
	return r.run(ctx, false, true, nil)
}

// ApplyTenants is Apply limited to the named tenants (a watch saw them
// change); a tenant whose directory is gone is planned as such.
func (r *Reconciler) ApplyTenants(ctx context.Context, tenants []string) (*Result, error) {
	if tenants == nil {
		tenants = []string{}
	}
	return r.run(ctx, false, true, tenants)
}

func (r *Reconciler) run(ctx context.Context, withSpec, apply bool, only []string) (*Result, error) {
	res := &Result{StartedAt: time.Now(), Failed: map[string]error{}}
	tenants, top, err := r.Tree.Tenants()
	if err != nil {
		return nil, err
	}
	res.TopProblems = top
	// With a store that reads the applied versions and loads single
	// tenants, and a tree that stamps them, an apply skips every tenant
	// it found unchanged before (see unchanged.go) and loads the applied
	// state of the others only.
	ts, byTenant := r.Store.(TenantStore)
	stamper, stamps := r.Tree.(TenantStamper)
	skipping := byTenant && stamps && apply
	var known []string
	var versions map[string]int64
	var applied map[string]AppliedTenant
	if byTenant && apply {
		if versions, err = ts.AppliedVersions(ctx); err != nil {
			return nil, err
		}
		known = slices.Collect(maps.Keys(versions))
	} else {
		if applied, err = r.Store.LoadAll(ctx, withSpec); err != nil {
			return nil, err
		}
		known = slices.Collect(maps.Keys(applied))
	}
	inTree := make(map[string]bool, len(tenants))
	for _, t := range tenants {
		inTree[t] = true
	}
	names := slices.Clone(tenants)
	for _, t := range known {
		if !inTree[t] {
			names = append(names, t)
		}
	}
	if only != nil {
		names = slices.DeleteFunc(names, func(n string) bool { return !slices.Contains(only, n) })
	}
	slices.Sort(names)

	plans := make([]TenantPlan, len(names))
	todo := make([]int, 0, len(names)) // the tenants to read and diff, by index
	if skipping && only == nil {
		kept := make([]bool, len(names))
		if err := r.each(ctx, len(names), func(i int) {
			kept[i] = r.unchanged(names[i], inTree[names[i]], stamper, versions, &plans[i])
		}); err != nil {
			return nil, err
		}
		for i := range names {
			if kept[i] {
				res.Skipped++
			} else {
				todo = append(todo, i)
			}
		}
	} else {
		for i := range names {
			todo = append(todo, i)
		}
	}
	// The tenants to read go in parts (Part), each part's applied state
	// loaded (one query) as it starts.
	size := len(todo)
	if byTenant && apply {
		size = min(size, cmp.Or(r.Part, DefaultApplyPart))
	}
	var mu sync.Mutex
	for from := 0; from < len(todo); from += size {
		part := todo[from:min(from+size, len(todo))]
		if byTenant && apply {
			load := make([]string, len(part))
			for j, i := range part {
				load[j] = names[i]
			}
			if applied, err = ts.LoadTenants(ctx, load, withSpec); err != nil {
				return nil, err
			}
		}
		err = r.each(ctx, len(part), func(j int) {
			i := part[j]
			name := names[i]
			tree := &TenantTree{Tenant: name, Stamp: absentStamp} // a vanished directory: nothing desired
			if inTree[name] {
				tree = r.Tree.LoadTenant(name)
			}
			cur := applied[name]
			if cur.Definitions == nil {
				cur = AppliedTenant{Tenant: name, Definitions: map[string]Applied{}}
			}
			plan := Diff(tree, cur, r.Budget)
			plans[i] = plan
			if !apply {
				return
			}
			written, err := r.Store.Apply(ctx, plan, cur)
			// Applied: what follows reads what the plan did, not the
			// definitions it points to.
			slim := plan.withoutDefinitions()
			plans[i] = slim
			if skipping {
				v, ok := versions[name]
				r.remember(name, tree.Stamp, v, ok, slim, err == nil && !written)
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				res.Failed[name] = err
			case written:
				res.Written++
				res.WrittenTenants = append(res.WrittenTenants, name)
			}
		})
		if err != nil {
			return nil, err
		}
	}
	res.Plans = plans
	slices.Sort(res.WrittenTenants)
	for _, p := range plans {
		if res.Failed[p.Tenant] == nil {
			res.Counts.Add(p.Counts())
		}
	}
	res.Counts.Errors += len(top)
	res.FinishedAt = time.Now()
	return res, nil
}

// DefaultApplyPart is Reconciler.Part's default.
const DefaultApplyPart = 500

// each calls fn(0) … fn(n-1), Workers at a time, until ctx ends; it
// returns ctx's error when it ended first.
func (r *Reconciler) each(ctx context.Context, n int, fn func(i int)) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, r.Workers))
	for i := range n {
		g.Go(func() error {
			if gctx.Err() != nil {
				return gctx.Err()
			}
			fn(i)
			return nil
		})
	}
	return g.Wait()
}

// Err summarizes the tenants whose apply failed, or returns nil.
func (r *Result) Err() error {
	if len(r.Failed) == 0 {
		return nil
	}
	var errs []error
	for _, t := range slices.Sorted(maps.Keys(r.Failed)) {
		errs = append(errs, r.Failed[t])
	}
	return errors.Join(errs...)
}

// Pending reports whether any plan would write a change.
func (r *Result) Pending() bool {
	return slices.ContainsFunc(r.Plans, TenantPlan.Pending)
}

// Summary is a one-line account of the result's counts.
func (r *Result) Summary() string {
	c := r.Counts
	parts := []string{
		fmt.Sprintf("%d to create", c.Created), fmt.Sprintf("%d to update", c.Updated),
		fmt.Sprintf("%d to retire", c.Retired), fmt.Sprintf("%d unchanged", c.Unchanged),
	}
	if c.Held > 0 {
		parts = append(parts, fmt.Sprintf("%d retirements held", c.Held))
	}
	if c.Errors > 0 {
		parts = append(parts, fmt.Sprintf("%d problems", c.Errors))
	}
	return strings.Join(parts, ", ")
}
