package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/statusapi/statusapitest"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// chromium finds the headless browser the web page's test drives:
// $TASKSYNC_CHROMIUM, else Debian's chromium-headless-shell or chromium.
// Without one the test fails: `.ci/run` installs it.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("TASKSYNC_CHROMIUM"); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("TASKSYNC_CHROMIUM: %v", err)
		}
		return p
	}
	for _, name := range []string{"chromium-headless-shell", "chromium", "headless_shell", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no headless Chromium: install Debian's chromium-headless-shell (apt-get install -y chromium-headless-shell; .ci/run does) or set TASKSYNC_CHROMIUM")
	return ""
}

// The text a hostile tenant puts in its definition and its endpoint's
// answers: the page must show it as text and run none of it.
const (
	uiHostileName = `<script>window.pwned=1</script>`
	uiHostileDesc = `<img src=x onerror="window.pwned=2"> <b>not bold</b>`
	uiHostileOut  = `<script>window.pwned=3</script>`
)

// TestWebUIInBrowser drives a headless Chromium through the daemon's web
// page, with real Postgres, the dev server and real runs: it signs in,
// follows the links from the overview to a run, applies a filter, checks
// that a tenant's token cannot reach another tenant's page, that HTML in
// a definition and in a run's output renders as text and runs nothing,
// and that the browser enforces the Content-Security-Policy. Screenshots
// go to the test's temporary directory (and, with
// TASKSYNC_UI_SCREENSHOTS=dir, to that directory too).
func TestWebUIInBrowser(t *testing.T) {
	browserPath := chromium(t)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ok": true, "html": %q}`, uiHostileOut)
	}))
	defer echo.Close()
	bin := buildBinary(t)
	dir := copyTree(t)
	deftest.WriteFile(t, filepath.Join(dir, "acme", "ui.yaml"), fmt.Sprintf(`apiVersion: tasksync/v1
kind: ScheduledTask
metadata:
  code: ui-echo
  name: '%s'
  description: '%s'
spec:
  trigger: {event: app/ui-echo}
  type: api_call
  config: {url: "%s/echo"}
  retries: 0
---
apiVersion: tasksync/v1
kind: Workflow
metadata: {code: ui-flow, name: Two steps}
spec:
  trigger: {event: app/ui-flow}
  retries: 0
  steps:
    - id: fetch
      api_call: {url: "%s/flow"}
    - id: tell
      send_event: {name: app/ui-told, data: {n: 1}}
`, uiHostileName, uiHostileDesc, echo.URL, echo.URL))
	deftest.WriteFile(t, filepath.Join(dir, "acme", "broken.yaml"), "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: broken}\nspec: {trigger: {interval: 30s}}\n")
	tokens := filepath.Join(t.TempDir(), "tokens")
	deftest.WriteFile(t, tokens, "root-ui-token *\nacme-ui-token acme\n")
	prefix := fmt.Sprintf("w%d", time.Now().UnixNano()%1e6)
	base, cmd, _, exited := startDaemon(t, bin, []string{"DATABASE_URL=" + pg.NewDatabase(t), "TASKSYNC_DIR=" + dir, "INNGEST_DEV=" + dev.URL,
		"TASKSYNC_APP_PREFIX=" + prefix, "TASKSYNC_ALLOW_CIDRS=127.0.0.1/32", "TASKSYNC_SECRETS_DIR=" + sampleSecrets(t, "x"),
		"TASKSYNC_STATUS_TOKENS_FILE=" + tokens}, "3s")
	waittest.For(t, "the daemon to be ready", 30*time.Second, func() bool { code, _ := get(base + "/readyz"); return code == 200 })
	app := prefix + "-acme"
	waittest.For(t, "the apps in Inngest", 30*time.Second, func() bool { _, ok := appCrons(t, app)[app+"-_ui-flow"]; return ok })
	gapp := prefix + "-globex"
	waittest.For(t, "globex's app in Inngest", 30*time.Second, func() bool {
		_, ok := appCrons(t, gapp)[gapp+"-_welcome-new-customer"]
		return ok
	})

	// Two real runs: the task and the workflow.
	for _, name := range []string{"app/ui-echo", "app/ui-flow"} {
		body, _ := json.Marshal(map[string]any{"name": name, "data": map[string]any{"tenant_id": "acme"}})
		res, err := http.Post(dev.URL+"/e/key", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	// And one of globex's, which acme's token must not see.
	body, _ := json.Marshal(map[string]any{"name": "customer/created", "data": map[string]any{"tenant_id": "globex", "plan": "pro", "customer_id": "c1"}})
	res, err := http.Post(dev.URL+"/e/key", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for _, code := range []string{"ui-echo", "ui-flow"} {
		waittest.For(t, "the run of "+code+" to be recorded", 30*time.Second, func() bool {
			_, body := statusapitest.Request(t, "GET", base+"/v1/tenants/acme/definitions/"+code+"/runs", "root-ui-token")
			return strings.Contains(body, `"status": "succeeded"`)
		})
	}

	var globexRuns struct {
		Runs []struct {
			InngestRunID string `json:"inngest_run_id"`
		} `json:"runs"`
	}
	waittest.For(t, "globex's run to be recorded", 30*time.Second, func() bool {
		_, body := statusapitest.Request(t, "GET", base+"/v1/tenants/globex/runs", "root-ui-token")
		return json.Unmarshal([]byte(body), &globexRuns) == nil && len(globexRuns.Runs) > 0 && globexRuns.Runs[0].InngestRunID != ""
	})
	globexRun := globexRuns.Runs[0].InngestRunID
	_, detail := statusapitest.Request(t, "GET", base+"/v1/tenants/globex/definitions/crm-sync", "root-ui-token")
	var crm struct {
		Definition struct {
			UUID string `json:"uuid"`
		} `json:"definition"`
	}
	if err := json.Unmarshal([]byte(detail), &crm); err != nil || crm.Definition.UUID == "" {
		t.Fatalf("crm-sync's detail: %v\n%s", err, detail)
	}

	// The page's headers, read as any client would.
	res, err = http.Get(base + "/ui/login")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}

	shots := []string{t.TempDir()}
	if dir := os.Getenv("TASKSYNC_UI_SCREENSHOTS"); dir != "" {
		shots = append(shots, dir)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browserPath), chromedp.NoSandbox, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
	b := &browser{t: t, ctx: ctx, shots: shots}

	// / leads to the page, which asks for a token.
	resp := b.open(base+"/", 401)
	if !strings.Contains(resp.URL, "/ui/") {
		t.Errorf("/ landed on %s, want /ui/", resp.URL)
	}
	if csp, _ := resp.Headers["Content-Security-Policy"].(string); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("the browser got Content-Security-Policy %q", csp)
	}
	b.signIn("root-ui-token")
	b.text("h1", "Overview")
	b.text("#tenants + .scroll", "globex")
	b.screenshot("overview")

	// Overview → tenant → definition → run.
	b.click(`a[href="/ui/t/acme"]`, 200)
	b.text("h1", "acme")
	b.text("table.defs", "purchase-approval")
	b.text("table.defs", "cron 0 7 * * 1 (America/Chicago)")
	b.screenshot("tenant")
	b.click(`a[href="/ui/t/acme/d/ui-echo"]`, 200)
	// The hostile name and description, as text; none of their code ran.
	b.text("h1", uiHostileName)
	b.text(".desc", uiHostileDesc)
	b.noScriptRan()
	b.screenshot("definition")
	// Its uuid leads back to it.
	b.click(`dd a[href^="/ui/d/"]`, 200)
	b.text("h1", uiHostileName)
	var loc string
	b.run(chromedp.Location(&loc))
	if !strings.HasSuffix(loc, "/ui/t/acme/d/ui-echo") {
		t.Errorf("the uuid's link led to %s, want the definition's page", loc)
	}
	// The run, from /v1/runs: its attempts, with their output.
	b.click(`table.runs a[href^="/ui/runs/"]`, 200)
	b.text("h1", "Run")
	b.text(".badges", "succeeded")
	b.text("section.attempt", "first attempt")
	b.text("main pre", uiHostileOut)
	b.noScriptRan()
	b.screenshot("run")

	// A cron task's next fires, in its zone and in UTC.
	b.open(base+"/ui/t/acme/d/weekly-revenue-report", 200)
	b.text("table.fires tbody", "07:00 CST (-06:00)")
	b.text("table.fires tbody", "13:00 UTC")
	b.screenshot("definition-cron")

	// The workflow's steps.
	b.open(base+"/ui/t/acme/d/ui-flow", 200)
	b.text("table.runs", "2 steps")
	b.run(chromedp.Click("table.runs details summary", chromedp.ByQuery))
	b.text("table.steps", "fetch")
	b.text("table.steps", "tell")
	b.click(`table.runs a[href^="/ui/runs/"]`, 200)
	b.text("section.attempt table.steps", "fetch")

	// The tenant's runs, from its page, narrowed by the form.
	b.open(base+"/ui/t/acme", 200)
	b.click(`a[href="/ui/t/acme/runs"]`, 200)
	b.text("table.runs", "ui-echo")
	b.text("table.runs", "ui-flow")
	b.screenshot("runs")
	b.run(chromedp.SetValue(`input[name="code"]`, "ui-flow", chromedp.ByQuery))
	b.click(`form.filters button[type="submit"]`, 200)
	b.run(chromedp.Location(&loc))
	if !strings.Contains(loc, "code=ui-flow") || strings.Contains(loc, "status=") || strings.Contains(loc, "since=") {
		t.Errorf("the runs filter led to %s, want code=ui-flow alone", loc)
	}
	if s := b.get("table.runs"); !strings.Contains(s, "ui-flow") || strings.Contains(s, "ui-echo") {
		t.Errorf("code=ui-flow lists:\n%s", s)
	}
	b.run(chromedp.SetValue(`select[name="status"]`, "failed", chromedp.ByQuery))
	b.click(`form.filters button[type="submit"]`, 200)
	b.text("main", "No run matches")

	// A filter, through the form.
	b.open(base+"/ui/t/acme", 200)
	b.run(chromedp.SetValue(`select[name="kind"]`, "Workflow", chromedp.ByQuery))
	b.click(`form.filters button[type="submit"]`, 200)
	b.run(chromedp.Location(&loc))
	if !strings.Contains(loc, "kind=Workflow") || strings.Contains(loc, "type=") {
		t.Errorf("the filter led to %s, want kind=Workflow alone", loc)
	}
	b.text("table.defs", "ui-flow")
	if s := b.get("table.defs"); strings.Contains(s, "ui-echo") || strings.Contains(s, "weekly-revenue-report") {
		t.Errorf("kind=Workflow lists tasks:\n%s", s)
	}
	// Filters the API has since learnt: the type and the trigger.
	b.open(base+"/ui/t/acme", 200)
	b.run(chromedp.SetValue(`select[name="type"]`, "python_script", chromedp.ByQuery))
	b.click(`form.filters button[type="submit"]`, 200)
	if s := b.get("table.defs"); !strings.Contains(s, "snapshot-cleanup-plan") || strings.Contains(s, "ui-echo") || strings.Contains(s, "weekly-revenue-report") {
		t.Errorf("type=python_script lists:\n%s", s)
	}
	b.open(base+"/ui/t/acme?trigger_type=event&type=", 200)
	if s := b.get("table.defs"); !strings.Contains(s, "ui-echo") || !strings.Contains(s, "purchase-approval") || strings.Contains(s, "weekly-revenue-report") {
		t.Errorf("trigger_type=event lists:\n%s", s)
	}
	// A value the API refuses: its message, status 400.
	b.open(base+"/ui/t/acme?type=python", 400)
	b.text(".notice.bad", "type: must be one of")

	// The search box, from the keyboard: "/" focuses it.
	b.open(base+"/ui/t/acme", 200)
	b.run(chromedp.KeyEvent("/"), chromedp.KeyEvent("ui-e"))
	var focused string
	b.run(chromedp.Evaluate(`document.activeElement.name + "=" + document.activeElement.value`, &focused))
	if !strings.HasPrefix(focused, "q=") || !strings.HasSuffix(focused, "ui-e") {
		t.Errorf("after typing /ui-e the focus is on %q, want the search box", focused)
	}
	b.run(chromedp.SetValue(`input[name="q"]`, "ui-e", chromedp.ByQuery))
	b.click(`form.filters button[type="submit"]`, 200)
	b.text("table.defs", "ui-echo")

	// The validation errors, with path:line:col.
	b.open(base+"/ui/t/acme/errors", 200)
	b.text("ol.problems", "acme/broken.yaml:")

	// The browser enforces the policy: an inline script added to the page
	// does not run.
	var inline any
	b.run(chromedp.Evaluate(`(() => { const s = document.createElement("script"); s.textContent = "window.inlineRan = 1"; document.head.appendChild(s); return window.inlineRan === undefined })()`, &inline))
	if inline != true {
		t.Errorf("an inline script ran despite the Content-Security-Policy")
	}

	// On a phone.
	b.run(chromedp.EmulateViewport(390, 844))
	b.open(base+"/ui/t/acme/d/ui-echo", 200)
	b.screenshot("definition-phone")
	b.run(chromedp.EmulateViewport(1280, 900))

	// A tenant's token sees its tenant only.
	b.click(`header form button`, 200)
	b.signIn("acme-ui-token")
	if s := b.get("main"); strings.Contains(s, "globex") {
		t.Errorf("acme's overview mentions globex:\n%s", s)
	}
	b.open(base+"/ui/t/globex", 403)
	b.text("h1", "Forbidden")
	b.open(base+"/ui/t/globex/d/crm-sync", 403)
	b.screenshot("forbidden")
	// Another tenant's uuid and run id are the API's 404, as for none.
	b.open(base+"/ui/d/"+crm.Definition.UUID, 404)
	b.text("h1", "Not Found")
	b.open(base+"/ui/runs/"+globexRun, 404)
	b.open(base+"/ui/t/globex/runs", 403)
	if s := b.get("main"); strings.Contains(s, "crm-sync") || strings.Contains(s, "welcome") {
		t.Errorf("acme's token sees globex's runs:\n%s", s)
	}
	b.open(base+"/ui/t/acme/runs", 200)
	if s := b.get("main"); strings.Contains(s, globexRun) {
		t.Errorf("acme's runs page lists globex's run")
	}

	stopDaemon(t, cmd, exited, 15*time.Second)
	t.Logf("screenshots in %s", shots[0])
}

