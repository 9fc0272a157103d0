package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/loopback"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// TestDaemonKeepsEncodedSecretsEverywhere is the review's redaction
// finding end to end, through the built binary: a secret holding
// `+ / = space` sent in a query to a closed port (a url.Error quoting
// `?token=acme-s3cr3t%2B%2F%3Dtok+en`), echoed by a server in a 401 as
// the raw query and header, and printed by a python_script in its
// encodings and its result. No form of the value may reach any of the
// places the review found it: the daemon's log, Postgres, the status
// API and the output Inngest stores for each run.
func TestDaemonKeepsEncodedSecretsEverywhere(t *testing.T) {
	const secret = "acme-s3cr3t+/=tok en"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := r.URL.Query().Get("token")
		j, _ := json.Marshal(tok)
		w.Header().Set("X-Echo", r.URL.RawQuery)
		http.Error(w, fmt.Sprintf("query %s auth %s json %s b64 %s", r.URL.RawQuery, r.Header.Get("Authorization"), j,
			base64.StdEncoding.EncodeToString([]byte(tok))), http.StatusUnauthorized)
	}))
	defer echo.Close()
	closed, err := loopback.FreeAddr() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "tasks.d")
	deftest.WriteFile(t, filepath.Join(dir, "acme", "leak.yaml"), fmt.Sprintf(`apiVersion: tasksync/v1
kind: ScheduledTask
metadata: {code: closed}
spec:
  trigger: {event: leak/closed}
  type: api_call
  config: {url: "http://%s/x", query: {token: "${secret:TOKEN}"}}
  retries: 0
---
apiVersion: tasksync/v1
kind: ScheduledTask
metadata: {code: echo}
spec:
  trigger: {event: leak/echo}
  type: api_call
  config: {url: "%s/x", headers: {Authorization: "Bearer ${secret:TOKEN}"}, query: {token: "${secret:TOKEN}"}}
  retries: 0
---
apiVersion: tasksync/v1
kind: ScheduledTask
metadata: {code: script}
spec:
  trigger: {event: leak/script}
  type: python_script
  config:
    script: |
      import base64, json, os, sys, urllib.parse
      tok = os.environ["TOKEN"]
      print("raw", tok, json.dumps(tok), urllib.parse.quote(tok), urllib.parse.quote_plus(tok))
      print("b64", base64.b64encode(tok.encode()).decode(), tok.encode().hex(), file=sys.stderr)
      print(json.dumps({"raw": tok, "arg": sys.argv[1], "q": urllib.parse.quote_plus(tok)}))
    args: ["${secret:TOKEN}"]
    env: {TOKEN: "${secret:TOKEN}"}
  retries: 0
`, closed, echo.URL))
	secrets := filepath.Join(t.TempDir(), "secrets")
	deftest.WriteFile(t, filepath.Join(secrets, "acme", "TOKEN"), secret+"\n")
	prefix := fmt.Sprintf("r%d", time.Now().UnixNano()%1e6)
	dbURL := pg.NewDatabase(t)
	base, cmd, logs, exited := startDaemon(t, bin, []string{"DATABASE_URL=" + dbURL, "TASKSYNC_DIR=" + dir, "INNGEST_DEV=" + dev.URL,
		"TASKSYNC_APP_PREFIX=" + prefix, "TASKSYNC_ALLOW_CIDRS=127.0.0.1/32", "TASKSYNC_SECRETS_DIR=" + secrets}, "3s")
	app := prefix + "-acme"
	waittest.For(t, "the app in Inngest", 30*time.Second, func() bool { return len(appCrons(t, app)) == 3 })

	var ids []string
	for _, name := range []string{"leak/closed", "leak/echo", "leak/script"} {
		ids = append(ids, sendEventID(t, name, map[string]any{"tenant_id": "acme"}))
	}
	// Inngest's view of each event's run, once every run has ended there.
	inngestRuns := func() (string, bool) {
		var all strings.Builder
		for _, id := range ids {
			code, body := get(dev.URL + "/v1/events/" + id + "/runs")
			var in struct {
				Data []struct {
					Status string `json:"status"`
				} `json:"data"`
			}
			if code != 200 || json.Unmarshal([]byte(body), &in) != nil || len(in.Data) != 1 ||
				(in.Data[0].Status != "Completed" && in.Data[0].Status != "Failed") {
				return "", false
			}
			all.WriteString(body + "\n")
		}
		return all.String(), true
	}
	var runs string
	waittest.For(t, "the three runs to end in Inngest", 60*time.Second, func() bool {
		var ok bool
		runs, ok = inngestRuns()
		return ok
	})
	waittest.For(t, "the three runs to be recorded", 30*time.Second, func() bool {
		db := dumpDatabase(t, dbURL)
		return strings.Count(db, "unexpected status 401") >= 1 && strings.Contains(db, "connection refused") && strings.Contains(db, "succeeded")
	})
	waittest.For(t, "the runs to be logged", 10*time.Second, func() bool {
		return strings.Contains(logs.String(), `"code":"closed"`) && strings.Contains(logs.String(), `"code":"script"`)
	})
	_, api := get(base + "/v1/tenants/acme/runs")
	places := map[string]string{"Inngest's run output": runs, "Postgres": dumpDatabase(t, dbURL), "the log": logs.String(), "the status API": api}
	if !strings.Contains(runs, "[redacted]") {
		t.Errorf("Inngest's run output holds no redacted value; the runs did not carry the secret as meant:\n%s", runs)
	}
	stopDaemon(t, cmd, exited, 15*time.Second)

	j, _ := json.Marshal(secret)
	forms := map[string]string{
		"raw":                 secret,
		"query-escaped":       url.QueryEscape(secret), // acme-s3cr3t%2B%2F%3Dtok+en
		"path-escaped":        url.PathEscape(secret),
		"%20-escaped":         strings.ReplaceAll(url.QueryEscape(secret), "+", "%20"),
		"JSON-escaped":        string(j[1 : len(j)-1]),
		"JSON with \\/":       strings.ReplaceAll(secret, "/", `\/`),
		"base64":              base64.StdEncoding.EncodeToString([]byte(secret)),
		"base64 (URL)":        base64.RawURLEncoding.EncodeToString([]byte(secret)),
		"hex":                 hex.EncodeToString([]byte(secret)),
		"query-escaped twice": url.QueryEscape(url.QueryEscape(secret)),
	}
	for place, text := range places {
		for name, form := range forms {
			if strings.Contains(text, form) {
				t.Errorf("%s holds the secret %s (%q)", place, name, form)
			}
		}
	}
}

// sendEventID sends an event to the dev server and returns its id.
func sendEventID(t *testing.T, name string, data map[string]any) string {
	t.Helper()
	body, err := json.Marshal(map[string]any{"name": name, "data": data})
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Post(dev.URL+"/e/key", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		IDs []string `json:"ids"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || len(out.IDs) != 1 {
		t.Fatalf("send %s: %v %v", name, out.IDs, err)
	}
	return out.IDs[0]
}
