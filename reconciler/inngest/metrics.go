package inngest

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/riveredge/tasksync/reconciler"
)

// Sync results, the values of tasksync_inngest_sync_total's result label.
const (
	SyncSuccess = "success" // the server accepted the app
	SyncError   = "error"   // the server refused it or could not be reached
	SyncDrift   = "drift"   // a verification found functions missing or left over
)

// Run statuses as the run metrics count them: the store's, plus runs that
// were skipped because they must not execute.
const runSkipped = "skipped"

// attemptRetrying is the status of an attempt that failed and will be
// retried, in tasksync_task_attempts_total.
const attemptRetrying = "retrying"

type metrics struct {
	syncs       *prometheus.CounterVec
	runs        *prometheus.CounterVec
	attempts    *prometheus.CounterVec
	runDuration *prometheus.HistogramVec
	panics      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		syncs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tasksync_inngest_sync_total",
			Help: "Syncs of tenants' Inngest apps, and verifications that found drift, by result.",
		}, []string{"tenant", "result"}),
		runs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tasksync_task_runs_total",
			Help: "Runs by final outcome (succeeded, failed; skipped: must not execute), counted once per run when its last attempt ends.",
		}, []string{"tenant", "kind", "status"}),
		attempts: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tasksync_task_attempts_total",
			Help: "Run attempts by outcome: succeeded, retrying (failed and will be retried), failed (failed and was the run's last).",
		}, []string{"tenant", "kind", "status"}),
		panics: f.NewCounter(prometheus.CounterOpts{
			Name: "tasksync_panics_total",
			Help: "Panics recovered while serving: in the HTTP handlers, the Inngest functions and the runs' actions. Each is logged with its tenant, function and run.",
		}),
		runDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tasksync_task_run_duration_seconds",
			Help:    "Duration of run attempts, from the attempt's start (a workflow attempt's first call) to its end.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10), // 10 ms to ~43 min
		}, []string{"tenant", "kind"}),
	}
}

// runsFrom makes a tenant's failed-run counter of a kind present at 0
// before its first run ends, so that an alert on its increase sees the
// first failed run. The other statuses' series appear with their first
// run: a series costs some 600 bytes, for every tenant, and no alert
// reads them.
func (m *metrics) runsFrom(tenant, kind string) {
	m.runs.WithLabelValues(tenant, kind, string(reconciler.RunFailed))
}
