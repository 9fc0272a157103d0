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

// celEscaper escapes a string for a single-quoted CEL literal; one for
// every call (a Replacer builds its tables once, on first use).
var celEscaper = strings.NewReplacer(`\`, `\\`, `'`, `\'`)

// celString is s as a single-quoted CEL string literal.
func celString(s string) string {
	return "'" + celEscaper.Replace(s) + "'"
}

// Schedule is how a definition's trigger is expressed to Inngest.
type Schedule struct {
	Trigger inngestgo.Trigger
	// Fire is the trigger of tasksync's fire events for this definition
	// (reconciler.FireEventName): its catch-up runs, and every run of an
	// interval that no cron states (Every). nil for event and `at`
	// triggers.
	Fire *inngestgo.Trigger
	// Every is set for an interval that no cron expression states
	// exactly: Trigger is then the fire event's, and tasksync sends one
	// event per instant (reconciler.IntervalEpoch + k·Every).
	Every time.Duration
}

// Triggers is what the function is registered with: Trigger, and Fire
// when it is another.
func (s Schedule) Triggers() inngestgo.MultipleTriggers {
	if s.Fire == nil || s.Every > 0 {
		return inngestgo.MultipleTriggers{s.Trigger}
	}
	return inngestgo.MultipleTriggers{s.Trigger, *s.Fire}
}

// ScheduleOf maps a definition's trigger to an Inngest trigger; see schedule.
func ScheduleOf(tenant, code string, t reconciler.Trigger) (Schedule, error) {
	return schedule(tenant, code, t)
}

// CronOf is the cron expression that states interval d exactly (it
// divides an hour, or is a whole number of hours dividing a day), and
// false when none does.
func CronOf(d time.Duration) (string, bool) {
	if d <= 0 || d%time.Minute != 0 {
		return "", false
	}
	minutes := int(d / time.Minute)
	switch {
	case 60%minutes == 0:
		return fmt.Sprintf("*/%d * * * *", minutes), true
	case minutes%60 == 0 && 24%(minutes/60) == 0:
		return fmt.Sprintf("0 */%d * * *", minutes/60), true
	}
	return "", false
}

// schedule maps a definition's trigger to an Inngest trigger.
//
// An interval is exact, one Inngest run per fire: when a cron expression
// states it exactly (CronOf) that expression is used; otherwise (7m, 59m,
// 90m, 25h) the function is started by fire events, one per instant of
// the interval's grid (aligned to the Unix epoch), sent ahead with the
// instant as their timestamp by the leader (Registry.SeedFires) and by
// each run for the next instant.
func schedule(tenant, code string, t reconciler.Trigger) (Schedule, error) {
	fireExpr := fmt.Sprintf("%s && event.data.code == %s", TenantGuard(tenant), celString(code))
	fire := inngestgo.EventTrigger(reconciler.FireEventName, &fireExpr)
	switch t.Type() {
	case reconciler.TriggerCron:
		// Inngest's registration refuses descriptors: send their 5 fields.
		expr := "TZ=" + t.Timezone + " " + expandDescriptor(t.Cron)
		if t.Jitter > 0 {
			return Schedule{Trigger: inngestgo.CronTriggerWithJitter(expr, time.Duration(t.Jitter)), Fire: &fire}, nil
		}
		return Schedule{Trigger: inngestgo.CronTrigger(expr), Fire: &fire}, nil
	case reconciler.TriggerInterval:
		d := time.Duration(t.Interval)
		if d <= 0 {
			return Schedule{}, fmt.Errorf("interval %s is not positive", t.Interval)
		}
		if cron, ok := CronOf(d); ok {
			return Schedule{Trigger: inngestgo.CronTrigger("TZ=UTC " + cron), Fire: &fire}, nil
		}
		return Schedule{Trigger: fire, Fire: &fire, Every: d}, nil
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
const OneShotEvent = reconciler.OneShotEventName

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
