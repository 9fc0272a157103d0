package definitions

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/riveredge/tasksync/reconciler"
)

// The wire types mirror the YAML a user writes. Pointers and strings keep
// "unset" apart from zero so that defaults are applied in one place,
// normalize, and durations are parsed where their position is known.
type wireDoc struct {
	APIVersion string
	Kind       reconciler.Kind
	Metadata   wireMetadata
	Spec       wireSpec
}

type wireMetadata struct {
	Code        string
	Tenant      string
	Name        string
	Description string
	Labels      map[string]string
}

type wireSpec struct {
	Active      *bool
	Trigger     wireTrigger
	Type        reconciler.TaskType
	Config      map[string]any
	Steps       []wireStep
	Retries     *int
	RetryDelay  string
	Concurrency *int
}

type wireTrigger struct {
	Cron     string
	Timezone string
	Jitter   string
	Interval string
	At       string
	Event    string
	If       string
	CatchUp  string
	// CatchUpWindow is the catchup_window field.
	CatchUpWindow string
}

type wireAPICall struct {
	Method       string
	URL          string
	Headers      map[string]string
	Query        map[string]string
	Body         any
	Timeout      string
	ExpectStatus any
}

type wirePythonScript struct {
	Script   string
	File     string
	Args     []string
	Env      map[string]string
	Timeout  string
	MemoryMB int
}

type wireStep struct {
	ID           string
	If           string
	APICall      *wireAPICall
	PythonScript *wirePythonScript
	Sleep        string
	SleepUntil   string
	WaitForEvent *wireWait
	SendEvent    *wireSend
}

type wireWait struct {
	Event   string
	Match   string
	If      string
	Timeout string
}

type wireSend struct {
	Name string
	Data map[string]any
}

// scriptReader reads a python_script `file`, given relative to the tenant
// directory, and returns its content.
type scriptReader func(rel string) ([]byte, error)

// normalizer turns one schema-valid document into a Definition, applying
// defaults and the checks a JSON Schema cannot express. It collects every
// problem rather than stopping at the first.
type normalizer struct {
	v          *Validator
	tenant     string
	now        time.Time
	readScript scriptReader
	secrets    func(tenant, name string) error // grant check; nil: none
	doc        document
	errs       []fieldError
	warns      []fieldError // findings that keep nothing from being applied
	// intervalUnit is the unit and least value of intervals (Options.IntervalUnit).
	intervalUnit reconciler.Duration
}

// line returns the file line of the node at pointer, for messages that
// name a second place.
func (n *normalizer) line(pointer string) int {
	if n.doc.root == nil {
		return 0
	}
	line, _ := n.doc.pos(pointer, false)
	return line
}

func (n *normalizer) fail(pointer, format string, args ...any) {
	n.errs = append(n.errs, fieldError{pointer: pointer, msg: field(pointer) + ": " + fmt.Sprintf(format, args...)})
}

// warn records a warning: the document stays valid.
func (n *normalizer) warn(pointer, format string, args ...any) {
	n.warns = append(n.warns, fieldError{pointer: pointer, msg: field(pointer) + ": " + fmt.Sprintf(format, args...)})
}

// failKey reports a problem with a field's presence at its key, named by
// the object that holds it.
func (n *normalizer) failKey(object, key, format string, args ...any) {
	n.errs = append(n.errs, fieldError{pointer: object + "/" + escapeToken(key), key: true, msg: field(object) + ": " + fmt.Sprintf(format, args...)})
}

// cronParser parses cron exactly as Inngest does.
var cronParser = reconciler.CronParser

