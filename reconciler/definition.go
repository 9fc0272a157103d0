package reconciler

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// APIVersion is the only definition format version tasksync reads.
const APIVersion = "tasksync/v1"

// Kind says what a definition describes.
type Kind string

// The kinds of definition.
const (
	KindScheduledTask Kind = "ScheduledTask"
	KindWorkflow      Kind = "Workflow"
	// KindTenantSettings is not a definition: it is the document of a
	// tenant's own settings (TenantSettings).
	KindTenantSettings Kind = "TenantSettings"
)

// TriggerType names how a definition is started. The names are those of the
// original design's root_scheduled_tasks.trigger_type column: a one-shot
// `at` trigger is stored as "date".
type TriggerType string

// The trigger types.
const (
	TriggerCron     TriggerType = "cron"
	TriggerInterval TriggerType = "interval"
	TriggerDate     TriggerType = "date"
	TriggerEvent    TriggerType = "event"
)

// TaskType is the action a ScheduledTask performs.
type TaskType string

// The task types.
const (
	TaskAPICall      TaskType = "api_call"
	TaskPythonScript TaskType = "python_script"
)

// Defaults applied to every definition that leaves the field unset. They are
// applied in one place, definitions.normalize, and documented in
// docs/format.md ("Defaults").
const (
	DefaultRetries          = 3
	DefaultConcurrency      = 1
	DefaultTimezone         = "UTC"
	DefaultMethod           = "GET"
	DefaultAPICallTimeout   = Duration(30 * time.Second)
	DefaultPythonTimeout    = Duration(60 * time.Second)
	DefaultPythonMemoryMB   = 256
	MaxAPICallTimeout       = Duration(15 * time.Minute)
	MaxPythonTimeout        = Duration(time.Hour)
	MaxRetries              = 20
	MinInterval             = Duration(time.Minute)
	MaxResponseCaptureBytes = 64 << 10
	MaxDefinitionFileBytes  = 1 << 20
	MaxDefinitionNesting    = 64
	MaxWorkflowSteps        = 100
	MaxExpandedYAMLValues   = 100_000
	MaxDocumentsPerFile     = 1000
	MaxProblemsPerFile      = 100
	MaxWaitForEventTimeout  = Duration(366 * 24 * time.Hour)
	MaxRetryDelay           = Duration(24 * time.Hour)
	MinRetryDelay           = Duration(time.Second)
	MaxConcurrency          = 1000
	// MaxJitter and MaxSleep are Inngest's own limits: it refuses a
	// function whose cron jitter, or a sleep, is longer.
	MaxJitter = Duration(5 * time.Minute)
	MaxSleep  = Duration(366 * 24 * time.Hour)
)

// Definition is one validated, normalized definition: a ScheduledTask or a
// Workflow of one tenant, with every default applied.
//
// Its JSON form (see Spec) is the canonical document the content hash is
// computed over; it mirrors the YAML a user writes, minus comments,
// formatting and key order.
type Definition struct {
	Tenant   string   `json:"-"`
	Kind     Kind     `json:"kind"`
	Metadata Metadata `json:"metadata"`
	Spec     Spec     `json:"spec"`

	// Source is where the definition was read from.
	Source Source `json:"-"`
	// Commit is the git commit the tree was at when it was read (see
	// definitions.Provenance); "" when the tree is no git checkout. It is
	// stored with each applied version and is no part of the diff: a new
	// commit alone changes no definition.
	Commit string `json:"-"`
	// Hash is the hex SHA-256 of the canonical JSON document. Two
	// definitions with equal hashes behave identically.
	Hash string `json:"-"`
}

