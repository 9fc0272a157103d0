package webui

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
)

// overviewPage is the data of the overview.
type overviewPage struct {
	Status  statusDoc
	Tenants []tenantDoc
	Backlog int
	// Held lists the held retirements per tenant, sorted by tenant.
	Held []heldRetirements
}

type heldRetirements struct {
	Tenant string
	Codes  []string
}

func (u *ui) overview(w http.ResponseWriter, r *http.Request) {
	tok := token(r)
	var p overviewPage
	if err := u.get(r, tok, apiPath("status"), nil, &p.Status); err != nil {
		u.apiFailure(w, r, err)
		return
	}
	var ts struct {
		Tenants []tenantDoc `json:"tenants"`
	}
	if err := u.get(r, tok, apiPath("tenants"), nil, &ts); err != nil {
		u.apiFailure(w, r, err)
		return
	}
	p.Tenants = ts.Tenants
	p.Backlog = p.Status.InngestSync["pending"] + p.Status.InngestSync["failed"]
	for t, codes := range p.Status.Held.Tenants {
		p.Held = append(p.Held, heldRetirements{Tenant: t, Codes: codes})
	}
	slices.SortFunc(p.Held, func(a, b heldRetirements) int { return compareStrings(a.Tenant, b.Tenant) })
	u.render(w, r, http.StatusOK, "overview", p)
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// definitionFilters are the query parameters of the tenant page that are
// the status API's own filters of a definition list, passed on as given
// when not empty (a form sends its empty fields too).
var definitionFilters = []string{"q", "kind", "type", "trigger_type", "active", "sync_state", "has_errors", "limit", "cursor"}

// tenantPage is the data of a tenant's page.
type tenantPage struct {
	Tenant  tenantDoc
	Filter  map[string]string
	Rows    []tenantRow
	Next    string // the URL of the next page, "" on the last
	First   string // the URL of the first page, "" on it
	Problem string // the API's message for a filter it refused
}

type tenantRow struct {
	summaryDoc
	Trigger  string
	NextFire *time.Time
}

// detailWorkers bounds the detail reads of one tenant page (its next
// fire times and triggers).
const detailWorkers = 4

func (u *ui) tenant(w http.ResponseWriter, r *http.Request) {
	tok, tenant := token(r), r.PathValue("tenant")
	p := tenantPage{Filter: map[string]string{}}
	t, err := u.tenantDoc(r, tok, tenant)
	if err != nil {
		u.apiFailure(w, r, err)
		return
	}
	p.Tenant = t
	q := url.Values{}
	for _, k := range definitionFilters {
		if v := r.URL.Query().Get(k); v != "" {
			q.Set(k, v)
			p.Filter[k] = v
		}
	}
	var defs definitionsDoc
	status := http.StatusOK
	err = u.get(r, tok, apiPath("tenants", tenant, "definitions"), q, &defs)
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusBadRequest:
		status, p.Problem = http.StatusBadRequest, ae.Message
	case err != nil:
		u.apiFailure(w, r, err)
		return
	}
	p.Rows = u.rows(r, tok, tenant, defs.Definitions)
	p.Next, p.First = pages(uiPath("t", tenant), p.Filter, defs.NextCursor)
	u.render(w, r, status, "tenant", p, crumb{"Overview", "/ui/"}, crumb{tenant, ""})
}

// tenantDoc is the tenant's line of /v1/tenants; a tenant the token may
// not read is the API's 403, one it does not know its 404.
func (u *ui) tenantDoc(r *http.Request, tok, tenant string) (tenantDoc, error) {
	// The errors endpoint carries the tenant in its path: the API checks
	// the token against it and answers 404 for an unknown tenant.
	var probe json.RawMessage
	if err := u.get(r, tok, apiPath("tenants", tenant, "errors"), nil, &probe); err != nil {
		return tenantDoc{}, err
	}
	var ts struct {
		Tenants []tenantDoc `json:"tenants"`
	}
	if err := u.get(r, tok, apiPath("tenants"), nil, &ts); err != nil {
		return tenantDoc{}, err
	}
	for _, t := range ts.Tenants {
		if t.Tenant == tenant {
			return t, nil
		}
	}
	return tenantDoc{Tenant: tenant}, nil
}