// browser is one headless Chromium tab of a test.
type browser struct {
	t     *testing.T
	ctx   context.Context
	shots []string // the directories screenshots go to
}

func (b *browser) run(actions ...chromedp.Action) {
	b.t.Helper()
	if err := chromedp.Run(b.ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

// open navigates to url and checks the document's status.
func (b *browser) open(url string, status int64) *network.Response {
	b.t.Helper()
	return b.navigate(url, status, chromedp.Navigate(url))
}

// click clicks the element sel selects and checks the status of the page
// it leads to.
func (b *browser) click(sel string, status int64) *network.Response {
	b.t.Helper()
	return b.navigate(sel, status, chromedp.Click(sel, chromedp.ByQuery, chromedp.NodeVisible))
}

func (b *browser) navigate(what string, status int64, action chromedp.Action) *network.Response {
	b.t.Helper()
	start := time.Now()
	resp, err := chromedp.RunResponse(b.ctx, action)
	b.t.Logf("%s: %v", what, time.Since(start))
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	if resp.Status != status {
		b.t.Fatalf("%s: %s answered %d, want %d\n%s", what, resp.URL, resp.Status, status, b.get("main"))
	}
	return resp
}

// signIn fills the sign-in form and sends it.
func (b *browser) signIn(token string) {
	b.t.Helper()
	b.run(chromedp.WaitVisible("#token", chromedp.ByQuery), chromedp.SendKeys("#token", token, chromedp.ByQuery))
	b.click(`form.login button[type="submit"]`, 200)
}

// get is the text of the first element sel selects.
func (b *browser) get(sel string) string {
	b.t.Helper()
	var s string
	b.run(chromedp.Text(sel, &s, chromedp.ByQuery))
	return s
}

// text checks that the first element sel selects shows want.
func (b *browser) text(sel, want string) {
	b.t.Helper()
	if s := b.get(sel); !strings.Contains(s, want) {
		b.t.Errorf("%s shows %q, want it to contain %q", sel, s, want)
	}
}

// noScriptRan checks that no script of the hostile text ran.
func (b *browser) noScriptRan() {
	b.t.Helper()
	var clean bool
	b.run(chromedp.Evaluate(`window.pwned === undefined && document.querySelector("main img, main b, main script") === null`, &clean))
	if !clean {
		b.t.Errorf("the hostile text became markup or ran as script")
	}
}

// screenshot saves the viewport as name.png in the screenshot
// directories.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	var png []byte
	b.run(chromedp.CaptureScreenshot(&png))
	for _, dir := range b.shots {
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
}
