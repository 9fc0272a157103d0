package webui_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler/webui"
)

// detailAPI answers, as the status API does, three definitions: a UTC
// cron with a catch-up policy and missed fires, a zoned cron without
// either, and an event's; and runs, one a catch-up with its output.
func detailAPI() http.Handler {
	def := func(code, trigger, missed string) string {
		return `{"definition": {"code": "` + code + `", "name": "Job", "kind": "ScheduledTask", "type": "api_call", "active": true,
			"trigger_type": "cron", "source": "acme/j.yaml:2", "revision": 3, "sync_state": "synced", "uuid": "u-1", "tenant": "acme",
			"source_path": "acme/j.yaml", "source_line": 2, "spec": {"spec": {"trigger": ` + trigger + `}}, ` + missed + `},
			"next_fire_times": ["2026-11-29T13:05:00Z", "2026-11-29T13:10:00Z"], "last_run": null}`
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/tenants/acme/definitions/utc", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, def("utc", `{"cron": "*/5 * * * *", "catchup": "latest", "catchup_window": "6h"}`,
			`"missed_fires": 2, "last_missed_fire_at": "2026-11-29T12:55:00Z", "last_missed_fires": ["2026-11-29T12:55:00Z", "2026-11-29T12:50:00Z"]`))
	})
	mux.HandleFunc("/v1/tenants/acme/definitions/zoned", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, def("zoned", `{"cron": "*/5 * * * *", "timezone": "Asia/Shanghai"}`, `"missed_fires": 0, "last_missed_fires": []`))
	})
	mux.HandleFunc("/v1/tenants/acme/definitions/evt", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, def("evt", `{"event": "app/x"}`, `"missed_fires": 0, "last_missed_fires": []`))
	})
	runs := func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"runs": [{"id": 7, "inngest_run_id": "r7", "attempt": 0, "revision": 3, "status": "failed", "error": "boom",
			"tenant": "acme", "code": "utc", "scheduled_for": "2026-11-29T12:50:00Z", "started_at": "2026-11-29T12:58:01Z", "final": true,
			"catch_up": true, "output": {"rows": 1}},
			{"id": 6, "inngest_run_id": "r6", "attempt": 0, "revision": 3, "status": "succeeded", "tenant": "acme", "code": "utc",
			"started_at": "2026-11-29T12:45:01Z", "final": true, "catch_up": false}], "next_cursor": null}`)
	}
	for _, c := range []string{"utc", "zoned", "evt"} {
		mux.HandleFunc("/v1/tenants/acme/definitions/"+c+"/runs", runs)
	}
	return mux
}

// TestDefinitionPageLayout: the missed fires' instants are listed as
// times (none when there are none), not as a raw field; a UTC trigger's
// next fires are one column; the trigger shows its catch-up policy; each
// run's output toggle has a column of its own; a run shows the fire it
// was for and whether it caught a missed one up.
func TestDefinitionPageLayout(t *testing.T) {
	now := time.Date(2026, 11, 29, 13, 0, 0, 0, time.UTC)
	ui, err := webui.NewHandler(webui.Options{API: detailAPI(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ui)
	t.Cleanup(srv.Close)
	c := client(t)
	get := func(code string) string {
		t.Helper()
		status, body := page(t, c, srv.URL+"/ui/t/acme/d/"+code)
		if status != 200 {
			t.Fatalf("GET %s = %d\n%s", code, status, body)
		}
		return body
	}
	columns := regexp.MustCompile(`<table class="fires">\s*<thead><tr>(.*?)</tr></thead>`)
	cols := func(body string) int { return strings.Count(columns.FindStringSubmatch(body)[1], "<th") }
	missedList := regexp.MustCompile(`(?s)<dt>Recent missed fires</dt><dd>(.*?)</dd>`)

	utc := get("utc")
	if strings.Contains(utc, "last_missed_fires") {
		t.Errorf("last_missed_fires is listed as a raw field")
	}
	m := missedList.FindStringSubmatch(utc)
	if m == nil || !strings.Contains(m[1], "2026-11-29 12:55:00 UTC") || !strings.Contains(m[1], "2026-11-29 12:50:00 UTC") || !strings.Contains(m[1], "5 min ago") {
		t.Errorf("the missed fires are not listed as times: %v", m)
	}
	if n := cols(utc); n != 2 {
		t.Errorf("a UTC trigger's next fires have %d columns, want 2 (UTC, when)", n)
	}
	if !strings.Contains(utc, "catch-up latest, window 6h") {
		t.Errorf("the trigger does not show its catch-up policy")
	}
	for _, want := range []string{"catch-up of a missed fire", "for the fire of"} {
		if !strings.Contains(utc, want) {
			t.Errorf("the runs lack %q", want)
		}
	}
	if strings.Contains(utc, "<dt>catch_up</dt>") {
		t.Errorf("catch_up is listed as a raw field")
	}
	// Every row of the runs has as many cells as the header columns, and
	// the output toggle is not in the error's.
	table := regexp.MustCompile(`(?s)<table class="runs">(.*?)</table>`).FindStringSubmatch(utc)
	if table == nil {
		t.Fatal("no runs table")
	}
	head := regexp.MustCompile(`(?s)<thead>(.*?)</thead>`).FindStringSubmatch(table[1])[1]
	want := strings.Count(head, "<th")
	for _, row := range regexp.MustCompile(`(?s)<tr id="run-\d+">(.*?)</tr>`).FindAllStringSubmatch(table[1], -1) {
		if n := strings.Count(row[1], "<td") + strings.Count(row[1], "<th"); n != want {
			t.Errorf("a run row has %d cells, the header %d", n, want)
		}
	}
	if !strings.Contains(head, ">Output</th>") {
		t.Errorf("the runs table has no output column: %s", head)
	}
	if regexp.MustCompile(`(?s)<span class="err">[^<]*boom</span>\s*<details>`).MatchString(table[1]) {
		t.Errorf("the output toggle is in the error's cell")
	}

	zoned := get("zoned")
	if n := cols(zoned); n != 3 {
		t.Errorf("a zoned trigger's next fires have %d columns, want 3", n)
	}
	if m := missedList.FindStringSubmatch(zoned); m == nil || !strings.Contains(m[1], "none") {
		t.Errorf("no missed fire is not shown as none: %v", m)
	}
	if strings.Contains(zoned, "last_missed_fires") {
		t.Errorf("an empty last_missed_fires is listed as a raw field")
	}
	if !strings.Contains(zoned, "catch-up skip (the default)") {
		t.Errorf("a cron without a policy does not say it skips missed fires")
	}
	if evt := get("evt"); strings.Contains(evt, "catch-up skip") || strings.Contains(evt, "Recent missed fires") {
		t.Errorf("an event's trigger shows a catch-up policy or missed fires")
	}
}