// rows reads each listed definition's detail for its trigger and next
// fire time, a few at a time; a detail that cannot be read leaves both
// empty.
func (u *ui) rows(r *http.Request, tok, tenant string, defs []summaryDoc) []tenantRow {
	rows := make([]tenantRow, len(defs))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(detailWorkers, len(defs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				var resp definitionResponse
				if u.get(r, tok, apiPath("tenants", tenant, "definitions", defs[i].Code), nil, &resp) != nil {
					continue
				}
				var d detailDoc
				if json.Unmarshal(resp.Definition, &d) == nil {
					rows[i].Trigger = describeTrigger(specTrigger(d.Spec))
				}
				if len(resp.NextFireTimes) > 0 {
					rows[i].NextFire = &resp.NextFireTimes[0]
				}
			}
		}()
	}
	for i, d := range defs {
		rows[i].summaryDoc = d
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return rows
}

// errorsPage is the data of a tenant's validation errors.
type errorsPage struct {
	Tenant   string
	Problems []problemDoc
}

func (u *ui) tenantErrors(w http.ResponseWriter, r *http.Request) {
	tok, tenant := token(r), r.PathValue("tenant")
	var doc struct {
		Errors []problemDoc `json:"errors"`
	}
	if err := u.get(r, tok, apiPath("tenants", tenant, "errors"), nil, &doc); err != nil {
		u.apiFailure(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, "errors", errorsPage{Tenant: tenant, Problems: doc.Errors},
		crumb{"Overview", "/ui/"}, crumb{tenant, uiPath("t", tenant)}, crumb{"Validation errors", ""})
}

// definitionPage is the data of a definition's page.
type definitionPage struct {
	Tenant   string
	D        detailDoc
	Trigger  triggerDoc
	Zone     string
	UTCOnly  bool // the zone is UTC: the next fires are shown once
	CatchUp  string
	Fires    []fireTime
	Spec     string
	Extra    []field
	Runs     []runView
	Next     string // the URL of the next page of runs
	Newest   string // the URL of the first page, "" on it
	Function string // the function in the Inngest UI, "" when not configured
}

type fireTime struct {
	Local time.Time
	UTC   time.Time
}

// field is a field of the API the page does not lay out itself.
type field struct {
	Name  string
	Value string
}

// runView is one run attempt as the pages show it.
type runView struct {
	runDoc
	Output  string
	Steps   []stepView
	Extra   []field
	Href    string // the attempt's page
	Inngest string // the run in the Inngest UI
}

type stepView struct {
	stepDoc
	Output string
}

func (u *ui) definition(w http.ResponseWriter, r *http.Request) {
	tok, tenant, code := token(r), r.PathValue("tenant"), r.PathValue("code")
	var resp definitionResponse
	if err := u.get(r, tok, apiPath("tenants", tenant, "definitions", code), nil, &resp); err != nil {
		u.apiFailure(w, r, err)
		return
	}
	u.showDefinition(w, r, tok, resp, tenant, uiPath("t", tenant, "d", code))
}

// byUUID is a definition found by its uuid: a live one's page is its
// code's (a redirect there); a retired one, found by uuid only, is shown
// here.
func (u *ui) byUUID(w http.ResponseWriter, r *http.Request) {
	tok := token(r)
	var resp definitionResponse
	if err := u.get(r, tok, apiPath("definitions", r.PathValue("uuid")), nil, &resp); err != nil {
		u.apiFailure(w, r, err)
		return
	}
	var d detailDoc
	if err := json.Unmarshal(resp.Definition, &d); err != nil {
		u.apiFailure(w, r, err)
		return
	}
	if d.Tenant == "" || d.Code == "" {
		u.apiFailure(w, r, errors.New("a definition without tenant or code"))
		return
	}
	if d.RetiredAt == nil {
		http.Redirect(w, r, uiPath("t", d.Tenant, "d", d.Code), http.StatusFound)
		return
	}
	u.showDefinition(w, r, tok, resp, d.Tenant, uiPath("d", d.UUID))
}

// showDefinition renders a definition's page at here, with a page of the
// runs of its code (of every definition the code has had).
func (u *ui) showDefinition(w http.ResponseWriter, r *http.Request, tok string, resp definitionResponse, tenant, here string) {
	p := definitionPage{Tenant: tenant}
	if err := json.Unmarshal(resp.Definition, &p.D); err != nil {
		u.apiFailure(w, r, err)
		return
	}
	code := p.D.Code
	p.Extra = extraFields(resp.Definition, detailKnown)
	p.Trigger = specTrigger(p.D.Spec)
	p.Zone = p.Trigger.Timezone
	if p.Zone == "" {
		p.Zone = "UTC"
	}
	loc, err := time.LoadLocation(p.Zone)
	if err != nil {
		loc = nil
	}
	p.UTCOnly = loc == nil || isUTC(loc)
	p.CatchUp = p.Trigger.catchUp()
	for _, f := range resp.NextFireTimes {
		local := f
		if loc != nil {
			local = f.In(loc)
		}
		p.Fires = append(p.Fires, fireTime{Local: local, UTC: f.UTC()})
	}
	p.Spec = indent(p.D.Spec)
	if p.D.RetiredAt == nil {
		p.Function = u.inngestLink("functions/config", "slug", p.D.InngestFunctionID)
	}

	// A live definition's runs are its code's; a retired one's code may
	// be gone or another definition's now: the tenant's runs of the code.
	runsPath, q := apiPath("tenants", tenant, "definitions", code, "runs"), url.Values{}
	if p.D.RetiredAt != nil {
		runsPath = apiPath("tenants", tenant, "runs")
		q.Set("code", code)
	}
	if c := r.URL.Query().Get("runs_cursor"); c != "" {
		q.Set("cursor", c)
		p.Newest = here + "#runs"
	}
	var runs runsResponse
	if err := u.get(r, tok, runsPath, q, &runs); err != nil {
		var ae *apiError
		if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
			u.apiFailure(w, r, err)
			return
		}
		u.fail(w, r, http.StatusBadRequest, "The status API refused this page of runs: "+ae.Message+".")
		return
	}
	for _, raw := range runs.Runs {
		v, err := u.runView(raw, "")
		if err != nil {
			u.apiFailure(w, r, err)
			return
		}
		p.Runs = append(p.Runs, v)
	}
	if runs.NextCursor != nil {
		p.Next = here + "?" + url.Values{"runs_cursor": {*runs.NextCursor}}.Encode() + "#runs"
	}
	last := crumb{code, ""}
	if p.D.RetiredAt != nil {
		last.Label = code + " (retired)"
	}
	u.render(w, r, http.StatusOK, "definition", p, crumb{"Overview", "/ui/"}, crumb{tenant, uiPath("t", tenant)}, last)
}

