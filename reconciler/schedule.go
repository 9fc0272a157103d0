package reconciler

import (
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
	Trigger Trigger
	From    time.Time   // the end of the last check, or when the version was applied
	Runs    []time.Time // start times of its runs since From
}

// MissedFires returns the fires of t in (from, to] that no run started
// within grace of: runs lists the start times of the definition's runs
// from `from` on. A fire is matched by the first run that starts at or
// after it and before the fire plus grace (plus the trigger's jitter); a
// run matches one fire only.
func MissedFires(t Trigger, from, to time.Time, runs []time.Time, grace time.Duration) []time.Time {
	if t.Type() != TriggerCron && t.Type() != TriggerInterval {
		return nil
	}
	window := grace + time.Duration(t.Jitter)
	var fires []time.Time
	const maxFires = 10_000 // a window of a minute-cron over a week
	for next := from; len(fires) < maxFires; {
		f := NextFires(t, next, 1)
		if len(f) == 0 || f[0].After(to) {
			break
		}
		fires = append(fires, f[0])
		next = f[0]
	}
	used := make([]bool, len(runs))
	var missed []time.Time
	for _, f := range fires {
		hit := false
		for i, r := range runs {
			if !used[i] && !r.Before(f.Add(-time.Second)) && r.Before(f.Add(window)) {
				used[i], hit = true, true
				break
			}
		}
		if !hit {
			missed = append(missed, f)
		}
	}
	return missed
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
