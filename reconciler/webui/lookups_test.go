package webui_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/riveredge/tasksync/reconciler/statusapi/statusapitest"
	"github.com/riveredge/tasksync/reconciler/webui"
)

// uuidOf is the uuid of a live definition, as the status API answers it.
func uuidOf(t *testing.T, base, token, tenant, code string) string {
	t.Helper()
	status, body := statusapitest.Request(t, "GET", base+"/v1/tenants/"+tenant+"/definitions/"+code, token)
	var doc struct {
		Definition struct {
			UUID string `json:"uuid"`
		} `json:"definition"`
	}
	if status != 200 || json.Unmarshal([]byte(body), &doc) != nil || doc.Definition.UUID == "" {
		t.Fatalf("GET the detail of %s/%s = %d\n%s", tenant, code, status, body)
	}
	return doc.Definition.UUID
}

// href is the first link on a page whose address starts with prefix.
func href(t *testing.T, body, prefix string) string {
	t.Helper()
	i := strings.Index(body, `href="`+prefix)
	if i < 0 {
		t.Fatalf("no link to %s on the page", prefix)
	}
	l := body[i+len(`href="`):]
	return strings.ReplaceAll(l[:strings.IndexByte(l, '"')], "&amp;", "&")
}

// TestLookupsStayInTheTenant: a tenant token reaches another tenant's
// definition by uuid, its run by id and its run list no better than the
// API lets it: the API's 404 (as for one that does not exist) or 403,
// shown as a page that says nothing of the other tenant.
func TestLookupsStayInTheTenant(t *testing.T) {
	srv := fixture(t, "root-token *\nacme-token acme\n")
	globexUUID := uuidOf(t, srv.URL, "root-token", "globex", "gsync")
	acmeUUID := uuidOf(t, srv.URL, "root-token", "acme", "nightly")
	c := client(t)
	signIn(t, c, srv.URL, "acme-token")
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/ui/d/" + globexUUID, 404},
		{"/ui/d/" + strings.ToUpper(globexUUID), 404},
		{"/ui/runs/globex-run", 404},
		{"/ui/t/globex/runs", 403},
		{"/ui/t/globex/runs?code=gsync", 403},
	} {
		code, body := page(t, c, srv.URL+tc.path)
		if code != tc.code {
			t.Errorf("acme's token on %s = %d, want %d", tc.path, code, tc.code)
		}
		for _, leak := range []string{"Globex sync", "gsync", "Globex secret failure", "globex-run</"} {
			if strings.Contains(body, leak) {
				t.Errorf("acme's token on %s shows %q", tc.path, leak)
			}
		}
	}
	// Its own: the run, and the definition by uuid (to its page).
	if code, body := page(t, c, srv.URL+"/ui/runs/retry-run"); code != 200 || !strings.Contains(body, "nightly") {
		t.Errorf("acme's token on its run = %d", code)
	}
	res, _ := fetch(t, c, http.MethodGet, srv.URL+"/ui/d/"+acmeUUID, nil, nil)
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/ui/t/acme/d/nightly" {
		t.Errorf("acme's token on its uuid = %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	// The root token reads globex's.
	signIn(t, c, srv.URL, "root-token")
	if code, body := page(t, c, srv.URL+"/ui/runs/globex-run"); code != 200 || !strings.Contains(body, "Globex secret failure") {
		t.Errorf("the * token on globex's run = %d", code)
	}
}

// TestHostileLookups: a uuid, run id or run filter made of markup is the
// API's 400 or 404, shown as text.
func TestHostileLookups(t *testing.T) {
	srv := fixture(t, "")
	c := client(t)
	for _, tc := range []struct {
		path, want string
		code       int
	}{
		{"/ui/d/%3Cscript%3Ealert(1)%3C%2Fscript%3E", "uuid: not a uuid", 400},
		{"/ui/d/00000000-0000-4000-8000-000000000000", "definition not found", 404},
		{"/ui/runs/%3Cscript%3Ealert(1)%3C%2Fscript%3E", "run not found", 404},
		{"/ui/runs/a%20b", "run_id: not a run id", 400},
		{"/ui/runs/" + strings.Repeat("x", 200), "run_id: not a run id", 400},
		{"/ui/t/acme/runs?since=%3Cscript%3Ealert(1)%3C%2Fscript%3E", "since:", 400},
		{"/ui/t/acme/runs?status=%3Cb%3Ex", "status: must be one of", 400},
		{"/ui/t/acme/runs?code=%3Cscript%3E", "No run", 200},
	} {
		code, body := page(t, c, srv.URL+tc.path)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s = %d, want %d with %q\n%s", tc.path, code, tc.code, tc.want, body)
		}
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<b>x") {
			t.Errorf("GET %s carries the markup unescaped", tc.path)
		}
	}
}

