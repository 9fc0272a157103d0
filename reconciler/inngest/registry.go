package inngest

import (
	"bytes"
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inngest/inngestgo"
	"github.com/inngest/inngestgo/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/expr"
)

// ServePath is where a tenant's app is served: ServePath + tenant.
const ServePath = "/api/inngest/"

// Runner executes one attempt of a definition's run; the function
// handlers call it (reconciler.TaskRunner).
type Runner interface {
	Run(ctx context.Context, tenant string, def reconciler.Definition, in reconciler.RunInput) (any, error)
	// StepActions perform workflow steps' actions; nil where this process
	// executes no runs.
	StepActions() reconciler.Actions
	// RunRecords keeps run records; nil where this process executes no runs.
	RunRecords() reconciler.RunRecorder
}

// Options configure a Registry. The connection settings are those of the
// SDK's own environment variables (INNGEST_DEV, INNGEST_BASE_URL,
// INNGEST_SIGNING_KEY, INNGEST_SIGNING_KEY_FALLBACK, INNGEST_EVENT_KEY,
// INNGEST_ENV), read by the caller.
type Options struct {
	AppPrefix string
	// ServeOrigin is the origin Inngest calls the apps at, e.g.
	// https://tasksync.example.com; apps are at ServeOrigin/api/inngest/<tenant>.
	ServeOrigin string
	// DevURL is the dev server's URL (INNGEST_DEV); empty for a signed
	// (self-hosted or cloud) server at BaseURL.
	DevURL             string
	BaseURL            string
	SigningKey         string
	SigningKeyFallback string
	EventKey           string
	Env                string
	Logger             *slog.Logger
	// HTTPClient talks to the Inngest server: every sync, verification and
	// event of every tenant. Default: one transport with bounded
	// connections (newHTTPClient). Whatever the client, the registry reads
	// and closes every response body before its caller sees it.
	HTTPClient *http.Client
	// Registerer receives the registry's metrics; default none.
	Registerer prometheus.Registerer
	// Signer signs tasksync's own events (fires, one-shots) and derives
	// their ids, and the runs check their MACs with it
	// (reconciler.EventKey): the key the store keeps, the same for every
	// replica and `tasksync trigger`. Default: a random key of this
	// process alone.
	Signer *reconciler.EventKey
	// BuiltApps is how many tenants' apps are kept built at once (see
	// built.go); 0 means DefaultBuiltApps.
	BuiltApps int
}

// Registry holds each tenant's app: an inngestgo client whose functions are
// the tenant's active definitions, built when first used and kept built
// while used (built.go). The SDK cannot remove a function from a client,
// so every change replaces the tenant's app, to be built anew; other
// tenants are not touched.
type Registry struct {
	opts    Options
	metrics *metrics
	envs    *expr.Envs
	client  *http.Client // shared by every app: see httpclient.go
	// events sends tasksync's own events (one-shots, fires) for every
	// tenant: sending needs none of an app's functions, so it builds no
	// app (the SDK sends an event the same whatever the client's app).
	events inngestgo.Client
	// syncKey signs the in-process in-band sync requests (sync.go): the
	// signing key, or in dev mode a random key that never leaves the
	// process.
	syncKey   string
	mu        sync.RWMutex
	apps      map[string]*app
	builtApps builtSet
	builds    atomic.Int64 // apps built, for tests
}

// app is a tenant's app: what it serves, and its built part when built.
type app struct {
	defs      []packed // the active ones of those given to SetTenant
	run       Runner
	tenant    string
	id        string
	functions []string // fully qualified function ids, sorted
	oneShots  []int    // indices in defs of those with an `at` trigger
	fired     []int    // indices in defs of intervals started by fire events (Schedule.Every)

	building sync.Mutex // held while the app is built
	// Guarded by the registry's builtApps lock:
	built   *builtApp     // nil when not built
	elem    *list.Element // in builtApps' order while built
	retired bool          // SetTenant replaced the app
}

