package reconciler

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// fireState is the applied state of the missed-fire checks: each
// definition's window, runs, count and catch-ups owed, recorded as the
// store does (conditional on the window's start).
type fireState struct {
	AppliedState
	defs []*fireDef
}

type fireDef struct {
	check   FireCheck // ID, Tenant, Code, Hash, Trigger, From
	missed  []time.Time
	pending []time.Time
	hash    string // the version pending is for
}

// AppliedVersions knows no versions: a pass then checks each app's own
// view.
func (s *fireState) AppliedVersions(context.Context) (map[string]int64, error) { return nil, nil }

// SetFiresDue records nothing: the fake returns every definition.
func (s *fireState) SetFiresDue(context.Context, map[int64]time.Time) error { return nil }

func (s *fireState) FireChecks(context.Context, time.Time) ([]FireCheck, error) {
	var out []FireCheck
	for _, d := range s.defs {
		c := d.check
		c.Fired = slices.Clone(d.check.Fired)
		if d.hash == c.Hash {
			c.Pending = slices.Clone(d.pending)
		}
		out = append(out, c)
	}
	return out, nil
}

func (s *fireState) RecordFireCheck(_ context.Context, c FireCheck, to time.Time, missed, pending []time.Time) (bool, error) {
	for _, d := range s.defs {
		if d.check.ID == c.ID && d.check.From.Equal(c.From) && d.check.Hash == c.Hash {
			d.check.From = to
			d.missed = append(d.missed, missed...)
			d.pending, d.hash = slices.Clone(pending), c.Hash
			return true, nil
		}
	}
	return false, nil
}

func (s *fireState) def(code string) *fireDef {
	for _, d := range s.defs {
		if d.check.Code == code {
			return d
		}
	}
	return nil
}

// fireApps is Inngest as the checks see it: up or not, and the catch-ups
// sent.
type fireApps struct {
	Apps
	up   bool
	sent []sentFire
}

type sentFire struct {
	at   time.Time
	fire Fire
}

var errDown = errors.New("connection refused")

func (a *fireApps) Views(context.Context) (map[string][]string, error) { return nil, ErrNoBulkView }
func (a *fireApps) AppID(tenant string) string                         { return tenant }
func (a *fireApps) Functions(string) []string                          { return []string{"f"} }
func (a *fireApps) Verify(context.Context, string) (Drift, error) {
	if !a.up {
		return Drift{}, errDown
	}
	return Drift{}, nil
}

// now is set by the test before each check.
var fireNow time.Time

func (a *fireApps) SendFires(_ context.Context, _ string, fires []Fire) (int, error) {
	if !a.up {
		return 0, errDown
	}
	for _, f := range fires {
		a.sent = append(a.sent, sentFire{at: fireNow, fire: f})
	}
	return len(fires), nil
}

func clock(hhmmss string) time.Time {
	t, err := time.Parse(time.DateTime, "2026-11-29 "+hhmmss)
	if err != nil {
		panic(err)
	}
	return t
}

func minutes(from, to string) []time.Time {
	var out []time.Time
	for m := clock(from); !m.After(clock(to)); m = m.Add(time.Minute) {
		out = append(out, m)
	}
	return out
}

func hhmm(ts []time.Time) string {
	var s []string
	for _, t := range ts {
		s = append(s, t.Format("15:04"))
	}
	return strings.Join(s, " ")
}

// outageRig is a tenant with a per-minute cron under each policy, whose
// every fire ran up to 17:07, checked once a minute at :21 with the
// 5-minute grace.
func outageRig(t *testing.T) (*fireState, *fireApps, *prometheus.Registry, func(st *fireState, apps *fireApps, reg *prometheus.Registry) *Controller) {
	t.Helper()
	st := &fireState{}
	for i, p := range []CatchUp{"", CatchUpLatest, CatchUpAll} {
		code := "cron-" + string(p)
		st.defs = append(st.defs, &fireDef{check: FireCheck{ID: int64(i + 1), Tenant: "acme", Code: code, Hash: "h1",
			Trigger: Trigger{Cron: "* * * * *", CatchUp: p}, From: clock("17:00:21"), Fired: minutes("16:59:00", "17:07:00")}})
	}
	newController := func(st *fireState, apps *fireApps, reg *prometheus.Registry) *Controller {
		c := NewController(ControllerOptions{State: st, Apps: apps, Resync: time.Minute, MissedFireGrace: 5 * time.Minute, Registerer: reg})
		c.now = func() time.Time { return fireNow }
		return c
	}
	return st, &fireApps{up: true}, prometheus.NewRegistry(), newController
}

