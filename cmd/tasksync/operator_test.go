package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/loopback"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// runBinary runs the built binary to its end, with env added.
func runBinary(t *testing.T, bin string, env []string, args ...string) (string, int, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	out, code := combinedExit(t, cmd)
	return out, code, time.Since(start)
}

// combinedExit runs cmd to its end and returns its output and its exit
// status; the test fails when it could not run.
func combinedExit(t testing.TB, cmd *exec.Cmd) (string, int) {
	t.Helper()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return string(out), 0
}

// TestRunOnceRefusedWhileDaemonLeads: run --once while a daemon holds the
// leader lock fails at once (not after a minute on the lock), saying why
// and what to do; with no retirement held, it suggests no budget to raise.
func TestRunOnceRefusedWhileDaemonLeads(t *testing.T) {
	bin := buildBinary(t)
	dir := copyTree(t)
	env := []string{"DATABASE_URL=" + pg.NewDatabase(t), "TASKSYNC_DIR=" + dir, "INNGEST_DEV=" + dev.URL,
		"TASKSYNC_APP_PREFIX=lead", "TASKSYNC_SECRETS_DIR=" + sampleSecrets(t, "s3cr3t")}
	base, _, _, _ := startDaemon(t, bin, env, "1m")
	waittest.For(t, "the daemon to lead", 30*time.Second, func() bool {
		_, body := get(base + "/readyz")
		return strings.Contains(body, `"leader":true`)
	})
	out, code, took := runBinary(t, bin, env, "run", "--once")
	t.Logf("run --once refused in %v", took)
	if code != 1 || !strings.Contains(out, "another replica") || !strings.Contains(out, "stop the daemon") || strings.Contains(out, "maxRetire") {
		t.Errorf("run --once while a daemon leads, nothing held: exit %d, want 1 saying another replica leads and what to do, and nothing of spec.maxRetire:\n%s", code, out)
	}
	if took > 2*time.Second {
		t.Errorf("run --once took %v to be refused, want about a second at most", took)
	}
}

// TestRunOnceWithoutInngest: run --once that applies a change with no
// Inngest configured exits 1 and says the apps were not synced; with
// nothing to apply, or with --postgres-only, it exits 0.
func TestRunOnceWithoutInngest(t *testing.T) {
	env := map[string]string{"DATABASE_URL": pg.NewDatabase(t), "TASKSYNC_DIR": copyTree(t), "TASKSYNC_SECRETS_DIR": sampleSecrets(t, "s3cr3t")}
	out, errOut, code := runCmd(t, env, "run", "--once")
	if code != 1 || !strings.Contains(out+errOut, "Inngest is not configured") || !strings.Contains(out, "Applied: 7 created") {
		t.Errorf("first run --once without Inngest: exit %d, want 1 saying Inngest is not configured:\n%s%s", code, out, errOut)
	}
	if out, errOut, code = runCmd(t, env, "run", "--once"); code != 0 {
		t.Errorf("run --once with nothing to apply: exit %d, want 0:\n%s%s", code, out, errOut)
	}
	env["TASKSYNC_DIR"] = copyTree(t)
	env["DATABASE_URL"] = pg.NewDatabase(t)
	if out, errOut, code = runCmd(t, env, "run", "--once", "--postgres-only"); code != 0 || !strings.Contains(out, "Applied: 7 created") {
		t.Errorf("run --once --postgres-only: exit %d, want 0:\n%s%s", code, out, errOut)
	}
}