func (n *normalizer) normalize(value any) (reconciler.Definition, []fieldError) {
	w := decodeDoc(value)
	d := reconciler.Definition{
		Tenant: n.tenant,
		Kind:   w.Kind,
		Metadata: reconciler.Metadata{
			Code:        w.Metadata.Code,
			Name:        w.Metadata.Name,
			Description: w.Metadata.Description,
			Labels:      w.Metadata.Labels,
		},
	}
	if w.Metadata.Tenant != "" && w.Metadata.Tenant != n.tenant {
		n.fail("/metadata/tenant", "names tenant %q, but the file is in tenant %q's directory; a file may only define its own tenant's definitions", w.Metadata.Tenant, n.tenant)
	}
	s := w.Spec
	d.Spec.Active = s.Active == nil || *s.Active
	d.Spec.Retries = reconciler.DefaultRetries
	if s.Retries != nil {
		d.Spec.Retries = *s.Retries
	}
	d.Spec.Concurrency = reconciler.DefaultConcurrency
	if s.Concurrency != nil {
		d.Spec.Concurrency = *s.Concurrency
	}
	if s.RetryDelay != "" {
		d.Spec.RetryDelay = n.duration("/spec/retry_delay", s.RetryDelay, reconciler.MinRetryDelay, reconciler.MaxRetryDelay)
	}
	n.trigger("/spec/trigger", s.Trigger, &d.Spec.Trigger)

	switch w.Kind {
	case reconciler.KindScheduledTask:
		d.Spec.Type = s.Type
		d.Spec.Config = n.taskConfig("/spec/config", s.Type, s.Config)
	case reconciler.KindWorkflow:
		d.Spec.Steps = n.steps("/spec/steps", s.Steps)
	}
	if len(n.errs) > 0 {
		return d, n.errs
	}
	canonical, err := d.Canonical()
	if err != nil {
		return d, []fieldError{{msg: "document: cannot encode: " + err.Error()}}
	}
	sum := sha256.Sum256(canonical)
	d.Hash = hex.EncodeToString(sum[:])
	return d, nil
}

// duration parses a schema-checked duration and enforces its range.
func (n *normalizer) duration(pointer, s string, lo, hi reconciler.Duration) reconciler.Duration {
	v, err := time.ParseDuration(s)
	if err != nil {
		n.fail(pointer, "invalid duration %s: %v", excerpt(s), strings.TrimPrefix(err.Error(), "time: "))
		return 0
	}
	d := reconciler.Duration(v)
	switch {
	case d < lo:
		n.fail(pointer, "must be at least %s, got %s", lo, shorten(s))
	case hi > 0 && d > hi:
		n.fail(pointer, "must be at most %s, got %s", hi, shorten(s))
	}
	return d
}

func (n *normalizer) trigger(p string, w wireTrigger, t *reconciler.Trigger) {
	var set []string
	for _, f := range []struct {
		name string
		on   bool
	}{{"cron", w.Cron != ""}, {"interval", w.Interval != ""}, {"at", w.At != ""}, {"event", w.Event != ""}} {
		if f.on {
			set = append(set, f.name)
		}
	}
	switch len(set) {
	case 0:
		n.fail(p, "needs exactly one of cron, interval, at or event")
		return
	case 1:
	default:
		n.failKey(p, set[1], "sets %s; a definition has exactly one trigger", strings.Join(set, " and "))
		return
	}
	if w.Timezone != "" && w.Cron == "" {
		n.fail(p+"/timezone", "applies only to cron triggers; remove it or use trigger.cron")
	}
	if w.Jitter != "" && w.Cron == "" {
		n.fail(p+"/jitter", "applies only to cron triggers; remove it or use trigger.cron")
	}
	if w.If != "" && w.Event == "" {
		n.fail(p+"/if", "applies only to event triggers; remove it or use trigger.event")
	}
	n.catchUp(p, w, t)
	switch {
	case w.Cron != "":
		n.cron(p, w, t)
	case w.Interval != "":
		unit := n.intervalUnit
		if unit <= 0 {
			unit = reconciler.MinInterval
		}
		t.Interval = n.duration(p+"/interval", w.Interval, unit, 0)
		if t.Interval >= unit && t.Interval%unit != 0 {
			if unit == reconciler.Duration(time.Minute) {
				n.fail(p+"/interval", "must be whole minutes, got %s (%s)", shorten(w.Interval), t.Interval)
			} else {
				n.fail(p+"/interval", "must be a whole number of %s, got %s (%s)", unit, shorten(w.Interval), t.Interval)
			}
		}
	case w.At != "":
		at, err := time.Parse(time.RFC3339, w.At)
		if err != nil {
			n.fail(p+"/at", "%s is not an RFC 3339 timestamp with offset, such as 2026-12-01T09:00:00+01:00", excerpt(w.At))
			return
		}
		if !at.After(n.now) {
			// Not an error: a one-shot that fired is history, and the
			// daemon applies one whose time passed before it was ever
			// applied as expired, firing nothing.
			n.warn(p+"/at", "%s has passed; if this one-shot has not fired yet it never will: set a future time, or remove the definition once its run is history", shorten(w.At))
		}
		at = at.UTC() // the same instant hashes the same whatever its offset
		t.At = &at
	case w.Event != "":
		t.Event = w.Event
		n.eventName(p+"/event", w.Event)
		if w.If != "" {
			t.If = w.If
			if msg := n.v.cel.check(scopeTrigger, wantBool, w.If, nil, 0); msg != "" {
				n.fail(p+"/if", "%s", msg)
			}
		}
	}
}

