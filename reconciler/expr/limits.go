package expr

import "errors"

// The limits on expressions. They are stated in docs/format.md; change
// both together.
const (
	// MaxEventBytes is the size hint for `event` and `async` at
	// validation: Inngest refuses an event larger than this (its default
	// maximum event size), so no list, map or string in one is larger.
	MaxEventBytes = 512 << 10
	// MaxStepOutputBytes is the size hint for `steps`: a step's output is
	// the response captured up to 64 KiB, or what a script printed, capped
	// alike.
	MaxStepOutputBytes = 64 << 10
	// MaxTenantBytes is the size hint for `tenant`, a tenant's code.
	MaxTenantBytes = 64

	// MaxCost bounds the actual cost of every expression tasksync
	// evaluates (a step's `if`, `sleep_until`, a template): evaluation
	// stops with ErrCostLimit past it. A unit is about one operation (a
	// field read, a comparison, an iteration, a byte concatenated); a
	// million take a few tenths of a second. Realistic events cost a few
	// thousand.
	MaxCost = 1_000_000
	// MaxEstimatedCost bounds the estimated worst-case cost, at
	// validation, of an expression tasksync evaluates, with the variables
	// as large as they can be. It admits a pass over the longest list an
	// event can hold, and refuses anything that grows faster (nested
	// passes over event data).
	MaxEstimatedCost = 50_000_000
	// MaxInngestCost bounds the estimated worst-case cost of a condition
	// Inngest evaluates on the server every tenant shares (a trigger's
	// `if`, a wait_for_event's `if`), for which there is no run-time
	// limit: it admits one pass over the longest list an event can hold
	// with a simple test per element.
	MaxInngestCost = 4_000_000

	// MaxNesting bounds how deep comprehensions (all, exists, exists_one,
	// map, filter) nest in an expression tasksync evaluates.
	MaxNesting = 2
	// MaxInngestNesting bounds it in a condition Inngest evaluates, so
	// that its cost grows at most linearly with the event's size whatever
	// the estimate assumed.
	MaxInngestNesting = 1

	// MaxRegexInstructions bounds the program a pattern of `matches`
	// compiles to, in an expression tasksync evaluates (conditions Inngest
	// evaluates may not use matches). The slowest pattern of this size
	// takes about 0.3 s on the largest string an event can hold, and then
	// the cost limit stops the evaluation.
	MaxRegexInstructions = 100
	// MaxRegexInstructionsTotal bounds the programs of all the patterns of
	// one expression together.
	MaxRegexInstructionsTotal = 200
	// maxRegexExpanded bounds a pattern with its repetitions written out,
	// checked before its program is built.
	maxRegexExpanded = 100 * MaxRegexInstructions
	// timeZoneCost is the cost of a timestamp accessor given a time zone
	// by name (ts.getHours('Europe/Paris')): Go reads the zone's file on
	// every call, tens of microseconds.
	timeZoneCost = 1000

	// MaxRenderedBytes bounds a rendered template, and a whole rendered
	// value (an api_call body, a send_event's data), and any value an
	// expression yields: twice the largest event, so that a template can
	// forward any event tasksync can receive.
	MaxRenderedBytes = 2 * MaxEventBytes

	// interruptEvery is how many comprehension iterations run between two
	// checks of the run's context.
	interruptEvery = 100
)

// ErrCostLimit is the error of an evaluation stopped at MaxCost.
var ErrCostLimit = errors.New("stopped at the cost limit")

// ErrTooLarge is the error of a value or rendered text larger than
// MaxRenderedBytes.
var ErrTooLarge = errors.New("value too large")

// Inngest reports whether Inngest, not tasksync, evaluates expressions of
// scope s.
func (s Scope) Inngest() bool { return s == Trigger || s == Wait }

// CostLimit is the largest estimated worst-case cost allowed in scope s.
func (s Scope) CostLimit() uint64 {
	if s.Inngest() {
		return MaxInngestCost
	}
	return MaxEstimatedCost
}

// MaxNesting is how deep comprehensions may nest in scope s.
func (s Scope) MaxNesting() int {
	if s.Inngest() {
		return MaxInngestNesting
	}
	return MaxNesting
}
