package reconciler

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the controller's; the Inngest registry keeps the sync and
// run metrics.
type metrics struct {
	reconciles        *prometheus.CounterVec
	reconcileDuration prometheus.Histogram
	lastSuccess       prometheus.Gauge
	lastSuccessful    prometheus.Gauge
	syncFailed        *prometheus.GaugeVec
	apps              *prometheus.GaugeVec
	leader            prometheus.Gauge
	followerLoaded    prometheus.Gauge
	definitions       *prometheus.GaugeVec
	definitionErrors  *prometheus.GaugeVec
	changes           *prometheus.CounterVec
	retireHeld        *prometheus.GaugeVec
	missedFires       *prometheus.CounterVec
	abandoned         prometheus.Counter
	pruned            prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		reconciles: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tasksync_reconcile_total", Help: "Reconciles, by result (success, invalid, error).",
		}, []string{"result"}),
		reconcileDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name: "tasksync_reconcile_duration_seconds", Help: "Duration of reconciles.",
			Buckets: prometheus.ExponentialBuckets(0.005, 3, 10),
		}),
		lastSuccess: f.NewGauge(prometheus.GaugeOpts{
			Name: "tasksync_last_reconcile_success_timestamp_seconds", Help: "When a reconcile last applied with no error and the tree had no problem.",
		}),
		lastSuccessful: f.NewGauge(prometheus.GaugeOpts{
			Name: "tasksync_last_reconcile_successful", Help: "1 when the last reconcile applied with no error and the tree had no problem, else 0.",
		}),
		syncFailed: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tasksync_tenant_sync_failed", Help: "1 for each tenant whose app's last Inngest sync failed; its runs still use what Inngest has.",
		}, []string{"tenant"}),
		apps: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tasksync_inngest_apps", Help: "Tenants' Inngest apps by sync state (pending, synced, failed), as the store records them.",
		}, []string{"state"}),
		leader: f.NewGauge(prometheus.GaugeOpts{
			Name: "tasksync_leader", Help: "1 while this replica holds the leader lock.",
		}),
		followerLoaded: f.NewGauge(prometheus.GaugeOpts{
			Name: "tasksync_follower_last_load_success_timestamp_seconds",
			Help: "When this replica, not leading, last found its apps serving every tenant's applied state (0 before it has); the age of what a follower serves.",
		}),
		definitions: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tasksync_definitions", Help: "Applied definitions by tenant, kind and state (active, inactive).",
		}, []string{"tenant", "kind", "state"}),
		definitionErrors: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tasksync_definition_errors", Help: "Current validation problems of a tenant's tree.",
		}, []string{"tenant"}),
		changes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tasksync_changes_total", Help: "Changes applied, by tenant and action (create, update, retire).",
		}, []string{"tenant", "action"}),
		retireHeld: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tasksync_retire_held", Help: "Retirements the prune budget holds, by tenant.",
		}, []string{"tenant"}),
		missedFires: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tasksync_missed_fires_total", Help: "Scheduled fires (cron or interval instants) that no run was for, each counted once, by tenant.",
		}, []string{"tenant"}),
		abandoned: f.NewCounter(prometheus.CounterOpts{
			Name: "tasksync_run_attempts_abandoned_total", Help: "Run attempts the leader closed as failed because the replica running them stopped.",
		}),
		pruned: f.NewCounter(prometheus.CounterOpts{
			Name: "tasksync_run_records_pruned_total", Help: "Run attempt records deleted by the run retention.",
		}),
	}
}

// RegisterMetrics exposes the spool on reg: what waits for the database,
// and what was written or lost.
func (s *RunSpool) RegisterMetrics(reg prometheus.Registerer) {
	f := promauto.With(reg)
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tasksync_run_records_spooled", Help: "Run records kept in memory until the database answers.",
	}, func() float64 { return float64(s.Len()) })
	f.NewCounterFunc(prometheus.CounterOpts{
		Name: "tasksync_run_records_flushed_total", Help: "Spooled run records written once the database answered.",
	}, func() float64 { return float64(s.Flushed()) })
	f.NewCounterFunc(prometheus.CounterOpts{
		Name: "tasksync_run_records_dropped_total", Help: "Spooled run records lost: over the spool's bound, or refused by the database.",
	}, func() float64 { return float64(s.Dropped()) })
}

// syncQueue exposes how many tenants wait for their app's sync, or are
// being synced, on this replica (the leader; 0 on a follower).
func (m *metrics) syncQueue(reg prometheus.Registerer, q *syncQueue) {
	promauto.With(reg).NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tasksync_inngest_sync_queue", Help: "Tenants waiting for their app's Inngest sync or check on this replica, or being synced.",
	}, func() float64 { return float64(q.pending()) })
}