// TestEmptyFiltersAreNotSent: a form sends every field, empty or not; the
// page passes on only those with a value, so an empty one is no 400.
func TestEmptyFiltersAreNotSent(t *testing.T) {
	srv := fixture(t, "")
	c := client(t)
	for _, tc := range []struct {
		path       string
		want, lack []string
	}{
		{"/ui/t/acme?q=&kind=Workflow&type=&trigger_type=&active=&sync_state=&has_errors=&cursor=", []string{"approval"}, []string{"nightly"}},
		{"/ui/t/acme?q=&kind=&type=&trigger_type=event&active=&sync_state=&has_errors=", []string{"approval", "hostile"}, []string{`href="/ui/t/acme/d/nightly"`}},
		{"/ui/t/acme?type=python_script", []string{"No definition matches"}, []string{`href="/ui/t/acme/d/nightly"`}},
		{"/ui/t/acme/runs?status=&code=&since=&until=&cursor=", []string{"retry-run", "wf-run"}, nil},
		{"/ui/t/acme/runs?status=succeeded&code=&since=&until=", []string{"retry-run", "run-2"}, []string{"wf-run"}},
		{"/ui/t/acme/runs?status=&code=approval", []string{"wf-run"}, []string{"retry-run"}},
		{"/ui/t/acme/runs?since=2000-01-01T00:00", []string{"retry-run", `value="2000-01-01T00:00"`}, nil},
		{"/ui/t/acme/runs?since=2999-01-01T00:00:00Z", []string{"No run"}, []string{"retry-run"}},
	} {
		checkPage(t, c, srv.URL, tc.path, tc.want, tc.lack)
	}
	// A value the API refuses is its 400 and its message, on both pages.
	for p, want := range map[string]string{
		"/ui/t/acme?type=python":                 "type: must be one of api_call, python_script, workflow",
		"/ui/t/acme/runs?until=2000-01-01T00:00": "until: must be later than since",
	} {
		if p == "/ui/t/acme/runs?until=2000-01-01T00:00" {
			p += "&since=2001-01-01T00:00"
		}
		if code, body := page(t, c, srv.URL+p); code != 400 || !strings.Contains(body, want) {
			t.Errorf("GET %s = %d, want 400 with %q\n%s", p, code, want, body)
		}
	}
}

// TestRunsAndUUIDPages: the tenant's runs page (linked from the tenant
// page, paginated), a run's page with all its attempts, and a definition
// by uuid, linked from where a uuid is shown.
func TestRunsAndUUIDPages(t *testing.T) {
	srv := fixture(t, "")
	c := client(t)
	uuid := uuidOf(t, srv.URL, "", "acme", "nightly")
	_, tenant := page(t, c, srv.URL+"/ui/t/acme")
	runs := href(t, tenant, "/ui/t/acme/runs")
	code, body := page(t, c, srv.URL+runs)
	if code != 200 {
		t.Fatalf("GET %s = %d", runs, code)
	}
	for _, w := range []string{"retry-run", "wf-run", "run-0", `href="/ui/t/acme/d/nightly"`, `href="/ui/t/acme/d/approval"`,
		`href="/ui/runs/retry-run#attempt-`, `href="/ui/d/` + uuid + `"`, "timeout", "&lt;svg onload=alert(3)&gt;"} {
		if !strings.Contains(body, w) {
			t.Errorf("the runs page lacks %q", w)
		}
	}
	// Keyset pages, with the filters kept.
	_, first := page(t, c, srv.URL+"/ui/t/acme/runs?code=nightly&limit=2")
	next := href(t, first, "/ui/t/acme/runs?")
	if !strings.Contains(next, "code=nightly") || !strings.Contains(next, "cursor=") {
		t.Errorf("the next page's link %q drops the filter or the cursor", next)
	}
	if code, second := page(t, c, srv.URL+next); code != 200 || !strings.Contains(second, "run-2") || strings.Contains(second, "retry-run") {
		t.Errorf("GET %s = %d, want the older runs\n%s", next, code, second)
	}

	// A run's page: its two attempts, each with its error or output.
	_, def := page(t, c, srv.URL+"/ui/t/acme/d/nightly")
	link := href(t, def, "/ui/runs/retry-run")
	code, body = page(t, c, srv.URL+link)
	if code != 200 {
		t.Fatalf("GET %s = %d", link, code)
	}
	for _, w := range []string{"retry-run", "first attempt", "retry 1", "timeout", "&#34;retried&#34;: true", `id="attempt-`,
		`href="/ui/t/acme/d/nightly"`, `href="/ui/d/` + uuid + `"`, `href="http://127.0.0.1:8288/run?runID=retry-run"`, "2 attempts"} {
		if !strings.Contains(body, w) {
			t.Errorf("the run's page lacks %q", w)
		}
	}
	if code, body := page(t, c, srv.URL+"/ui/runs/wf-run"); code != 200 || !strings.Contains(body, "step &lt;i&gt;boom&lt;/i&gt;") {
		t.Errorf("the workflow run's page = %d, want its steps", code)
	}
	if code, _ := page(t, c, srv.URL+"/ui/runs/nope"); code != 404 {
		t.Errorf("an unknown run = %d, want 404", code)
	}

	// The definition page links its uuid, which leads back to it.
	if !strings.Contains(def, `href="/ui/d/`+uuid+`"`) {
		t.Errorf("the definition page does not link its uuid")
	}
	res, _ := fetch(t, c, http.MethodGet, srv.URL+"/ui/d/"+uuid, nil, nil)
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/ui/t/acme/d/nightly" {
		t.Errorf("GET /ui/d/%s = %d to %q, want the definition's page", uuid, res.StatusCode, res.Header.Get("Location"))
	}
}

