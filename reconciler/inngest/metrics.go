package inngest

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
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

type metrics struct {
	syncs       *prometheus.CounterVec
	runs        *prometheus.CounterVec
	runDuration *prometheus.HistogramVec
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
			Help: "Run attempts executed, by tenant, kind and status (succeeded, failed, skipped).",
		}, []string{"tenant", "kind", "status"}),
		runDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tasksync_task_run_duration_seconds",
			Help:    "Duration of run attempts.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10), // 10 ms to ~43 min
		}, []string{"tenant", "kind"}),
	}
}
