package reconciler

import (
	"testing"
	"time"
)

func TestOneShotStatus(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	fired := now.Add(-time.Hour)
	cases := []struct {
		name  string
		facts OneShotFacts
		want  OneShotState
	}{
		{"ahead", OneShotFacts{At: now.Add(time.Minute), AppliedAt: now.Add(-time.Hour), Active: true}, OneShotScheduled},
		{"ahead, inactive", OneShotFacts{At: now.Add(time.Minute), AppliedAt: now.Add(-time.Hour)}, OneShotScheduled},
		{"fired", OneShotFacts{At: fired, AppliedAt: now.Add(-2 * time.Hour), Active: true, FiredAt: &fired, RunID: "01RUN"}, OneShotFired},
		{"passed before it was applied", OneShotFacts{At: now.Add(-time.Hour), AppliedAt: now.Add(-time.Minute), Active: true}, OneShotExpired},
		{"applied at its very time", OneShotFacts{At: now.Add(-time.Minute), AppliedAt: now.Add(-time.Minute), Active: true}, OneShotExpired},
		{"passed while inactive", OneShotFacts{At: now.Add(-time.Minute), AppliedAt: now.Add(-time.Hour)}, OneShotExpired},
		{"just passed, no run yet", OneShotFacts{At: now.Add(-10 * time.Second), AppliedAt: now.Add(-time.Hour), Active: true}, OneShotDue},
		{"passed long ago, no run", OneShotFacts{At: now.Add(-time.Hour), AppliedAt: now.Add(-2 * time.Hour), Active: true}, OneShotMissed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.facts.Status(now)
			if got.State != tc.want {
				t.Errorf("Status = %s, want %s", got.State, tc.want)
			}
			if (got.State == OneShotFired) != (got.FiredAt != nil && got.RunID != "") {
				t.Errorf("Status = %+v: fired_at and run_id go with fired, and only with it", got)
			}
		})
	}
}
