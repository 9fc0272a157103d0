package statusapi

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/riveredge/tasksync/reconciler"
)

// Reader is the applied state the API reads (store.Store).
type Reader interface {
	LastReconcile(ctx context.Context) (reconciler.ReconcileRecord, error)
	TenantStatuses(ctx context.Context) ([]reconciler.TenantStatus, error)
	ListDefinitions(ctx context.Context, tenant string, f reconciler.DefinitionFilter) ([]reconciler.DefinitionSummary, error)
	Definition(ctx context.Context, tenant, code string) (reconciler.DefinitionDetail, error)
	// DefinitionByUUID and Run confine the lookup to tenant unless it
	// is "".
	DefinitionByUUID(ctx context.Context, uuid, tenant string) (reconciler.DefinitionDetail, error)
	Runs(ctx context.Context, tenant, code string, limit int, before int64) ([]reconciler.RunRecord, error)
	TenantRuns(ctx context.Context, tenant string, f reconciler.RunFilter) ([]reconciler.RunRecord, error)
	Run(ctx context.Context, runID, tenant string) ([]reconciler.RunRecord, error)
	Problems(ctx context.Context, tenant string) ([]reconciler.Problem, error)
}

// Options configure the handler.
type Options struct {
	Reader Reader
	// Leader reports whether this replica leads.
	Leader func() bool
	// TokensFile, if set, requires `Authorization: Bearer <token>` with a
	// token from the file; a tenant token reads only its tenant.
	TokensFile string
	// Metrics, if set, is served at /metrics through the same token
	// check: open without TokensFile, else only to a token for every
	// tenant ("*"), since the metrics carry every tenant's counts.
	Metrics http.Handler
	Logger  *slog.Logger
	// Now is the clock of next fire times; default time.Now.
	Now func() time.Time
}

// Page sizes of the list endpoints.
const (
	defaultLimit = 50
	maxLimit     = 500
	nextFires    = 5
)

type api struct {
	opts   Options
	tokens *tokens
}

// NewHandler returns the status API under /v1/ and, when opts.Metrics is
// set, the metrics at /metrics behind the same tokens.
func NewHandler(opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Leader == nil {
		opts.Leader = func() bool { return false }
	}
	a := &api{opts: opts}
	if opts.TokensFile != "" {
		a.tokens = &tokens{path: opts.TokensFile}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/status", a.get(a.status))
	mux.HandleFunc("/v1/tenants", a.get(a.tenants))
	mux.HandleFunc("/v1/tenants/{tenant}/definitions", a.get(a.definitions, definitionParams...))
	mux.HandleFunc("/v1/tenants/{tenant}/definitions/{code}", a.get(a.definition))
	mux.HandleFunc("/v1/tenants/{tenant}/definitions/{code}/runs", a.get(a.runs, "limit", "cursor"))
	mux.HandleFunc("/v1/tenants/{tenant}/runs", a.get(a.tenantRuns, tenantRunParams...))
	mux.HandleFunc("/v1/tenants/{tenant}/errors", a.get(a.errors))
	mux.HandleFunc("/v1/definitions/{uuid}", a.get(a.definitionByUUID))
	mux.HandleFunc("/v1/runs/{run_id}", a.get(a.run))
	if opts.Metrics != nil {
		// Outside the status API's documents: a scraper's parameters
		// are the metrics handler's business.
		mux.HandleFunc("/metrics", a.guard(func(w http.ResponseWriter, r *http.Request, sc scope) {
			if sc != "*" {
				writeError(w, http.StatusForbidden, "the metrics carry every tenant's counts: only a token for every tenant (*) may read them")
				return
			}
			opts.Metrics.ServeHTTP(w, r)
		}))
	}
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	return mux
}

// scope is what the caller's token may read: "*" for every tenant.
type scope string

func (s scope) allows(tenant string) bool { return s == "*" || string(s) == tenant }

// tenant is the tenant a lookup is confined to: "" for every tenant.
func (s scope) tenant() string {
	if s == "*" {
		return ""
	}
	return string(s)
}

// get wraps an endpoint as guard does, and answers 400, naming it, to a
// query parameter that is not one of params or is given twice.
func (a *api) get(h func(w http.ResponseWriter, r *http.Request, sc scope), params ...string) http.HandlerFunc {
	return a.guard(func(w http.ResponseWriter, r *http.Request, sc scope) {
		if checkParams(w, r, params) {
			h(w, r, sc)
		}
	})
}

// guard wraps an endpoint: GET only (405 with a JSON body otherwise), the
// token checked, a tenant in the path checked against the token (403).
func (a *api) guard(h func(w http.ResponseWriter, r *http.Request, sc scope)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "the status API is read-only: "+r.Method+" is not allowed")
			return
		}
		sc := scope("*")
		if a.tokens != nil {
			token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || token == "" {
				writeError(w, http.StatusUnauthorized, "a bearer token is required (Authorization: Bearer <token>)")
				return
			}
			tenant, found, err := a.tokens.lookup(token)
			if err != nil {
				a.opts.Logger.Error("status API tokens", "err", err)
				writeError(w, http.StatusServiceUnavailable, "the tokens file cannot be read")
				return
			}
			if !found {
				writeError(w, http.StatusUnauthorized, "unknown token")
				return
			}
			sc = scope(tenant)
		}
		if t := r.PathValue("tenant"); t != "" && !sc.allows(t) {
			writeError(w, http.StatusForbidden, "this token may not read tenant "+strconv.Quote(t))
			return
		}
		h(w, r, sc)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return // the client went away
	}
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": msg, "status": status})
}

