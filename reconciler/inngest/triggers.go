package inngest

import (
	"fmt"
	"strings"
	"time"

	"github.com/inngest/inngestgo"

	"github.com/riveredge/tasksync/reconciler"
)

// TenantGuard is the condition every event trigger of a tenant's functions
// carries, so that no tenant's events start another tenant's functions.
func TenantGuard(tenant string) string {
	return fmt.Sprintf("event.data.tenant_id == %s", celString(tenant))
}

func celString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// Schedule is how a definition's trigger is expressed to Inngest.
type Schedule struct {
	Trigger inngestgo.Trigger
	// Every, for an interval that no cron expression states exactly: the
	// cron fires every Step and a run proceeds only at the interval's own
	// instants (reconciler.IntervalEpoch + k·Every).
	Every, Step time.Duration
}

// ScheduleOf maps a definition's trigger to an Inngest trigger; see schedule.
func ScheduleOf(tenant, code string, t reconciler.Trigger) (Schedule, error) {
	return schedule(tenant, code, t)
}

// schedule maps a definition's trigger to an Inngest trigger.
//
// An interval is exact: when a cron expression states it exactly (it
// divides an hour, or is a whole number of hours dividing a day) that
// expression is used; otherwise the cron fires every gcd(interval, 1h)
// and the run proceeds only when the scheduled time is on the interval's
// grid, aligned to the Unix epoch. 7m thus fires every minute and runs at
// every seventh; 90m fires every 30 minutes and runs at every third.
func schedule(tenant, code string, t reconciler.Trigger) (Schedule, error) {
	switch t.Type() {
	case reconciler.TriggerCron:
		// Inngest's registration refuses descriptors: send their 5 fields.
		expr := "TZ=" + t.Timezone + " " + expandDescriptor(t.Cron)
		if t.Jitter > 0 {
			return Schedule{Trigger: inngestgo.CronTriggerWithJitter(expr, time.Duration(t.Jitter))}, nil
		}
		return Schedule{Trigger: inngestgo.CronTrigger(expr)}, nil
	case reconciler.TriggerInterval:
		minutes := int(time.Duration(t.Interval) / time.Minute)
		switch {
		case minutes <= 0:
			return Schedule{}, fmt.Errorf("interval %s is below a minute", t.Interval)
		case 60%minutes == 0:
			return Schedule{Trigger: inngestgo.CronTrigger(fmt.Sprintf("TZ=UTC */%d * * * *", minutes))}, nil
		case minutes%60 == 0 && 24%(minutes/60) == 0:
			return Schedule{Trigger: inngestgo.CronTrigger(fmt.Sprintf("TZ=UTC 0 */%d * * *", minutes/60))}, nil
		}
		step := gcd(minutes, 60)
		cron := fmt.Sprintf("TZ=UTC */%d * * * *", step)
		if step == 60 {
			cron = "TZ=UTC 0 * * * *"
		}
		return Schedule{Trigger: inngestgo.CronTrigger(cron), Every: time.Duration(t.Interval), Step: time.Duration(step) * time.Minute}, nil
	case reconciler.TriggerEvent:
		expr := TenantGuard(tenant)
		if t.If != "" {
			expr = fmt.Sprintf("(%s) && (%s)", expr, t.If)
		}
		return Schedule{Trigger: inngestgo.EventTrigger(t.Event, &expr)}, nil
	case reconciler.TriggerDate:
		// A one-shot runs from an event with a future timestamp, sent once,
		// naming the definition it is for.
		expr := fmt.Sprintf("%s && event.data.code == %s", TenantGuard(tenant), celString(code))
		return Schedule{Trigger: inngestgo.EventTrigger(OneShotEvent, &expr)}, nil
	}
	return Schedule{}, fmt.Errorf("unknown trigger")
}

// OneShotEvent is the event that starts `at` triggers.
const OneShotEvent = "tasksync/one-shot.due"

// OnGrid reports whether a cron fire at scheduled belongs to the
// interval's grid.
func (s Schedule) OnGrid(scheduled time.Time) bool {
	if s.Every == 0 {
		return true
	}
	since := scheduled.Sub(reconciler.IntervalEpoch).Round(time.Minute)
	return since%s.Every == 0
}

// expandDescriptor rewrites @daily-style descriptors as the 5-field
// expressions they stand for.
func expandDescriptor(cron string) string {
	switch cron {
	case "@yearly", "@annually":
		return "0 0 1 1 *"
	case "@monthly":
		return "0 0 1 * *"
	case "@weekly":
		return "0 0 * * 0"
	case "@daily", "@midnight":
		return "0 0 * * *"
	case "@hourly":
		return "0 * * * *"
	}
	return cron
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
