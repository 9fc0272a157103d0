package reconciler

import (
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// CronParser parses cron expressions exactly as Inngest does.
var CronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// IntervalEpoch anchors interval triggers: a definition with interval d
// fires at IntervalEpoch + k·d for every integer k, so its schedule is
// exact, needs no state, and is the same on every replica and after every
// restart. (The Unix epoch is a Thursday at 00:00 UTC, so intervals that
// divide a day or a week fire on whole hours and days.)
var IntervalEpoch = time.Unix(0, 0).UTC()

// NextFires returns the next n times after `after` at which t fires, in the
// trigger's time zone (UTC when it has none). Event triggers have no
// schedule; a one-shot fires once, if it is still ahead.
func NextFires(t Trigger, after time.Time, n int) []time.Time {
	var out []time.Time
	switch t.Type() {
	case TriggerCron:
		loc, sched, ok := parsedCron(t.Timezone, t.Cron)
		if !ok {
			return nil
		}
		next := after.In(loc)
		for len(out) < n {
			next = sched.Next(next)
			if next.IsZero() {
				break
			}
			out = append(out, next)
		}
	case TriggerInterval:
		d := time.Duration(t.Interval)
		if d <= 0 {
			return nil
		}
		k := after.Sub(IntervalEpoch)/d + 1
		for i := range time.Duration(n) {
			out = append(out, IntervalEpoch.Add((k+i)*d))
		}
	case TriggerDate:
		if t.At != nil && t.At.After(after) && n > 0 {
			out = append(out, *t.At)
		}
	}
	return out
}

// FireCheck is a scheduled definition whose fires are checked for runs.
type FireCheck struct {
	ID      int64
	Tenant  string
	Code    string
	Hash    string // the applied version's
	Trigger Trigger
	From    time.Time // the end of the last check, or when the version was applied
	// Fired are the fires its runs were for (root_task_runs.scheduled_for)
	// from an hour before From (or the oldest of Pending) on, in order.
	Fired []time.Time
	// Pending are the catch-up runs owed for fires counted missed before
	// (Trigger.Owed), oldest first: only those of the applied version.
	Pending []time.Time
}

// fireTolerance is how far from its fire the instant a run names may lie
// and still be that fire's: the clocks' rounding. A cron's jitter widens
// it after the fire.
const fireTolerance = time.Second

// MissedFires returns the fires of t in (from, to] that no run was for:
// fired lists the fires the definition's runs were for (their
// scheduled_for, in any order). A fire f is covered by a run for an
// instant in [f−1s, f+1s+jitter]; a run for a later fire never covers an
// earlier one, however late either started. At most MaxFireCheck fires
// are looked at, the oldest.
func MissedFires(t Trigger, from, to time.Time, fired []time.Time) []time.Time {
	fires := FiresBetween(t, from, to, MaxFireCheck)
	if len(fires) == 0 {
		return nil
	}
	ran := slices.Clone(fired)
	slices.SortFunc(ran, time.Time.Compare)
	after := fireTolerance + time.Duration(t.Jitter)
	var missed []time.Time
	for _, f := range fires {
		i, _ := slices.BinarySearchFunc(ran, f.Add(-fireTolerance), time.Time.Compare)
		if i < len(ran) && !ran[i].After(f.Add(after)) {
			continue
		}
		missed = append(missed, f)
	}
	return missed
}

// MaxFireCheck bounds the fires one check looks at: a minute-cron over a
// week.
const MaxFireCheck = 10_080

// FiresBetween returns t's fires in (from, to], at most n, oldest first.
// Event and `at` triggers have none here.
func FiresBetween(t Trigger, from, to time.Time, n int) []time.Time {
	if t.Type() != TriggerCron && t.Type() != TriggerInterval {
		return nil
	}
	var fires []time.Time
	for next := from; len(fires) < n; {
		f := NextFires(t, next, 1)
		if len(f) == 0 || f[0].After(to) {
			break
		}
		fires = append(fires, f[0])
		next = f[0]
	}
	return fires
}

// FireAt returns the fire of t that the instant at stands for: at itself
// when it is one of t's fires, or the fire at most the cron's jitter
// before it (an engine that names only when a jittered run was due); ok
// is false when at is no fire of t.
func FireAt(t Trigger, at time.Time) (time.Time, bool) {
	if at.IsZero() {
		return time.Time{}, false
	}
	back := fireTolerance + time.Duration(t.Jitter)
	f := NextFires(t, at.Add(-back-time.Nanosecond), 1)
	if len(f) == 0 || f[0].After(at.Add(fireTolerance)) {
		return time.Time{}, false
	}
	return f[0], true
}

// CronEventName is the event Inngest starts a cron function's run with;
// its data carries the fire (scheduledAt, before any jitter).
const CronEventName = "inngest/scheduled.timer"

// FireEventName is the event tasksync sends to run one fire of a
// definition: the next instant of an interval that no cron states, or a
// missed fire caught up. Its data names the tenant, the code, the
// version's hash, the fire (scheduled_for, RFC 3339) and whether it is a
// catch-up.
const FireEventName = "tasksync/fire.due"

// ScheduledFire returns the fire of t that a run's triggering event is
// for: a cron event's scheduledAt (or, without it, its timestamp, which
// may lie up to the jitter after the fire), or a fire event's
// scheduled_for, which must be one of t's fires. ok is false for other
// events, and for an instant that is no fire of t.
func ScheduledFire(t Trigger, event map[string]any) (at time.Time, catchUp, ok bool) {
	name, _ := event["name"].(string)
	data, _ := event["data"].(map[string]any)
	switch name {
	case CronEventName:
		if t.Type() != TriggerCron && t.Type() != TriggerInterval {
			return time.Time{}, false, false
		}
		if s, _ := data["scheduledAt"].(string); s != "" {
			if p, err := time.Parse(time.RFC3339, s); err == nil {
				at, ok = FireAt(t, p)
				return at, false, ok
			}
		}
		if ms, ok := eventMillis(event["ts"]); ok {
			at, ok = FireAt(t, time.UnixMilli(ms))
			return at, false, ok
		}
	case FireEventName:
		s, _ := data["scheduled_for"].(string)
		p, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, false, false
		}
		f, ok := FireAt(t, p)
		if !ok || !f.Equal(p) {
			return time.Time{}, false, false
		}
		c, _ := data["catchup"].(bool)
		return f, c, true
	}
	return time.Time{}, false, false
}

