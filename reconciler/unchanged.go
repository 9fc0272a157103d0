package reconciler

import "context"

// TenantStamper is a TreeSource that tells cheaply whether a tenant's
// files are as they were at a load (definitions.Loader, when it reuses
// parsed files).
type TenantStamper interface {
	// TenantStamp returns the TenantTree.Stamp a load of the tenant would
	// have now, or "" when only a load can tell.
	TenantStamp(tenant string) string
}

// TenantStore is a Store that reads every tenant's applied version and
// loads the applied state of some tenants only (store.Store).
type TenantStore interface {
	Store
	// AppliedVersions returns every known tenant's applied version: a
	// counter that moves whenever an apply changes what its app serves.
	AppliedVersions(ctx context.Context) (map[string]int64, error)
	// LoadTenants returns the named tenants' applied state, by tenant;
	// a tenant the store does not know is left out.
	LoadTenants(ctx context.Context, tenants []string, withSpec bool) (map[string]AppliedTenant, error)
}

// absentStamp is the stamp of a tenant directory that is not in the tree.
const absentStamp = "absent"

// cleanTenant is a tenant whose last apply wrote nothing: the stamp of the
// tree it read, the tenant's applied version then, and the plan it made
// (its changes without the definitions they point to).
type cleanTenant struct {
	stamp   string
	version int64
	known   bool
	plan    TenantPlan
}

// unchanged reports whether a tenant is as the last apply found it, which
// wrote nothing: its files' stamp and its applied version did not move.
// Then *plan is set to that apply's plan, which a diff would make again.
//
// A change the watcher missed still moves the stamp (any write moves a
// file's ctime or inode; an added, removed or renamed file changes the
// files found), so the tenant is read and diffed; a change to the applied
// state (another writer, a previous leader) moves its version.
func (r *Reconciler) unchanged(tenant string, inTree bool, tree TenantStamper, versions map[string]int64, plan *TenantPlan) bool {
	r.mu.Lock()
	c, ok := r.clean[tenant]
	r.mu.Unlock()
	if !ok {
		return false
	}
	if v, known := versions[tenant]; known != c.known || v != c.version {
		return false
	}
	stamp := absentStamp
	if inTree {
		stamp = tree.TenantStamp(tenant)
	}
	if stamp == "" || stamp != c.stamp {
		return false
	}
	*plan = c.plan
	return true
}

// remember records what an apply of a tenant found (plan, without its
// definitions: TenantPlan.withoutDefinitions): when it wrote
// nothing, the tenant may be skipped until its stamp or version moves;
// otherwise the next full apply reads and diffs it again.
func (r *Reconciler) remember(tenant, stamp string, version int64, known bool, plan TenantPlan, clean bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !clean || stamp == "" {
		delete(r.clean, tenant)
		return
	}
	if r.clean == nil {
		r.clean = map[string]cleanTenant{}
	}
	r.clean[tenant] = cleanTenant{stamp: stamp, version: version, known: known, plan: plan}
}

// withoutDefinitions is p as what follows an apply reads it: the changes'
// actions, codes, holds and kept versions' files (pass.go, notice.go),
// without the definitions they point to, so that neither a remembered
// plan nor a pass over a large tree holds every parsed definition.
func (p TenantPlan) withoutDefinitions() TenantPlan {
	out := p
	out.Changes = make([]Change, len(p.Changes))
	for i, ch := range p.Changes {
		if ch.Kept != "" && ch.Applied != nil {
			ch.Applied = &Applied{Code: ch.Applied.Code, Source: ch.Applied.Source}
		} else {
			ch.Applied = nil
		}
		ch.Desired, ch.Fields = nil, nil
		out.Changes[i] = ch
	}
	return out
}