// New returns an empty registry.
func New(opts Options) (*Registry, error) {
	if opts.AppPrefix == "" {
		opts.AppPrefix = reconciler.DefaultAppPrefix
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = newHTTPClient()
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry() // counted, but shown nowhere
	}
	if opts.Signer == nil {
		opts.Signer = reconciler.RandomEventKey()
	}
	if opts.BuiltApps <= 0 {
		opts.BuiltApps = DefaultBuiltApps
	}
	envs, err := expr.NewEnvs()
	if err != nil {
		return nil, err
	}
	syncKey := opts.SigningKey
	if opts.DevURL != "" {
		if syncKey, err = newDevSyncKey(); err != nil {
			return nil, err
		}
	}
	r := &Registry{opts: opts, metrics: newMetrics(opts.Registerer), envs: envs, client: withReadBodies(opts.HTTPClient),
		syncKey: syncKey, apps: map[string]*app{}}
	r.builtApps.max = opts.BuiltApps
	if r.events, err = inngestgo.NewClient(r.clientOpts(opts.AppPrefix, nil)); err != nil {
		return nil, fmt.Errorf("inngest client: %w", err)
	}
	return r, nil
}

// SetSigner replaces the key that signs and checks tasksync's own events
// (Options.Signer); call it before the first SetTenant.
func (r *Registry) SetSigner(k *reconciler.EventKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.opts.Signer = k
}

// ServeOrigin is the origin Inngest calls the apps at.
func (r *Registry) ServeOrigin() string { return strings.TrimSuffix(r.opts.ServeOrigin, "/") }

// AppID is a tenant's app id: <prefix>-<tenant>.
func (r *Registry) AppID(tenant string) string { return reconciler.AppID(r.opts.AppPrefix, tenant) }

// FunctionID is a definition's fully qualified function id:
// <prefix>-<tenant>-_<code> (reconciler.FunctionID).
func (r *Registry) FunctionID(tenant, code string) string {
	return reconciler.FunctionID(r.opts.AppPrefix, tenant, code)
}

