package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
)

// TestPlanWarnsDST: plan, like validate, shows the daylight-saving
// warning of a cron time a clock change skips, with its date and the way
// out, in text and in JSON; the warning holds nothing back.
func TestPlanWarnsDST(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tasks.d")
	deftest.WriteFile(t, filepath.Join(dir, "acme", "night.yaml"), `apiVersion: tasksync/v1
kind: ScheduledTask
metadata: {code: night}
spec:
  trigger: {cron: "30 2 * * *", timezone: America/New_York}
  type: api_call
  config: {url: "https://a.example.com/run"}
`)
	env := map[string]string{"DATABASE_URL": pg.NewDatabase(t), "TASKSYNC_DIR": dir, "TASKSYNC_POSTGRES_ONLY": "true"}
	if out, errOut, code := runCmd(t, env, "migrate"); code != 0 {
		t.Fatalf("migrate: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code := runCmd(t, env, "plan")
	if code != 2 {
		t.Errorf("plan: exit %d, want 2 (changes pending)\n%s%s", code, out, errOut)
	}
	want := "  ? acme/night.yaml:5:19: warning: spec.trigger.cron: in America/New_York, 02:30 does not exist on "
	if !strings.Contains(out, want) || !strings.Contains(out, "there is no run that day; to avoid it, pick a time outside 02:00-03:00, or timezone UTC") {
		t.Errorf("plan lacks the daylight-saving warning %q:\n%s%s", want, out, errOut)
	}
	if !dstDate.MatchString(out) {
		t.Errorf("the warning names no date:\n%s", out)
	}
	if !strings.Contains(out, "+ create night (ScheduledTask)") {
		t.Errorf("the warning held the definition back:\n%s", out)
	}
	jout, _, _ := runCmd(t, env, "plan", "--format", "json")
	var pj reconciler.PlanJSON
	if err := json.Unmarshal([]byte(jout), &pj); err != nil || len(pj.Tenants) != 1 || len(pj.Tenants[0].Warnings) != 1 ||
		!strings.Contains(pj.Tenants[0].Warnings[0].Message, "02:30 does not exist on") || len(pj.Problems) != 0 {
		t.Errorf("plan --format json: err %v, want one warning in tenants[0].warnings and no problems:\n%s", err, jout)
	}
}