// catchUp checks and sets the catch-up policy of a cron or interval
// trigger. skip, the default, is stored as unset: writing it changes no
// hash.
func (n *normalizer) catchUp(p string, w wireTrigger, t *reconciler.Trigger) {
	if w.CatchUp == "" && w.CatchUpWindow == "" {
		return
	}
	if w.Cron == "" && w.Interval == "" {
		key := "catchup"
		if w.CatchUp == "" {
			key = "catchup_window"
		}
		n.fail(p+"/"+key, "applies only to cron and interval triggers (a missed fire is a scheduled one); remove it")
		return
	}
	switch c := reconciler.CatchUp(w.CatchUp); c {
	case "", reconciler.CatchUpSkip:
		if w.CatchUpWindow != "" {
			n.fail(p+"/catchup_window", "applies only with catchup: latest or all; remove it or set trigger.catchup")
		}
		return
	case reconciler.CatchUpLatest, reconciler.CatchUpAll:
		t.CatchUp = c
	default:
		n.fail(p+"/catchup", "unknown catch-up policy %s; use skip (the default), latest or all", excerpt(w.CatchUp))
		return
	}
	if w.CatchUpWindow != "" {
		t.CatchUpWindow = n.duration(p+"/catchup_window", w.CatchUpWindow, reconciler.Duration(time.Minute), reconciler.MaxCatchUpWindow)
	}
}

func (n *normalizer) cron(p string, w wireTrigger, t *reconciler.Trigger) {
	expr := strings.TrimSpace(w.Cron)
	upper := strings.ToUpper(expr)
	if strings.HasPrefix(upper, "TZ=") || strings.HasPrefix(upper, "CRON_TZ=") {
		n.fail(p+"/cron", "%s sets its time zone inline; write the expression without the TZ= prefix and set trigger.timezone", excerpt(w.Cron))
		return
	}
	if strings.HasPrefix(expr, "@every") {
		n.fail(p+"/cron", "%s is an interval, not a cron expression; use trigger.interval: %s", excerpt(w.Cron), shorten(strings.TrimSpace(strings.TrimPrefix(expr, "@every"))))
		return
	}
	t.Cron = strings.Join(strings.Fields(expr), " ")
	t.Timezone = reconciler.DefaultTimezone
	loc := time.UTC
	if w.Timezone != "" {
		t.Timezone = w.Timezone
		l, err := n.v.location(w.Timezone)
		if err != nil {
			n.fail(p+"/timezone", "unknown time zone %s; use an IANA name such as Europe/Berlin or America/New_York", excerpt(w.Timezone))
			return
		}
		loc = l
	}
	sched, err := cronParser.Parse(expr)
	if err != nil {
		n.fail(p+"/cron", "invalid cron expression %s: %s", excerpt(w.Cron), cronProblem(expr, err))
		return
	}
	first := sched.Next(n.now.In(loc))
	if first.IsZero() {
		n.fail(p+"/cron", "cron expression %s never fires", excerpt(w.Cron))
		return
	}
	if msg := dstFinding(sched, loc, t.Timezone, n.now); msg != "" {
		n.warn(p+"/cron", "%s", msg)
	}
	if w.Jitter != "" {
		t.Jitter = n.duration(p+"/jitter", w.Jitter, reconciler.Duration(time.Second), reconciler.MaxJitter)
		if t.Jitter%reconciler.Duration(time.Second) != 0 {
			n.fail(p+"/jitter", "must be whole seconds, got %s", shorten(w.Jitter))
		}
		if gap := n.v.shortestGap(expr, sched, loc); t.Jitter <= reconciler.MaxJitter && t.Jitter >= gap {
			n.fail(p+"/jitter", "%s is not shorter than the %s between runs of %s; runs would overlap", t.Jitter, gap, excerpt(w.Cron))
		}
	}
}

