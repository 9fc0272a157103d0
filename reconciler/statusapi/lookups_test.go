package statusapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/statusapi"
	"github.com/riveredge/tasksync/reconciler/statusapi/statusapitest"
	"github.com/riveredge/tasksync/reconciler/store"
	"github.com/riveredge/tasksync/reconciler/store/storetest"
)

// lookupFixture applies acme's and globex's trees, records runs on both
// (a workflow run with steps on acme, one run on globex), retires acme's
// "gone" and returns the server (tokens: root-token *, acme-token acme,
// globex-token globex) and the store.
func lookupFixture(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	ctx := context.Background()
	st, dbURL := pg.NewStore(t, store.Options{})
	files := fstest.MapFS{
		"acme/cron.yaml":   {Data: []byte(task("nightly", "{cron: '0 2 * * *', timezone: Asia/Shanghai}"))},
		"acme/gone.yaml":   {Data: []byte(task("gone", "{interval: 10m}"))},
		"acme/py.yaml":     {Data: []byte(pyTask("crunch"))},
		"acme/wf.yaml":     {Data: []byte("apiVersion: tasksync/v1\nkind: Workflow\nmetadata: {code: approval, description: Ask the manager}\nspec:\n  trigger: {event: x/y}\n  steps: [{id: s, sleep: 1h}]\n")},
		"acme/off.yaml":    {Data: []byte(task("paused", "{event: app/e}", "active: false"))},
		"acme/broken.yaml": {Data: []byte("apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: broken}\nspec: {trigger: {interval: 30s}}\n")},
		"globex/g.yaml":    {Data: []byte(task("gsync", "{interval: 7m}"))},
	}
	storetest.Apply(t, st, files)
	ref := func(tenant, code string) reconciler.AppliedRef { return storetest.Current(t, st, tenant, code) }
	finish := func(r reconciler.AppliedRef, runID string, attempt int, status reconciler.RunStatus, final bool) {
		t.Helper()
		id, err := st.StartRun(ctx, r, reconciler.RunInput{RunID: runID, Attempt: attempt}, time.Now().Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if status == reconciler.RunRunning {
			return
		}
		end := reconciler.AttemptEnd{Status: status, Took: time.Second, Final: final, Output: json.RawMessage(`{"n":1}`)}
		if status == reconciler.RunFailed {
			end.Error = "boom " + runID
			end.Output = nil
		}
		if err := st.FinishRun(ctx, r, id, end); err != nil {
			t.Fatal(err)
		}
	}
	nightly := ref("acme", "nightly")
	finish(nightly, "01NIGHTLY1", 0, reconciler.RunFailed, false)
	finish(nightly, "01NIGHTLY1", 1, reconciler.RunSucceeded, true)
	finish(nightly, "01NIGHTLY2", 0, reconciler.RunFailed, true)
	finish(ref("acme", "gone"), "01GONE", 0, reconciler.RunSucceeded, true)
	finish(ref("acme", "crunch"), "01CRUNCH", 0, reconciler.RunRunning, false)
	steps := []reconciler.StepOutcome{{ID: "s", Status: "completed", Output: json.RawMessage(`{"ok":true}`)}}
	if _, err := st.RecordWorkflowRun(ctx, ref("acme", "approval"), reconciler.RunInput{RunID: "01FLOW"},
		reconciler.WorkflowAttempt{Status: reconciler.RunSucceeded, Steps: steps, Final: true}); err != nil {
		t.Fatal(err)
	}
	finish(ref("globex", "gsync"), "01GLOBEX", 0, reconciler.RunSucceeded, true)
	delete(files, "acme/gone.yaml")
	storetest.Apply(t, st, files)

	file := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte("root-token *\nacme-token acme\nglobex-token globex\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(statusapi.NewHandler(statusapi.Options{Reader: st, TokensFile: file,
		Now: func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }}))
	t.Cleanup(srv.Close)
	return srv, dbURL
}

// execSQL runs SQL on the test database: states the store's own writes
// reach only in time (a rejection, an old run).
func execSQL(t *testing.T, dbURL, sql string) {
	t.Helper()
	ctx := context.Background()
	conn := storetest.Conn(t, dbURL)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}

