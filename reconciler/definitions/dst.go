package definitions

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// The daylight-saving check of cron triggers: a wall-clock time that a
// change of the zone's offset skips (the clocks jump forward) or repeats
// (they go back) within the next year is a warning, since that day's run
// is skipped or doubled.

// dstHorizon is how far ahead the zone's offset changes are looked for.
const dstHorizon = 366 * 24 * time.Hour

// cronStarBit marks a cron field given as "*" (robfig/cron's starBit).
const cronStarBit = 1 << 63

// everyHour is the hour mask of a schedule that runs in every hour.
const everyHour = 1<<24 - 1

// dstFinding returns what the offset changes of loc within the horizon
// after now do to sched, with their dates, or "" when they skip or repeat
// none of its times. Inngest computes a cron's next time with
// robfig/cron, which steps over a wall-clock time that does not exist (no
// run that day) and matches both instants of one that happens twice (two
// runs that day); the message says which, on which day. A schedule that
// runs every hour is left alone: an hour skipped or repeated is in the
// nature of it.
func dstFinding(sched cron.Schedule, loc *time.Location, zone string, now time.Time) string {
	spec, ok := sched.(*cron.SpecSchedule)
	if !ok || loc == time.UTC || spec.Hour&everyHour == everyHour {
		return ""
	}
	var found, spans []string
	for _, c := range offsetChanges(loc, now, now.Add(dstHorizon)) {
		from, to := c.window()
		for w := from; w.Before(to); w = w.Add(time.Minute) {
			if !cronMatches(spec, w) {
				continue
			}
			span := fmt.Sprintf("%s-%s", from.Format("15:04"), to.Format("15:04"))
			if !slices.Contains(spans, span) {
				spans = append(spans, span)
			}
			if c.after > c.before {
				found = append(found, fmt.Sprintf("%s does not exist on %s, when daylight saving time starts (the clocks jump from %s to %s): there is no run that day",
					w.Format("15:04"), w.Format("Mon 2006-01-02"), from.Format("15:04"), to.Format("15:04")))
			} else {
				found = append(found, fmt.Sprintf("%s happens twice on %s, when daylight saving time ends (the clocks go back from %s to %s): it runs twice that day",
					w.Format("15:04"), w.Format("Mon 2006-01-02"), to.Format("15:04"), from.Format("15:04")))
			}
			break
		}
	}
	if len(found) == 0 {
		return ""
	}
	return fmt.Sprintf("in %s, %s; to avoid it, pick a time outside %s, or timezone UTC (a zone without daylight saving time)",
		zone, strings.Join(found, "; "), strings.Join(spans, " and "))
}

// offsetChange is one change of a zone's UTC offset (in seconds).
type offsetChange struct {
	at            time.Time
	before, after int
}

// window is the span of wall-clock times, in the zone's time before the
// change, that the change skips (forward) or repeats (back).
func (c offsetChange) window() (from, to time.Time) {
	if c.after > c.before {
		from = c.at.In(time.FixedZone("", c.before))
		return from, from.Add(time.Duration(c.after-c.before) * time.Second)
	}
	from = c.at.In(time.FixedZone("", c.after))
	return from, from.Add(time.Duration(c.before-c.after) * time.Second)
}

// offsetChanges lists loc's offset changes between from and to, found a
// day at a time and then to the minute.
func offsetChanges(loc *time.Location, from, to time.Time) []offsetChange {
	var out []offsetChange
	offset := func(t time.Time) int { _, o := t.In(loc).Zone(); return o }
	for t := from; t.Before(to); t = t.Add(24 * time.Hour) {
		lo, hi := t, t.Add(24*time.Hour)
		before, after := offset(lo), offset(hi)
		if before == after {
			continue
		}
		for hi.Sub(lo) > time.Minute {
			mid := lo.Add(hi.Sub(lo) / 2).Truncate(time.Minute)
			if mid.Equal(lo) {
				break
			}
			if offset(mid) == before {
				lo = mid
			} else {
				hi = mid
			}
		}
		out = append(out, offsetChange{at: hi, before: before, after: after})
	}
	return out
}

// cronMatches reports whether spec runs at the wall-clock minute of w, as
// robfig/cron decides (day-of-month and day-of-week are ORed unless one is
// "*").
func cronMatches(spec *cron.SpecSchedule, w time.Time) bool {
	if spec.Minute&(1<<uint(w.Minute())) == 0 || spec.Hour&(1<<uint(w.Hour())) == 0 || spec.Month&(1<<uint(w.Month())) == 0 {
		return false
	}
	dom := spec.Dom&(1<<uint(w.Day())) != 0
	dow := spec.Dow&(1<<uint(w.Weekday())) != 0
	if spec.Dom&cronStarBit != 0 || spec.Dow&cronStarBit != 0 {
		return dom && dow
	}
	return dom || dow
}
