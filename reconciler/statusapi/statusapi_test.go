package statusapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/statusapi"
	"github.com/riveredge/tasksync/reconciler/statusapi/statusapitest"
	"github.com/riveredge/tasksync/reconciler/store"
	"github.com/riveredge/tasksync/reconciler/store/storetest"
)

var pg *storetest.Cluster

func TestMain(m *testing.M) { os.Exit(storetest.Main(m, &pg)) }

// task is a fixture definition with a secret and a literal key in its
// headers, which the API must never show.
func task(code, trigger string, spec ...string) string {
	return deftest.Task{Code: code, Name: "Task " + code, Trigger: trigger, Spec: spec,
		Config: "{url: 'https://a.example.com', headers: {Authorization: 'Bearer ${secret:T}', X-Api-Key: literal-key-123}}"}.String()
}

// fixture applies a tree of 12 acme definitions, 1 globex, a broken file
// and three runs, and returns a server over the API.
func fixture(t *testing.T, tokensFile string) *httptest.Server {
	t.Helper()
	return fixtureLogged(t, tokensFile, nil)
}

// fixtureLogged is fixture with the API's log going to logger (none when
// nil).
func fixtureLogged(t *testing.T, tokensFile string, logger *slog.Logger) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	st, _ := pg.NewStore(t, store.Options{})
	files := fstest.MapFS{
		"acme/cron.yaml":   {Data: []byte(task("nightly", "{cron: '0 2 * * *', timezone: Asia/Shanghai}", "retries: 1"))},
		"acme/broken.yaml": {Data: []byte("apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: broken}\nspec: {trigger: {interval: 30s}}\n")},
		"acme/wf.yaml":     {Data: []byte("apiVersion: tasksync/v1\nkind: Workflow\nmetadata: {code: approval}\nspec:\n  trigger: {event: x/y}\n  steps: [{id: s, sleep: 1h}]\n")},
		"globex/g.yaml":    {Data: []byte(task("gsync", "{interval: 7m}"))},
	}
	for i := range 10 {
		var spec []string
		if i%3 == 0 {
			spec = []string{"active: false"}
		}
		files[fmt.Sprintf("acme/t%02d.yaml", i)] = &fstest.MapFile{Data: []byte(task(fmt.Sprintf("task-%02d", i), "{event: app/e}", spec...))}
	}
	storetest.Apply(t, st, files)
	if err := st.RecordReconcile(ctx, time.Now().Add(-time.Second), time.Now(), "invalid", reconciler.Counts{Created: 13, Errors: 1}, "tenant globex: sync: refused"); err != nil {
		t.Fatal(err)
	}
	ref := storetest.Current(t, st, "acme", "nightly")
	for i := range 3 {
		in := reconciler.RunInput{RunID: fmt.Sprintf("run-%d", i)}
		if i == 2 { // a catch-up of a missed fire
			in.ScheduledFor, in.CatchUp = time.Date(2025, 12, 31, 18, 0, 0, 0, time.UTC), true
		}
		storetest.Attempt(t, st, ref, in, reconciler.AttemptEnd{Status: reconciler.RunFailed, Took: time.Second, Error: fmt.Sprintf("failure %d", i), Final: true})
	}
	h := statusapi.NewHandler(statusapi.Options{Reader: st, TokensFile: tokensFile, Leader: func() bool { return true }, Logger: logger,
		Now: func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, srv *httptest.Server, method, path, token string) (int, map[string]any) {
	t.Helper()
	code, text := statusapitest.Request(t, method, srv.URL+path, token)
	var body map[string]any
	if err := json.Unmarshal([]byte(text), &body); err != nil {
		t.Fatalf("%s %s: not JSON: %v", method, path, err)
	}
	return code, body
}

func TestEndpoints(t *testing.T) {
	srv := fixture(t, "")
	code, body := call(t, srv, "GET", "/v1/status", "")
	last, _ := body["last_reconcile"].(map[string]any)
	if code != 200 || body["leader"] != true || last["result"] != "invalid" || last["duration_ms"] == nil {
		t.Errorf("/v1/status = %d %v", code, body)
	}

	code, body = call(t, srv, "GET", "/v1/tenants", "")
	tenants, _ := body["tenants"].([]any)
	acme, _ := tenants[0].(map[string]any)
	if code != 200 || len(tenants) != 2 || acme["tenant"] != "acme" || acme["definitions"] != float64(12) || acme["active"] != float64(8) || acme["errors"] != float64(2) {
		t.Errorf("/v1/tenants = %d %v", code, body)
	}

	// Filters and pagination.
	count := func(path string) (int, any) {
		code, body := call(t, srv, "GET", path, "")
		if code != 200 {
			t.Fatalf("%s = %d %v", path, code, body)
		}
		return len(body["definitions"].([]any)), body["next_cursor"]
	}
	if n, _ := count("/v1/tenants/acme/definitions"); n != 12 {
		t.Errorf("all = %d, want 12", n)
	}
	if n, _ := count("/v1/tenants/acme/definitions?kind=Workflow"); n != 1 {
		t.Errorf("kind=Workflow = %d", n)
	}
	if n, _ := count("/v1/tenants/acme/definitions?active=false"); n != 4 {
		t.Errorf("active=false = %d, want 4", n)
	}
	if n, _ := count("/v1/tenants/acme/definitions?q=TASK-0"); n != 10 {
		t.Errorf("q=TASK-0 = %d, want 10", n)
	}
	seen := 0
	cursor := ""
	for pages := 0; pages < 10; pages++ {
		path := "/v1/tenants/acme/definitions?limit=5"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		n, next := count(path)
		seen += n
		if next == nil {
			break
		}
		cursor = next.(string)
	}
	if seen != 12 {
		t.Errorf("paginated total = %d, want 12", seen)
	}

	code, body = call(t, srv, "GET", "/v1/tenants/acme/definitions/nightly", "")
	def, _ := body["definition"].(map[string]any)
	fires, _ := body["next_fire_times"].([]any)
	lastRun, _ := body["last_run"].(map[string]any)
	if code != 200 || def["source_path"] != "acme/cron.yaml" || def["revision"] != float64(1) || len(fires) != 5 ||
		fires[0] != "2026-01-02T02:00:00+08:00" || lastRun["error"] != "failure 2" {
		t.Errorf("definition = %d %v", code, body)
	}
	if missed, ok := def["last_missed_fires"].([]any); !ok || len(missed) != 0 {
		t.Errorf("last_missed_fires = %v, want an empty list", def["last_missed_fires"])
	}
	spec, _ := json.Marshal(def["spec"])
	if strings.Contains(string(spec), "literal-key-123") || !strings.Contains(string(spec), "${secret:T}") {
		t.Errorf("spec not redacted as it should be: %s", spec)
	}

	code, body = call(t, srv, "GET", "/v1/tenants/acme/definitions/nightly/runs?limit=2", "")
	runs, _ := body["runs"].([]any)
	first, _ := runs[0].(map[string]any)
	if code != 200 || len(runs) != 2 || first["inngest_run_id"] != "run-2" || body["next_cursor"] == nil {
		t.Errorf("runs = %d %v", code, body)
	}
	if second, _ := runs[1].(map[string]any); first["scheduled_for"] != "2025-12-31T18:00:00Z" || first["catch_up"] != true ||
		second["scheduled_for"] != nil || second["catch_up"] != nil {
		t.Errorf("runs' fires: %v and %v; want the first a catch-up of 18:00, the second for no fire", first, second)
	}
	code, body = call(t, srv, "GET", "/v1/tenants/acme/definitions/nightly/runs?cursor="+body["next_cursor"].(string), "")
	if runs, _ := body["runs"].([]any); code != 200 || len(runs) != 1 {
		t.Errorf("runs page 2 = %d %v", code, body)
	}

	code, body = call(t, srv, "GET", "/v1/tenants/acme/errors", "")
	errs, _ := body["errors"].([]any)
	e0, _ := errs[0].(map[string]any)
	if code != 200 || len(errs) != 2 || !strings.HasPrefix(e0["location"].(string), "acme/broken.yaml:4:1: spec: missing required field") {
		t.Errorf("errors = %d %v", code, body)
	}

	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/v1/tenants/nope/definitions", 404},
		{"GET", "/v1/tenants/acme/definitions/nope", 404},
		{"GET", "/v1/tenants/acme/definitions/nope/runs", 404},
		{"GET", "/v1/nothing", 404},
		{"GET", "/v1/tenants/acme/definitions?kind=Cron", 400},
		{"GET", "/v1/tenants/acme/definitions?limit=0", 400},
		{"POST", "/v1/status", 405},
		{"DELETE", "/v1/tenants/acme/definitions/nightly", 405},
		{"PUT", "/v1/tenants", 405},
	} {
		if code, body := call(t, srv, c.method, c.path, ""); code != c.want || body["error"] == nil {
			t.Errorf("%s %s = %d %v, want %d with an error message", c.method, c.path, code, body, c.want)
		}
	}
}

