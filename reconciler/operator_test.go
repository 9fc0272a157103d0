package reconciler_test

import (
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// countLines counts the log lines holding every one of parts.
func countLines(log string, parts ...string) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		all := line != ""
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

// TestControllerWarnsProblemsOncePerChange: each problem of an invalid
// reconcile is logged at WARN with path:line:col and its message, once
// per change of the tree: a resync that finds the same problems logs
// none again; a new problem is logged. An invalid reconcile does not
// advance the last-success timestamp, and last_reconcile_successful says
// 0 until a reconcile applies with no problem.
func TestControllerWarnsProblemsOncePerChange(t *testing.T) {
	r := newRig(t, map[string]string{
		"acme/tasks.yaml":   controllerTask("nightly", "0 2 * * *"),
		"acme/broken.yaml":  "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: broken}\nspec:\n  trigger: {cron: \"not a cron\"}\n  type: api_call\n  config: {url: 'https://x.example.com/'}\n",
		"globex/tasks.yaml": controllerTask("sync", "*/5 * * * *"),
	}, rigOptions{})
	r.run(t)
	if rec := r.lastReconcile(t); rec.Result != reconciler.ReconcileInvalid {
		t.Fatalf("first reconcile = %s, want invalid", rec.Result)
	}
	problem := `acme/broken.yaml:5:`
	if got := countLines(r.log.String(), "level=WARN", problem, "cron"); got != 1 {
		t.Fatalf("WARN lines naming %s = %d, want 1 in:\n%s", problem, got, r.log.String())
	}
	if got := r.metric("tasksync_last_reconcile_success_timestamp_seconds", ""); got > 0 {
		t.Errorf("tasksync_last_reconcile_success_timestamp_seconds = %v after an invalid reconcile, want 0", got)
	}
	if got := r.metric("tasksync_last_reconcile_successful", ""); got != 0 {
		t.Errorf("tasksync_last_reconcile_successful = %v after an invalid reconcile, want 0", got)
	}

	// Two resyncs that find the same problem log it no more.
	for i := 2; i <= 3; i++ {
		r.change(t, reconciler.TreeChange{Full: true})
		waittest.For(t, "the resync counted", 30*time.Second, func() bool { return r.reconciles(reconciler.ReconcileInvalid) == float64(i) })
	}
	if got := countLines(r.log.String(), "level=WARN", problem); got != 1 {
		t.Errorf("WARN lines naming %s after two resyncs = %d, want still 1 in:\n%s", problem, got, r.log.String())
	}

	// A changed problem is logged once more.
	r.write(t, "acme/broken.yaml", "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: broken}\nspec:\n  trigger: {cron: \"0 2 * * *\"}\n  type: api_call\n  config: {url: 'ftp://x.example.com/'}\n")
	r.change(t, reconciler.TreeChange{Tenants: []string{"acme"}})
	waittest.For(t, "the new problem logged", 30*time.Second, func() bool {
		return countLines(r.log.String(), "level=WARN", "acme/broken.yaml:7:") == 1
	})

	// Fixed: the reconcile succeeds and the timestamp advances.
	r.write(t, "acme/broken.yaml", controllerTask("broken", "0 3 * * *"))
	r.change(t, reconciler.TreeChange{Tenants: []string{"acme"}})
	waittest.For(t, "a successful reconcile", 30*time.Second, func() bool { return r.reconciles(reconciler.ReconcileSuccess) == 1 })
	if got := r.metric("tasksync_last_reconcile_success_timestamp_seconds", ""); got < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("tasksync_last_reconcile_success_timestamp_seconds = %v after a success, want now", got)
	}
	if got := r.metric("tasksync_last_reconcile_successful", ""); got != 1 {
		t.Errorf("tasksync_last_reconcile_successful = %v after a success, want 1", got)
	}
}

// TestControllerHeldRetirementsWarnAndRelease: retirements the prune
// budget holds are logged at WARN, once, naming what is held and how to
// release it; a TenantSettings document raising the tenant's budget,
// added to the tree, releases them on the next change.
func TestControllerHeldRetirementsWarnAndRelease(t *testing.T) {
	r := newRig(t, map[string]string{
		"acme/a.yaml": controllerTask("alpha", "0 2 * * *"),
		"acme/b.yaml": controllerTask("beta", "0 3 * * *"),
	}, rigOptions{budget: "half"})
	r.run(t)

	r.remove(t, "acme/a.yaml")
	r.remove(t, "acme/b.yaml")
	r.write(t, "acme/c.yaml", controllerTask("gamma", "0 4 * * *"))
	r.change(t, reconciler.TreeChange{Tenants: []string{"acme"}})
	waittest.For(t, "the retirements held", 30*time.Second, func() bool { return r.metric("tasksync_retire_held", "acme") == 2 })
	log := r.log.String()
	if got := countLines(log, "level=WARN", "held", "alpha", "beta", "maxRetire"); got != 1 {
		t.Fatalf("WARN lines about the held retirements = %d, want 1 naming them and how to release them, in:\n%s", got, log)
	}
	r.change(t, reconciler.TreeChange{Full: true})
	waittest.For(t, "the resync counted", 30*time.Second, func() bool { return r.reconciles(reconciler.ReconcileSuccess) == 3 })
	if got := countLines(r.log.String(), "level=WARN", "held", "alpha"); got != 1 {
		t.Errorf("WARN lines about the held retirements after a resync = %d, want still 1", got)
	}

	r.write(t, "acme/tenant.yaml", "apiVersion: tasksync/v1\nkind: TenantSettings\nspec:\n  maxRetire: all\n")
	r.change(t, reconciler.TreeChange{Tenants: []string{"acme"}})
	waittest.For(t, "the held retirements released", 30*time.Second, func() bool { return r.metric("tasksync_retire_held", "acme") == 0 })
	if rec := r.lastReconcile(t); rec.Result != reconciler.ReconcileSuccess || rec.Counts.Retired != 2 {
		t.Errorf("last reconcile = %s with %+v, want success with 2 retired", rec.Result, rec.Counts)
	}
}

// TestControllerRescan: a rescan request (SIGHUP in the daemon) makes
// the leader reconcile the whole tree, logged as such.
func TestControllerRescan(t *testing.T) {
	rescan := make(chan struct{}, 1)
	r := newRig(t, map[string]string{"acme/tasks.yaml": controllerTask("nightly", "0 2 * * *")}, rigOptions{rescan: rescan})
	r.run(t)
	rescan <- struct{}{}
	waittest.For(t, "a second reconcile", 30*time.Second, func() bool { return r.reconciles(reconciler.ReconcileSuccess) == 2 })
	if !strings.Contains(r.log.String(), "rescan") {
		t.Errorf("no rescan in the log:\n%s", r.log.String())
	}
}
