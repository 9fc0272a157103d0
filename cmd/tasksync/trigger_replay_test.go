package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/inngest"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// TestTriggerReplay (tenant umbrella, for the reason TestTriggerSigned
// gives): a signed manual event, as `trigger --print-event` prints it,
// starts one run however often it is posted, of a task or a workflow;
// the replays are refused as such, not as failures of the definition.
// The same event with a field added to its data (the MAC unchanged) is
// refused as not signed and runs nothing. `trigger --data` still runs
// with its data, and a failing manual run is still retried.
func TestTriggerReplay(t *testing.T) {
	var mu sync.Mutex
	calls := map[string][]string{}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls[r.URL.Path] = append(calls[r.URL.Path], r.URL.RawQuery)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
		}
		fmt.Fprint(w, `{"ok": true}`)
	}))
	defer api.Close()
	got := func(path string) []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), calls[path]...)
	}

	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "tasks.d")
	deftest.WriteFile(t, filepath.Join(dir, "umbrella", "nightly.yaml"), deftest.Task{Code: "nightly", Trigger: "{cron: '0 3 1 1 *'}",
		Spec: []string{"retries: 0"}, Config: fmt.Sprintf(`{url: "%s/nightly?customer={{ event.data.customer_id }}"}`, api.URL)}.String())
	deftest.WriteFile(t, filepath.Join(dir, "umbrella", "flaky.yaml"), deftest.Task{Code: "flaky", Trigger: "{cron: '0 3 1 1 *'}",
		Spec: []string{"retries: 1", "retry_delay: 1s"}, Config: fmt.Sprintf(`{url: "%s/fail"}`, api.URL)}.String())
	deftest.WriteFile(t, filepath.Join(dir, "umbrella", "wf.yaml"), fmt.Sprintf(`apiVersion: tasksync/v1
kind: Workflow
metadata: {code: wf}
spec:
  trigger: {cron: "0 3 1 1 *"}
  retries: 0
  steps:
    - id: call
      api_call: {url: "%s/wf"}
`, api.URL))
	prefix := fmt.Sprintf("r%d", time.Now().UnixNano()%1e6)
	dbURL := pg.NewDatabase(t)
	startDaemon(t, bin, []string{"DATABASE_URL=" + dbURL, "TASKSYNC_DIR=" + dir, "INNGEST_DEV=" + dev.URL,
		"TASKSYNC_APP_PREFIX=" + prefix, "TASKSYNC_ALLOW_CIDRS=127.0.0.1/32"}, "2s")
	waittest.For(t, "the app in Inngest", 30*time.Second, func() bool { return len(appCrons(t, prefix+"-umbrella")) == 3 })
	env := map[string]string{"DATABASE_URL": dbURL, "INNGEST_DEV": dev.URL}
	sender, err := inngest.NewSender(inngest.Options{DevURL: dev.URL})
	if err != nil {
		t.Fatal(err)
	}

	printed := func(code string, args ...string) map[string]any {
		t.Helper()
		out, errOut, exit := runCmd(t, env, append(append([]string{"trigger", "--print-event"}, args...), "umbrella", code)...)
		var ev map[string]any
		if exit != 0 || json.Unmarshal([]byte(out), &ev) != nil {
			t.Fatalf("trigger --print-event umbrella %s: exit %d\n%s%s", code, exit, out, errOut)
		}
		return ev
	}
	// post posts ev as curl would and returns the id Inngest gave it.
	post := func(ev map[string]any) string {
		t.Helper()
		b, _ := json.Marshal(ev)
		res, err := http.Post(dev.URL+"/e/test-key", "application/json", strings.NewReader(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		var ids struct {
			IDs []string `json:"ids"`
		}
		if err := json.Unmarshal(body, &ids); err != nil || len(ids.IDs) != 1 {
			t.Fatalf("post the event: %d %s", res.StatusCode, body)
		}
		return ids.IDs[0]
	}
	// ended follows the run event id started to its end.
	ended := func(id string) inngest.EventRun {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		run, err := sender.FollowRun(ctx, id, 200*time.Millisecond)
		if err != nil {
			t.Fatalf("the run of event %s: %+v, %v", id, run, err)
		}
		return run
	}

	// The attack: the printed event posted four times.
	ev := printed("nightly", "--data", `{"customer_id": "c-1", "n": 1.50, "big": 12345678901234567890}`)
	var ids []string
	for range 4 {
		ids = append(ids, post(ev))
	}
	ok, replays := 0, 0
	for _, id := range ids {
		run := ended(id)
		switch {
		case run.Succeeded():
			ok++
		case strings.Contains(string(run.Output), "manual run refused") && strings.Contains(string(run.Output), "this manual run's event already started a run"):
			replays++
		default:
			t.Errorf("event %s: run %s %s; want it run or refused as a replay", id, run.Status, run.Output)
		}
	}
	if ok != 1 || replays != 3 {
		t.Errorf("the same signed event posted 4 times: %d runs, %d refused as replays; want 1 and 3", ok, replays)
	}
	if runs, n := manualRuns(t, dbURL, "umbrella", "nightly"), got("/nightly"); len(runs) != 1 || len(n) != 1 || n[0] != "customer=c-1" {
		t.Errorf("after 4 posts of one event: records %v, calls %v; want one run, with the event's data", runs, n)
	}

	// The attack: a fresh signed event with a field added to its data.
	ev = printed("nightly", "--data", `{"customer_id": "c-1"}`)
	forged := map[string]any{}
	for k, v := range ev {
		forged[k] = v
	}
	data := map[string]any{}
	for k, v := range ev["data"].(map[string]any) {
		data[k] = v
	}
	data["injected"] = "attacker"
	forged["data"] = data
	if run := ended(post(forged)); run.Succeeded() || !strings.Contains(string(run.Output), "manual run refused: not signed by tasksync") {
		t.Errorf("the signed event with data added: run %s %s; want it refused as not signed", run.Status, run.Output)
	}
	// A changed value is no better.
	data["customer_id"] = "c-evil"
	delete(data, "injected")
	if run := ended(post(forged)); run.Succeeded() || !strings.Contains(string(run.Output), "manual run refused: not signed by tasksync") {
		t.Errorf("the signed event with data changed: run %s %s; want it refused as not signed", run.Status, run.Output)
	}
	if runs, n := manualRuns(t, dbURL, "umbrella", "nightly"), got("/nightly"); len(runs) != 1 || len(n) != 1 {
		t.Errorf("the changed events ran nightly: records %v, calls %v", runs, n)
	}
	// The event as signed still runs: the refused ones used nothing.
	if run := ended(post(ev)); !run.Succeeded() {
		t.Errorf("the signed event, unchanged, after its changed copies: %s %s", run.Status, run.Output)
	}

	// trigger --data runs with its data.
	out, errOut, exit := runCmd(t, env, "trigger", "--wait", "--timeout", "60s", "--data", `{"customer_id": "c-2"}`, "umbrella", "nightly")
	if n := got("/nightly"); exit != 0 || len(n) != 3 || n[2] != "customer=c-2" {
		t.Errorf("trigger --data: exit %d, calls %v\n%s%s", exit, n, out, errOut)
	}

	// A failing manual run is retried: one run, two attempts.
	out, errOut, exit = runCmd(t, env, "trigger", "--wait", "--timeout", "60s", "umbrella", "flaky")
	if runs := manualRuns(t, dbURL, "umbrella", "flaky"); exit != 1 || len(got("/fail")) != 2 || len(runs) != 2 {
		t.Errorf("trigger flaky (retries: 1): exit %d, %d calls, records %v; want 1, 2 calls, 2 attempts\n%s%s", exit, len(got("/fail")), runs, out, errOut)
	}

	// A workflow's event, posted three times, runs once.
	ev = printed("wf")
	ids = ids[:0]
	for range 3 {
		ids = append(ids, post(ev))
	}
	ok = 0
	for _, id := range ids {
		if ended(id).Succeeded() {
			ok++
		}
	}
	if n := got("/wf"); ok != 1 || len(n) != 1 {
		t.Errorf("a workflow's event posted 3 times: %d runs succeeded, %d calls; want 1", ok, len(n))
	}
}