// TestMissedFiresCountedWhateverThePolicy: an outage's missed fires are
// counted as their grace passes under skip, latest and all alike (on the
// definition and in tasksync_missed_fires_total), while the catch-ups
// wait; they are sent at the first check at which Inngest has held the
// app again for the grace, oldest first (all sends the oldest, naming
// the rest), and sent again until they ran.
func TestMissedFiresCountedWhateverThePolicy(t *testing.T) {
	st, apps, reg, newController := outageRig(t)
	c := newController(st, apps, reg)
	check := func(at string) {
		fireNow = clock(at)
		c.checkMissedFires(t.Context())
	}
	// Down 17:07:25–17:10:02; the app registered again at 17:10:21.
	for _, at := range []string{"17:05:21", "17:06:21", "17:07:21"} {
		check(at)
	}
	apps.up = false
	for _, at := range []string{"17:08:21", "17:09:21", "17:10:11"} {
		check(at)
	}
	apps.up = true
	for _, at := range []string{"17:10:21", "17:11:21", "17:12:21", "17:13:21"} {
		check(at)
	}
	for _, d := range st.defs {
		if got := hhmm(d.missed); got != "17:08" {
			t.Errorf("%s at 17:13:21: missed %q, want 17:08 (counted as its grace passed)", d.check.Code, got)
		}
	}
	if got := missedTotal(c); got != 3 {
		t.Errorf("tasksync_missed_fires_total at 17:13:21 = %v, want 3", got)
	}
	check("17:14:21")
	if len(apps.sent) != 0 {
		t.Errorf("catch-ups sent before the app was held for the grace: %+v", apps.sent)
	}
	if got := hhmm(st.def("cron-all").pending); got != "17:08 17:09" {
		t.Errorf("all owes %q at 17:14:21, want 17:08 17:09", got)
	}
	if got := hhmm(st.def("cron-latest").pending); got != "17:09" {
		t.Errorf("latest owes %q at 17:14:21, want 17:09", got)
	}
	check("17:15:21") // the app held since 17:10:21: the grace has passed
	for _, d := range st.defs {
		if got := hhmm(d.missed); got != "17:08 17:09 17:10" {
			t.Errorf("%s: missed %q, want 17:08 17:09 17:10", d.check.Code, got)
		}
	}
	if got := missedTotal(c); got != 9 {
		t.Errorf("tasksync_missed_fires_total = %v, want 9", got)
	}
	want := []string{"cron-latest 17:10 []", "cron-all 17:08 [17:09 17:10]"}
	if got := sentSummary(apps.sent); !slices.Equal(got, want) {
		t.Errorf("sent at 17:15:21: %q, want %q", got, want)
	}
	for _, s := range apps.sent {
		if !s.at.Equal(clock("17:15:21")) || !s.fire.CatchUp || s.fire.Hash != "h1" {
			t.Errorf("sent %+v at %s, want a catch-up of h1 at 17:15:21", s.fire, s.at.Format(time.TimeOnly))
		}
	}

	// The next check sends again what has not run (the events' ids make
	// it start nothing more); once a fire ran it is owed no more.
	apps.sent = nil
	all := st.def("cron-all")
	all.check.Fired = append(all.check.Fired, clock("17:08:00"))
	st.def("cron-latest").check.Fired = append(st.def("cron-latest").check.Fired, clock("17:10:00"))
	for _, d := range st.defs {
		d.check.Fired = append(d.check.Fired, minutes("17:11:00", "17:20:00")...)
	}
	check("17:16:21")
	if got := sentSummary(apps.sent); !slices.Equal(got, []string{"cron-all 17:09 [17:10]"}) {
		t.Errorf("sent at 17:16:21: %q, want all's 17:09 naming 17:10", got)
	}
	all.check.Fired = append(all.check.Fired, clock("17:09:00"), clock("17:10:00"))
	apps.sent = nil
	check("17:17:21")
	if len(apps.sent) != 0 || len(all.pending) != 0 || len(st.def("cron-latest").pending) != 0 {
		t.Errorf("after every catch-up ran: sent %q, all owes %q, latest %q", sentSummary(apps.sent), hhmm(all.pending), hhmm(st.def("cron-latest").pending))
	}
	if got := missedTotal(c); got != 9 {
		t.Errorf("tasksync_missed_fires_total = %v, want 9: a catch-up counts nothing", got)
	}
}

