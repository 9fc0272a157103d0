package webui_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/riveredge/tasksync/reconciler/webui"
)

// newerAPI answers like a status API with fields this page does not lay
// out by name (a "git" object, the missed fires' instants, a run's
// retry_of): a fake, since the real API has not got them.
func newerAPI() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/tenants/acme/definitions/job", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"definition": {"code": "job", "name": "Job", "kind": "ScheduledTask", "type": "python_script", "active": true,
			"trigger_type": "cron", "source": "acme/j.yaml", "revision": 3, "sync_state": "synced", "uuid": "u-1",
			"source_path": "acme/j.yaml", "source_line": 2, "spec": {"spec": {"trigger": {"cron": "*/5 * * * *"}}},
			"git": {"commit": "<b>0123abc</b>", "ref": "main"}, "missed_fire_times": ["2026-11-29T12:53:00Z"], "missed_fires": 1},
			"next_fire_times": ["2026-11-29T13:05:00Z"], "last_run": null}`)
	})
	mux.HandleFunc("/v1/tenants/acme/definitions/job/runs", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"runs": [{"id": 7, "inngest_run_id": "r7", "attempt": 0, "revision": 3, "status": "succeeded",
			"trigger": "manual", "tenant": "acme", "code": "job", "scheduled_for": "2026-11-29T12:55:00Z", "started_at": "2026-11-29T12:55:01Z", "final": true,
			"catch_up": true, "retry_of": "r6"}], "next_cursor": null}`)
	})
	return mux
}

func TestFieldsOfANewerAPI(t *testing.T) {
	ui, err := webui.NewHandler(webui.Options{API: newerAPI()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ui)
	t.Cleanup(srv.Close)
	code, body := page(t, client(t), srv.URL+"/ui/t/acme/d/job")
	if code != 200 {
		t.Fatalf("GET = %d\n%s", code, body)
	}
	for _, want := range []string{"python_script", "<dt>git</dt>", "&lt;b&gt;0123abc&lt;/b&gt;", "<dt>missed_fire_times</dt>", "2026-11-29T12:53:00Z",
		"trigger: manual", "for the fire of", "catch-up of a missed fire", "<dt>retry_of</dt>"} {
		if !strings.Contains(body, want) {
			t.Errorf("the definition page lacks %q", want)
		}
	}
	if strings.Contains(body, "<b>0123abc") {
		t.Errorf("an unknown field's value is not escaped")
	}
}
