package definitions_test

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
)

const baseTask = `apiVersion: tasksync/v1
kind: ScheduledTask
metadata:
  code: nightly-report
  name: Nightly report
  description: Posts the daily report
  labels: {team: finance}
spec:
  trigger:
    cron: "0 2 * * *"
    timezone: Asia/Shanghai
    jitter: 30s
  type: api_call
  config:
    method: POST
    url: https://reports.example.com/run
    headers: {Authorization: "Bearer ${secret:REPORTS_TOKEN}"}
    query: {format: csv}
    body: {report: daily, days: 1}
    timeout: 30s
    expect_status: [200, 202]
  retries: 3
  retry_delay: 60s
  concurrency: 1
`

const baseWorkflow = `apiVersion: tasksync/v1
kind: Workflow
metadata: {code: approval}
spec:
  trigger: {event: expense/submitted, if: "event.data.amount > 1000"}
  steps:
    - id: notify
      api_call: {method: POST, url: https://chat.example.com/hook, body: {text: "{{ event.data.id }}"}}
    - id: decision
      wait_for_event: {event: expense/decided, match: data.id, timeout: 72h}
    - id: done
      if: steps.decision != null
      send_event: {name: message/send, data: {text: approved}}
`

// loadOne loads a single-file tenant and returns its only definition.
func loadOne(t *testing.T, v *definitions.Validator, files fstest.MapFS) reconciler.Definition {
	t.Helper()
	r := v.NewLoader(files, definitions.Options{}).LoadTenant("acme")
	if len(r.Problems) > 0 || len(r.Definitions) != 1 {
		t.Fatalf("load: %d definitions, problems %v", len(r.Definitions), r.Problems)
	}
	return r.Definitions[0]
}

func yamlFS(doc string) fstest.MapFS {
	return fstest.MapFS{"acme/a.yaml": {Data: []byte(doc)}}
}

// TestHashIgnoresFormatting: layout, key order, comments, quoting, spelled
// out defaults and equivalent durations leave the hash as it is.
func TestHashIgnoresFormatting(t *testing.T) {
	v := newValidator(t)
	base := loadOne(t, v, yamlFS(baseTask)).Hash
	same := map[string]string{
		"comments":    "# a comment\n" + strings.ReplaceAll(baseTask, "  retries: 3\n", "  retries: 3 # three tries\n"),
		"flow style":  `{apiVersion: tasksync/v1, kind: ScheduledTask, metadata: {code: nightly-report, name: Nightly report, description: Posts the daily report, labels: {team: finance}}, spec: {trigger: {cron: "0 2 * * *", timezone: Asia/Shanghai, jitter: 30s}, type: api_call, config: {method: POST, url: "https://reports.example.com/run", headers: {Authorization: "Bearer ${secret:REPORTS_TOKEN}"}, query: {format: csv}, body: {days: 1, report: daily}, timeout: 30s, expect_status: [202, 200]}, retries: 3, retry_delay: 60s, concurrency: 1}}`,
		"key order":   strings.Replace(strings.Replace(baseTask, "  retries: 3\n  retry_delay: 60s\n", "  retry_delay: 60s\n  retries: 3\n", 1), "apiVersion: tasksync/v1\nkind: ScheduledTask\n", "kind: ScheduledTask\napiVersion: tasksync/v1\n", 1),
		"quoting":     strings.ReplaceAll(baseTask, "code: nightly-report", `code: 'nightly-report'`),
		"defaults":    strings.ReplaceAll(baseTask, "spec:\n", "spec:\n  active: true\n"),
		"durations":   strings.ReplaceAll(baseTask, "retry_delay: 60s", "retry_delay: 1m"),
		"indentation": strings.ReplaceAll(baseTask, "\n  ", "\n    "),
		"anchors":     strings.ReplaceAll(baseTask, "labels: {team: finance}", "labels: &l {team: finance}"),
	}
	for name, doc := range same {
		if got := loadOne(t, v, yamlFS(doc)).Hash; got != base {
			t.Errorf("%s: hash changed: %s, want %s", name, got, base)
		}
	}
	// Defaults written out or left implicit hash the same.
	implicit := "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: x}\nspec: {trigger: {cron: '@daily'}, type: api_call, config: {url: 'https://a.example.com'}}\n"
	explicit := "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: x}\nspec: {active: true, retries: 3, concurrency: 1, trigger: {cron: '@daily', timezone: UTC}, type: api_call, config: {method: GET, timeout: 30s, url: 'https://a.example.com'}}\n"
	if a, b := loadOne(t, v, yamlFS(implicit)).Hash, loadOne(t, v, yamlFS(explicit)).Hash; a != b {
		t.Errorf("explicit defaults changed the hash: %s vs %s", b, a)
	}
}