// retiredAPI answers a retired definition by uuid, with its commit, and
// refuses an empty query parameter as a strict API would.
func retiredAPI() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/definitions/6f1c2a9e-8d4b-4c3e-9a57-2b7c0e6d1f34", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"definition": {"code": "job", "name": "Old job", "kind": "ScheduledTask", "type": "api_call", "active": true,
			"trigger_type": "cron", "source": "acme/j.yaml:2", "revision": 3, "sync_state": "synced", "tenant": "acme",
			"uuid": "6f1c2a9e-8d4b-4c3e-9a57-2b7c0e6d1f34", "retired_at": "2026-11-28T10:00:00Z", "has_errors": true,
			"source_commit": "4e1d0c2b9a8f7e6d5c4b3a29180706f5e4d3c2b1", "source_path": "acme/j.yaml", "source_line": 2,
			"spec": {"spec": {"trigger": {"cron": "0 2 * * *"}}}}, "next_fire_times": [], "last_run": null}`)
	})
	mux.HandleFunc("/v1/tenants/acme/runs", func(w http.ResponseWriter, r *http.Request) {
		for k, v := range r.URL.Query() {
			if len(v) != 1 || v[0] == "" {
				w.WriteHeader(400)
				io.WriteString(w, `{"error": "`+k+`: empty", "status": 400}`)
				return
			}
		}
		if r.URL.Query().Get("code") != "job" {
			w.WriteHeader(400)
			io.WriteString(w, `{"error": "code: want job", "status": 400}`)
			return
		}
		io.WriteString(w, `{"runs": [{"id": 9, "inngest_run_id": "r9", "attempt": 0, "tenant": "acme", "code": "job",
			"definition_uuid": "6f1c2a9e-8d4b-4c3e-9a57-2b7c0e6d1f34", "revision": 3, "status": "succeeded", "final": true}], "next_cursor": null}`)
	})
	return mux
}

// TestRetiredDefinitionAndCommit: a retired definition, found by uuid,
// is shown as retired with the commit it came from (short, the whole
// hash on hover) and its runs.
func TestRetiredDefinitionAndCommit(t *testing.T) {
	ui, err := webui.NewHandler(webui.Options{API: retiredAPI()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ui)
	t.Cleanup(srv.Close)
	code, body := page(t, client(t), srv.URL+"/ui/d/6f1c2a9e-8d4b-4c3e-9a57-2b7c0e6d1f34")
	if code != 200 {
		t.Fatalf("GET = %d\n%s", code, body)
	}
	for _, w := range []string{"Old job", "retired", "2026-11-28 10:00:00 UTC", `title="4e1d0c2b9a8f7e6d5c4b3a29180706f5e4d3c2b1"`,
		">4e1d0c2b9a8f<", `href="/ui/runs/r9#attempt-9"`, "No scheduled fire: it is retired", "has errors"} {
		if !strings.Contains(body, w) {
			t.Errorf("the retired definition's page lacks %q", w)
		}
	}
	for _, bad := range []string{"<dt>source_commit</dt>", "<dt>retired_at</dt>", "<dt>tenant</dt>", "<dt>has_errors</dt>"} {
		if strings.Contains(body, bad) {
			t.Errorf("the page lists %s as an unknown field", bad)
		}
	}
}