// badParam answers 400 for the query parameter (or path segment) name:
// the error document names it in "parameter" and in its message.
func badParam(w http.ResponseWriter, name, msg string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": name + ": " + msg, "status": http.StatusBadRequest, "parameter": name})
}

// fail answers a reader error: 404 for ErrNotFound, 500 otherwise.
func (a *api) fail(w http.ResponseWriter, err error, what string) {
	if errors.Is(err, reconciler.ErrNotFound) {
		writeError(w, http.StatusNotFound, what+" not found")
		return
	}
	a.opts.Logger.Error("status API", "err", err)
	writeError(w, http.StatusInternalServerError, "cannot read the applied state")
}

// status is the overview. Every count covers only the tenants the token
// may read. The last reconcile is global (one row per reconcile of the
// whole tree, not split by tenant), so a tenant token sees only when it
// ran, not its result, counts or message, which describe other tenants
// too.
func (a *api) status(w http.ResponseWriter, r *http.Request, sc scope) {
	out := map[string]any{"leader": a.opts.Leader()}
	last, err := a.opts.Reader.LastReconcile(r.Context())
	switch {
	case err == nil && sc == "*":
		out["last_reconcile"] = last
	case err == nil:
		out["last_reconcile"] = map[string]any{"started_at": last.StartedAt, "finished_at": last.FinishedAt, "duration_ms": last.DurationMS}
	case errors.Is(err, reconciler.ErrNotFound):
		out["last_reconcile"] = nil
	default:
		a.fail(w, err, "")
		return
	}
	tenants, err := a.opts.Reader.TenantStatuses(r.Context())
	if err != nil {
		a.fail(w, err, "")
		return
	}
	sync := map[reconciler.SyncState]int{}
	syncFailed := []string{}
	held := map[string][]string{}
	total := 0
	var totals struct {
		Tenants     int `json:"tenants"`
		Definitions int `json:"definitions"`
		Active      int `json:"active"`
		Errors      int `json:"errors"`
	}
	for _, t := range tenants {
		if !sc.allows(t.Tenant) {
			continue
		}
		totals.Tenants++
		totals.Definitions += t.Definitions
		totals.Active += t.Active
		totals.Errors += t.Errors
		sync[t.SyncState]++
		if t.SyncState == reconciler.SyncFailed {
			syncFailed = append(syncFailed, t.Tenant)
		}
		if len(t.HeldRetires) > 0 {
			held[t.Tenant] = t.HeldRetires
			total += len(t.HeldRetires)
		}
	}
	out["totals"] = totals
	out["inngest_sync"] = sync
	out["sync_failed"] = syncFailed // the tenants whose app's last sync failed
	out["held_retirements"] = map[string]any{"total": total, "tenants": held}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) tenants(w http.ResponseWriter, r *http.Request, sc scope) {
	tenants, err := a.opts.Reader.TenantStatuses(r.Context())
	if err != nil {
		a.fail(w, err, "")
		return
	}
	out := []reconciler.TenantStatus{}
	for _, t := range tenants {
		if sc.allows(t.Tenant) {
			if t.HeldRetires == nil {
				t.HeldRetires = []string{}
			}
			out = append(out, t)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tenants": out})
}

// definitionParams are the query parameters of a definition list.
var definitionParams = []string{"kind", "type", "trigger_type", "active", "sync_state", "has_errors", "q", "limit", "cursor"}

func (a *api) definitions(w http.ResponseWriter, r *http.Request, _ scope) {
	q := r.URL.Query()
	f := reconciler.DefinitionFilter{Query: q.Get("q"), Limit: defaultLimit}
	ok := enumParam(w, q, "kind", &f.Kind, reconciler.KindScheduledTask, reconciler.KindWorkflow) &&
		enumParam(w, q, "type", &f.Type, string(reconciler.TaskAPICall), string(reconciler.TaskPythonScript), "workflow") &&
		enumParam(w, q, "trigger_type", &f.TriggerType, reconciler.TriggerCron, reconciler.TriggerInterval, reconciler.TriggerDate, reconciler.TriggerEvent) &&
		enumParam(w, q, "sync_state", &f.SyncState, reconciler.SyncPending, reconciler.SyncSynced, reconciler.SyncRejected) &&
		boolParam(w, q, "active", &f.Active) &&
		boolParam(w, q, "has_errors", &f.HasErrors) &&
		limitParam(w, q, &f.Limit)
	if !ok {
		return
	}
	if c, given := q["cursor"]; given {
		b, err := base64.RawURLEncoding.DecodeString(c[0])
		if err != nil || !codePattern.Match(b) {
			badParam(w, "cursor", "invalid cursor; pass the next_cursor of the previous page")
			return
		}
		f.After = string(b)
	}
	if !a.found(w, r, "tenant") {
		return
	}
	defs, err := a.opts.Reader.ListDefinitions(r.Context(), r.PathValue("tenant"), f)
	if err != nil {
		a.fail(w, err, "tenant")
		return
	}
	out := map[string]any{"definitions": nonNil(defs), "next_cursor": nil}
	if len(defs) == f.Limit {
		out["next_cursor"] = base64.RawURLEncoding.EncodeToString([]byte(defs[len(defs)-1].Code))
	}
	writeJSON(w, http.StatusOK, out)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (a *api) definition(w http.ResponseWriter, r *http.Request, _ scope) {
	if !a.found(w, r, "definition") {
		return
	}
	d, err := a.opts.Reader.Definition(r.Context(), r.PathValue("tenant"), r.PathValue("code"))
	if err != nil {
		a.fail(w, err, "definition")
		return
	}
	a.writeDefinition(w, d)
}

// uuidPattern is the text form of a uuid.
var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// definitionByUUID is the detail of the definition with the uuid, live or
// retired. A tenant token finds only its tenant's: another tenant's uuid
// is a 404 like one that does not exist, so that existence does not leak.
func (a *api) definitionByUUID(w http.ResponseWriter, r *http.Request, sc scope) {
	uuid := r.PathValue("uuid")
	if !uuidPattern.MatchString(uuid) {
		badParam(w, "uuid", "not a uuid (8-4-4-4-12 hexadecimal digits)")
		return
	}
	d, err := a.opts.Reader.DefinitionByUUID(r.Context(), strings.ToLower(uuid), sc.tenant())
	if err == nil && !sc.allows(d.Tenant) {
		err = reconciler.ErrNotFound // the store confines it already; never show another tenant's
	}
	if err != nil {
		a.fail(w, err, "definition")
		return
	}
	a.writeDefinition(w, d)
}

// writeDefinition writes a definition's detail document: the definition
// with its spec redacted, its next fire times (none once retired) and its
// last run.
func (a *api) writeDefinition(w http.ResponseWriter, d reconciler.DefinitionDetail) {
	var doc map[string]any
	if err := json.Unmarshal(d.Spec, &doc); err != nil {
		a.fail(w, err, "")
		return
	}
	redact(doc)
	spec, err := json.Marshal(doc)
	if err != nil {
		a.fail(w, err, "")
		return
	}
	d.Spec = spec
	fires := []time.Time{}
	var trig struct {
		Spec struct {
			Trigger reconciler.Trigger `json:"trigger"`
		} `json:"spec"`
	}
	if d.RetiredAt == nil && json.Unmarshal(spec, &trig) == nil {
		fires = append(fires, reconciler.NextFires(trig.Spec.Trigger, a.opts.Now(), nextFires)...)
	}
	// last_run is read with the definition, in one statement: it agrees
	// with last_run_at, last_run_status and is_running.
	writeJSON(w, http.StatusOK, map[string]any{"definition": d, "next_fire_times": fires, "last_run": d.LastRun})
}

func (a *api) runs(w http.ResponseWriter, r *http.Request, _ scope) {
	q := r.URL.Query()
	limit, before := defaultLimit, int64(0)
	if !limitParam(w, q, &limit) || !runCursorParam(w, q, &before) {
		return
	}
	if !a.found(w, r, "definition") {
		return
	}
	runs, err := a.opts.Reader.Runs(r.Context(), r.PathValue("tenant"), r.PathValue("code"), limit, before)
	if err != nil {
		a.fail(w, err, "definition")
		return
	}
	writeRuns(w, runs, limit)
}

// writeRuns writes a page of a run list, with the cursor of the next
// page when it is full.
func writeRuns(w http.ResponseWriter, runs []reconciler.RunRecord, limit int) {
	out := map[string]any{"runs": nonNil(runs), "next_cursor": nil}
	if len(runs) == limit {
		out["next_cursor"] = strconv.FormatInt(runs[len(runs)-1].ID, 10)
	}
	writeJSON(w, http.StatusOK, out)
}

// tenantRunParams are the query parameters of a tenant's run list.
var tenantRunParams = []string{"status", "since", "until", "code", "limit", "cursor"}

// tenantRuns lists a tenant's runs across its definitions, newest first,
// paginated as a definition's runs are.
func (a *api) tenantRuns(w http.ResponseWriter, r *http.Request, _ scope) {
	q := r.URL.Query()
	f := reconciler.RunFilter{Limit: defaultLimit, Code: q.Get("code")}
	ok := enumParam(w, q, "status", &f.Status, reconciler.RunRunning, reconciler.RunSucceeded, reconciler.RunFailed) &&
		timeParam(w, q, "since", &f.Since) && timeParam(w, q, "until", &f.Until) &&
		limitParam(w, q, &f.Limit) && runCursorParam(w, q, &f.Before)
	if !ok {
		return
	}
	if _, given := q["code"]; given && (f.Code == "" || len(f.Code) > maxCodeLen) {
		badParam(w, "code", "must be a definition's code (1 to "+strconv.Itoa(maxCodeLen)+" characters)")
		return
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		badParam(w, "until", "must be later than since")
		return
	}
	if !a.found(w, r, "tenant") {
		return
	}
	runs, err := a.opts.Reader.TenantRuns(r.Context(), r.PathValue("tenant"), f)
	if err != nil {
		a.fail(w, err, "tenant")
		return
	}
	writeRuns(w, runs, f.Limit)
}

// maxRunIDLen bounds a run id in a path (Inngest's are 26-character
// ULIDs); maxCodeLen a code in a filter.
const (
	maxRunIDLen = 128
	maxCodeLen  = 128
)

// run is one Inngest run: its attempts, each with its definition's
// tenant, code and uuid, steps and output. A tenant token finds only its
// tenant's runs: another tenant's is a 404 like one that does not exist.
func (a *api) run(w http.ResponseWriter, r *http.Request, sc scope) {
	id := r.PathValue("run_id")
	if len(id) > maxRunIDLen || strings.IndexFunc(id, func(c rune) bool { return c <= ' ' || c > '~' }) >= 0 {
		badParam(w, "run_id", "not a run id (at most "+strconv.Itoa(maxRunIDLen)+" printable ASCII characters)")
		return
	}
	attempts, err := a.opts.Reader.Run(r.Context(), id, sc.tenant())
	if err == nil {
		attempts = slices.DeleteFunc(attempts, func(x reconciler.RunRecord) bool { return !sc.allows(x.Tenant) })
		if len(attempts) == 0 {
			err = reconciler.ErrNotFound
		}
	}
	if err != nil {
		a.fail(w, err, "run")
		return
	}
	newest := slices.MaxFunc(attempts, func(x, y reconciler.RunRecord) int { return cmp.Compare(x.ID, y.ID) })
	writeJSON(w, http.StatusOK, map[string]any{"inngest_run_id": id, "status": newest.Status, "attempts": attempts})
}

func (a *api) errors(w http.ResponseWriter, r *http.Request, _ scope) {
	if !a.found(w, r, "tenant") {
		return
	}
	ps, err := a.opts.Reader.Problems(r.Context(), r.PathValue("tenant"))
	if err != nil {
		a.fail(w, err, "tenant")
		return
	}
	type located struct {
		reconciler.Problem
		Location string `json:"location"`
	}
	out := []located{}
	for _, p := range ps {
		out = append(out, located{p, p.String()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"errors": out})
}

// sensitive names the headers, query parameters and environment variables
// whose literal values the API does not show.
var sensitive = regexp.MustCompile(`(?i)(authorization|cookie|token|secret|passw|api[-_]?key|credential|private|signature)`)

// redact replaces, in a definition's document, the literal values of
// sensitive headers, query parameters and environment variables. Secret
// references (${secret:NAME}) are never values and stay as written.
func redact(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if m, ok := e.(map[string]any); ok && (k == "headers" || k == "query" || k == "env") {
				for name, val := range m {
					if s, ok := val.(string); ok && sensitive.MatchString(name) && !strings.Contains(s, "${secret:") {
						m[name] = "[redacted]"
					}
				}
				continue
			}
			redact(e)
		}
	case []any:
		for _, e := range x {
			redact(e)
		}
	}
}