// TestHashChangesWithEverySemanticChange: any change a run would notice
// gives a new hash, and no two variants collide.
func TestHashChangesWithEverySemanticChange(t *testing.T) {
	v := newValidator(t)
	seen := map[string]string{"base": loadOne(t, v, yamlFS(baseTask)).Hash}
	changes := map[string][2]string{
		"code":          {"code: nightly-report", "code: nightly-report2"},
		"name":          {"name: Nightly report", "name: Nightly reports"},
		"description":   {"description: Posts the daily report", "description: Posts it"},
		"label":         {"team: finance", "team: sales"},
		"cron":          {`cron: "0 2 * * *"`, `cron: "15 4 * * *"`},
		"timezone":      {"timezone: Asia/Shanghai", "timezone: Europe/Berlin"},
		"jitter":        {"jitter: 30s", "jitter: 31s"},
		"method":        {"method: POST", "method: PUT"},
		"url":           {"url: https://reports.example.com/run", "url: https://reports.example.com/run2"},
		"header":        {"REPORTS_TOKEN", "OTHER_TOKEN"},
		"query":         {"format: csv", "format: json"},
		"body value":    {"days: 1", "days: 2"},
		"body type":     {"days: 1", `days: "1"`},
		"timeout":       {"timeout: 30s", "timeout: 31s"},
		"expect_status": {"expect_status: [200, 202]", "expect_status: [200]"},
		"retries":       {"retries: 3", "retries: 4"},
		"retry_delay":   {"retry_delay: 60s", "retry_delay: 61s"},
		"concurrency":   {"concurrency: 1", "concurrency: 2"},
		"active":        {"spec:\n", "spec:\n  active: false\n"},
		"trigger kind":  {"    cron: \"0 2 * * *\"\n    timezone: Asia/Shanghai\n    jitter: 30s\n", "    interval: 5m\n"},
	}
	for name, c := range changes {
		doc := strings.Replace(baseTask, c[0], c[1], 1)
		if doc == baseTask {
			t.Fatalf("%s: replacement %q not found", name, c[0])
		}
		h := loadOne(t, v, yamlFS(doc)).Hash
		for other, oh := range seen {
			if oh == h {
				t.Errorf("%s: hash equals that of %s", name, other)
			}
		}
		seen[name] = h
	}

	wseen := map[string]string{"base": loadOne(t, v, yamlFS(baseWorkflow)).Hash}
	wchanges := map[string][2]string{
		"trigger if":   {"amount > 1000", "amount > 2000"},
		"step order":   {"    - id: notify\n      api_call: {method: POST, url: https://chat.example.com/hook, body: {text: \"{{ event.data.id }}\"}}\n    - id: decision\n      wait_for_event: {event: expense/decided, match: data.id, timeout: 72h}\n", "    - id: decision\n      wait_for_event: {event: expense/decided, match: data.id, timeout: 72h}\n    - id: notify\n      api_call: {method: POST, url: https://chat.example.com/hook, body: {text: \"{{ event.data.id }}\"}}\n"},
		"step id":      {"id: notify", "id: notify2"},
		"template":     {"{{ event.data.id }}", "{{ event.data.ref }}"},
		"wait timeout": {"timeout: 72h", "timeout: 48h"},
		"wait match":   {"match: data.id", "match: data.ref"},
		"step if":      {"if: steps.decision != null", "if: steps.decision == null"},
		"send data":    {"text: approved", "text: ok"},
	}
	for name, c := range wchanges {
		doc := strings.Replace(baseWorkflow, c[0], c[1], 1)
		if doc == baseWorkflow {
			t.Fatalf("%s: replacement %q not found", name, c[0])
		}
		h := loadOne(t, v, yamlFS(doc)).Hash
		for other, oh := range wseen {
			if oh == h {
				t.Errorf("workflow %s: hash equals that of %s", name, other)
			}
		}
		wseen[name] = h
	}
}

// TestHashFollowsScriptFile: editing a python_script file changes the hash
// of the definition that runs it.
func TestHashFollowsScriptFile(t *testing.T) {
	v := newValidator(t)
	doc := "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: s}\nspec: {trigger: {interval: 5m}, type: python_script, config: {file: scripts/job.py}}\n"
	a := loadOne(t, v, fstest.MapFS{"acme/a.yaml": {Data: []byte(doc)}, "acme/scripts/job.py": {Data: []byte("print(1)\n")}})
	b := loadOne(t, v, fstest.MapFS{"acme/a.yaml": {Data: []byte(doc)}, "acme/scripts/job.py": {Data: []byte("print(2)\n")}})
	if a.Hash == b.Hash {
		t.Errorf("hash did not change with the script's content")
	}
	if got := a.Spec.Config.PythonScript.FileContent; got != "print(1)\n" {
		t.Errorf("FileContent = %q, want the script", got)
	}
}

func newValidator(t testing.TB) *definitions.Validator {
	t.Helper()
	v, err := definitions.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestCatchUpDefault: catchup skip, spelled out, is the default and
// changes no hash; latest and all are kept with their window.
func TestCatchUpDefault(t *testing.T) {
	v := newValidator(t)
	doc := func(trigger string) string {
		return "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: x}\nspec: {trigger: " + trigger + ", type: api_call, config: {url: 'https://a.example.com'}}\n"
	}
	plain := loadOne(t, v, yamlFS(doc("{cron: '0 * * * *'}")))
	skip := loadOne(t, v, yamlFS(doc("{cron: '0 * * * *', catchup: skip}")))
	if plain.Hash != skip.Hash || skip.Spec.Trigger.CatchUp != "" {
		t.Errorf("catchup: skip changed the hash or was kept: %q", skip.Spec.Trigger.CatchUp)
	}
	all := loadOne(t, v, yamlFS(doc("{interval: 7m, catchup: all, catchup_window: 90m}")))
	if all.Spec.Trigger.CatchUp != reconciler.CatchUpAll || all.Spec.Trigger.Window() != 90*time.Minute {
		t.Errorf("catchup all: %+v", all.Spec.Trigger)
	}
	latest := loadOne(t, v, yamlFS(doc("{cron: '0 * * * *', catchup: latest}")))
	if latest.Hash == plain.Hash || latest.Spec.Trigger.Window() != time.Hour {
		t.Errorf("catchup latest: same hash as skip, or window %v, want 1h", latest.Spec.Trigger.Window())
	}
}
