package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/store/storetest"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// TestKilledReplicaAttemptIsClosed: the daemon running an attempt is
// killed (SIGKILL: no drain, no record of how it ended); the next leader
// closes the attempt as failed and final, abandoned, once its timeout
// plus the grace has passed, and the definition is no longer running.
func TestKilledReplicaAttemptIsClosed(t *testing.T) {
	slow, started := slowServer(t)
	bin := buildBinary(t)
	dir := copyTree(t)
	deftest.WriteFile(t, filepath.Join(dir, "acme", "slow.yaml"), deftest.Task{Code: "slow", Trigger: "{event: app/slow}", Spec: []string{"retries: 0"},
		Config: fmt.Sprintf(`{url: "%s/slow", timeout: 2s}`, slow)}.String())
	dbURL := pg.NewDatabase(t)
	prefix := fmt.Sprintf("k%d", time.Now().UnixNano()%1e6)
	env := []string{"DATABASE_URL=" + dbURL, "TASKSYNC_DIR=" + dir, "INNGEST_DEV=" + dev.URL,
		"TASKSYNC_APP_PREFIX=" + prefix, "TASKSYNC_ALLOW_CIDRS=127.0.0.1/32",
		"TASKSYNC_SECRETS_DIR=" + sampleSecrets(t, "s3cr3t"), "TASKSYNC_ABANDON_GRACE=1s"}
	base, cmd, _, exited := startDaemon(t, bin, env, "1s")
	waittest.For(t, "the daemon to be ready", 30*time.Second, func() bool { code, _ := get(base + "/readyz"); return code == 200 })
	startSlowRun(t, prefix, started)
	ctx := context.Background()
	conn := storetest.Conn(t, dbURL)
	row := func() (status, errText string, final, running bool, lastStatus string) {
		_ = conn.QueryRow(ctx, `select r.status, coalesce(r.error, ''), r.final, d.is_running, coalesce(d.last_run_status, '')
			from root_task_runs r join root_scheduled_tasks d on d.id = r.task_id where d.code = 'slow' order by r.id desc limit 1`).
			Scan(&status, &errText, &final, &running, &lastStatus)
		return
	}
	if status, _, _, running, last := row(); status != "running" || !running || last != "running" {
		t.Fatalf("while the run is under way: attempt %q, is_running %v, last_run_status %q; want running everywhere", status, running, last)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited

	base2, _, _, _ := startDaemon(t, bin, env, "1s")
	waittest.For(t, "the second replica to lead", 30*time.Second, func() bool {
		_, body := get(base2 + "/readyz")
		return strings.Contains(body, `"leader":true`)
	})
	waittest.For(t, "the abandoned attempt to be closed", 30*time.Second, func() bool {
		status, _, _, _, _ := row()
		return status == "failed"
	})
	status, errText, final, running, last := row()
	if status != "failed" || !strings.HasPrefix(errText, "abandoned:") || !final || running || last != "failed" {
		t.Errorf("after the sweep: attempt %q (%q), final %v, is_running %v, last_run_status %q; want failed, abandoned, final, not running",
			status, errText, final, running, last)
	}
	_, detail := get(base2 + "/v1/tenants/acme/definitions/slow")
	var d struct {
		Definition struct {
			IsRunning     bool   `json:"is_running"`
			LastRunStatus string `json:"last_run_status"`
		}
		LastRun struct {
			Status, Error string
			Final         bool
		} `json:"last_run"`
	}
	if err := json.Unmarshal([]byte(detail), &d); err != nil || d.Definition.IsRunning || d.Definition.LastRunStatus != "failed" ||
		d.LastRun.Status != "failed" || !d.LastRun.Final || !strings.HasPrefix(d.LastRun.Error, "abandoned:") {
		t.Errorf("status API detail = %+v (%v) from %s", d, err, detail)
	}
}
