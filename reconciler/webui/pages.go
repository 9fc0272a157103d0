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
// the status API's own filters of a definition list, passed on as given.
// kind, active and q are today's; the others are passed on too, for an
// API that takes them.
var definitionFilters = []string{"q", "kind", "type", "trigger_type", "active", "sync_state", "has_errors", "cursor"}

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
	if defs.NextCursor != nil {
		next := url.Values{}
		for k, v := range p.Filter {
			next.Set(k, v)
		}
		next.Set("cursor", *defs.NextCursor)
		p.Next = uiPath("t", tenant) + "?" + next.Encode()
	}
	if p.Filter["cursor"] != "" {
		first := url.Values{}
		for k, v := range p.Filter {
			if k != "cursor" {
				first.Set(k, v)
			}
		}
		p.First = uiPath("t", tenant) + "?" + first.Encode()
	}
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
	p := definitionPage{Tenant: tenant}
	if err := json.Unmarshal(resp.Definition, &p.D); err != nil {
		u.apiFailure(w, r, err)
		return
	}
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
	for _, f := range resp.NextFireTimes {
		local := f
		if loc != nil {
			local = f.In(loc)
		}
		p.Fires = append(p.Fires, fireTime{Local: local, UTC: f.UTC()})
	}
	p.Spec = indent(p.D.Spec)
	p.Function = u.inngestLink("functions/config", "slug", p.D.InngestFunctionID)

	q := url.Values{}
	if c := r.URL.Query().Get("runs_cursor"); c != "" {
		q.Set("cursor", c)
		p.Newest = uiPath("t", tenant, "d", code) + "#runs"
	}
	var runs runsResponse
	if err := u.get(r, tok, apiPath("tenants", tenant, "definitions", code, "runs"), q, &runs); err != nil {
		var ae *apiError
		if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
			u.apiFailure(w, r, err)
			return
		}
		u.fail(w, r, http.StatusBadRequest, "The status API refused this page of runs: "+ae.Message+".")
		return
	}
	for _, raw := range runs.Runs {
		v, err := u.runView(raw, tenant, code)
		if err != nil {
			u.apiFailure(w, r, err)
			return
		}
		p.Runs = append(p.Runs, v)
	}
	if runs.NextCursor != nil {
		p.Next = uiPath("t", tenant, "d", code) + "?" + url.Values{"runs_cursor": {*runs.NextCursor}}.Encode() + "#runs"
	}
	u.render(w, r, http.StatusOK, "definition", p, crumb{"Overview", "/ui/"}, crumb{tenant, uiPath("t", tenant)}, crumb{code, ""})
}

func (u *ui) runView(raw json.RawMessage, tenant, code string) (runView, error) {
	var v runView
	if err := json.Unmarshal(raw, &v.runDoc); err != nil {
		return v, err
	}
	v.Output = indent(v.runDoc.Output)
	for _, s := range v.runDoc.Steps {
		v.Steps = append(v.Steps, stepView{stepDoc: s, Output: indent(s.Output)})
	}
	v.Extra = extraFields(raw, runKnown)
	v.Href = uiPath("t", tenant, "d", code, "runs", strconv.FormatInt(v.ID, 10))
	v.Inngest = u.inngestLink("run", "runID", v.InngestRunID)
	return v, nil
}

// runPage is the data of one attempt's page.
type runPage struct {
	Tenant     string
	Code       string
	Definition string // the definition's page
	Run        runView
}

// run shows one attempt. The runs list of the API pages by record id
// (its cursor lists the attempts before an id), so the attempt is the
// one page of one record before id+1, if it is this definition's.
func (u *ui) run(w http.ResponseWriter, r *http.Request) {
	tok, tenant, code := token(r), r.PathValue("tenant"), r.PathValue("code")
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 || id == 1<<63-1 {
		u.fail(w, r, http.StatusNotFound, "There is no run attempt with this id.")
		return
	}
	var runs runsResponse
	q := url.Values{"limit": {"1"}, "cursor": {strconv.FormatInt(id+1, 10)}}
	if err := u.get(r, tok, apiPath("tenants", tenant, "definitions", code, "runs"), q, &runs); err != nil {
		u.apiFailure(w, r, err)
		return
	}
	var v runView
	if len(runs.Runs) == 1 {
		if v, err = u.runView(runs.Runs[0], tenant, code); err != nil {
			u.apiFailure(w, r, err)
			return
		}
	}
	if v.ID != id {
		u.fail(w, r, http.StatusNotFound, "This definition has no run attempt "+strconv.FormatInt(id, 10)+".")
		return
	}
	def := uiPath("t", tenant, "d", code)
	u.render(w, r, http.StatusOK, "run", runPage{Tenant: tenant, Code: code, Definition: def, Run: v},
		crumb{"Overview", "/ui/"}, crumb{tenant, uiPath("t", tenant)}, crumb{code, def}, crumb{"attempt " + strconv.FormatInt(id, 10), ""})
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
	u.render(w, r, http.StatusOK, "login", loginPage{})
}

// login keeps the token of the form in the page's cookie, once the
// status API accepts it. It changes nothing on the server.
func (u *ui) login(w http.ResponseWriter, r *http.Request) {
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
