package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// The monitoring examples: Prometheus alerting rules, their unit tests
// and a Grafana dashboard.
const (
	monitoringDir = "../../examples/monitoring"
	alertRules    = "tasksync-alerts.yml"
	alertTests    = "tasksync-alerts.test.yml"
	dashboardFile = "tasksync-dashboard.json"
	operationsDoc = "../../docs/operations.md"
)

// promtool finds promtool, and fails the test without it: the rules are
// checked on every run of the tests, not skipped.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is needed to check the monitoring examples (Debian: apt-get install prometheus; .ci/run does): %v", err)
	}
	return p
}

// runPromtool runs promtool in dir with stdin (may be "") and fails the
// test unless it exits 0.
func runPromtool(t *testing.T, dir, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ruleFile is the part of a Prometheus rule file the tests read.
type ruleFile struct {
	Groups []struct {
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	var rf ruleFile
	data, err := os.ReadFile(filepath.Join(monitoringDir, alertRules))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &rf); err != nil {
		t.Fatalf("%s: %v", alertRules, err)
	}
	return rf
}

// headingAnchors are the anchors of a Markdown page's headings, as the
// repository's link check computes them (lowercase, punctuation dropped,
// spaces to dashes).
func headingAnchors(t *testing.T, page string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	heading := regexp.MustCompile(`(?m)^#{1,6}\s+(.+?)\s*$`)
	drop := regexp.MustCompile(`[^\p{L}\p{N}\s_-]`)
	out := map[string]bool{}
	for _, m := range heading.FindAllStringSubmatch(string(data), -1) {
		out[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(m[1]), ""), " ", "-")] = true
	}
	return out
}

// TestMonitoringRules: promtool accepts the alerting rules and passes
// their unit tests; every alert has a test where it fires and one where
// it does not, and a runbook_url naming a section of docs/operations.md.
func TestMonitoringRules(t *testing.T) {
	out := runPromtool(t, monitoringDir, "", "check", "rules", alertRules)
	t.Logf("%s", out)
	out = runPromtool(t, monitoringDir, "", "test", "rules", alertTests)
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules: %s", out)
	}

	var tests struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			Name  string `yaml:"name"`
			Evals []struct {
				Alert     string           `yaml:"alertname"`
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	data, err := os.ReadFile(filepath.Join(monitoringDir, alertTests))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &tests); err != nil {
		t.Fatalf("%s: %v", alertTests, err)
	}
	if !slices.Equal(tests.RuleFiles, []string{alertRules}) {
		t.Errorf("%s tests rule files %q, want [%s]", alertTests, tests.RuleFiles, alertRules)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, e := range tc.Evals {
			if len(e.ExpAlerts) > 0 {
				fires[e.Alert] = true
			} else {
				quiet[e.Alert] = true
			}
		}
	}

	anchors := headingAnchors(t, operationsDoc)
	alerts := 0
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			if !fires[r.Alert] || !quiet[r.Alert] {
				t.Errorf("alert %s: a test where it fires: %v, where it does not: %v; want both in %s", r.Alert, fires[r.Alert], quiet[r.Alert], alertTests)
			}
			url := r.Annotations["runbook_url"]
			page, anchor, _ := strings.Cut(url, "#")
			if page != "docs/operations.md" || !anchors[anchor] {
				t.Errorf("alert %s: runbook_url %q, want docs/operations.md#<a heading of that page>", r.Alert, url)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s lacks a summary or a description", r.Alert)
			}
		}
	}
	if alerts < 8 {
		t.Errorf("%d alerts in %s, want at least the 8 the docs list", alerts, alertRules)
	}
}

// metricName finds the tasksync metrics an expression names.
var metricName = regexp.MustCompile(`\btasksync_[a-zA-Z0-9_:]+`)

