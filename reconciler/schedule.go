package reconciler

import (
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
		loc := time.UTC
		if t.Timezone != "" {
			l, err := time.LoadLocation(t.Timezone)
			if err != nil {
				return nil
			}
			loc = l
		}
		sched, err := CronParser.Parse(t.Cron)
		if err != nil {
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
