package webui_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/statusapi"
	"github.com/riveredge/tasksync/reconciler/store"
	"github.com/riveredge/tasksync/reconciler/store/storetest"
	"github.com/riveredge/tasksync/reconciler/webui"
)

var pg *storetest.Cluster

func TestMain(m *testing.M) { os.Exit(storetest.Main(m, &pg)) }

// The hostile text a tenant may write in a definition's name and
// description, and in what its endpoint answers (a run's error).
const (
	hostileName = `<script>window.pwned=1</script>`
	hostileDesc = `<img src=x onerror="window.pwned=2"><b>bold</b> & "quoted" </textarea>`
	hostileErr  = `<svg onload=alert(3)>`
	literalKey  = "literal-key-123"
)

// fixture applies a tree with a hostile definition, a cron task with runs,
// a workflow with a run, a broken file and another tenant, and serves the
// status API with the page over it (the daemon's wiring: /v1/ and /ui/).
func fixture(t *testing.T, tokens string) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	st, _ := pg.NewStore(t, store.Options{})
	files := fstest.MapFS{
		"acme/hostile.yaml": {Data: []byte("apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata:\n  code: hostile\n  name: '" + hostileName + "'\n  description: '" + hostileDesc + "'\n" +
			"spec:\n  trigger: {event: app/x}\n  type: api_call\n  config: {url: 'https://a.example.com', headers: {X-Api-Key: " + literalKey + "}}\n")},
		"acme/cron.yaml":   {Data: []byte("apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: nightly, name: Nightly report}\nspec:\n  trigger: {cron: '0 2 * * *', timezone: Asia/Shanghai}\n  type: api_call\n  config: {url: 'https://a.example.com'}\n")},
		"acme/wf.yaml":     {Data: []byte("apiVersion: tasksync/v1\nkind: Workflow\nmetadata: {code: approval}\nspec:\n  trigger: {event: x/y}\n  steps: [{id: wait, sleep: 1h}]\n")},
		"acme/broken.yaml": {Data: []byte("apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: broken}\nspec: {trigger: {interval: 30s}}\n")},
		"globex/g.yaml":    {Data: []byte("apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: gsync, name: Globex sync}\nspec:\n  trigger: {interval: 7m}\n  type: api_call\n  config: {url: 'https://a.example.com'}\n")},
	}
	storetest.Apply(t, st, files)
	if err := st.RecordReconcile(ctx, time.Now().Add(-time.Second), time.Now(), "invalid", reconciler.Counts{Created: 4, Errors: 1}, "1 tenant has problems"); err != nil {
		t.Fatal(err)
	}
	ref := storetest.Current(t, st, "acme", "nightly")
	for i := range 3 {
		end := reconciler.AttemptEnd{Status: reconciler.RunFailed, Took: 1500 * time.Millisecond, Error: "unexpected status 500: " + hostileErr, Final: i == 2}
		if i == 2 {
			end = reconciler.AttemptEnd{Status: reconciler.RunSucceeded, Took: time.Second, Output: []byte(`{"rows": 42, "note": "<b>done</b>"}`), Final: true}
		}
		storetest.Attempt(t, st, ref, reconciler.RunInput{RunID: fmt.Sprintf("run-%d", i), Attempt: i}, end)
	}
	// One Inngest run of two attempts: a failure, then its retry.
	for i, end := range []reconciler.AttemptEnd{{Status: reconciler.RunFailed, Took: 30 * time.Second, Error: "timeout"},
		{Status: reconciler.RunSucceeded, Took: time.Second, Output: []byte(`{"retried": true}`), Final: true}} {
		storetest.Attempt(t, st, ref, reconciler.RunInput{RunID: "retry-run", Attempt: i}, end)
	}
	storetest.Attempt(t, st, storetest.Current(t, st, "globex", "gsync"), reconciler.RunInput{RunID: "globex-run"},
		reconciler.AttemptEnd{Status: reconciler.RunFailed, Error: "Globex secret failure", Final: true})
	wf := storetest.Current(t, st, "acme", "approval")
	if _, err := st.RecordWorkflowRun(ctx, wf, reconciler.RunInput{RunID: "wf-run"}, reconciler.WorkflowAttempt{Status: reconciler.RunFailed, Error: "boom", FailedStep: "wait", Final: true,
		Steps: []reconciler.StepOutcome{{ID: "wait", Status: "failed", Error: "step <i>boom</i>"}}}); err != nil {
		t.Fatal(err)
	}
	opts := statusapi.Options{Reader: st, Leader: func() bool { return true }}
	if tokens != "" {
		opts.TokensFile = filepath.Join(t.TempDir(), "tokens")
		if err := os.WriteFile(opts.TokensFile, []byte(tokens), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	api := statusapi.NewHandler(opts)
	ui, err := webui.NewHandler(webui.Options{API: api, InngestUIURL: "http://127.0.0.1:8288"})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", api)
	mux.Handle(webui.Path, ui)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// client is a browser-like client: it keeps cookies and does not follow
// redirects.
func client(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func fetch(t *testing.T, c *http.Client, method, u string, body io.Reader, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

func page(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	res, body := fetch(t, c, http.MethodGet, u, nil, nil)
	return res.StatusCode, body
}

// checkPage gets path from base and checks that it answers 200 and shows
// every string of want and none of lack.
func checkPage(t *testing.T, c *http.Client, base, path string, want, lack []string) {
	t.Helper()
	code, body := page(t, c, base+path)
	if code != 200 {
		t.Errorf("GET %s = %d, want 200\n%s", path, code, body)
		return
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("GET %s lacks %q", path, w)
		}
	}
	for _, l := range lack {
		if strings.Contains(body, l) {
			t.Errorf("GET %s shows %q", path, l)
		}
	}
}

// signIn posts the sign-in form as the page itself would.
func signIn(t *testing.T, c *http.Client, base, token string) *http.Response {
	t.Helper()
	res, _ := fetch(t, c, http.MethodPost, base+"/ui/login", strings.NewReader(url.Values{"token": {token}}.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": base, "Sec-Fetch-Site": "same-origin"})
	return res
}

func TestPagesShowTheAppliedState(t *testing.T) {
	srv := fixture(t, "")
	c := client(t)
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/ui/", []string{"Overview", "leader", "invalid", "1 tenant has problems", `href="/ui/t/acme"`, `href="/ui/t/acme/errors"`, "globex"}},
		{"/ui/t/acme", []string{"Tenant", "nightly", "Nightly report", "cron 0 2 * * * (Asia/Shanghai)", "approval", "Workflow", `href="/ui/t/acme/d/nightly"`, "on event app/x"}},
		{"/ui/t/acme?kind=Workflow", []string{"approval"}},
		{"/ui/t/acme/errors", []string{"acme/broken.yaml:", "Validation errors"}},
		{"/ui/t/acme/d/nightly", []string{"acme/cron.yaml:1", "Asia/Shanghai", "UTC", "Next fires", "succeeded", "failed", "&#34;rows&#34;: 42",
			`href="http://127.0.0.1:8288/functions/config?slug=`, `href="http://127.0.0.1:8288/run?runID=run-2"`, "1.5 s"}},
		{"/ui/t/acme/d/approval", []string{"1 steps", "step wait: boom", "step &lt;i&gt;boom&lt;/i&gt;"}},
	} {
		checkPage(t, c, srv.URL, tc.path, tc.want, nil)
	}
	if _, body := page(t, c, srv.URL+"/ui/t/acme?kind=Workflow"); strings.Contains(body, "nightly") {
		t.Errorf("kind=Workflow lists the cron task nightly")
	}
	// A filter the API refuses: its message, status 400.
	if code, body := page(t, c, srv.URL+"/ui/t/acme?active=maybe"); code != 400 || !strings.Contains(body, "active: must be true or false") {
		t.Errorf("active=maybe = %d, want 400 with the API's message", code)
	}
	// The runs page through the run links.
	_, body := page(t, c, srv.URL+"/ui/t/acme/d/nightly")
	i := strings.Index(body, `href="/ui/runs/`)
	if i < 0 {
		t.Fatalf("no run link on the definition page")
	}
	link := body[i+len(`href="`):]
	link = link[:strings.IndexByte(link, '"')]
	if code, run := page(t, c, srv.URL+link); code != 200 || !strings.Contains(run, "first attempt") {
		t.Errorf("GET %s = %d\n%s", link, code, run)
	}
	for _, p := range []string{"/ui/t/nope", "/ui/t/acme/d/nope", "/ui/nothing", "/ui/t/acme/d/nightly/runs/1", "/ui/runs/nope", "/ui/t/nope/runs"} {
		if code, _ := page(t, c, srv.URL+p); code != 404 {
			t.Errorf("GET %s = %d, want 404", p, code)
		}
	}
}

// TestHostileTextRendersAsText: a name, description, error and output
// holding HTML are shown as text; no markup of theirs reaches the page.
func TestHostileTextRendersAsText(t *testing.T) {
	srv := fixture(t, "")
	c := client(t)
	for _, p := range []string{"/ui/t/acme", "/ui/t/acme/d/hostile", "/ui/t/acme/d/nightly"} {
		code, body := page(t, c, srv.URL+p)
		if code != 200 {
			t.Fatalf("GET %s = %d", p, code)
		}
		for _, bad := range []string{"<script>window", "<img src=x", "<b>bold", "<svg onload", "<b>done", "</textarea>", literalKey} {
			if strings.Contains(body, bad) {
				t.Errorf("GET %s carries %q unescaped", p, bad)
			}
		}
	}
	_, body := page(t, c, srv.URL+"/ui/t/acme/d/hostile")
	for _, want := range []string{"&lt;script&gt;window.pwned=1&lt;/script&gt;", "&lt;img src=x onerror=&#34;window.pwned=2&#34;&gt;", "[redacted]"} {
		if !strings.Contains(body, want) {
			t.Errorf("the hostile definition's page lacks %q", want)
		}
	}
	if _, body := page(t, c, srv.URL+"/ui/t/acme/d/nightly"); !strings.Contains(body, "&lt;svg onload=alert(3)&gt;") {
		t.Errorf("the run's error is not shown escaped")
	}
}

func TestSecurityHeaders(t *testing.T) {
	srv := fixture(t, "")
	c := client(t)
	for _, p := range []string{"/ui/", "/ui/t/acme", "/ui/login", "/ui/nothing", "/ui/static/style.css", "/ui/static/app.js"} {
		res, _ := fetch(t, c, http.MethodGet, srv.URL+p, nil, nil)
		csp := res.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: Content-Security-Policy %q lacks %s", p, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("GET %s: Content-Security-Policy %q allows inline code", p, csp)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("X-Frame-Options") != "DENY" || res.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("GET %s: headers %v", p, res.Header)
		}
	}
	// No inline script, style or handler in any page, and nothing loaded
	// from elsewhere: the policy would block them.
	inline := regexp.MustCompile(`<script>|<style|\sstyle=|<[^>]+\son[a-z]+=`)
	loads := regexp.MustCompile(`(?:src|<link[^>]*href)="([^"]*)"`)
	for _, p := range []string{"/ui/", "/ui/t/acme", "/ui/t/acme/d/nightly", "/ui/t/acme/d/hostile", "/ui/login"} {
		_, body := page(t, c, srv.URL+p)
		if m := inline.FindString(body); m != "" {
			t.Errorf("GET %s has inline code: %q", p, m)
		}
		for _, m := range loads.FindAllStringSubmatch(body, -1) {
			if !strings.HasPrefix(m[1], "/ui/static/") {
				t.Errorf("GET %s loads %q", p, m[1])
			}
		}
	}
	// Read-only: no method but GET and HEAD, besides the two sign-in forms.
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPost} {
		if res, _ := fetch(t, c, m, srv.URL+"/ui/t/acme", nil, nil); res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s /ui/t/acme = %d, want 405", m, res.StatusCode)
		}
	}
}

// TestTokensScopeThePages: with a tokens file the page asks for a token,
// keeps it in a cookie only the page receives, and shows a tenant's
// token its tenant alone.
func TestTokensScopeThePages(t *testing.T) {
	srv := fixture(t, "root-token *\nacme-token acme\n")
	c := client(t)
	if code, body := page(t, c, srv.URL+"/ui/"); code != 401 || !strings.Contains(body, `action="/ui/login"`) {
		t.Fatalf("/ui/ without a token = %d, want 401 and the sign-in form\n%s", code, body)
	}
	if res := signIn(t, c, srv.URL, "wrong"); res.StatusCode != 401 || len(res.Cookies()) != 0 {
		t.Errorf("sign-in with an unknown token = %d %v, want 401 and no cookie", res.StatusCode, res.Cookies())
	}
	// A form posted from another site is refused, whatever its token.
	res, _ := fetch(t, c, http.MethodPost, srv.URL+"/ui/login", strings.NewReader("token=acme-token"),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
	if res.StatusCode != 403 || len(res.Cookies()) != 0 {
		t.Errorf("cross-site sign-in = %d %v, want 403 and no cookie", res.StatusCode, res.Cookies())
	}

	res = signIn(t, c, srv.URL, "acme-token")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/ui/" {
		t.Fatalf("sign-in = %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	set := res.Header.Get("Set-Cookie")
	for _, want := range []string{"Path=/ui", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(set, want) {
			t.Errorf("Set-Cookie %q lacks %s", set, want)
		}
	}
	if strings.Contains(set, "Secure") {
		t.Errorf("Set-Cookie %q is Secure on plain HTTP: the browser would drop it", set)
	}
	if strings.Contains(set, "acme-token") {
		t.Errorf("Set-Cookie %q carries the token as written, want it encoded", set)
	}
	code, body := page(t, c, srv.URL+"/ui/")
	if code != 200 || !strings.Contains(body, "/ui/t/acme") || strings.Contains(body, "globex") {
		t.Errorf("acme's overview = %d, want acme only\n%s", code, body)
	}
	if strings.Contains(body, "1 tenant has problems") {
		t.Errorf("acme's overview shows the whole tree's reconcile message")
	}
	for _, p := range []string{"/ui/t/globex", "/ui/t/globex/errors", "/ui/t/globex/d/gsync", "/ui/t/globex/runs"} {
		if code, body := page(t, c, srv.URL+p); code != 403 || strings.Contains(body, "Globex sync") {
			t.Errorf("acme's token on %s = %d, want 403 and nothing of globex", p, code)
		}
	}
	if code, _ := page(t, c, srv.URL+"/ui/t/acme/d/nightly"); code != 200 {
		t.Errorf("acme's token on its own definition = %d", code)
	}
	// Signing out forgets the token.
	res, _ = fetch(t, c, http.MethodPost, srv.URL+"/ui/logout", nil, map[string]string{"Origin": srv.URL, "Sec-Fetch-Site": "same-origin"})
	if res.StatusCode != http.StatusSeeOther {
		t.Errorf("sign-out = %d", res.StatusCode)
	}
	if code, _ := page(t, c, srv.URL+"/ui/t/acme"); code != 401 {
		t.Errorf("after sign-out = %d, want 401", code)
	}
	// Behind a TLS proxy the cookie is Secure.
	res, _ = fetch(t, client(t), http.MethodPost, srv.URL+"/ui/login", strings.NewReader("token=acme-token"),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-Proto": "https"})
	if set := res.Header.Get("Set-Cookie"); !strings.Contains(set, "; Secure") {
		t.Errorf("Set-Cookie behind a TLS proxy = %q, want Secure", set)
	}
	// A token for every tenant reads them all.
	signIn(t, c, srv.URL, "root-token")
	if code, body := page(t, c, srv.URL+"/ui/t/globex/d/gsync"); code != 200 || !strings.Contains(body, "Globex sync") {
		t.Errorf("the * token on globex = %d", code)
	}
}

func TestInngestUIURL(t *testing.T) {
	api := http.NotFoundHandler()
	for _, bad := range []string{"javascript:alert(1)", "ftp://x", "not a url", "http://"} {
		if _, err := webui.NewHandler(webui.Options{API: api, InngestUIURL: bad}); err == nil {
			t.Errorf("NewHandler(InngestUIURL %q) = nil error", bad)
		}
	}
	if _, err := webui.NewHandler(webui.Options{API: api, InngestUIURL: "https://app.inngest.com/env/production"}); err != nil {
		t.Error(err)
	}
}