// runView is an attempt as the pages show it; its link is its run's page
// at the attempt, or the anchor #attempt-{id} on that page itself
// (onRunPage).
func (u *ui) runView(raw json.RawMessage, onRunPage string) (runView, error) {
	var v runView
	if err := json.Unmarshal(raw, &v.runDoc); err != nil {
		return v, err
	}
	v.Output = indent(v.runDoc.Output)
	for _, s := range v.runDoc.Steps {
		v.Steps = append(v.Steps, stepView{stepDoc: s, Output: indent(s.Output)})
	}
	v.Extra = extraFields(raw, runKnown)
	anchor := "#attempt-" + strconv.FormatInt(v.ID, 10)
	switch {
	case onRunPage != "":
		v.Href = anchor
	case v.InngestRunID != "":
		v.Href = uiPath("runs", v.InngestRunID) + anchor
	}
	v.Inngest = u.inngestLink("run", "runID", v.InngestRunID)
	return v, nil
}

// runPage is the data of one Inngest run's page: all its attempts.
type runPage struct {
	RunID    string
	Status   string
	Tenant   string
	Code     string
	UUID     string
	Inngest  string // the run in the Inngest UI
	Attempts []runView
}

// run shows the attempts of one Inngest run, as /v1/runs/{run_id}
// answers them (another tenant's run is its 404).
func (u *ui) run(w http.ResponseWriter, r *http.Request) {
	tok, id := token(r), r.PathValue("run_id")
	var doc runDocument
	if err := u.get(r, tok, apiPath("runs", id), nil, &doc); err != nil {
		u.apiFailure(w, r, err)
		return
	}
	p := runPage{RunID: doc.InngestRunID, Status: doc.Status, Inngest: u.inngestLink("run", "runID", doc.InngestRunID)}
	for _, raw := range doc.Attempts {
		v, err := u.runView(raw, id)
		if err != nil {
			u.apiFailure(w, r, err)
			return
		}
		p.Attempts = append(p.Attempts, v)
		p.Tenant, p.Code, p.UUID = v.Tenant, v.Code, v.DefinitionUUID
	}
	crumbs := []crumb{{"Overview", "/ui/"}}
	if p.Tenant != "" {
		crumbs = append(crumbs, crumb{p.Tenant, uiPath("t", p.Tenant)}, crumb{"runs", uiPath("t", p.Tenant, "runs")})
	}
	crumbs = append(crumbs, crumb{"run " + id, ""})
	u.render(w, r, http.StatusOK, "run", p, crumbs...)
}