// Metadata identifies a definition within its tenant.
type Metadata struct {
	Code        string            `json:"code"`
	Name        string            `json:"name,omitempty"`
	Description string            `json:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
}

// Spec is what a definition does. Type and Config are set for a
// ScheduledTask, Steps for a Workflow.
type Spec struct {
	Active      bool        `json:"active"`
	Trigger     Trigger     `json:"trigger"`
	Type        TaskType    `json:"type,omitempty"`
	Config      *TaskConfig `json:"config,omitempty"`
	Steps       []Step      `json:"steps,omitempty"`
	Retries     int         `json:"retries"`
	RetryDelay  Duration    `json:"retry_delay,omitempty"`
	Concurrency int         `json:"concurrency"`
}

// Trigger starts a definition. Exactly one of Cron, Interval, At and Event
// is set.
type Trigger struct {
	Cron     string     `json:"cron,omitempty"`
	Timezone string     `json:"timezone,omitempty"`
	Jitter   Duration   `json:"jitter,omitempty"`
	Interval Duration   `json:"interval,omitempty"`
	At       *time.Time `json:"at,omitempty"`
	Event    string     `json:"event,omitempty"`
	If       string     `json:"if,omitempty"`
	// CatchUp is what becomes of the fires of a cron or interval trigger
	// that started no run: "" (skip) or CatchUpSkip, CatchUpLatest or
	// CatchUpAll; CatchUpWindow bounds how old a fire may be to be caught
	// up (DefaultCatchUpWindow when unset).
	CatchUp       CatchUp  `json:"catchup,omitempty"`
	CatchUpWindow Duration `json:"catchup_window,omitempty"`
}

// CatchUp is a catch-up policy: what tasksync does about a scheduled fire
// that started no run (docs/format.md, "Catch-up").
type CatchUp string

// The catch-up policies.
const (
	// CatchUpSkip counts and shows the missed fire and runs nothing for
	// it (the default).
	CatchUpSkip CatchUp = "skip"
	// CatchUpLatest runs once, for the most recent missed fire within the
	// window.
	CatchUpLatest CatchUp = "latest"
	// CatchUpAll runs each missed fire within the window, oldest first,
	// at most MaxCatchUpRuns of them (the most recent).
	CatchUpAll CatchUp = "all"
)

// Catch-up bounds.
const (
	DefaultCatchUpWindow = Duration(time.Hour)
	MaxCatchUpWindow     = Duration(7 * 24 * time.Hour)
	// MaxCatchUpRuns bounds the catch-up runs of one definition per
	// outage (CatchUpAll).
	MaxCatchUpRuns = 20
)

// Window is how old a missed fire may be to be caught up.
func (t Trigger) Window() time.Duration {
	if t.CatchUpWindow > 0 {
		return time.Duration(t.CatchUpWindow)
	}
	return time.Duration(DefaultCatchUpWindow)
}

// CatchUps returns the missed fires to run again under t's policy at now,
// oldest first: none for skip, the most recent within the window for
// latest, each within the window (at most MaxCatchUpRuns, the most
// recent) for all. missed is oldest first.
func (t Trigger) CatchUps(missed []time.Time, now time.Time) []time.Time {
	var in []time.Time
	for _, f := range missed {
		if !f.Before(now.Add(-t.Window())) {
			in = append(in, f)
		}
	}
	switch t.CatchUp {
	case CatchUpLatest:
		if len(in) > 0 {
			return in[len(in)-1:]
		}
	case CatchUpAll:
		if len(in) > MaxCatchUpRuns {
			in = in[len(in)-MaxCatchUpRuns:]
		}
		return in
	}
	return nil
}

// CatchesUp reports whether t's policy runs missed fires again (latest
// or all).
func (t Trigger) CatchesUp() bool { return t.CatchUp == CatchUpLatest || t.CatchUp == CatchUpAll }

// Owed returns the catch-up runs t's policy owes at now, oldest first:
// those owed before (pending) and the fires just counted missed, less
// the fires that have a run (fired, as MissedFires covers them) and
// those older than the window; one, the most recent, for latest; at most
// MaxCatchUpRuns, the most recent, for all; none for skip.
func (t Trigger) Owed(pending, missed, fired []time.Time, now time.Time) []time.Time {
	if !t.CatchesUp() {
		return nil
	}
	all := slices.Concat(pending, missed)
	slices.SortFunc(all, time.Time.Compare)
	all = slices.CompactFunc(all, time.Time.Equal)
	var owed []time.Time
	for _, f := range all {
		if len(MissedFires(t, f.Add(-time.Nanosecond), f, fired)) == 0 {
			continue // it ran (a catch-up), or is no fire of t
		}
		owed = append(owed, f)
	}
	return t.CatchUps(owed, now)
}

// Type reports which kind of trigger t is, in the original design's names.
func (t Trigger) Type() TriggerType {
	switch {
	case t.Cron != "":
		return TriggerCron
	case t.Interval != 0:
		return TriggerInterval
	case t.At != nil:
		return TriggerDate
	default:
		return TriggerEvent
	}
}

// TaskConfig is the configuration of a ScheduledTask's action: exactly one
// of its fields is set, matching Spec.Type.
type TaskConfig struct {
	APICall      *APICall
	PythonScript *PythonScript
}

// MarshalJSON encodes whichever action is set, so that the canonical
// document reads like the YAML `config:` block.
func (c TaskConfig) MarshalJSON() ([]byte, error) {
	switch {
	case c.APICall != nil:
		return json.Marshal(c.APICall)
	case c.PythonScript != nil:
		return json.Marshal(c.PythonScript)
	}
	return []byte("null"), nil
}

// APICall is an HTTP request made by tasksync's executor.
type APICall struct {
	Method       string            `json:"method"`
	URL          string            `json:"url"`
	Headers      map[string]string `json:"headers,omitempty"`
	Query        map[string]string `json:"query,omitempty"`
	Body         any               `json:"body,omitempty"`
	Timeout      Duration          `json:"timeout"`
	ExpectStatus []int             `json:"expect_status,omitempty"`
}

// PythonScript is a Python program run in the sandbox. Exactly one of
// Script and File is set. For File, FileSHA256 is the digest of the file's
// content when it was read, so that editing the script changes the
// definition's hash, and FileContent holds that content.
type PythonScript struct {
	Script      string            `json:"script,omitempty"`
	File        string            `json:"file,omitempty"`
	FileSHA256  string            `json:"file_sha256,omitempty"`
	FileContent string            `json:"-"`
	Args        []string          `json:"args,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	Timeout     Duration          `json:"timeout"`
	MemoryMB    int               `json:"memory_mb"`
}