// cronFields names the five fields of a cron expression and their ranges.
var cronFields = [5]struct{ name, values string }{
	{"minute", "0-59"}, {"hour", "0-23"}, {"day-of-month", "1-31"}, {"month", "1-12 or JAN-DEC"}, {"day-of-week", "0-6 or SUN-SAT"},
}

// cronProblem says which part of a cron expression the parser refused.
func cronProblem(expr string, err error) string {
	msg := err.Error()
	if i := strings.Index(msg, ": ["); i >= 0 {
		msg = msg[:i]
	}
	fields := strings.Fields(expr)
	if strings.HasPrefix(expr, "@") {
		return msg + "; descriptors are @yearly, @annually, @monthly, @weekly, @daily, @midnight and @hourly"
	}
	if len(fields) != 5 {
		return fmt.Sprintf("it has %d fields; use 5 (minute hour day-of-month month day-of-week) or a descriptor such as @daily", len(fields))
	}
	for i, f := range fields {
		probe := []string{"*", "*", "*", "*", "*"}
		probe[i] = f
		if _, err := cronParser.Parse(strings.Join(probe, " ")); err != nil {
			return fmt.Sprintf("%s field %s is invalid; it takes %s, lists (1,15), ranges (1-5) and steps (*/10)", cronFields[i].name, excerpt(f), cronFields[i].values)
		}
	}
	return msg
}

// shortestGap is the shortest time between two runs of sched over its
// first few hundred runs from a fixed instant, so that the answer does not
// depend on when validation runs. It is remembered per expression and zone:
// computing it costs hundreds of schedule steps.
func (v *Validator) shortestGap(expr string, sched cron.Schedule, loc *time.Location) reconciler.Duration {
	key := loc.String() + " " + expr
	if g, ok := v.gaps.Load(key); ok {
		return g.(reconciler.Duration)
	}
	g := computeShortestGap(sched, loc)
	if v.gapCount.Add(1) > maxGapCache {
		v.gaps.Clear()
		v.gapCount.Store(0)
	}
	v.gaps.Store(key, g)
	return g
}

// maxGapCache bounds the remembered gaps; a daemon sees edits forever.
const maxGapCache = 10_000

func computeShortestGap(sched cron.Schedule, loc *time.Location) reconciler.Duration {
	const runs = 400
	prev := sched.Next(time.Date(2001, 1, 1, 0, 0, 0, 0, loc))
	best := time.Duration(1<<63 - 1)
	for range runs {
		next := sched.Next(prev)
		if next.IsZero() {
			break
		}
		best = min(best, next.Sub(prev))
		prev = next
	}
	return reconciler.Duration(best)
}

// location loads an IANA time zone once per process: parsing the
// embedded zone data is costly, and trees name few zones many times.
// "Local", which means something different on every host, and "", which
// time.LoadLocation reads as UTC, are refused.
func (v *Validator) location(name string) (*time.Location, error) {
	if name == "Local" || name == "" {
		return nil, fmt.Errorf("not an IANA zone")
	}
	if l, ok := v.zones.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	v.zones.Store(name, l)
	return l, nil
}

func (n *normalizer) eventName(p, name string) {
	switch lower := strings.ToLower(name); {
	case strings.HasPrefix(lower, "inngest/"):
		n.fail(p, "event %q is in Inngest's reserved inngest/ namespace; choose another name", name)
	case strings.HasPrefix(lower, "tasksync/"):
		// tasksync's own events (tasksync/one-shot.due fires one-shots):
		// sending one would fire a one-shot out of its time, or start a
		// manual run (tasksync/run).
		n.fail(p, "event %q is in tasksync's reserved tasksync/ namespace; choose another name", name)
	}
}

