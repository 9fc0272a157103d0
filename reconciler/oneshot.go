package reconciler

import "time"

// OneShotState is where a one-shot (an `at` trigger) stands. A one-shot
// whose time has passed is history, never a problem.
type OneShotState string

// The one-shot states.
const (
	// OneShotScheduled: its time is ahead; it fires then if it is active.
	OneShotScheduled OneShotState = "scheduled"
	// OneShotDue: its time has passed since this version was applied and
	// no run is recorded yet; Inngest starts it within seconds.
	OneShotDue OneShotState = "due"
	// OneShotFired: this version has run (FiredAt, RunID).
	OneShotFired OneShotState = "fired"
	// OneShotMissed: its time passed more than the missed-fire grace ago,
	// after this version was applied, and no run is recorded (the event
	// was not delivered, or the run never started).
	OneShotMissed OneShotState = "missed"
	// OneShotExpired: its time had passed when this version was applied,
	// or passed while it was inactive: it fires nothing.
	OneShotExpired OneShotState = "expired"
)

// OneShotStatus is a one-shot's state as the status API shows it.
type OneShotStatus struct {
	State OneShotState `json:"state"`
	At    time.Time    `json:"at"`
	// FiredAt is when this version's run started, RunID its Inngest run
	// id; set when State is fired.
	FiredAt *time.Time `json:"fired_at,omitempty"`
	RunID   string     `json:"run_id,omitempty"`
}

// OneShotFacts are what the store knows of one version of a one-shot.
type OneShotFacts struct {
	At        time.Time  // the trigger's time
	AppliedAt time.Time  // when this version was applied
	Active    bool       // spec.active
	FiredAt   *time.Time // when its first run started; nil if none
	RunID     string     // that run's Inngest run id
}

// Status says where the one-shot stands at now. A run settles it as
// fired whatever the clocks say; without one, the time decides.
func (f OneShotFacts) Status(now time.Time) OneShotStatus {
	s := OneShotStatus{At: f.At}
	switch {
	case f.FiredAt != nil:
		s.State, s.FiredAt, s.RunID = OneShotFired, f.FiredAt, f.RunID
	case f.At.After(now):
		s.State = OneShotScheduled
	case !f.At.After(f.AppliedAt) || !f.Active:
		s.State = OneShotExpired
	case now.Sub(f.At) <= missedFireGrace:
		s.State = OneShotDue
	default:
		s.State = OneShotMissed
	}
	return s
}