// TestCatchUpsOwedSurviveALeaderChange: the catch-ups owed when the
// leader changes are the new leader's, sent once it has itself seen
// Inngest hold the app for the grace; a former leader's check of the
// same window counts nothing; a new version owes nothing of the old.
func TestCatchUpsOwedSurviveALeaderChange(t *testing.T) {
	st, apps, reg, newController := outageRig(t)
	first := newController(st, apps, reg)
	apps.up = false
	for _, at := range []string{"17:13:21", "17:14:21"} { // 17:08 to 17:09 missed, the engine still down
		fireNow = clock(at)
		first.checkMissedFires(t.Context())
	}
	stale, _ := st.FireChecks(t.Context(), time.Time{}) // what the former leader read
	apps.up = true
	second := newController(st, apps, prometheus.NewRegistry())
	for _, at := range []string{"17:15:21", "17:19:21"} {
		fireNow = clock(at)
		second.checkMissedFires(t.Context())
		if len(apps.sent) != 0 {
			t.Fatalf("sent at %s, before the new leader saw the app held for the grace: %q", at, sentSummary(apps.sent))
		}
	}
	if got := hhmm(st.def("cron-all").pending); got != "17:08 17:09 17:10 17:11 17:12 17:13 17:14" {
		t.Errorf("all owes %q", got)
	}
	// The former leader, still checking its window, counts nothing more.
	for _, fc := range stale {
		if counted, _ := st.RecordFireCheck(t.Context(), fc, clock("17:10:00"), []time.Time{clock("17:10:00")}, nil); counted {
			t.Errorf("%s: a former leader's check counted", fc.Code)
		}
	}
	fireNow = clock("17:20:21")
	second.checkMissedFires(t.Context())
	if got := sentSummary(apps.sent); !slices.Equal(got, []string{"cron-latest 17:15 []",
		"cron-all 17:08 [17:09 17:10 17:11 17:12 17:13 17:14 17:15]"}) {
		t.Errorf("sent at 17:20:21: %q", got)
	}
	// A new version applied: the old one's catch-ups are owed no more.
	apps.sent = nil
	for _, d := range st.defs {
		d.check.Hash, d.check.From = "h2", clock("17:20:30")
		d.check.Fired = minutes("17:21:00", "17:30:00") // the new version runs
	}
	fireNow = clock("17:26:21")
	second.checkMissedFires(t.Context())
	if len(apps.sent) != 0 {
		t.Errorf("catch-ups of the old version sent: %q", sentSummary(apps.sent))
	}
}

func sentSummary(sent []sentFire) []string {
	var out []string
	for _, s := range sent {
		out = append(out, s.fire.Code+" "+s.fire.At.Format("15:04")+" ["+hhmm(s.fire.Then)+"]")
	}
	return out
}

// missedTotal is tasksync_missed_fires_total{tenant="acme"}.
func missedTotal(c *Controller) float64 {
	var m dto.Metric
	if err := c.metrics.missedFires.WithLabelValues("acme").Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}