func (n *normalizer) taskConfig(p string, typ reconciler.TaskType, config map[string]any) *reconciler.TaskConfig {
	if config == nil {
		return nil
	}
	switch typ {
	case reconciler.TaskAPICall:
		return &reconciler.TaskConfig{APICall: n.apiCall(p, decodeAPICall(config), scopeTask, stepCtx{})}
	case reconciler.TaskPythonScript:
		return &reconciler.TaskConfig{PythonScript: n.python(p, decodePython(config), scopeTask, stepCtx{})}
	}
	return nil
}

func (n *normalizer) apiCall(p string, w wireAPICall, s scope, sc stepCtx) *reconciler.APICall {
	a := &reconciler.APICall{
		Method:  reconciler.DefaultMethod,
		URL:     w.URL,
		Headers: w.Headers,
		Query:   w.Query,
		Body:    w.Body,
		Timeout: reconciler.DefaultAPICallTimeout,
	}
	if w.Method != "" {
		a.Method = w.Method
	}
	if w.Timeout != "" {
		a.Timeout = n.duration(p+"/timeout", w.Timeout, reconciler.Duration(time.Millisecond), reconciler.MaxAPICallTimeout)
	}
	n.checkURL(p+"/url", w.URL)
	switch es := w.ExpectStatus.(type) {
	case json.Number:
		if c := intPtr(es); c != nil {
			a.ExpectStatus = []int{*c}
		}
	case []any:
		for _, e := range es {
			if c := intPtr(e); c != nil {
				a.ExpectStatus = append(a.ExpectStatus, *c)
			}
		}
		slices.Sort(a.ExpectStatus)
		a.ExpectStatus = slices.Compact(a.ExpectStatus)
	}
	n.strings(p+"/url", w.URL, s, sc)
	for k, v := range w.Headers {
		n.strings(p+"/headers/"+escapeToken(k), v, s, sc)
	}
	for k, v := range w.Query {
		n.strings(p+"/query/"+escapeToken(k), v, s, sc)
	}
	n.strings(p+"/body", w.Body, s, sc)
	n.grants(p, map[string]any{"url": w.URL, "headers": w.Headers, "query": w.Query, "body": w.Body})
	return a
}

// checkURL accepts absolute http and https URLs with a host, a port from
// 1 to 65535 if any, and no credentials. Parts written as templates or
// secret references are only known at execution, where the rendered URL
// is checked again (executor.CheckRequest); here the authority is checked
// when it is written literally, and credentials are refused wherever they
// would come from.
func (n *normalizer) checkURL(p, raw string) {
	lower := strings.ToLower(raw)
	if strings.Contains(raw, "{{") || strings.Contains(raw, "${") {
		scheme, _, ok := strings.Cut(lower, "://")
		if !ok || (scheme != "http" && scheme != "https") {
			n.fail(p, "%s must start with http:// or https://", excerpt(raw))
			return
		}
		authority := raw[len(scheme)+3:]
		if i := strings.IndexAny(authority, "/?#"); i >= 0 {
			authority = authority[:i]
		}
		switch {
		case strings.Contains(authority, "@"):
			n.fail(p, "%s holds credentials; send them in a header with ${secret:NAME} instead", excerpt(raw))
		case !strings.Contains(authority, "{{") && !strings.Contains(authority, "${"):
			n.checkAuthority(p, raw, scheme, authority)
		default:
			// A literal port after a templated host is checked all the same.
			tail := authority[strings.LastIndexByte(authority, '}')+1:]
			if port, ok := strings.CutPrefix(tail, ":"); ok && !strings.ContainsAny(port, "{$") {
				n.checkPort(p, raw, scheme, port)
			}
		}
		return
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		n.fail(p, "%s is not a valid URL: %v", excerpt(raw), err)
	case u.Scheme != "http" && u.Scheme != "https":
		n.fail(p, "%s must be an http or https URL", excerpt(raw))
	case u.Host == "":
		n.fail(p, "%s has no host; write %s://<host>%s", excerpt(raw), u.Scheme, shorten(u.Path))
	case u.User != nil:
		n.fail(p, "%s holds credentials; send them in a header with ${secret:NAME} instead", excerpt(raw))
	default:
		n.checkAuthority(p, raw, u.Scheme, u.Host)
	}
}