// monitoredMetrics is every tasksync metric name the rules and the
// dashboard's queries use, with where each is used.
func monitoredMetrics(t *testing.T) map[string][]string {
	t.Helper()
	used := map[string][]string{}
	add := func(where, expr string) {
		for _, m := range metricName.FindAllString(expr, -1) {
			used[m] = append(used[m], where)
		}
	}
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			add(alertRules+": "+r.Alert+r.Record, r.Expr)
		}
	}
	data, err := os.ReadFile(filepath.Join(monitoringDir, dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title      string `json:"title"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	exprs := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs++
			add(dashboardFile+": "+p.Title, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		q, _ := json.Marshal(v.Query)
		add(dashboardFile+": variable "+v.Name, string(q))
	}
	if exprs < 20 {
		t.Errorf("%s: %d queries, want the dashboard's panels", dashboardFile, exprs)
	}
	return used
}

// exportedNames are the metric names a /metrics page shows: its families
// (# TYPE lines) and every sample's name (a histogram's _bucket, _sum and
// _count).
func exportedNames(page string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(page, "\n") {
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			out[strings.Fields(f)[0]] = true
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			out[line[:i]] = true
		}
	}
	return out
}

// TestMonitoringMetricsExist runs the daemon against the real dev server
// and Postgres, has it run a task, and checks that every metric the
// alerting rules and the dashboard name is on its /metrics page, and that
// promtool check metrics finds nothing to say about that page.
func TestMonitoringMetricsExist(t *testing.T) {
	used := monitoredMetrics(t)
	promtool(t)

	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) }))
	defer ok.Close()
	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "tasks.d")
	deftest.WriteFile(t, filepath.Join(dir, "acme", "nightly.yaml"), deftest.Task{Code: "nightly", Trigger: "{cron: '0 2 * * *'}",
		Config: fmt.Sprintf(`{url: "%s/nightly"}`, ok.URL)}.String())
	deftest.WriteFile(t, filepath.Join(dir, "acme", "ping.yaml"), deftest.Task{Code: "ping", Trigger: "{event: monitoring/ping}",
		Config: fmt.Sprintf(`{url: "%s/ping"}`, ok.URL)}.String())
	prefix := fmt.Sprintf("m%d", time.Now().UnixNano()%1e6)
	base, cmd, _, exited := startDaemon(t, bin, []string{"DATABASE_URL=" + pg.NewDatabase(t), "TASKSYNC_DIR=" + dir, "INNGEST_DEV=" + dev.URL,
		"TASKSYNC_APP_PREFIX=" + prefix, "TASKSYNC_ALLOW_CIDRS=127.0.0.1/32"}, "2s")
	waittest.For(t, "the daemon to be ready", 30*time.Second, func() bool { code, _ := get(base + "/readyz"); return code == 200 })
	app := prefix + "-acme"
	waittest.For(t, "the app in Inngest", 30*time.Second, func() bool { return len(appCrons(t, app)) == 2 })

	// A run, so that the run duration histogram has a series.
	waittest.For(t, "a run of ping", 60*time.Second, func() bool {
		sendEventTo(t, dev.URL, "monitoring/ping", map[string]any{"tenant_id": "acme"})
		return waittest.Within(5*time.Second, func() bool {
			_, page := get(base + "/metrics")
			return strings.Contains(page, `tasksync_task_run_duration_seconds_count{kind="task",tenant="acme"}`)
		})
	})
	_, page := get(base + "/metrics")
	stopDaemon(t, cmd, exited, 15*time.Second)

	exported := exportedNames(page)
	for name, where := range used {
		if !exported[name] {
			t.Errorf("%s is not on the daemon's /metrics page; used by %s", name, strings.Join(slices.Compact(slices.Sorted(slices.Values(where))), ", "))
		}
	}
	if len(used) < 15 {
		t.Errorf("the monitoring examples use %d tasksync metrics, want most of them: %v", len(used), used)
	}
	if out := runPromtool(t, ".", page, "check", "metrics"); strings.TrimSpace(out) != "" {
		t.Errorf("promtool check metrics on /metrics:\n%s", out)
	}
}

// sendEventTo sends an event to the dev server at base.
func sendEventTo(t *testing.T, base, name string, data map[string]any) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"name": name, "data": data})
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Post(base+"/e/key", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
}