// runFilters are the query parameters of a tenant's runs page that are
// the status API's own filters of a tenant's runs.
var runFilters = []string{"status", "code", "since", "until", "limit", "cursor"}

// runsPage is the data of a tenant's runs page.
type runsPage struct {
	Tenant  string
	Filter  map[string]string // as the form shows them
	Runs    []runView
	Next    string
	First   string
	Problem string // the API's message for a filter it refused
}

// formTimes are the layouts of a time a form may send besides RFC 3339:
// a datetime-local input's, read as UTC.
var formTimes = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02"}

// apiTime is a since or until as the API takes it: RFC 3339, a form's
// time read as UTC, or, when it is neither, the value as given, for the
// API to refuse with its message.
func apiTime(v string) string {
	if _, err := time.Parse(time.RFC3339, v); err == nil {
		return v
	}
	for _, l := range formTimes {
		if t, err := time.Parse(l, v); err == nil {
			return t.UTC().Format(time.RFC3339)
		}
	}
	return v
}

func (u *ui) tenantRuns(w http.ResponseWriter, r *http.Request) {
	tok, tenant := token(r), r.PathValue("tenant")
	p := runsPage{Tenant: tenant, Filter: map[string]string{}}
	q := url.Values{}
	for _, k := range runFilters {
		v := r.URL.Query().Get(k)
		if v == "" {
			continue // a form's empty field is no filter
		}
		p.Filter[k] = v
		if k == "since" || k == "until" {
			if t, err := time.Parse(time.RFC3339, v); err == nil {
				// As a datetime-local input shows it, in UTC.
				p.Filter[k] = t.UTC().Format("2006-01-02T15:04:05")
			}
			v = apiTime(v)
		}
		q.Set(k, v)
	}
	var runs runsResponse
	status := http.StatusOK
	err := u.get(r, tok, apiPath("tenants", tenant, "runs"), q, &runs)
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusBadRequest:
		status, p.Problem = http.StatusBadRequest, ae.Message
	case err != nil:
		u.apiFailure(w, r, err)
		return
	}
	for _, raw := range runs.Runs {
		v, err := u.runView(raw, "")
		if err != nil {
			u.apiFailure(w, r, err)
			return
		}
		p.Runs = append(p.Runs, v)
	}
	here := uiPath("t", tenant, "runs")
	p.Next, p.First = pages(here, p.Filter, runs.NextCursor)
	u.render(w, r, status, "runs", p, crumb{"Overview", "/ui/"}, crumb{tenant, uiPath("t", tenant)}, crumb{"runs", ""})
}

// pages are the links to the next page of a list (after cursor, "" on
// the last) and to its first ("" on it), with the same filters.
func pages(here string, filter map[string]string, cursor *string) (next, first string) {
	if cursor != nil {
		q := url.Values{}
		for k, v := range filter {
			q.Set(k, v)
		}
		q.Set("cursor", *cursor)
		next = here + "?" + q.Encode()
	}
	if filter["cursor"] != "" {
		q := url.Values{}
		for k, v := range filter {
			if k != "cursor" {
				q.Set(k, v)
			}
		}
		first = here
		if len(q) > 0 {
			first += "?" + q.Encode()
		}
	}
	return next, first
}

