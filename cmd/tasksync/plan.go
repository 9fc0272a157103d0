package main

import (
	"context"
	"fmt"
	"time"

	"github.com/riveredge/tasksync/internal/cli"
	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/executor"
	"github.com/riveredge/tasksync/reconciler/store"
)

type planOptions struct {
	treeOptions
	format string
}

func planFlags(f *cli.FlagSet) {
	o := &planOptions{}
	o.treeOptions.flags(f)
	f.String(&o.format, "format", "TASKSYNC_FORMAT", formatText, "output `format`: text or json")
	f.Opts = o
}

func runPlan(ctx context.Context, c *cli.Invocation) error {
	o := c.Flags.Opts.(*planOptions)
	if len(c.Args) > 0 {
		return cli.UsageError("plan takes no arguments; the tree is --dir")
	}
	if o.format != formatText && o.format != formatJSON {
		return cli.UsageError("plan: --format must be text or json, got %q", o.format)
	}
	if err := o.check(); err != nil {
		return err
	}
	secrets := executor.NewSecrets(o.secretsDir, c.Getenv)
	if err := secrets.CheckDir(); err != nil {
		return &cli.ExitError{Code: cli.ExitUsage, Err: err}
	}
	o.grants = secrets.Grants(false)
	st, err := o.open(ctx, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.CheckSchema(ctx); err != nil {
		return err
	}
	tree, err := o.tree(0)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.Stderr, "plan: %s\n", o.describeTree(tree))
	r := &reconciler.Reconciler{Tree: tree, Store: st, Budget: o.budget, Workers: reconcileWorkers()}
	res, err := r.Plan(ctx, true)
	if err != nil {
		return err
	}
	res.Commit = tree.Revision().Commit
	now := time.Now()
	if o.format == formatJSON {
		err = res.WritePlanJSON(c.Stdout, now)
	} else {
		res.WritePlanText(c.Stdout, now)
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
		return &cli.ExitError{Code: cli.ExitUsage}
	}
	return nil
}
