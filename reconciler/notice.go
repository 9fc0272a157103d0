package reconciler

import (
	"slices"
	"strings"
	"sync"
)

// notices remembers what the operator was last told about each tenant
// (its problems, its held retirements), so that a resync that finds the
// same state logs nothing again: one WARN line per problem per change of
// the tree, not per resync.
type notices struct {
	mu sync.Mutex
	// problems and held map a tenant ("" for the tree's top level) to
	// what was last logged of it: its problem lines, its held codes.
	problems map[string]string
	held     map[string]string
}

// changed records now as what was logged under key and reports whether
// it differs from what was logged before.
func changed(m map[string]string, key, now string) bool {
	before, ok := m[key]
	m[key] = now
	return !ok && now != "" || ok && before != now
}

// noticeChanges logs, at WARN, the problems and held retirements of the
// tenants res covers that differ from what was last logged of them, and
// reports whether the tree as last seen has no problem at all.
func (c *Controller) noticeChanges(res *Result) (clean bool) {
	n := &c.notices
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.problems == nil {
		n.problems, n.held = map[string]string{}, map[string]string{}
	}
	c.noticeProblems("", res.TopProblems)
	for _, p := range res.Plans {
		c.noticeProblems(p.Tenant, p.Problems)
		if res.Failed[p.Tenant] != nil {
			continue // nothing of it was applied; the error is logged
		}
		var held []string
		for _, ch := range p.Changes {
			if ch.Held {
				held = append(held, ch.Code)
			}
		}
		if changed(n.held, p.Tenant, strings.Join(held, " ")) && len(held) > 0 {
			c.log.Warn("retirements held by the prune budget: to release them, raise the tenant's budget with spec.maxRetire in a TenantSettings document of its directory (docs/format.md), or restore the definitions",
				"tenant", p.Tenant, "held", held, "max_retire", p.Budget.String())
		}
	}
	for _, lines := range n.problems {
		if lines != "" {
			return false
		}
	}
	return true
}

// noticeProblems logs a tenant's problems at WARN, one line each, when
// they differ from those last logged; the caller holds c.notices.mu.
func (c *Controller) noticeProblems(tenant string, ps []Problem) {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String() // escaped: one printable line
	}
	slices.Sort(lines)
	if !changed(c.notices.problems, tenant, strings.Join(lines, "\n")) {
		return
	}
	if len(lines) == 0 {
		c.log.Info("problems fixed", "tenant", tenant)
		return
	}
	for _, l := range lines {
		if tenant == "" {
			c.log.Warn("problem: the file keeps its last applied version", "problem", l)
		} else {
			c.log.Warn("problem: the file keeps its last applied version", "tenant", tenant, "problem", l)
		}
	}
}
