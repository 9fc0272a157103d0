package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inngest/inngestgo"
	"github.com/jackc/pgx/v5"

	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/inngest"
	"github.com/riveredge/tasksync/reconciler/store/storetest"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// manualRuns reads the run attempts of tenant's code: manual flag and
// status of each, oldest first.
func manualRuns(t *testing.T, dbURL, tenant, code string) []string {
	t.Helper()
	ctx := context.Background()
	conn := storetest.Conn(t, dbURL)
	rows, err := conn.Query(ctx, `select case when r.manual then 'manual' else 'scheduled' end || ':' || r.status
		from root_task_runs r join root_scheduled_tasks d on d.id = r.task_id join root_tenants t on t.id = d.tenant_id
		where t.code = $1 and d.code = $2 order by r.id`, tenant, code)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTrigger: tasksync trigger starts one run now of a cron task, an
// interval task (off its grid) and a workflow (whose step ids hold '-',
// read as steps["first-call"]) through the real dev server, recorded as
// manual; --wait exits with the run's outcome (0, 1,
// or 3 when it has not ended in time); inactive, retired and unknown
// definitions are refused before anything is sent; a hand-crafted event
// for another version, or for a retired definition, runs nothing; and one
// tenant's event starts no function of another tenant with the same code.
func TestTrigger(t *testing.T) {
	var mu sync.Mutex
	var hits []string
	release := make(chan struct{})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits = append(hits, r.URL.Path)
		mu.Unlock()
		switch r.URL.Path {
		case "/fail":
			http.Error(w, "boom", http.StatusInternalServerError)
		case "/slow":
			select {
			case <-release:
			case <-r.Context().Done():
			}
			fmt.Fprint(w, `{"ok": true}`)
		default:
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"path": %q, "customer": %q}`, r.URL.Path, r.URL.Query().Get("customer"))
		}
	}))
	defer api.Close()
	defer close(release)
	hitCount := func(path string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, h := range hits {
			if h == path {
				n++
			}
		}
		return n
	}

	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "tasks.d")
	task := func(tenant, code, trigger, path string, spec ...string) {
		deftest.WriteFile(t, filepath.Join(dir, tenant, code+".yaml"), deftest.Task{Code: code, Trigger: trigger, Spec: append([]string{"retries: 0"}, spec...),
			Config: fmt.Sprintf(`{url: "%s%s"}`, api.URL, path)}.String())
	}
	task("acme", "nightly", "{cron: '0 3 1 1 *'}", "/nightly?customer={{ event.data.customer_id }}")
	task("acme", "every7", "{interval: 7m}", "/every7")
	task("acme", "fails", "{cron: '0 3 1 1 *'}", "/fail")
	task("acme", "slow", "{cron: '0 3 1 1 *'}", "/slow")
	task("acme", "paused", "{cron: '0 3 1 1 *'}", "/paused", "active: false")
	task("acme", "goner", "{cron: '0 3 1 1 *'}", "/goner")
	task("globex", "nightly", "{cron: '0 3 1 1 *'}", "/globex-nightly")
	deftest.WriteFile(t, filepath.Join(dir, "acme", "wf.yaml"), fmt.Sprintf(`apiVersion: tasksync/v1
kind: Workflow
metadata: {code: wf}
spec:
  trigger: {cron: "0 3 1 1 *"}
  retries: 0
  steps:
    - id: first-call
      api_call: {url: "%[1]s/wf-first"}
    - id: second-call
      if: steps["first-call"].status == 200
      api_call: {url: "%[1]s/wf-second?customer={{ steps[\"first-call\"].body.path }}"}
`, api.URL))

	deftest.WriteFile(t, filepath.Join(dir, "acme", "approve.yaml"), fmt.Sprintf(`apiVersion: tasksync/v1
kind: Workflow
metadata: {code: approve}
spec:
  trigger: {cron: "0 3 1 1 *"}
  retries: 0
  steps:
    - id: ask
      api_call: {url: "%[1]s/approve-ask"}
    - id: decision
      wait_for_event: {event: test/decided, match: data.po_id, timeout: 40s}
    - id: record
      if: steps.decision != null
      api_call: {url: "%[1]s/approve-record?approved={{ steps.decision.data.approved }}"}
`, api.URL))

	prefix := fmt.Sprintf("t%d", time.Now().UnixNano()%1e6)
	dbURL := pg.NewDatabase(t)
	base, _, _, _ := startDaemon(t, bin, []string{"DATABASE_URL=" + dbURL, "TASKSYNC_DIR=" + dir, "INNGEST_DEV=" + dev.URL,
		"TASKSYNC_APP_PREFIX=" + prefix, "TASKSYNC_ALLOW_CIDRS=127.0.0.1/32"}, "2s")
	waittest.For(t, "the apps in Inngest", 30*time.Second, func() bool {
		return len(appCrons(t, prefix+"-acme")) == 7 && len(appCrons(t, prefix+"-globex")) == 1
	})
	env := map[string]string{"DATABASE_URL": dbURL, "INNGEST_DEV": dev.URL}

	// Run now: a cron task, with the caller's data, flags after the
	// arguments; then an interval task off its grid, and a workflow.
	out, errOut, code := runCmd(t, env, "trigger", "acme", "nightly", "--data", `{"customer_id": "c-42"}`, "--wait", "--timeout", "60s")
	if code != 0 || !strings.Contains(out, "succeeded") || !strings.Contains(out, `"customer": "c-42"`) {
		t.Errorf("trigger acme nightly --wait: exit %d, want 0\n%s%s", code, out, errOut)
	}
	_, body := get(base + "/v1/tenants/acme/definitions/every7")
	var every7 struct {
		Definition struct {
			Hash string `json:"spec_hash"`
		} `json:"definition"`
	}
	if err := json.Unmarshal([]byte(body), &every7); err != nil || len(every7.Definition.Hash) < 12 {
		t.Fatalf("every7's detail: %v\n%s", err, body)
	}
	for _, c := range []string{"every7 --hash " + every7.Definition.Hash[:12], "wf"} {
		if out, errOut, code := runCmd(t, env, append([]string{"trigger", "--wait", "--timeout", "60s", "acme"}, strings.Fields(c)...)...); code != 0 {
			t.Errorf("trigger acme %s --wait: exit %d, want 0\n%s%s", c, code, out, errOut)
		}
	}
	// The workflow's steps have hyphenated ids, read as steps["first-call"].
	out, _, _ = runCmd(t, env, "trigger", "--wait", "acme", "wf")
	if !strings.Contains(out, `"customer": "/wf-first"`) {
		t.Errorf("the workflow's second step did not read the first one's output by its hyphenated id:\n%s", out)
	}
	if hitCount("/wf-first") != 2 || hitCount("/wf-second") != 2 || hitCount("/every7") != 1 {
		t.Errorf("calls: %v; want one of each step and one of every7", hits)
	}
	for _, c := range []string{"nightly", "every7"} {
		if got := manualRuns(t, dbURL, "acme", c); len(got) != 1 || got[0] != "manual:succeeded" {
			t.Errorf("runs of acme/%s = %v, want one manual:succeeded", c, got)
		}
	}
	if got := manualRuns(t, dbURL, "acme", "wf"); len(got) != 2 || got[1] != "manual:succeeded" {
		t.Errorf("runs of acme/wf = %v, want a manual:succeeded attempt", got)
	}
	if _, body := get(base + "/v1/tenants/acme/definitions/nightly/runs"); !strings.Contains(body, `"trigger": "manual"`) {
		t.Errorf("the status API's runs do not mark the run manual:\n%s", body)
	}
	// Globex has a nightly too: acme's event did not start it.
	if n := hitCount("/globex-nightly"); n != 0 || len(manualRuns(t, dbURL, "globex", "nightly")) != 0 {
		t.Errorf("acme's manual event started globex's nightly (%d calls)", n)
	}

	// --wait exits 1 when the run fails, 3 when it has not ended in time.
	if out, errOut, code := runCmd(t, env, "trigger", "--wait", "--timeout", "60s", "acme", "fails"); code != 1 || !strings.Contains(out, "failed") {
		t.Errorf("trigger acme fails --wait: exit %d, want 1\n%s%s", code, out, errOut)
	}
	if out, errOut, code := runCmd(t, env, "trigger", "--wait", "--timeout", "2s", "acme", "slow"); code != exitTimeout || !strings.Contains(errOut, "within 2s") && !strings.Contains(errOut, "after 2s") {
		t.Errorf("trigger acme slow --wait --timeout 2s: exit %d, want %d\n%s%s", code, exitTimeout, out, errOut)
	}

	// A workflow waiting for an event has not ended: --wait says so and
	// exits 3 (Inngest's event runs say Completed, with no ended_at, as
	// soon as the run waits). Once the awaited event comes, it ends, and
	// --wait prints the steps' outcomes and where to read the run.
	out, errOut, code = runCmd(t, env, "trigger", "--wait", "--timeout", "3s", "acme", "approve", "--data", `{"po_id": "PO-1"}`)
	if code != exitTimeout || !strings.Contains(errOut, "after 3s") || strings.Contains(out, "completed") || strings.Contains(out, "succeeded") {
		t.Errorf("trigger acme approve --wait --timeout 3s: exit %d, want %d (still waiting)\n%s%s", code, exitTimeout, out, errOut)
	}
	type result struct {
		out, errOut string
		code        int
	}
	done := make(chan result, 1)
	go func() {
		out, errOut, code := runCmd(t, env, "trigger", "--wait", "--timeout", "60s", "acme", "approve", "--data", `{"po_id": "PO-2"}`)
		done <- result{out, errOut, code}
	}()
	var res result
	// The event resumes the run only once it waits: send it until it ends.
	decided, err := inngest.NewSender(inngest.Options{DevURL: dev.URL})
	if err != nil {
		t.Fatal(err)
	}
	waittest.For(t, "trigger approve --wait to end after the decision", 60*time.Second, func() bool {
		select {
		case res = <-done:
			return true
		default:
		}
		if _, err := decided.Send(context.Background(), inngestgo.Event{Name: "test/decided", Data: map[string]any{"tenant_id": "acme", "po_id": "PO-2", "approved": true}}); err != nil {
			t.Error(err)
		}
		return false
	})
	if res.code != 0 || !strings.Contains(res.out, "succeeded") || !strings.Contains(res.out, "decision: completed") ||
		!strings.Contains(res.out, "record: completed") || !strings.Contains(res.out, "/v1/runs/") || !strings.Contains(res.out, "/ui/runs/") {
		t.Errorf("trigger acme approve --wait after the decision: exit %d, want 0 and the steps\n%s%s", res.code, res.out, res.errOut)
	}
	if n := hitCount("/approve-record"); n != 1 {
		t.Errorf("approve's record step ran %d times, want 1", n)
	}

	// Refused before sending: inactive, unknown, and usage mistakes.
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"acme", "paused"}, 1, "acme/paused is inactive (active: false in acme/paused.yaml:1)"},
		{[]string{"acme", "nope"}, 1, "tenant acme has no definition nope"},
		{[]string{"nobody", "nope"}, 1, "there is no tenant nobody"},
		{[]string{"--hash", "deadbeef00", "acme", "nightly"}, 1, "acme/nightly: the applied version is "},
		{[]string{"--hash", "xyz", "acme", "nightly"}, 2, "--hash must be a spec_hash"},
		{[]string{"acme"}, 2, "trigger takes TENANT CODE"},
		{[]string{"--data", "[1]", "acme", "nightly"}, 2, "--data must be one JSON object"},
		{[]string{"--data", `{"tenant_id": "globex"}`, "acme", "nightly"}, 2, `the data may not set "tenant_id"`},
		{[]string{"../x", "nightly"}, 2, `tenant "../x"`},
		{[]string{"acme", "Nightly\x1b[2J"}, 2, `"Nightly\x1b[2J" is not a definition code`},
	} {
		out, errOut, code := runCmd(t, env, append([]string{"trigger"}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) || strings.Contains(out, "sent") ||
			strings.Contains(errOut, "globex") || strings.Contains(errOut, "the definition changed") {
			t.Errorf("trigger %v: exit %d, want %d and %q\n%s%s", tc.args, code, tc.code, tc.want, out, errOut)
		}
	}
	if hitCount("/paused") != 0 {
		t.Error("the inactive definition ran")
	}

	sender, err := inngest.NewSender(inngest.Options{DevURL: dev.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// A hand-crafted event for another version than the applied one: the
	// function refuses it and the run fails, telling why.
	run, err := followEvent(sender, sendManual(t, sender, "acme", "nightly", "0000000000000000", nil))
	if err != nil || run.Succeeded() || !strings.Contains(string(run.Output), "manual run refused") {
		t.Errorf("a manual event for another version: run %+v, err %v; want it failed and refused", run, err)
	}
	if got := manualRuns(t, dbURL, "acme", "nightly"); len(got) != 1 {
		t.Errorf("runs of acme/nightly after the refused event = %v, want the first one only", got)
	}
	// One tenant's event names another tenant's code with its own
	// tenant_id: only the tenant it names may run it, and only its version.
	sendManual(t, sender, "globex", "nightly", "0000000000000000", nil)

	// Retire goner: trigger refuses it, and a hand-crafted event for it,
	// with the version it had, starts nothing.
	var goner struct {
		Definition struct {
			Hash string `json:"spec_hash"`
		} `json:"definition"`
	}
	_, body = get(base + "/v1/tenants/acme/definitions/goner")
	if err := json.Unmarshal([]byte(body), &goner); err != nil || goner.Definition.Hash == "" {
		t.Fatalf("goner's detail: %v\n%s", err, body)
	}
	if err := os.Remove(filepath.Join(dir, "acme", "goner.yaml")); err != nil {
		t.Fatal(err)
	}
	waittest.For(t, "goner retired in Inngest", 20*time.Second, func() bool {
		_, ok := appCrons(t, prefix+"-acme")[prefix+"-acme-_goner"]
		return !ok
	})
	if out, errOut, code := runCmd(t, env, "trigger", "acme", "goner"); code != 1 || !strings.Contains(errOut, "acme/goner is retired") {
		t.Errorf("trigger a retired definition: exit %d, want 1 and 'is retired'\n%s%s", code, out, errOut)
	}
	retiredID := sendManual(t, sender, "acme", "goner", goner.Definition.Hash, nil)
	// A run sent after it ends first: by then, the retired one's would
	// have started.
	if out, errOut, code := runCmd(t, env, "trigger", "--wait", "--timeout", "60s", "acme", "every7"); code != 0 {
		t.Fatalf("trigger acme every7 --wait: exit %d\n%s%s", code, out, errOut)
	}
	if runs, err := sender.EventRuns(ctx, retiredID); err != nil || len(runs) != 0 || hitCount("/goner") != 0 {
		t.Errorf("the event for a retired definition started %v (err %v, %d calls)", runs, err, hitCount("/goner"))
	}
	if n := hitCount("/globex-nightly"); n != 0 || len(manualRuns(t, dbURL, "globex", "nightly")) != 0 {
		t.Errorf("globex's nightly ran %d times for an event naming another version", n)
	}

	// Inngest's UI's Invoke button (its invokeFunction mutation): with the
	// version in its data, a manual run; without it, refused.
	var nightly struct {
		Definition struct {
			Hash string `json:"spec_hash"`
		} `json:"definition"`
	}
	_, body = get(base + "/v1/tenants/acme/definitions/nightly")
	if err := json.Unmarshal([]byte(body), &nightly); err != nil || nightly.Definition.Hash == "" {
		t.Fatalf("nightly's detail: %v\n%s", err, body)
	}
	invoke := func(data map[string]any) {
		t.Helper()
		q, _ := json.Marshal(map[string]any{"query": `mutation($slug: String!, $data: Map) { invokeFunction(functionSlug: $slug, data: $data) }`,
			"variables": map[string]any{"slug": prefix + "-acme-_nightly", "data": data}})
		res, err := http.Post(dev.URL+"/v0/gql", "application/json", strings.NewReader(string(q)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !strings.Contains(string(b), `"invokeFunction":true`) {
			t.Fatalf("invokeFunction: %s", b)
		}
	}
	invoke(map[string]any{"tenant_id": "acme", "code": "nightly"}) // no version: refused
	invoke(map[string]any{"tenant_id": "acme", "code": "nightly", "hash": nightly.Definition.Hash, "customer_id": "c-ui"})
	waittest.For(t, "the invoked run", 30*time.Second, func() bool { return len(manualRuns(t, dbURL, "acme", "nightly")) >= 2 })
	// The refused invocation was sent first; the next run ends after it.
	if out, errOut, code := runCmd(t, env, "trigger", "--wait", "--timeout", "60s", "acme", "every7"); code != 0 {
		t.Fatalf("trigger acme every7 --wait: exit %d\n%s%s", code, out, errOut)
	}
	if got := manualRuns(t, dbURL, "acme", "nightly"); len(got) != 2 || got[1] != "manual:succeeded" {
		t.Errorf("runs of acme/nightly after two invocations = %v, want the first and one manual:succeeded", got)
	}
	if n := hitCount("/nightly"); n != 2 {
		t.Errorf("nightly was called %d times, want 2 (the invocation without a version runs nothing)", n)
	}
}

// TestTriggerHelp: trigger -h lists its exit statuses and the variables
// it reads; --data is bounded before anything is read or sent.
func TestTriggerHelp(t *testing.T) {
	out, _, code := runCmd(t, nil, "trigger", "-h")
	for _, want := range []string{"Usage: tasksync trigger [flags] TENANT CODE", "Exit status:\n  0 sent", "3 (with --wait)", "DATABASE_URL", "INNGEST_DEV", "INNGEST_EVENT_KEY", "INNGEST_SIGNING_KEY", "--timeout", "--wait", "--data"} {
		if !strings.Contains(out, want) {
			t.Errorf("trigger -h lacks %q:\n%s", want, out)
		}
	}
	if code != 0 {
		t.Errorf("trigger -h: exit %d", code)
	}
	big := `{"x": "` + strings.Repeat("a", maxTriggerData) + `"}`
	if _, errOut, code := runCmd(t, map[string]string{"INNGEST_DEV": "1"}, "trigger", "--data", big, "acme", "nightly"); code != 2 || !strings.Contains(errOut, "--data is") {
		t.Errorf("trigger with a huge --data: exit %d, %s", code, errOut)
	}
	if _, errOut, code := runCmd(t, map[string]string{"DATABASE_URL": "postgres://127.0.0.1:1/x"}, "trigger", "acme", "nightly"); code != 2 || !strings.Contains(errOut, "Inngest is not configured") {
		t.Errorf("trigger without Inngest: exit %d, %s", code, errOut)
	}
}

// sendManual sends a hand-crafted manual run event, unsigned, for tenant's
// code at version hash with data, as someone without tasksync would, and
// returns its id.
func sendManual(t *testing.T, sender *inngest.Sender, tenant, code, hash string, data map[string]any) string {
	t.Helper()
	ev, err := inngest.ManualEvent(nil, tenant, code, hash, data)
	if err != nil {
		t.Fatal(err)
	}
	id, err := sender.Send(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// followEvent follows the run event id started to its end in Inngest,
// for up to a minute.
func followEvent(sender *inngest.Sender, id string) (inngest.EventRun, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return sender.FollowRun(ctx, id, 200*time.Millisecond)
}
