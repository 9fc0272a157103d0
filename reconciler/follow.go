package reconciler

import (
	"context"
	"maps"
	"slices"
)

// reloadChanged serves, as its app, the applied definitions of every
// tenant whose applied version differs from the one loaded (every tenant
// when loaded is nil), and returns the versions now loaded. On an error
// it returns what it loaded so far with the error: those tenants are not
// loaded again, the others are tried at the next call.
//
// A version is read before the definitions it stands for: should the
// leader apply a change in between, the newer definitions are served
// under the older version, and loaded once more at the next call, never
// the other way round.
func (c *Controller) reloadChanged(ctx context.Context, loaded map[string]int64) (map[string]int64, error) {
	if c.opts.Apps == nil {
		return loaded, nil
	}
	versions, err := c.opts.State.AppliedVersions(ctx)
	if err != nil {
		return loaded, err
	}
	if scan, ok := c.opts.State.(DefinitionsScanner); ok && loaded == nil {
		// Every tenant: one query for all. The versions were read first,
		// as below.
		next := make(map[string]int64, len(versions))
		err := scan.EachTenantDefinitions(ctx, func(tenant string, defs []Definition) error {
			if err := c.opts.Apps.SetTenant(tenant, defs); err != nil {
				return err
			}
			if v, ok := versions[tenant]; ok {
				next[tenant] = v
			}
			return nil
		})
		return next, err
	}
	next := make(map[string]int64, len(versions))
	reloaded := 0
	for _, tenant := range slices.Sorted(maps.Keys(versions)) {
		v := versions[tenant]
		if was, ok := loaded[tenant]; ok && was == v {
			next[tenant] = v
			continue
		}
		defs, err := c.opts.State.Definitions(ctx, tenant)
		if err == nil {
			err = c.opts.Apps.SetTenant(tenant, defs)
		}
		if err != nil {
			// Keep what is served of the tenants not reached yet as it
			// was: their old versions stay recorded, and so are retried.
			for t, was := range loaded {
				if _, done := next[t]; !done {
					next[t] = was
				}
			}
			delete(next, tenant)
			return next, err
		}
		next[tenant] = v
		reloaded++
	}
	if reloaded > 0 && loaded != nil {
		c.log.Info("applied changes loaded", "tenants", reloaded)
	}
	return next, nil
}