// Step is one step of a Workflow: an id, an optional condition, and exactly
// one action.
type Step struct {
	ID           string        `json:"id"`
	If           string        `json:"if,omitempty"`
	APICall      *APICall      `json:"api_call,omitempty"`
	PythonScript *PythonScript `json:"python_script,omitempty"`
	Sleep        Duration      `json:"sleep,omitempty"`
	SleepUntil   string        `json:"sleep_until,omitempty"`
	WaitForEvent *WaitForEvent `json:"wait_for_event,omitempty"`
	SendEvent    *SendEvent    `json:"send_event,omitempty"`
}

// Action names the action a step performs.
func (s Step) Action() StepAction {
	switch {
	case s.APICall != nil:
		return ActionAPICall
	case s.PythonScript != nil:
		return ActionPythonScript
	case s.Sleep != 0:
		return ActionSleep
	case s.SleepUntil != "":
		return ActionSleepUntil
	case s.WaitForEvent != nil:
		return ActionWaitForEvent
	case s.SendEvent != nil:
		return ActionSendEvent
	}
	return ""
}

// StepAction is the kind of action a workflow step performs.
type StepAction string

// The step actions, named as their YAML keys.
const (
	ActionAPICall      StepAction = "api_call"
	ActionPythonScript StepAction = "python_script"
	ActionSleep        StepAction = "sleep"
	ActionSleepUntil   StepAction = "sleep_until"
	ActionWaitForEvent StepAction = "wait_for_event"
	ActionSendEvent    StepAction = "send_event"
)

// StepActions lists every step action in the order the docs present them.
var StepActions = []StepAction{ActionAPICall, ActionPythonScript, ActionSleep, ActionSleepUntil, ActionWaitForEvent, ActionSendEvent}

// WaitForEvent pauses a workflow until a matching event arrives or Timeout
// passes.
type WaitForEvent struct {
	Event   string   `json:"event"`
	Match   string   `json:"match,omitempty"`
	If      string   `json:"if,omitempty"`
	Timeout Duration `json:"timeout"`
}

// SendEvent emits an event for the workflow's own tenant.
type SendEvent struct {
	Name string         `json:"name"`
	Data map[string]any `json:"data,omitempty"`
}

// Source locates a definition in the tree.
type Source struct {
	Path string // slash-separated, relative to the tree root
	Line int
}

func (s Source) String() string { return fmt.Sprintf("%s:%d", s.Path, s.Line) }

// Duration is a time.Duration written as a Go duration string ("90s",
// "1h30m") in YAML and JSON. Its JSON form is compact: 1m, not 1m0s.
type Duration time.Duration

// String formats d compactly: "1h30m", "45s", "1m".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// MarshalText encodes d as its compact string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Canonical returns the canonical JSON document of d: its kind, metadata
// and spec with every default applied and map keys sorted. It is what
// the content hash is computed over and what the store keeps.
func (d Definition) Canonical() ([]byte, error) {
	return json.Marshal(struct {
		Kind     Kind     `json:"kind"`
		Metadata Metadata `json:"metadata"`
		Spec     Spec     `json:"spec"`
	}{d.Kind, d.Metadata, d.Spec})
}

// jsonMarshal encodes without escaping <, > and &, which run outputs are
// full of.
func jsonMarshal(v any) ([]byte, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return []byte(strings.TrimSuffix(b.String(), "\n")), nil
}

// DecodeCanonical rebuilds a Definition from its canonical document (as
// the store keeps it), with the content of the script files it names.
func DecodeCanonical(tenant string, doc []byte, scripts map[string]string) (Definition, error) {
	var w struct {
		Kind     Kind     `json:"kind"`
		Metadata Metadata `json:"metadata"`
		Spec     struct {
			Spec
			Config json.RawMessage `json:"config"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(doc, &w); err != nil {
		return Definition{}, fmt.Errorf("decode definition: %w", err)
	}
	d := Definition{Tenant: tenant, Kind: w.Kind, Metadata: w.Metadata, Spec: w.Spec.Spec}
	d.Spec.Config = nil
	if len(w.Spec.Config) > 0 && string(w.Spec.Config) != "null" {
		c := &TaskConfig{}
		var err error
		switch d.Spec.Type {
		case TaskAPICall:
			c.APICall = &APICall{}
			err = json.Unmarshal(w.Spec.Config, c.APICall)
		case TaskPythonScript:
			c.PythonScript = &PythonScript{}
			err = json.Unmarshal(w.Spec.Config, c.PythonScript)
		default:
			err = fmt.Errorf("unknown task type %q", d.Spec.Type)
		}
		if err != nil {
			return Definition{}, fmt.Errorf("decode definition %s: %w", d.Metadata.Code, err)
		}
		d.Spec.Config = c
		if py := c.PythonScript; py != nil && py.File != "" {
			py.FileContent = scripts[py.File]
		}
	}
	for _, st := range d.Spec.Steps {
		if st.PythonScript != nil && st.PythonScript.File != "" {
			st.PythonScript.FileContent = scripts[st.PythonScript.File]
		}
	}
	return d, nil
}