func TestTokens(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte("# tokens\nroot-token *\nacme-token acme\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := fixture(t, file)
	cases := []struct {
		path, token string
		want        int
	}{
		{"/v1/status", "", 401},
		{"/v1/status", "wrong", 401},
		{"/v1/status", "root-token", 200},
		{"/v1/tenants/globex/definitions", "acme-token", 403},
		{"/v1/tenants/acme/definitions", "acme-token", 200},
		{"/v1/tenants/globex/errors", "root-token", 200},
	}
	for _, c := range cases {
		if code, body := call(t, srv, "GET", c.path, c.token); code != c.want {
			t.Errorf("GET %s with %q = %d %v, want %d", c.path, c.token, code, body, c.want)
		}
	}
	_, body := call(t, srv, "GET", "/v1/tenants", "acme-token")
	if tenants := body["tenants"].([]any); len(tenants) != 1 {
		t.Errorf("/v1/tenants for acme's token = %v, want only acme", tenants)
	}

	// The file is reloaded when it changes (its size here, its time too).
	if err := os.WriteFile(file, []byte("new-token globex\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _ := call(t, srv, "GET", "/v1/status", "root-token"); code != 401 {
		t.Errorf("a removed token still works: %d", code)
	}
	if code, _ := call(t, srv, "GET", "/v1/tenants/globex/definitions", "new-token"); code != 200 {
		t.Errorf("a new token does not work: %d", code)
	}
}

// TestTenantTokenSeesOnlyItsCounts: /v1/status with a tenant token counts
// only that tenant's definitions, errors, sync states and held
// retirements, and leaves out the last reconcile's result, counts and
// message, which are global; a "*" token sees them all.
func TestTenantTokenSeesOnlyItsCounts(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte("root-token *\nacme-token acme\nglobex-token globex\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := fixture(t, file)
	get := func(token string) (map[string]any, string) {
		t.Helper()
		code, body := call(t, srv, "GET", "/v1/status", token)
		if code != 200 {
			t.Fatalf("/v1/status with %s = %d %v", token, code, body)
		}
		raw, _ := json.Marshal(body)
		return body, string(raw)
	}
	totals := func(body map[string]any) map[string]any {
		m, _ := body["totals"].(map[string]any)
		return m
	}
	syncSum := func(body map[string]any) float64 {
		n := 0.0
		for _, v := range body["inngest_sync"].(map[string]any) {
			n += v.(float64)
		}
		return n
	}

	cases := []struct {
		token, other                  string
		defs, active, errs, syncTotal float64
	}{
		// acme owns 12 definitions (8 active) and 2 problems; globex 1, 1, 0.
		{"acme-token", "globex", 12, 8, 2, 1},
		{"globex-token", "acme", 1, 1, 0, 1},
	}
	for _, c := range cases {
		body, raw := get(c.token)
		tot := totals(body)
		if tot["tenants"] != float64(1) || tot["definitions"] != c.defs || tot["active"] != c.active || tot["errors"] != c.errs {
			t.Errorf("%s: totals = %v, want 1 tenant, %v definitions, %v active, %v errors", c.token, tot, c.defs, c.active, c.errs)
		}
		if got := syncSum(body); got != c.syncTotal {
			t.Errorf("%s: inngest_sync counts %v tenants, want %v", c.token, got, c.syncTotal)
		}
		last, _ := body["last_reconcile"].(map[string]any)
		if last == nil || last["finished_at"] == nil {
			t.Errorf("%s: last_reconcile = %v, want its times", c.token, body["last_reconcile"])
		}
		for _, global := range []string{"counts", "result", "message"} {
			if _, ok := last[global]; ok {
				t.Errorf("%s: last_reconcile.%s = %v: the global reconcile's %s reached a tenant token", c.token, global, last[global], global)
			}
		}
		if strings.Contains(raw, c.other) {
			t.Errorf("%s: /v1/status names %s: %s", c.token, c.other, raw)
		}
	}

	body, _ := get("root-token")
	last, _ := body["last_reconcile"].(map[string]any)
	counts, _ := last["counts"].(map[string]any)
	if tot := totals(body); tot["tenants"] != float64(2) || tot["definitions"] != float64(13) || tot["errors"] != float64(2) ||
		counts["created"] != float64(13) || last["result"] != "invalid" || !strings.Contains(fmt.Sprint(last["message"]), "globex") {
		t.Errorf("root token: totals %v, last_reconcile %v: want everything", tot, last)
	}
	if got := syncSum(body); got != 2 {
		t.Errorf("root token: inngest_sync counts %v tenants, want 2", got)
	}
}

// TestOneShotStates: the list and the detail show where a one-shot
// stands: fired with its run, or expired when its time had passed before
// it was applied; neither is an error.
func TestOneShotStates(t *testing.T) {
	ctx := context.Background()
	st, _ := pg.NewStore(t, store.Options{})
	ahead := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	files := fstest.MapFS{
		"acme/fired.yaml":   {Data: []byte(task("launch", fmt.Sprintf("{at: %q}", ahead)))},
		"acme/expired.yaml": {Data: []byte(task("old", "{at: '2001-01-01T00:00:00Z'}"))},
	}
	storetest.Apply(t, st, files)
	ref := storetest.Current(t, st, "acme", "launch")
	if _, err := st.StartRun(ctx, ref, reconciler.RunInput{RunID: "01LAUNCH"}, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(statusapi.NewHandler(statusapi.Options{Reader: st, Leader: func() bool { return true }}))
	t.Cleanup(srv.Close)

	oneShot := func(v any) map[string]any { m, _ := v.(map[string]any)["one_shot"].(map[string]any); return m }
	_, list := call(t, srv, "GET", "/v1/tenants/acme/definitions", "")
	defs, _ := list["definitions"].([]any)
	if len(defs) != 2 {
		t.Fatalf("definitions = %v, want 2", list)
	}
	if s := oneShot(defs[0]); s["state"] != "fired" || s["run_id"] != "01LAUNCH" || s["fired_at"] == nil {
		t.Errorf("list: launch one_shot = %v, want fired with run 01LAUNCH", s)
	}
	if s := oneShot(defs[1]); s["state"] != "expired" || s["at"] != "2001-01-01T00:00:00Z" || s["run_id"] != nil {
		t.Errorf("list: old one_shot = %v, want expired at 2001-01-01T00:00:00Z", s)
	}
	_, detail := call(t, srv, "GET", "/v1/tenants/acme/definitions/launch", "")
	if s := oneShot(detail["definition"]); s["state"] != "fired" || s["run_id"] != "01LAUNCH" {
		t.Errorf("detail: one_shot = %v, want fired with run 01LAUNCH", s)
	}
	_, errs := call(t, srv, "GET", "/v1/tenants/acme/errors", "")
	if e, _ := errs["errors"].([]any); len(e) != 0 {
		t.Errorf("errors = %v, want none", errs)
	}
}