// ServeHTTP serves every tenant's app under /api/inngest/<tenant>.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	tenant, ok := strings.CutPrefix(req.URL.Path, ServePath)
	if !ok || tenant == "" || strings.Contains(tenant, "/") {
		http.NotFound(w, req)
		return
	}
	r.mu.RLock()
	a := r.apps[tenant]
	r.mu.RUnlock()
	if a == nil {
		http.Error(w, `{"error":"no such tenant"}`, http.StatusNotFound)
		return
	}
	if req.Method == http.MethodPut && req.Header.Get(inngestgo.HeaderKeySignature) == "" {
		// An unsigned PUT asks for an out-of-band sync, which the SDK
		// would send through a connection it never gives back (sync.go).
		// On a signed server only Inngest (signed, in-band) may sync; the
		// dev server may ask for a sync, which tasksync sends itself.
		if r.opts.DevURL == "" {
			http.Error(w, `{"error":"unsigned sync refused"}`, http.StatusUnauthorized)
			return
		}
		if err := r.Sync(req.Context(), tenant); err != nil {
			r.opts.Logger.Warn("sync asked for by a PUT", "tenant", tenant, "err", err)
			http.Error(w, `{"error":"sync failed"}`, http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	b, err := r.built(a)
	if err != nil {
		r.opts.Logger.Error("build the app", "tenant", tenant, "err", err)
		http.Error(w, `{"error":"the app cannot be built"}`, http.StatusInternalServerError)
		return
	}
	if req.Method == http.MethodPost {
		legacyFunctionID(req, a, r.FunctionID)
	}
	b.handler.ServeHTTP(w, req)
}

// legacyFunctionID points a call for a function by its id of before the
// '_' separator (<app>-<code>, see reconciler.FunctionID) at the function
// the app serves under its current id, so that a run started before the
// change finishes on the same definition. Within one app the old id names
// one code unambiguously: the app is the tenant's, by the request's path.
func legacyFunctionID(req *http.Request, a *app, functionID func(tenant, code string) string) {
	q := req.URL.Query()
	code, ok := strings.CutPrefix(q.Get("fnId"), a.id+"-")
	if !ok || strings.HasPrefix(code, "_") {
		return
	}
	id := functionID(a.tenant, code)
	if !slices.Contains(a.functions, id) {
		return
	}
	q.Set("fnId", id)
	req.URL.RawQuery = q.Encode()
}

// SetTenant replaces a tenant's app with one serving defs' active
// definitions; an empty set removes the app's functions (the app stays so
// that a sync can tell Inngest). run executes their runs.
//
// It keeps the definitions and builds nothing: the app is built on its
// first use (built.go). What building would refuse, SetTenant refuses
// now, and the tenant keeps the app it had: the serve origin must be an
// absolute URL, and each active definition's trigger must map to an
// Inngest trigger (schedule: the only step of building that can fail on a
// definition; the SDK checks no more than that a function's id, here
// "_" + code, is not empty). Checking costs a few strings per definition,
// dropped at once. Building every app here instead would cost every
// tenant's client and functions at every load, to be dropped again as
// soon as the set of built apps is full.
func (r *Registry) SetTenant(tenant string, defs []reconciler.Definition, run Runner) error {
	if _, err := r.checkedOrigin(); err != nil {
		return err
	}
	a := &app{run: run, tenant: tenant, id: r.AppID(tenant)}
	var tasks, workflows bool
	for _, d := range defs {
		if !d.Spec.Active {
			continue
		}
		i := len(a.defs)
		sched, err := schedule(tenant, d.Metadata.Code, d.Spec.Trigger)
		if err != nil {
			return fmt.Errorf("tenant %q: function %s: %w", tenant, d.Metadata.Code, err)
		}
		p, err := pack(d, d.Spec.Trigger.Type() == reconciler.TriggerDate || sched.Every > 0)
		if err != nil {
			return fmt.Errorf("tenant %q: %w", tenant, err)
		}
		a.defs = append(a.defs, p)
		a.functions = append(a.functions, r.FunctionID(tenant, d.Metadata.Code))
		if d.Kind == reconciler.KindWorkflow {
			workflows = true
		} else {
			tasks = true
		}
		if d.Spec.Trigger.Type() == reconciler.TriggerDate {
			a.oneShots = append(a.oneShots, i)
		}
		if sched.Every > 0 {
			a.fired = append(a.fired, i)
		}
	}
	slices.Sort(a.functions)
	if tasks {
		r.metrics.runsFrom(tenant, kindLabel(reconciler.KindScheduledTask))
	}
	if workflows {
		r.metrics.runsFrom(tenant, kindLabel(reconciler.KindWorkflow))
	}
	r.mu.Lock()
	old := r.apps[tenant]
	r.apps[tenant] = a
	r.mu.Unlock()
	if old != nil {
		r.builtApps.retire(old)
	}
	return nil
}

// checkedOrigin is the origin the apps are served at, checked.
func (r *Registry) checkedOrigin() (string, error) {
	origin, err := url.Parse(r.opts.ServeOrigin)
	if err != nil || origin.Scheme == "" || origin.Host == "" {
		return "", fmt.Errorf("serve origin %q is not an absolute URL", r.opts.ServeOrigin)
	}
	return strings.TrimSuffix(origin.String(), "/"), nil
}

// clientOpts are the options of an inngestgo client of app appID,
// connected as the registry is; mw are its middleware.
func (r *Registry) clientOpts(appID string, mw []func() middleware.Middleware) inngestgo.ClientOpts {
	dev := r.opts.DevURL != ""
	opts := inngestgo.ClientOpts{
		AppID:      appID,
		Dev:        &dev,
		Logger:     sdkLogger(r.opts.Logger), // its lines at DEBUG: ours say each event once
		HTTPClient: r.client,
		Middleware: mw,
	}
	if dev {
		// The dev server checks no signature; the key signs only the
		// registry's own in-process in-band sync requests.
		opts.SigningKey = &r.syncKey
		opts.APIBaseURL = &r.opts.DevURL
		opts.EventAPIBaseURL = &r.opts.DevURL
		reg := strings.TrimSuffix(r.opts.DevURL, "/") + "/fn/register"
		opts.RegisterURL = &reg
	} else {
		if r.opts.BaseURL != "" {
			opts.APIBaseURL = &r.opts.BaseURL
			opts.EventAPIBaseURL = &r.opts.BaseURL
			reg := strings.TrimSuffix(r.opts.BaseURL, "/") + "/fn/register"
			opts.RegisterURL = &reg
		}
		opts.SigningKey = nonEmpty(r.opts.SigningKey)
		opts.SigningKeyFallback = nonEmpty(r.opts.SigningKeyFallback)
		opts.EventKey = nonEmpty(r.opts.EventKey)
		opts.Env = nonEmpty(r.opts.Env)
	}
	return opts
}

// build builds a's client, its functions and its handler, from the
// definitions SetTenant kept: the same definitions make the same app.
func (r *Registry) build(a *app) (*builtApp, error) {
	serveOrigin, err := r.checkedOrigin()
	if err != nil {
		return nil, err
	}
	tenant := a.tenant
	client, err := inngestgo.NewClient(r.clientOpts(a.id, []func() middleware.Middleware{
		func() middleware.Middleware { return &panicWatch{r: r, tenant: tenant} },
	}))
	if err != nil {
		return nil, fmt.Errorf("tenant %q: inngest client: %w", tenant, err)
	}
	for _, p := range a.defs {
		d, err := p.unpack(tenant)
		if err != nil {
			return nil, fmt.Errorf("tenant %q: %w", tenant, err)
		}
		if err := r.register(client, tenant, d, a.run); err != nil {
			return nil, fmt.Errorf("tenant %q: function %s: %w", tenant, d.Metadata.Code, err)
		}
	}
	servePath := ServePath + tenant
	// Sync asks the handler in-process with a signed PUT (sync.go); the
	// SDK's unauthenticated (out-of-band) sync stays off, and ServeHTTP
	// keeps unsigned PUTs away from the handler.
	unauthed := false
	h := client.ServeWithOpts(inngestgo.ServeOpts{Origin: &serveOrigin, Path: &servePath, EnableUnauthedSync: &unauthed})
	return &builtApp{client: client, handler: h}, nil
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (r *Registry) register(client inngestgo.Client, tenant string, d reconciler.Definition, run Runner) error {
	sched, err := schedule(tenant, d.Metadata.Code, d.Spec.Trigger)
	if err != nil {
		return err
	}
	retries := d.Spec.Retries
	fo := inngestgo.FunctionOpts{
		ID:      reconciler.FunctionSlug(d.Metadata.Code),
		Name:    cmpOr(d.Metadata.Name, d.Metadata.Code),
		Retries: &retries,
	}
	if d.Spec.Concurrency > 0 {
		fo.Concurrency = &inngestgo.ConfigConcurrency{Fn: []inngestgo.ConfigFnConcurrency{{Limit: d.Spec.Concurrency}}}
	}
	delay := time.Duration(d.Spec.RetryDelay)
	// Every function also starts from its manual run event (manual.go).
	trigger := append(sched.Triggers(), manualTrigger(tenant, d.Metadata.Code))
	if d.Kind == reconciler.KindWorkflow {
		wf := &workflow{tenant: tenant, def: d, envs: r.envs, actions: run.StepActions(), records: run.RunRecords(), delay: delay, send: client.Send, key: r.opts.Signer,
			ended: func(e attemptEnd) {
				r.attemptEnded(tenant, d.Metadata.Code, "workflow", e.in, e.err, e.final, e.started, e.failedStep)
			}}
		_, err = inngestgo.CreateFunction(client, fo, trigger, func(ctx context.Context, in inngestgo.Input[any]) (any, error) {
			// The run tells each attempt's end (wf.ended); an invocation
			// that only advanced to a new step returns nothing.
			if ri := runInput(in, d.Spec.Trigger); reconciler.CheckSigned(r.opts.Signer, ri, time.Now()) == nil {
				r.chainCatchUp(ctx, client, tenant, d, ri)
			}
			out, err := wf.run(ctx, in)
			if errors.Is(err, reconciler.ErrStale) || errors.Is(err, reconciler.ErrAlreadyRan) {
				r.metrics.runs.WithLabelValues(tenant, "workflow", runSkipped).Inc()
				r.opts.Logger.Info("run", "tenant", tenant, "code", d.Metadata.Code, "run_id", in.InputCtx.RunID,
					"attempt", in.InputCtx.Attempt, "status", runSkipped, "err", err)
				return skipped(in, err)
			}
			return out, sdkError(err, delay)
		})
		return err
	}
	_, err = inngestgo.CreateFunction(client, fo, trigger, func(ctx context.Context, in inngestgo.Input[any]) (any, error) {
		start := time.Now()
		ri := runInput(in, d.Spec.Trigger)
		// tasksync's own events must carry its MAC; a forged one neither
		// runs nor seeds the next fire.
		err := reconciler.CheckSigned(r.opts.Signer, ri, start)
		var out any
		if err == nil {
			if sched.Every > 0 {
				r.seedNext(ctx, client, tenant, d, ri)
			}
			r.chainCatchUp(ctx, client, tenant, d, ri)
			out, err = run.Run(ctx, tenant, d, ri)
		}
		if errors.Is(err, reconciler.ErrStale) || errors.Is(err, reconciler.ErrAlreadyRan) {
			// Not a failure: this run must not execute.
			r.metrics.runs.WithLabelValues(tenant, kindLabel(d.Kind), runSkipped).Inc()
			r.opts.Logger.Info("run", "tenant", tenant, "code", d.Metadata.Code, "run_id", in.InputCtx.RunID,
				"attempt", in.InputCtx.Attempt, "status", runSkipped, "duration", time.Since(start).Round(time.Millisecond), "err", err)
			return skipped(in, err)
		}
		r.attemptEnded(tenant, d.Metadata.Code, kindLabel(d.Kind), ri, err, err == nil || lastAttempt(err, ri.Attempt, retries), start, "")
		return out, sdkError(err, delay)
	})
	return err
}

// manual reports whether in is a manual run (reconciler.IsManualEvent):
// an interval's grid does not apply to it.
func manual(in inngestgo.Input[any]) bool { return reconciler.IsManualEvent(in.Event.Name) }

// skipped is how a run that must not execute (err) ends: a scheduled or
// event run completes, skipped, as nothing went wrong; a manual run
// fails, without retries, with the reason, for whoever asked for it.
func skipped(in inngestgo.Input[any], err error) (any, error) {
	if manual(in) {
		return nil, inngestgo.NoRetryError(fmt.Errorf("manual run refused: %w", err))
	}
	return map[string]any{"skipped": err.Error()}, nil
}

// retryAt is when a retry after delay may start. Inngest schedules a retry
// to the whole second, dropping the fraction, so the time is rounded up:
// the retry then waits at least delay, and less than a second more.
func retryAt(now time.Time, delay time.Duration) time.Time {
	at := now.Add(delay)
	if t := at.Truncate(time.Second); !t.Equal(at) {
		return t.Add(time.Second)
	}
	return at
}

// kindLabel is the kind label of run metrics: "task" or "workflow".
func kindLabel(k reconciler.Kind) string {
	if k == reconciler.KindWorkflow {
		return "workflow"
	}
	return "task"
}

// runInput converts the SDK's input to the domain's, with the fire of
// trigger t the run is for, when its event names one.
func runInput(in inngestgo.Input[any], t reconciler.Trigger) reconciler.RunInput {
	ri := reconciler.RunInput{RunID: in.InputCtx.RunID, Attempt: in.InputCtx.Attempt}
	if b, err := json.Marshal(in.Event); err == nil && json.Unmarshal(b, &ri.Event) != nil {
		ri.Event = nil // an event is always a JSON object
	}
	if at, catchUp, ok := reconciler.ScheduledFire(t, ri.Event); ok {
		ri.ScheduledFor, ri.CatchUp = at, catchUp
	}
	return ri
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Functions returns the function ids a tenant's app serves.
func (r *Registry) Functions(tenant string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if a := r.apps[tenant]; a != nil {
		return slices.Clone(a.functions)
	}
	return nil
}

// ErrRejected means the Inngest server refused an app's registration.
var ErrRejected = errors.New("the Inngest server rejected the app")

// SyncIsolating syncs a tenant's app; if the server rejects it, it looks
// for the one function whose absence makes the app acceptable, keeps that
// function out, and returns its code with the server's reason. A rejected
// registration changes nothing on the server, so the search never takes
// a valid function away: the first attempt that succeeds is the app
// without its offender. Several offenders at once are not separated; the
// tenant's sync then fails with the server's message.
func (r *Registry) SyncIsolating(ctx context.Context, tenant string) (rejected map[string]string, err error) {
	err = r.Sync(ctx, tenant)
	if err == nil || !errors.Is(err, ErrRejected) {
		return nil, err
	}
	r.mu.RLock()
	a := r.apps[tenant]
	r.mu.RUnlock()
	all := make([]reconciler.Definition, len(a.defs))
	for i, p := range a.defs { // the active definitions (SetTenant)
		d, uerr := p.unpack(tenant)
		if uerr != nil {
			return nil, fmt.Errorf("tenant %q: %w", tenant, uerr)
		}
		all[i] = d
	}
	for i, d := range all {
		rest := slices.Concat(all[:i:i], all[i+1:])
		if serr := r.SetTenant(tenant, rest, a.run); serr != nil {
			return nil, serr
		}
		if serr := r.Sync(ctx, tenant); serr == nil {
			return map[string]string{d.Metadata.Code: err.Error()}, nil
		} else if !errors.Is(serr, ErrRejected) {
			err = serr
			break
		}
	}
	// No single offender: serve the full set again, still unsynced.
	if serr := r.SetTenant(tenant, all, a.run); serr != nil {
		return nil, serr
	}
	return nil, err
}

// ErrNoApp means the registry has no app for the tenant.
var ErrNoApp = errors.New("no app for this tenant")

// SendOneShots sends, for each active `at` definition of a tenant whose
// time is still ahead, the event that starts it at that time. The event's
// id names the definition's version, so sending it again (every sync)
// starts nothing new, and the runner refuses a run whose event names
// another version: a one-shot changed or retired before its time never
// runs in its old form.
func (r *Registry) SendOneShots(ctx context.Context, tenant string, now time.Time) (sent int, err error) {
	r.mu.RLock()
	a := r.apps[tenant]
	r.mu.RUnlock()
	if a == nil {
		return 0, ErrNoApp
	}
	for _, i := range a.oneShots {
		d := a.defs[i].head(tenant)
		at := *d.Spec.Trigger.At
		if !at.After(now) {
			continue
		}
		id := r.OneShotEventID(a.id, d)
		data := map[string]any{"tenant_id": tenant, "code": d.Metadata.Code, "hash": d.Hash, reconciler.EventNonceKey: id}
		r.opts.Signer.Sign(OneShotEvent, data)
		ev := inngestgo.Event{ID: &id, Name: OneShotEvent, Timestamp: at.UnixMilli(), Data: data}
		if _, err := r.events.Send(ctx, ev); err != nil {
			return sent, fmt.Errorf("tenant %q: send the one-shot event of %s: %w", tenant, d.Metadata.Code, err)
		}
		sent++
	}
	return sent, nil
}

// seedNext sends, when a run of an interval driven by fire events starts,
// the event of the interval's next instant: the chain goes on whatever
// the run does. A lost send is made good by the leader's next resync
// (SeedFires); the event's id makes a second send start nothing.
func (r *Registry) seedNext(ctx context.Context, client inngestgo.Client, tenant string, d reconciler.Definition, in reconciler.RunInput) {
	if name, _ := in.Event["name"].(string); name != reconciler.FireEventName || in.ScheduledFor.IsZero() {
		return
	}
	if data, _ := in.Event["data"].(map[string]any); data["hash"] != d.Hash {
		return
	}
	after, now := in.ScheduledFor, time.Now()
	if after.After(now.Add(reconciler.OneShotSkew)) {
		return // not due: a forged event, which the run refuses too
	}
	if now.After(after) {
		after = now
	}
	next := reconciler.NextFires(d.Spec.Trigger, after, 1)
	if len(next) == 0 {
		return
	}
	if _, err := client.Send(ctx, r.fireEvent(r.AppID(tenant), tenant, d, next[0], false)); err != nil {
		r.opts.Logger.Warn("send the next fire; the leader's next resync sends it", "tenant", tenant, "code", d.Metadata.Code,
			"scheduled_for", next[0], "err", err)
	}
}

// fireEvent is the fire event of d's fire at: due at that time, signed,
// its id naming the definition's version and the instant (a catch-up's
// another), so that sending it again starts nothing.
//
// A catch-up's event names the catch-ups to run after it (then, oldest
// first, under the MAC too): its run sends the first of them, naming the
// rest, as it starts (chainCatchUp), so that catchup: all runs oldest
// first.
func (r *Registry) fireEvent(appID, tenant string, d reconciler.Definition, at time.Time, catchUp bool, then ...time.Time) inngestgo.Event {
	id := r.FireEventID(appID, d, at, catchUp)
	data := map[string]any{"tenant_id": tenant, "code": d.Metadata.Code, "hash": d.Hash,
		"scheduled_for": at.UTC().Format(time.RFC3339Nano), "catchup": catchUp, reconciler.EventNonceKey: id}
	if len(then) > 0 {
		s := make([]string, len(then))
		for i, f := range then {
			s[i] = f.UTC().Format(time.RFC3339Nano)
		}
		data["then"] = s
	}
	r.opts.Signer.Sign(reconciler.FireEventName, data)
	ev := inngestgo.Event{ID: &id, Name: reconciler.FireEventName, Data: data}
	if !catchUp {
		ev.Timestamp = at.UnixMilli()
	}
	return ev
}

// chainCatchUp sends, when a catch-up run of d starts, the event of the
// next catch-up its event names (data.then), naming the rest: the
// catch-ups of catchup: all start oldest first, each after the one
// before it started. Only a fire event of d's version under catchup: all
// chains, and only to fires of d's schedule after the run's own, in
// order, at most MaxCatchUpRuns in all, none ahead of now: a forged
// event can ask for nothing a catch-up event could not. A lost send is
// made good by the leader's next resync, which sends the oldest catch-up
// still owed; the event's id makes a second send start nothing.
func (r *Registry) chainCatchUp(ctx context.Context, client inngestgo.Client, tenant string, d reconciler.Definition, in reconciler.RunInput) {
	if name, _ := in.Event["name"].(string); name != reconciler.FireEventName || !in.CatchUp || in.ScheduledFor.IsZero() {
		return
	}
	t := d.Spec.Trigger
	data, _ := in.Event["data"].(map[string]any)
	if data["hash"] != d.Hash || t.CatchUp != reconciler.CatchUpAll {
		return
	}
	raw, _ := data["then"].([]any)
	if len(raw) == 0 || len(raw) >= reconciler.MaxCatchUpRuns {
		return
	}
	now := time.Now()
	then := make([]time.Time, 0, len(raw))
	prev := in.ScheduledFor
	for _, v := range raw {
		s, _ := v.(string)
		f, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || !f.After(prev) || f.After(now.Add(reconciler.OneShotSkew)) {
			return
		}
		if at, ok := reconciler.FireAt(t, f); !ok || !at.Equal(f) {
			return
		}
		then = append(then, f)
		prev = f
	}
	if _, err := client.Send(ctx, r.fireEvent(r.AppID(tenant), tenant, d, then[0], true, then[1:]...)); err != nil {
		r.opts.Logger.Warn("send the next catch-up; the leader's next resync sends it", "tenant", tenant, "code", d.Metadata.Code,
			"scheduled_for", then[0], "err", err)
	}
}

// FireEventID is the idempotency key of a fire event: the definition's
// function id, then a MAC (under the registry's Signer) of its version,
// the instant and whether it is a catch-up, so that nobody without the
// key can send an event under this id first and have Inngest drop
// tasksync's own as a duplicate.
func (r *Registry) FireEventID(appID string, d reconciler.Definition, at time.Time, catchUp bool) string {
	return r.opts.Signer.ID(appID+"-"+reconciler.FunctionSlug(d.Metadata.Code), "fire", d.Hash,
		strconv.FormatInt(at.UnixMilli(), 10), strconv.FormatBool(catchUp))
}

// maxEventsPerSend bounds one request of events to Inngest.
const maxEventsPerSend = 100

// SeedFires sends, for each active interval of a tenant driven by fire
// events, the event of its next instant after now, when that instant is
// at most horizon ahead (any distance for 0). Sent at every sync and
// resync, it re-seeds a chain that was lost (an Inngest that lost its
// state, a run that never started) within one resync; the event's id
// makes the sends of the same instant start one run, and the horizon
// keeps a long interval from sending its instant at every resync.
func (r *Registry) SeedFires(ctx context.Context, tenant string, now time.Time, horizon time.Duration) (sent int, err error) {
	r.mu.RLock()
	a := r.apps[tenant]
	r.mu.RUnlock()
	if a == nil {
		return 0, ErrNoApp
	}
	var evs []any
	for _, i := range a.fired {
		d := a.defs[i].head(tenant)
		if next := reconciler.NextFires(d.Spec.Trigger, now, 1); len(next) == 1 && (horizon <= 0 || next[0].Sub(now) <= horizon) {
			evs = append(evs, r.fireEvent(a.id, tenant, d, next[0], false))
		}
	}
	return r.sendEvents(ctx, tenant, evs)
}

// SendFires sends the catch-up events of a tenant's missed fires: each
// names the version (hash) it was found missing under, and a definition
// the app no longer serves in that version sends nothing.
func (r *Registry) SendFires(ctx context.Context, tenant string, fires []reconciler.Fire) (sent int, err error) {
	r.mu.RLock()
	a := r.apps[tenant]
	r.mu.RUnlock()
	if a == nil {
		return 0, ErrNoApp
	}
	var evs []any
	for _, f := range fires {
		i := slices.IndexFunc(a.defs, func(p packed) bool {
			return p.code == f.Code && p.hash == f.Hash // a.defs are the active ones
		})
		if i < 0 {
			continue
		}
		evs = append(evs, r.fireEvent(a.id, tenant, a.defs[i].head(tenant), f.At, f.CatchUp, f.Then...))
	}
	return r.sendEvents(ctx, tenant, evs)
}

func (r *Registry) sendEvents(ctx context.Context, tenant string, evs []any) (sent int, err error) {
	for len(evs) > 0 {
		n := min(len(evs), maxEventsPerSend)
		if _, err := r.events.SendMany(ctx, evs[:n]); err != nil {
			return sent, fmt.Errorf("tenant %q: send fire events: %w", tenant, err)
		}
		sent += n
		evs = evs[n:]
	}
	return sent, nil
}

// OneShotEventID is the idempotency key of a one-shot's event: its
// function id (unambiguous, see reconciler.FunctionID), then a MAC of its
// version (see FireEventID).
func (r *Registry) OneShotEventID(appID string, d reconciler.Definition) string {
	return r.opts.Signer.ID(appID+"-"+reconciler.FunctionSlug(d.Metadata.Code), "one-shot", d.Hash)
}

// Verify reads the server's view of a tenant's app and compares it with
// what the registry serves. Only the dev server's API is read for now.
func (r *Registry) Verify(ctx context.Context, tenant string) (reconciler.Drift, error) {
	want := r.Functions(tenant)
	base := r.opts.DevURL
	if base == "" {
		base = r.opts.BaseURL
	}
	if base == "" {
		// Inngest Cloud by default: its view of an app is not read here;
		// the sync's own answer is all there is.
		return reconciler.Drift{}, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/v1/apps/"+url.PathEscape(r.AppID(tenant))+"/functions", nil)
	if err != nil {
		return reconciler.Drift{}, err
	}
	if r.opts.SigningKey != "" {
		req.Header.Set("Authorization", "Bearer "+r.opts.SigningKey)
	}
	res, err := r.client.Do(req)
	if err != nil {
		return reconciler.Drift{}, fmt.Errorf("verify %s: %w", r.AppID(tenant), err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxResponseBody))
	if err != nil {
		return reconciler.Drift{}, fmt.Errorf("verify %s: read the server's answer: %w", r.AppID(tenant), err)
	}
	var have []string
	switch {
	case res.StatusCode == http.StatusNotFound:
		// The server does not know the app: every function is missing.
	case res.StatusCode/100 != 2:
		return reconciler.Drift{}, fmt.Errorf("verify %s: the server answered %d: %s", r.AppID(tenant), res.StatusCode, strings.TrimSpace(string(body)))
	default:
		var fns []struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(body, &fns); err != nil {
			return reconciler.Drift{}, fmt.Errorf("verify %s: %w", r.AppID(tenant), err)
		}
		for _, f := range fns {
			have = append(have, f.ID)
		}
	}
	var d reconciler.Drift
	for _, id := range want {
		if !slices.Contains(have, id) {
			d.Missing = append(d.Missing, id)
		}
	}
	for _, id := range have {
		if !slices.Contains(want, id) {
			d.Extra = append(d.Extra, id)
		}
	}
	if !d.None() {
		r.metrics.syncs.WithLabelValues(tenant, SyncDrift).Inc()
	}
	return d, nil
}

// Views reads the server's view of every app at once, app id → the ids of
// its functions, from the dev server's GraphQL API: one request instead of
// one per app. Other servers return reconciler.ErrNoBulkView.
func (r *Registry) Views(ctx context.Context) (map[string][]string, error) {
	if r.opts.DevURL == "" {
		return nil, reconciler.ErrNoBulkView
	}
	q, err := json.Marshal(map[string]string{"query": "{ apps { externalID functions { slug } } }"})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(r.opts.DevURL, "/")+"/v0/gql", bytes.NewReader(q))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read every app's view: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxResponseBody))
	if err != nil {
		return nil, fmt.Errorf("read every app's view: %w", err)
	}
	if res.StatusCode/100 != 2 {
		return nil, fmt.Errorf("read every app's view: the server answered %d: %s", res.StatusCode, strings.TrimSpace(string(body)))
	}
	var out struct {
		Data struct {
			Apps []struct {
				ExternalID string `json:"externalID"`
				Functions  []struct {
					Slug string `json:"slug"`
				} `json:"functions"`
			} `json:"apps"`
		} `json:"data"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("read every app's view: %w", err)
	}
	if len(out.Errors) > 0 {
		return nil, fmt.Errorf("read every app's view: %s", out.Errors[0].Message)
	}
	views := make(map[string][]string, len(out.Data.Apps))
	for _, a := range out.Data.Apps {
		ids := make([]string, 0, len(a.Functions))
		for _, f := range a.Functions {
			ids = append(ids, f.Slug)
		}
		views[a.ExternalID] = ids
	}
	return views, nil
}
