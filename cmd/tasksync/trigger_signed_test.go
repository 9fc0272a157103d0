package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/inngest"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// TestTriggerSigned (tenant initech: the dev server keeps the apps of the
// other tests' stopped daemons, whose functions would match acme's
// events too): tasksync's manual run event carries a MAC under a
// key only the daemon and `tasksync trigger` hold. A hand-crafted event
// with the applied version (computable from the YAML, shown by the status
// API) runs nothing, and its refusal names no version; the event
// `trigger --print-event` prints, posted as curl would, runs. --wait
// prints the tenant's output escaped: no C1 control or bidi override
// reaches the terminal.
func TestTriggerSigned(t *testing.T) {
	var nightly, loud atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/loud":
			loud.Add(1)
			fmt.Fprint(w, "{\"msg\": \"a\u009b2Jb\u202ec\x1b\"}")
		default:
			nightly.Add(1)
			fmt.Fprint(w, `{"ok": true}`)
		}
	}))
	defer api.Close()

	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "tasks.d")
	for code, path := range map[string]string{"nightly": "/nightly", "loud": "/loud"} {
		deftest.WriteFile(t, filepath.Join(dir, "initech", code+".yaml"), deftest.Task{Code: code, Trigger: "{cron: '0 3 1 1 *'}",
			Spec: []string{"retries: 0"}, Config: fmt.Sprintf(`{url: "%s%s"}`, api.URL, path)}.String())
	}
	prefix := fmt.Sprintf("s%d", time.Now().UnixNano()%1e6)
	dbURL := pg.NewDatabase(t)
	base, _, _, _ := startDaemon(t, bin, []string{"DATABASE_URL=" + dbURL, "TASKSYNC_DIR=" + dir, "INNGEST_DEV=" + dev.URL,
		"TASKSYNC_APP_PREFIX=" + prefix, "TASKSYNC_ALLOW_CIDRS=127.0.0.1/32"}, "2s")
	waittest.For(t, "the app in Inngest", 30*time.Second, func() bool { return len(appCrons(t, prefix+"-initech")) == 2 })
	env := map[string]string{"DATABASE_URL": dbURL, "INNGEST_DEV": dev.URL}

	var detail struct {
		Definition struct {
			Hash string `json:"spec_hash"`
		} `json:"definition"`
	}
	_, body := get(base + "/v1/tenants/initech/definitions/nightly")
	if err := json.Unmarshal([]byte(body), &detail); err != nil || detail.Definition.Hash == "" {
		t.Fatalf("nightly's detail: %v\n%s", err, body)
	}
	hash := detail.Definition.Hash

	// The attack: an event-key holder posts tasksync/run for initech's
	// nightly with its (public) hash and data of their own.
	sender, err := inngest.NewSender(inngest.Options{DevURL: dev.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ev, err := inngest.ManualEvent(nil, "initech", "nightly", hash, map[string]any{"customer_id": "evil"})
	if err != nil {
		t.Fatal(err)
	}
	id, err := sender.Send(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	run, err := sender.FollowRun(wctx, id, 200*time.Millisecond)
	cancel()
	if err != nil || run.Succeeded() || !strings.Contains(string(run.Output), "manual run refused: not signed by tasksync") {
		t.Errorf("a forged manual event with the applied hash: run %+v, err %v; want it refused as not signed", run, err)
	}
	if strings.Contains(string(run.Output), hash[:12]) {
		t.Errorf("the refusal shows the applied version: %s", run.Output)
	}
	if n := nightly.Load(); n != 0 || len(manualRuns(t, dbURL, "initech", "nightly")) != 0 {
		t.Errorf("the forged event ran nightly (%d calls)", n)
	}
	// A forged MAC does no better.
	ev.Data["nonce"] = fmt.Sprintf("%d-00", time.Now().UnixMilli())
	ev.Data["mac"] = strings.Repeat("00", 32)
	if _, err := sender.Send(ctx, ev); err != nil {
		t.Fatal(err)
	}

	// The operator's way: the signed event, posted as with curl.
	out, errOut, code := runCmd(t, env, "trigger", "--print-event", "initech", "nightly")
	if code != 0 || !strings.Contains(out, `"mac":`) || strings.Contains(out, "sent") {
		t.Fatalf("trigger --print-event: exit %d\n%s%s", code, out, errOut)
	}
	res, err := http.Post(dev.URL+"/e/test-key", "application/json", strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	waittest.For(t, "the printed event's run", 30*time.Second, func() bool {
		got := manualRuns(t, dbURL, "initech", "nightly")
		return len(got) == 1 && got[0] == "manual:succeeded"
	})

	// --wait: the tenant's output reaches the terminal escaped.
	out, errOut, code = runCmd(t, env, "trigger", "--wait", "--timeout", "60s", "initech", "loud")
	if code != 0 || loud.Load() != 1 {
		t.Fatalf("trigger initech loud --wait: exit %d\n%s%s", code, out, errOut)
	}
	for _, bad := range []string{"\u009b", "\u202e", "\x1b"} {
		if strings.Contains(out, bad) {
			t.Errorf("trigger --wait printed %q raw:\n%q", bad, out)
		}
	}
	if !strings.Contains(out, `\u202e`) {
		t.Errorf("trigger --wait's output lacks the escaped override:\n%q", out)
	}
	// The run after the forged-MAC event has ended: that one started none.
	if n := nightly.Load(); n != 1 {
		t.Errorf("nightly ran %d times, want once (the printed event's)", n)
	}
}