// queryText reads one text value from the test database.
func queryText(t *testing.T, dbURL, sql string) string {
	t.Helper()
	ctx := context.Background()
	conn := storetest.Conn(t, dbURL)
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func pyTask(code string) string {
	return "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: " + code + "}\nspec:\n  trigger: {interval: 15m}\n  type: python_script\n  config: {script: 'print(1)'}\n"
}

// raw is a request's status and body as text.
func raw(t *testing.T, srv *httptest.Server, path, token string) (int, string) {
	t.Helper()
	return statusapitest.Request(t, "GET", srv.URL+path, token)
}

func uuidOf(t *testing.T, srv *httptest.Server, tenant, code string) string {
	t.Helper()
	code2, body := call(t, srv, "GET", "/v1/tenants/"+tenant+"/definitions/"+code, "root-token")
	def, _ := body["definition"].(map[string]any)
	u, _ := def["uuid"].(string)
	if code2 != 200 || u == "" {
		t.Fatalf("%s/%s = %d %v", tenant, code, code2, body)
	}
	return u
}

// TestLookupConfinedToTenant: a tenant token asking for another tenant's
// definition by uuid, or another tenant's run by id, gets the same 404 as
// for one that does not exist, so that existence does not leak; its own
// are found.
func TestLookupConfinedToTenant(t *testing.T) {
	srv, _ := lookupFixture(t)
	globexUUID := uuidOf(t, srv, "globex", "gsync")
	acmeUUID := uuidOf(t, srv, "acme", "nightly")
	const missingUUID = "00000000-0000-4000-8000-000000000000"

	for _, c := range []struct{ theirs, missing string }{
		{"/v1/definitions/" + globexUUID, "/v1/definitions/" + missingUUID},
		{"/v1/definitions/" + strings.ToUpper(globexUUID), "/v1/definitions/" + missingUUID},
		{"/v1/runs/01GLOBEX", "/v1/runs/01NOSUCHRUN"},
	} {
		code, body := raw(t, srv, c.theirs, "acme-token")
		mcode, mbody := raw(t, srv, c.missing, "acme-token")
		want := strings.ReplaceAll(mbody, "01NOSUCHRUN", "01GLOBEX")
		if code != 404 || mcode != 404 || body != want {
			t.Errorf("acme's token: %s = %d %s; want the 404 of %s: %d %s", c.theirs, code, body, c.missing, mcode, mbody)
		}
		if strings.Contains(body, "globex") || strings.Contains(body, "gsync") {
			t.Errorf("%s names globex's definition: %s", c.theirs, body)
		}
	}
	for _, p := range []string{"/v1/definitions/" + acmeUUID, "/v1/runs/01NIGHTLY1", "/v1/tenants/acme/runs"} {
		if code, body := raw(t, srv, p, "acme-token"); code != 200 {
			t.Errorf("acme's token: %s = %d %s, want 200", p, code, body)
		}
	}
	for _, p := range []string{"/v1/definitions/" + globexUUID, "/v1/runs/01GLOBEX"} {
		if code, body := raw(t, srv, p, "globex-token"); code != 200 {
			t.Errorf("globex's token: %s = %d %s, want 200", p, code, body)
		}
		if code, body := raw(t, srv, p, "root-token"); code != 200 {
			t.Errorf("root token: %s = %d %s, want 200", p, code, body)
		}
	}
	// A tenant's run list is a tenant path: another tenant's is 403, as
	// every tenant path is.
	if code, body := raw(t, srv, "/v1/tenants/globex/runs", "acme-token"); code != 403 {
		t.Errorf("acme's token: /v1/tenants/globex/runs = %d %s, want 403", code, body)
	}
	_, body := call(t, srv, "GET", "/v1/tenants/acme/runs", "acme-token")
	if b, _ := json.Marshal(body); strings.Contains(string(b), "globex") {
		t.Errorf("acme's runs name globex: %s", b)
	}
}

// TestDefinitionByUUID: the uuid finds the same document as the tenant
// and code, and a retired definition, which keeps its uuid and runs.
func TestDefinitionByUUID(t *testing.T) {
	srv, db := lookupFixture(t)
	u := uuidOf(t, srv, "acme", "nightly")
	_, byCode := raw(t, srv, "/v1/tenants/acme/definitions/nightly", "root-token")
	code, byUUID := raw(t, srv, "/v1/definitions/"+u, "acme-token")
	if code != 200 || byUUID != byCode {
		t.Errorf("by uuid = %d\n%s\nwant the document by code:\n%s", code, byUUID, byCode)
	}
	var doc struct {
		Definition map[string]any `json:"definition"`
	}
	if err := json.Unmarshal([]byte(byCode), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Definition["tenant"] != "acme" || doc.Definition["retired_at"] != nil || doc.Definition["type"] != "api_call" {
		t.Errorf("definition = %v, want tenant acme, not retired, type api_call", doc.Definition)
	}

	// The retired "gone": no longer by code, still by uuid, with its runs.
	goneUUID := queryText(t, db, `select uuid::text from root_scheduled_tasks where code = 'gone'`)
	if code, _ := call(t, srv, "GET", "/v1/tenants/acme/definitions/gone", "root-token"); code != 404 {
		t.Errorf("retired by code = %d, want 404", code)
	}
	code, body := call(t, srv, "GET", "/v1/definitions/"+goneUUID, "acme-token")
	def, _ := body["definition"].(map[string]any)
	last, _ := body["last_run"].(map[string]any)
	fires, _ := body["next_fire_times"].([]any)
	if code != 200 || def["code"] != "gone" || def["retired_at"] == nil || def["uuid"] != goneUUID || len(fires) != 0 || last["inngest_run_id"] != "01GONE" {
		t.Errorf("retired by uuid = %d %v; want gone, retired_at set, no next fires, its last run", code, body)
	}
	_, runs := call(t, srv, "GET", "/v1/tenants/acme/definitions/gone/runs", "acme-token")
	if r, _ := runs["runs"].([]any); len(r) != 1 || r[0].(map[string]any)["definition_uuid"] != goneUUID {
		t.Errorf("retired's runs = %v, want its one run under its uuid", runs)
	}
}

// TestRunByID: a run's attempts in order, with their definition, output,
// and a workflow's steps.
func TestRunByID(t *testing.T) {
	srv, _ := lookupFixture(t)
	code, body := call(t, srv, "GET", "/v1/runs/01NIGHTLY1", "root-token")
	attempts, _ := body["attempts"].([]any)
	if code != 200 || body["status"] != "succeeded" || body["inngest_run_id"] != "01NIGHTLY1" || len(attempts) != 2 {
		t.Fatalf("run = %d %v; want 2 attempts, succeeded", code, body)
	}
	a0, a1 := attempts[0].(map[string]any), attempts[1].(map[string]any)
	if a0["attempt"] != float64(0) || a0["status"] != "failed" || a0["final"] != false || a1["attempt"] != float64(1) ||
		a1["final"] != true || a1["tenant"] != "acme" || a1["code"] != "nightly" || a1["definition_uuid"] == nil {
		t.Errorf("attempts = %v", attempts)
	}
	if out, _ := json.Marshal(a1["output"]); string(out) != `{"n":1}` {
		t.Errorf("output = %s, want {\"n\":1}", out)
	}
	_, body = call(t, srv, "GET", "/v1/runs/01FLOW", "acme-token")
	attempts, _ = body["attempts"].([]any)
	if len(attempts) != 1 {
		t.Fatalf("workflow run = %v", body)
	}
	if steps, _ := json.Marshal(attempts[0].(map[string]any)["steps"]); string(steps) != `[{"id":"s","output":{"ok":true},"status":"completed"}]` {
		t.Errorf("steps = %s", steps)
	}
	if code, body := call(t, srv, "GET", "/v1/runs/01CRUNCH", "acme-token"); code != 200 || body["status"] != "running" {
		t.Errorf("running run = %d %v", code, body)
	}
}

// TestTenantRuns: a tenant's runs across its definitions, live and
// retired, newest first, each filter, and the pages.
func TestTenantRuns(t *testing.T) {
	srv, db := lookupFixture(t)
	ids := func(path string) []string {
		t.Helper()
		code, body := call(t, srv, "GET", path, "acme-token")
		if code != 200 {
			t.Fatalf("%s = %d %v", path, code, body)
		}
		var out []string
		for _, r := range body["runs"].([]any) {
			m := r.(map[string]any)
			out = append(out, fmt.Sprintf("%s/%s#%v", m["code"], m["inngest_run_id"], m["attempt"]))
		}
		return out
	}
	all := []string{"approval/01FLOW#0", "crunch/01CRUNCH#0", "gone/01GONE#0", "nightly/01NIGHTLY2#0", "nightly/01NIGHTLY1#1", "nightly/01NIGHTLY1#0"}
	if got := ids("/v1/tenants/acme/runs"); !slices.Equal(got, all) {
		t.Errorf("all = %v, want %v", got, all)
	}
	var paged []string
	cursor := ""
	for pages := 0; pages < 10; pages++ {
		p := "/v1/tenants/acme/runs?limit=4"
		if cursor != "" {
			p += "&cursor=" + cursor
		}
		_, body := call(t, srv, "GET", p, "acme-token")
		for _, r := range body["runs"].([]any) {
			m := r.(map[string]any)
			paged = append(paged, fmt.Sprintf("%s/%s#%v", m["code"], m["inngest_run_id"], m["attempt"]))
		}
		next, _ := body["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if !slices.Equal(paged, all) {
		t.Errorf("paged = %v, want %v", paged, all)
	}
	if got, want := ids("/v1/tenants/acme/runs?status=failed"), []string{"nightly/01NIGHTLY2#0", "nightly/01NIGHTLY1#0"}; !slices.Equal(got, want) {
		t.Errorf("status=failed = %v, want %v", got, want)
	}
	if got, want := ids("/v1/tenants/acme/runs?status=running"), []string{"crunch/01CRUNCH#0"}; !slices.Equal(got, want) {
		t.Errorf("status=running = %v, want %v", got, want)
	}
	if got, want := ids("/v1/tenants/acme/runs?code=gone"), []string{"gone/01GONE#0"}; !slices.Equal(got, want) {
		t.Errorf("code=gone (retired) = %v, want %v", got, want)
	}
	if got := ids("/v1/tenants/acme/runs?code=nope"); len(got) != 0 {
		t.Errorf("code=nope = %v, want none", got)
	}
	// since and until on the start time: move one run back a day.
	execSQL(t, db, `update root_task_runs set started_at = now() - interval '1 day' where inngest_run_id = '01GONE'`)
	cut := url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	if got, want := ids("/v1/tenants/acme/runs?until="+cut), []string{"gone/01GONE#0"}; !slices.Equal(got, want) {
		t.Errorf("until = %v, want %v", got, want)
	}
	if got := ids("/v1/tenants/acme/runs?since=" + cut); len(got) != 5 || slices.Contains(got, "gone/01GONE#0") {
		t.Errorf("since = %v, want the 5 others", got)
	}
	if code, _ := call(t, srv, "GET", "/v1/tenants/nope/runs", "root-token"); code != 404 {
		t.Errorf("unknown tenant's runs = %d, want 404", code)
	}
}

// TestDefinitionFilters: every filter of a definition list, each item
// showing its type and trigger type.
func TestDefinitionFilters(t *testing.T) {
	srv, db := lookupFixture(t)
	execSQL(t, db, `update root_scheduled_tasks set sync_state = 'synced' where code in ('nightly', 'approval')`)
	codes := func(query string) []string {
		t.Helper()
		code, body := call(t, srv, "GET", "/v1/tenants/acme/definitions"+query, "acme-token")
		if code != 200 {
			t.Fatalf("%s = %d %v", query, code, body)
		}
		var out []string
		for _, d := range body["definitions"].([]any) {
			m := d.(map[string]any)
			if m["type"] == nil || m["trigger_type"] == nil || m["has_errors"] == nil {
				t.Errorf("%s: item %v lacks type, trigger_type or has_errors", query, m)
			}
			out = append(out, m["code"].(string))
		}
		return out
	}
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"", []string{"approval", "crunch", "nightly", "paused"}},
		{"?kind=Workflow", []string{"approval"}},
		{"?kind=ScheduledTask", []string{"crunch", "nightly", "paused"}},
		{"?type=python_script", []string{"crunch"}},
		{"?type=api_call", []string{"nightly", "paused"}},
		{"?type=workflow", []string{"approval"}},
		{"?trigger_type=cron", []string{"nightly"}},
		{"?trigger_type=interval", []string{"crunch"}},
		{"?trigger_type=event", []string{"approval", "paused"}},
		{"?trigger_type=date", nil},
		{"?active=false", []string{"paused"}},
		{"?active=true&type=api_call", []string{"nightly"}},
		{"?sync_state=synced", []string{"approval", "nightly"}},
		{"?sync_state=pending", []string{"crunch", "paused"}},
		{"?sync_state=rejected", nil},
		{"?has_errors=false", []string{"approval", "crunch", "nightly", "paused"}},
		{"?q=manager", []string{"approval"}},
		{"?q=NIGHT", []string{"nightly"}},
		{"?q=%25", nil}, // a literal %, not a wildcard
	} {
		if got := codes(c.query); !slices.Equal(got, c.want) {
			t.Errorf("%q = %v, want %v", c.query, got, c.want)
		}
	}
	// A problem in a definition's file, or Inngest's rejection, is an error
	// of that definition.
	execSQL(t, db, `
		insert into root_definition_errors (tenant_id, path, line, col, code, message)
		select tenant_id, 'acme/cron.yaml', 3, 1, '', 'broken now' from root_scheduled_tasks where code = 'nightly';
		update root_scheduled_tasks set sync_state = 'rejected' where code = 'paused'`)
	if got, want := codes("?has_errors=true"), []string{"nightly", "paused"}; !slices.Equal(got, want) {
		t.Errorf("has_errors=true = %v, want %v", got, want)
	}
	if got, want := codes("?has_errors=false"), []string{"approval", "crunch"}; !slices.Equal(got, want) {
		t.Errorf("has_errors=false = %v, want %v", got, want)
	}
}

// TestBadParameters: an unknown query parameter, one given twice, or a
// value out of its set is a 400 whose JSON error names it, on every
// endpoint; never silently ignored.
func TestBadParameters(t *testing.T) {
	srv, _ := lookupFixture(t)
	u := uuidOf(t, srv, "acme", "nightly")
	cases := []struct{ path, param string }{
		{"/v1/status?verbose=1", "verbose"},
		{"/v1/tenants?tenant=acme", "tenant"},
		{"/v1/tenants/acme/definitions?typ=api_call", "typ"},
		{"/v1/tenants/acme/definitions?type=python", "type"},
		{"/v1/tenants/acme/definitions?type=", "type"},
		{"/v1/tenants/acme/definitions?trigger_type=at", "trigger_type"},
		{"/v1/tenants/acme/definitions?kind=Cron", "kind"},
		{"/v1/tenants/acme/definitions?active=yes", "active"},
		{"/v1/tenants/acme/definitions?active=1", "active"},
		{"/v1/tenants/acme/definitions?sync_state=failed", "sync_state"},
		{"/v1/tenants/acme/definitions?has_errors=maybe", "has_errors"},
		{"/v1/tenants/acme/definitions?limit=0", "limit"},
		{"/v1/tenants/acme/definitions?limit=501", "limit"},
		{"/v1/tenants/acme/definitions?cursor=***", "cursor"},
		{"/v1/tenants/acme/definitions?kind=Workflow&kind=ScheduledTask", "kind"},
		{"/v1/tenants/acme/definitions?page=2", "page"},
		{"/v1/tenants/acme/definitions/nightly?expand=runs", "expand"},
		{"/v1/tenants/acme/definitions/nightly/runs?status=failed", "status"},
		{"/v1/tenants/acme/definitions/nightly/runs?cursor=abc", "cursor"},
		{"/v1/tenants/acme/errors?severity=error", "severity"},
		{"/v1/tenants/acme/runs?status=ok", "status"},
		{"/v1/tenants/acme/runs?since=yesterday", "since"},
		{"/v1/tenants/acme/runs?until=2026-13-01T00:00:00Z", "until"},
		{"/v1/tenants/acme/runs?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "until"},
		{"/v1/tenants/acme/runs?code=", "code"},
		{"/v1/tenants/acme/runs?definition=nightly", "definition"},
		{"/v1/tenants/acme/runs?limit=-1", "limit"},
		{"/v1/tenants/acme/runs?cursor=0", "cursor"},
		{"/v1/definitions/" + u + "?tenant=acme", "tenant"},
		{"/v1/definitions/not-a-uuid", "uuid"},
		{"/v1/definitions/" + u + "x", "uuid"},
		{"/v1/runs/01NIGHTLY1?attempt=0", "attempt"},
		{"/v1/runs/" + strings.Repeat("A", 200), "run_id"},
		{"/v1/runs/%C3%A9t%C3%A9", "run_id"},
	}
	for _, c := range cases {
		code, body := call(t, srv, "GET", c.path, "root-token")
		msg, _ := body["error"].(string)
		if code != 400 || body["parameter"] != c.param || !strings.HasPrefix(msg, c.param+": ") || body["status"] != float64(400) {
			t.Errorf("GET %s = %d %v; want 400 naming %q", c.path, code, body, c.param)
		}
	}
	// A query string that cannot be parsed at all.
	if code, body := call(t, srv, "GET", "/v1/tenants/acme/definitions?kind=%zz", "root-token"); code != 400 || body["error"] == nil {
		t.Errorf("a malformed query = %d %v, want 400", code, body)
	}
	// The 400 comes after the token check: a stranger learns nothing.
	if code, _ := call(t, srv, "GET", "/v1/tenants/acme/definitions?typ=x", ""); code != 401 {
		t.Errorf("no token, bad parameter = %d, want 401", code)
	}
}