// checkAuthority checks the host[:port] of a URL written literally.
func (n *normalizer) checkAuthority(p, raw, scheme, authority string) {
	u, err := url.Parse(scheme + "://" + authority)
	if err != nil || u.Hostname() == "" {
		n.fail(p, "%s has no valid host; write %s://<host>[:port]/...", excerpt(raw), scheme)
		return
	}
	if port := u.Port(); port != "" {
		n.checkPort(p, raw, scheme, port)
	}
}

// checkPort checks a URL's port, written literally.
func (n *normalizer) checkPort(p, raw, scheme, port string) {
	if v, err := strconv.Atoi(port); err != nil || v < 1 || v > 65535 {
		n.fail(p, "%s has port %s; a port is a number from 1 to 65535 (or leave it out for %s's default)", excerpt(raw), excerpt(port), scheme)
	}
}

func (n *normalizer) python(p string, w wirePythonScript, s scope, sc stepCtx) *reconciler.PythonScript {
	py := &reconciler.PythonScript{
		Script:   w.Script,
		File:     w.File,
		Args:     w.Args,
		Env:      w.Env,
		Timeout:  reconciler.DefaultPythonTimeout,
		MemoryMB: reconciler.DefaultPythonMemoryMB,
	}
	if w.MemoryMB != 0 {
		py.MemoryMB = w.MemoryMB
	}
	if w.Timeout != "" {
		py.Timeout = n.duration(p+"/timeout", w.Timeout, reconciler.Duration(time.Second), reconciler.MaxPythonTimeout)
	}
	switch {
	case w.Script == "" && w.File == "":
		n.fail(p, "needs exactly one of script (inline code) or file (a path inside the tenant directory)")
	case w.Script != "" && w.File != "":
		n.failKey(p, "file", "sets both script and file; keep exactly one")
	case w.File != "":
		n.scriptFile(p+"/file", py)
	}
	for i, a := range w.Args {
		n.strings(fmt.Sprintf("%s/args/%d", p, i), a, s, sc)
	}
	for k, v := range w.Env {
		n.strings(p+"/env/"+escapeToken(k), v, s, sc)
	}
	n.grants(p, map[string]any{"args": w.Args, "env": w.Env})
	return py
}

