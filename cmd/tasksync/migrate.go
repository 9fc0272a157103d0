package main

import (
	"context"
	"fmt"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/store"
)

type migrateOptions struct{ dbOptions }

func migrateFlags(f *flagSet) {
	o := &migrateOptions{}
	o.dbOptions.flags(f)
	f.opts = o
}

func runMigrate(ctx context.Context, c *invocation) error {
	o := c.flags.opts.(*migrateOptions)
	if len(c.args) > 0 {
		return usageError("migrate takes no arguments")
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
		fmt.Fprintln(c.stdout, "migrate: the database is up to date")
	} else {
		fmt.Fprintf(c.stdout, "migrate: applied %s\n", reconciler.Plural(n, "migration"))
	}
	return nil
}