// inngestLink is the Inngest UI's page at rel with ?key=value, "" when
// the UI's URL is not configured or value is empty.
func (u *ui) inngestLink(rel, key, value string) string {
	if u.inngest == nil || value == "" {
		return ""
	}
	l := u.inngest.JoinPath(rel)
	l.RawQuery = url.Values{key: {value}}.Encode()
	return l.String()
}

// loginPage is the data of the sign-in form.
type loginPage struct {
	Message string
	Failed  bool
}

func (u *ui) loginForm(w http.ResponseWriter, r *http.Request) {
	if u.open {
		http.Redirect(w, r, Path, http.StatusSeeOther)
		return
	}
	u.render(w, r, http.StatusOK, "login", loginPage{})
}

// login keeps the token of the form in the page's cookie, once the
// status API accepts it. It changes nothing on the server. When the API
// takes no token there is nothing to sign in with: it sets nothing and
// sends the browser to the overview.
func (u *ui) login(w http.ResponseWriter, r *http.Request) {
	if u.open {
		http.Redirect(w, r, Path, http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		u.fail(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	tok := r.PostForm.Get("token")
	var probe json.RawMessage
	if tok == "" {
		u.render(w, r, http.StatusUnauthorized, "login", loginPage{Message: "Enter a token.", Failed: true})
		return
	}
	if err := u.get(r, tok, apiPath("status"), nil, &probe); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
			u.render(w, r, http.StatusUnauthorized, "login", loginPage{Message: "The status API does not know this token.", Failed: true})
			return
		}
		u.apiFailure(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: base64.RawURLEncoding.EncodeToString([]byte(tok)), Path: cookiePath,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: overTLS(r)})
	http.Redirect(w, r, Path, http.StatusSeeOther)
}

// logout forgets the cookie.
func (u *ui) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: cookiePath, MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: overTLS(r)})
	http.Redirect(w, r, Path+"login", http.StatusSeeOther)
}

// overTLS reports whether the browser reached the page over TLS: here,
// or through a proxy that says so. Trusting the header can only make
// the cookie stricter (Secure), never looser.
func overTLS(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}

// isUTC reports whether loc is UTC all year, under that name.
func isUTC(loc *time.Location) bool {
	for _, month := range []time.Month{time.January, time.July} {
		name, offset := time.Date(2026, month, 1, 0, 0, 0, 0, loc).Zone()
		if name != "UTC" || offset != 0 {
			return false
		}
	}
	return true
}

// specTrigger is the trigger of a definition's spec.
func specTrigger(spec json.RawMessage) triggerDoc {
	var doc struct {
		Spec struct {
			Trigger triggerDoc `json:"trigger"`
		} `json:"spec"`
	}
	if json.Unmarshal(spec, &doc) != nil {
		return triggerDoc{}
	}
	return doc.Spec.Trigger
}

// describeTrigger says in a few words when a definition runs.
func describeTrigger(t triggerDoc) string {
	switch {
	case t.Cron != "":
		s := "cron " + t.Cron
		if t.Timezone != "" {
			s += " (" + t.Timezone + ")"
		}
		return s
	case t.Interval != "":
		return "every " + t.Interval
	case t.At != nil:
		return "once at " + t.At.UTC().Format(time.RFC3339)
	case t.Event != "":
		s := "on event " + t.Event
		if t.If != "" {
			s += " if " + t.If
		}
		return s
	}
	return ""
}

// indent pretty-prints a JSON value; "" for none.
func indent(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		return string(raw)
	}
	return b.String()
}

// extraFields are the fields of a JSON object not in known, sorted by
// name, each value as JSON (a string as it is).
func extraFields(raw json.RawMessage, known map[string]bool) []field {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	var out []field
	for k, v := range m {
		if known[k] || string(v) == "null" {
			continue
		}
		var s string
		if json.Unmarshal(v, &s) != nil {
			s = indent(v)
		}
		out = append(out, field{Name: k, Value: s})
	}
	slices.SortFunc(out, func(a, b field) int { return compareStrings(a.Name, b.Name) })
	return out
}