// scriptFile checks that a script path stays inside the tenant directory,
// reads it and records its digest.
func (n *normalizer) scriptFile(p string, py *reconciler.PythonScript) {
	rel := py.File
	clean := path.Clean(rel)
	if path.IsAbs(rel) || clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains(rel, `\`) {
		n.fail(p, "%s must be a relative path inside the tenant directory", excerpt(rel))
		return
	}
	py.File = clean
	if n.readScript == nil {
		return
	}
	data, err := n.readScript(clean)
	if err != nil {
		n.fail(p, "%v", err)
		return
	}
	sum := sha256.Sum256(data)
	py.FileSHA256 = hex.EncodeToString(sum[:])
	py.FileContent = string(data)
}

func (n *normalizer) steps(p string, ws []wireStep) []reconciler.Step {
	out := make([]reconciler.Step, 0, len(ws))
	firstAt := map[string]int{}
	ids := make([]string, len(ws))
	for i, w := range ws {
		ids[i] = w.ID
	}
	for i, w := range ws {
		sp := fmt.Sprintf("%s/%d", p, i)
		sc := stepCtx{steps: ids, current: i}
		st := reconciler.Step{ID: w.ID, If: w.If, SleepUntil: w.SleepUntil}
		if j, dup := firstAt[w.ID]; dup {
			n.fail(sp+"/id", "duplicate step id %q (first used by step %d at line %d); step ids must be unique", w.ID, j+1, n.line(fmt.Sprintf("%s/%d/id", p, j)))
		} else {
			firstAt[w.ID] = i
		}
		var actions []string
		if w.APICall != nil {
			actions = append(actions, string(reconciler.ActionAPICall))
			st.APICall = n.apiCall(sp+"/api_call", *w.APICall, scopeStep, sc)
		}
		if w.PythonScript != nil {
			actions = append(actions, string(reconciler.ActionPythonScript))
			st.PythonScript = n.python(sp+"/python_script", *w.PythonScript, scopeStep, sc)
		}
		if w.Sleep != "" {
			actions = append(actions, string(reconciler.ActionSleep))
			st.Sleep = n.duration(sp+"/sleep", w.Sleep, reconciler.Duration(time.Second), reconciler.MaxSleep)
		}
		if w.SleepUntil != "" {
			actions = append(actions, string(reconciler.ActionSleepUntil))
			if msg := n.v.cel.check(scopeStep, wantTime, w.SleepUntil, ids, i); msg != "" {
				if _, err := time.Parse(time.RFC3339, w.SleepUntil); err == nil {
					msg = fmt.Sprintf("is a CEL expression; for a fixed time write timestamp(%q)", w.SleepUntil)
				}
				n.fail(sp+"/sleep_until", "%s", msg)
			}
		}
		if w.WaitForEvent != nil {
			actions = append(actions, string(reconciler.ActionWaitForEvent))
			wf := w.WaitForEvent
			st.WaitForEvent = &reconciler.WaitForEvent{Event: wf.Event, Match: wf.Match, If: wf.If}
			n.eventName(sp+"/wait_for_event/event", wf.Event)
			st.WaitForEvent.Timeout = n.duration(sp+"/wait_for_event/timeout", wf.Timeout, reconciler.Duration(time.Second), reconciler.MaxWaitForEventTimeout)
			if wf.If != "" {
				if msg := n.v.cel.check(scopeWait, wantBool, wf.If, nil, 0); msg != "" {
					n.fail(sp+"/wait_for_event/if", "%s", msg)
				}
			}
		}
		if w.SendEvent != nil {
			actions = append(actions, string(reconciler.ActionSendEvent))
			st.SendEvent = &reconciler.SendEvent{Name: w.SendEvent.Name, Data: w.SendEvent.Data}
			n.eventName(sp+"/send_event/name", w.SendEvent.Name)
			if _, ok := w.SendEvent.Data["tenant_id"]; ok {
				n.failKey(sp+"/send_event/data", "tenant_id", "tenant_id cannot be set: tasksync sets it to the workflow's own tenant")
			}
			n.strings(sp+"/send_event/data", w.SendEvent.Data, scopeStep, sc)
		}
		switch len(actions) {
		case 0:
			n.fail(sp, "step %q has no action; give exactly one of %s", w.ID, joinActions())
		case 1:
		default:
			n.failKey(sp, actions[1], "step %q has %s; a step has exactly one action", w.ID, strings.Join(actions, " and "))
		}
		if w.If != "" {
			if msg := n.v.cel.check(scopeStep, wantBool, w.If, ids, i); msg != "" {
				n.fail(sp+"/if", "%s", msg)
			}
		}
		out = append(out, st)
	}
	return out
}

func joinActions() string {
	names := make([]string, len(reconciler.StepActions))
	for i, a := range reconciler.StepActions {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

// stepCtx places an expression in a workflow: its step ids in order and
// the index of the step being checked. Tasks have none.
type stepCtx struct {
	steps   []string
	current int
}

// strings checks every string inside v for well-formed secret references
// and templates whose CEL compiles in scope.
func (n *normalizer) strings(p string, v any, s scope, sc stepCtx) {
	switch x := v.(type) {
	case string:
		if msg := checkSecretRefs(x); msg != "" {
			n.fail(p, "%s", msg)
		}
		exprs, msg := templateExprs(x)
		if msg != "" {
			n.fail(p, "%s", msg)
		}
		for _, e := range exprs {
			if msg := n.v.cel.check(s, wantAny, e, sc.steps, sc.current); msg != "" {
				n.fail(p, "template %s", msg)
			}
		}
	case map[string]any:
		for k, e := range x {
			n.strings(p+"/"+escapeToken(k), e, s, sc)
		}
	case []any:
		for i, e := range x {
			n.strings(fmt.Sprintf("%s/%d", p, i), e, s, sc)
		}
	}
}

// excerptBytes is how much of a value a message quotes.
const excerptBytes = 60

// excerpt quotes a value taken from a file for a message, shortened to
// excerptBytes: messages point at a place, they do not copy the file.
func excerpt(s string) string { return reconciler.Excerpt(s, excerptBytes) }