// TestRunOnceWithoutInngestCountsServedChanges: run --once without
// Inngest counts only the tenants whose served definitions changed: a
// problem that appears in two tenants changes their stored problems but
// nothing their apps serve, and is not reported as an unsynced change
// (the run exits 1 for the problems); a new definition in one tenant is
// one tenant changed.
func TestRunOnceWithoutInngestCountsServedChanges(t *testing.T) {
	dir := copyTree(t)
	env := map[string]string{"DATABASE_URL": pg.NewDatabase(t), "TASKSYNC_DIR": dir, "TASKSYNC_SECRETS_DIR": sampleSecrets(t, "s3cr3t"),
		"TASKSYNC_POSTGRES_ONLY": "1"}
	if out, errOut, code := runCmd(t, env, "run", "--once"); code != 0 {
		t.Fatalf("run --once --postgres-only: exit %d:\n%s%s", code, out, errOut)
	}
	delete(env, "TASKSYNC_POSTGRES_ONLY")
	for _, tenant := range []string{"acme", "globex"} {
		deftest.WriteFile(t, filepath.Join(dir, tenant, "broken.yaml"), "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: broken}\n")
	}
	out, errOut, code := runCmd(t, env, "run", "--once")
	if code != 1 || strings.Contains(out+errOut, "changed in Postgres only") {
		t.Errorf("run --once with new problems only: exit %d, want 1 for the problems and no unsynced change:\n%s%s", code, out, errOut)
	}
	deftest.WriteFile(t, filepath.Join(dir, "acme", "new.yaml"), deftest.Task{Code: "brand-new", Trigger: "{event: app/new}"}.String())
	out, errOut, code = runCmd(t, env, "run", "--once")
	if code != 1 || !strings.Contains(out, "1 tenant changed in Postgres only") {
		t.Errorf("run --once with one new definition: exit %d, want 1 saying 1 tenant changed in Postgres only:\n%s%s", code, out, errOut)
	}
}

// TestSIGHUPRescans: SIGHUP makes the daemon rescan the whole tree and
// sync every app, logged; it keeps serving, and still exits 0 on SIGTERM.
func TestSIGHUPRescans(t *testing.T) {
	bin := buildBinary(t)
	env := []string{"DATABASE_URL=" + pg.NewDatabase(t), "TASKSYNC_DIR=" + copyTree(t), "INNGEST_DEV=" + dev.URL,
		"TASKSYNC_APP_PREFIX=hup", "TASKSYNC_SECRETS_DIR=" + sampleSecrets(t, "s3cr3t")}
	base, cmd, logs, exited := startDaemon(t, bin, env, "1m")
	waittest.For(t, "the daemon to lead", 30*time.Second, func() bool {
		_, body := get(base + "/readyz")
		return strings.Contains(body, `"leader":true`)
	})
	reconciles := func() int { return strings.Count(logs.String(), `"msg":"reconcile"`) }
	before := reconciles()
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waittest.For(t, "a rescan after SIGHUP", 30*time.Second, func() bool {
		return strings.Contains(logs.String(), "rescan") && reconciles() > before
	})
	select {
	case err := <-exited:
		t.Fatalf("the daemon exited on SIGHUP: %v", err)
	default:
	}
	if code, _ := get(base + "/healthz"); code != 200 {
		t.Errorf("/healthz after SIGHUP = %d, want 200", code)
	}
	stopDaemon(t, cmd, exited, 30*time.Second)
}

// TestReadyzWhileSyncsFail: /readyz stays ready when the tenants' syncs
// fail (this replica still serves the runs Inngest sends for what it
// has), and /v1/status and tasksync_tenant_sync_failed name them.
func TestReadyzWhileSyncsFail(t *testing.T) {
	bin := buildBinary(t)
	closed, err := loopback.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"DATABASE_URL=" + pg.NewDatabase(t), "TASKSYNC_DIR=" + copyTree(t), "INNGEST_DEV=http://" + closed,
		"TASKSYNC_APP_PREFIX=nosync", "TASKSYNC_SECRETS_DIR=" + sampleSecrets(t, "s3cr3t")}
	base, _, _, _ := startDaemon(t, bin, env, "1m")
	waittest.For(t, "the sync failures recorded", 60*time.Second, func() bool {
		_, body := get(base + "/metrics")
		return strings.Contains(body, `tasksync_tenant_sync_failed{tenant="acme"} 1`) && strings.Contains(body, `tasksync_tenant_sync_failed{tenant="globex"} 1`)
	})
	if code, body := get(base + "/readyz"); code != 200 || !strings.Contains(body, `"ready":true`) {
		t.Errorf("/readyz while every sync fails = %d %s, want 200 ready", code, body)
	}
	_, body := get(base + "/v1/status")
	var status struct {
		SyncFailed []string `json:"sync_failed"`
	}
	if err := json.Unmarshal([]byte(body), &status); err != nil || strings.Join(status.SyncFailed, ",") != "acme,globex" {
		t.Errorf("/v1/status sync_failed = %v (%v), want acme and globex:\n%s", status.SyncFailed, err, body)
	}
}