func eventMillis(v any) (int64, bool) {
	switch n := v.(type) {
	case float64:
		return int64(n), n > 0
	case int64:
		return n, n > 0
	case json.Number:
		i, err := n.Int64()
		return i, err == nil && i > 0
	}
	return 0, false
}

// Fire is one fire of a definition's version to run: a catch-up of a
// missed fire, sent as a fire event (FireEventName).
type Fire struct {
	Code    string
	Hash    string // the version it is for
	At      time.Time
	CatchUp bool
	// Then are the catch-ups of the same definition to run after this
	// one, oldest first: its run sends the first of them, naming the
	// rest, as it starts (catchup: all runs oldest first).
	Then []time.Time
}

// parsed keeps the zones and cron schedules NextFires parsed, by their
// text: the missed-fire check asks for the next fire of every scheduled
// definition at every resync, and time.LoadLocation reads the zone file
// each time. It holds at most maxParsed of each, and starts afresh when
// full.
var parsed struct {
	sync.Mutex
	zones map[string]*time.Location
	crons map[string]cron.Schedule
}

const maxParsed = 4096

// parsedCron returns a cron trigger's zone (UTC when zone is empty) and
// schedule; false when either does not parse.
func parsedCron(zone, expr string) (*time.Location, cron.Schedule, bool) {
	parsed.Lock()
	loc, haveZone := parsed.zones[zone]
	sched, haveCron := parsed.crons[expr]
	parsed.Unlock()
	if !haveZone {
		loc = time.UTC
		if zone != "" {
			l, err := time.LoadLocation(zone)
			if err != nil {
				return nil, nil, false
			}
			loc = l
		}
	}
	if !haveCron {
		s, err := CronParser.Parse(expr)
		if err != nil {
			return nil, nil, false
		}
		sched = s
	}
	if !haveZone || !haveCron {
		parsed.Lock()
		if parsed.zones == nil || len(parsed.zones) >= maxParsed {
			parsed.zones = map[string]*time.Location{}
		}
		if parsed.crons == nil || len(parsed.crons) >= maxParsed {
			parsed.crons = map[string]cron.Schedule{}
		}
		parsed.zones[zone], parsed.crons[expr] = loc, sched
		parsed.Unlock()
	}
	return loc, sched, true
}
