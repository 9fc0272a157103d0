package reconciler

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ServedChanged counts the tenants whose applied definitions r changed
// (created, updated, moved or retired): their apps would need a sync. A
// tenant whose stored problems or held retirements alone changed serves
// the same functions.
func (r *Result) ServedChanged() int {
	n := 0
	for _, p := range r.Plans {
		if p.Pending() && r.Failed[p.Tenant] == nil && slices.Contains(r.WrittenTenants, p.Tenant) {
			n++
		}
	}
	return n
}

// HeldTenants names the tenants of statuses whose retirements the prune
// budget holds.
func HeldTenants(statuses []TenantStatus) []string {
	var held []string
	for _, t := range statuses {
		if len(t.HeldRetires) > 0 {
			held = append(held, t.Tenant)
		}
	}
	return held
}

// NotLeaderError is why run --once is refused while a daemon leads
// (ErrNotLeader), and what to do; it suggests raising spec.maxRetire only
// when retirements are held (held names those tenants, HeldTenants).
func NotLeaderError(held []string) error {
	msg := "another replica holds the leader lock: a running daemon reconciles the tree itself and applies every change to it"
	if len(held) > 0 {
		quoted := make([]string, len(held))
		for i, t := range held {
			quoted[i] = strconv.Quote(t)
		}
		tenants := "tenant"
		if len(held) > 1 {
			tenants = "tenants"
		}
		msg += fmt.Sprintf(" (retirements are held for %s %s: to release them, raise spec.maxRetire in the tenant's TenantSettings document)",
			tenants, strings.Join(quoted, ", "))
	}
	return errors.New(msg + "; stop the daemon to run --once")
}
