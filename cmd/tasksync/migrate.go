package main

import (
	"context"
	"fmt"

	"github.com/riveredge/tasksync/internal/cli"
	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/store"
)

type migrateOptions struct{ dbOptions }

func migrateFlags(f *cli.FlagSet) {
	o := &migrateOptions{}
	o.dbOptions.flags(f)
	f.Opts = o
}

func runMigrate(ctx context.Context, c *cli.Invocation) error {
	o := c.Flags.Opts.(*migrateOptions)
	if len(c.Args) > 0 {
		return cli.UsageError("migrate takes no arguments")
	}
	st, err := o.open(ctx, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := st.Migrate(ctx)
	if err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintln(c.Stdout, "migrate: the database is up to date")
	} else {
		fmt.Fprintf(c.Stdout, "migrate: applied %s\n", reconciler.Plural(n, "migration"))
	}
	return nil
}
