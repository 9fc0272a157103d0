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
	c.noticeProblems("", res.TopProblems, nil)
	for _, p := range res.Plans {
		c.noticeProblems(p.Tenant, p.Problems, keptVersions(p))
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

// keptVersions reports whether a problem of plan p is in a file of which
// an applied version stays applied (last known good): a file that a kept
// definition was applied from, or one that now defines a kept code.
// Every problem is, when the tenant's directory could not be read.
func keptVersions(p TenantPlan) func(Problem) bool {
	files, codes := map[string]bool{}, map[string]bool{}
	for _, ch := range p.Changes {
		if ch.Kept != "" && ch.Applied != nil {
			files[EscapeText(ch.Applied.Source.Path)] = true
			codes[ch.Code] = true
		}
	}
	return func(pr Problem) bool {
		return p.ReadError && len(files) > 0 || files[pr.Path] || pr.Code != "" && codes[pr.Code]
	}
}

// noticeProblems logs a tenant's problems at WARN, one line each, when
// they differ from those last logged, saying that the file keeps its last
// applied version only when kept (nil: never) says one is; the caller
// holds c.notices.mu.
func (c *Controller) noticeProblems(tenant string, ps []Problem, kept func(Problem) bool) {
	type line struct {
		text string
		kept bool
	}
	lines := make([]line, len(ps))
	texts := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = line{p.String(), kept != nil && kept(p)} // escaped: one printable line
		texts[i] = lines[i].text
	}
	slices.SortFunc(lines, func(a, b line) int { return strings.Compare(a.text, b.text) })
	slices.Sort(texts)
	if !changed(c.notices.problems, tenant, strings.Join(texts, "\n")) {
		return
	}
	if len(lines) == 0 {
		c.log.Info("problems fixed", "tenant", tenant)
		return
	}
	for _, l := range lines {
		msg := "problem: the file is not applied until it is fixed"
		if l.kept {
			msg = "problem: the file keeps its last applied version"
		}
		if tenant == "" {
			c.log.Warn(msg, "problem", l.text)
		} else {
			c.log.Warn(msg, "tenant", tenant, "problem", l.text)
		}
	}
}
