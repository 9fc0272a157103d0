package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ManualLookup is what ManualTarget reads of the applied state
// (store.Store).
type ManualLookup interface {
	Definition(ctx context.Context, tenant, code string) (DefinitionDetail, error)
	Retired(ctx context.Context, tenant, code string) (bool, error)
	Tenants(ctx context.Context) ([]string, error)
}

// ManualTarget reads the applied definition code of tenant that a manual
// run (`tasksync trigger`) is to start, before its event is sent, and
// refuses, saying why and what to do, a definition that is unknown,
// retired or inactive, or, when hash is given, whose applied spec_hash
// does not start with it. The function checks the version again when it
// runs (CheckManual).
func ManualTarget(ctx context.Context, q ManualLookup, tenant, code, hash string) (DefinitionDetail, error) {
	def, err := q.Definition(ctx, tenant, code)
	if errors.Is(err, ErrNotFound) {
		retired, rerr := q.Retired(ctx, tenant, code)
		switch {
		case rerr != nil:
			return def, rerr
		case retired:
			return def, fmt.Errorf("%s/%s is retired: a retired definition does not run (add it back to the tree to run it again)", tenant, code)
		}
		tenants, terr := q.Tenants(ctx)
		if terr != nil {
			return def, terr
		}
		if !slices.Contains(tenants, tenant) {
			return def, fmt.Errorf("there is no tenant %s: no definition of it has been applied (is its directory in the tree the daemon reads?)", tenant)
		}
		return def, fmt.Errorf("tenant %s has no definition %s (tasksync plan, or the status API's /v1/tenants/%s/definitions, lists them)", tenant, code, tenant)
	}
	if err != nil {
		return def, err
	}
	if !def.Active {
		return def, fmt.Errorf("%s/%s is inactive (active: false in %s:%d): an inactive definition does not run; set active: true to run it",
			tenant, code, def.SourcePath, def.SourceLine)
	}
	if hash != "" && !strings.HasPrefix(def.Hash, strings.ToLower(hash)) {
		return def, fmt.Errorf("%s/%s: the applied version is %s (revision %d), not %s: check the hash you gave (the status API's spec_hash), or, if it was edited since you read its hash, review the edit, then trigger again with the new spec_hash",
			tenant, code, def.Hash, def.Revision, hash)
	}
	return def, nil
}
