package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// TestKilledReplicaAttemptIsClosed: the daemon running an attempt is
// killed (SIGKILL: no drain, no record of how it ended); the next leader
// closes the attempt as failed and final, abandoned, once its timeout
// plus the grace has passed, and the definition is no longer running.
func TestKilledReplicaAttemptIsClosed(t *testing.T) {
	started, release := make(chan struct{}, 1), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case started <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-time.After(30 * time.Second):
		}
	}))
	defer slow.Close()
	defer close(release)
	bin := buildBinary(t)
	dir := copyTree(t)
	deftest.WriteFile(t, filepath.Join(dir, "acme", "slow.yaml"), fmt.Sprintf(`apiVersion: tasksync/v1
kind: ScheduledTask
metadata: {code: slow}
spec:
  trigger: {event: app/slow}
  type: api_call
  config: {url: "%s/slow", timeout: 2s}
  retries: 0
`, slow.URL))
	dbURL := pg.NewDatabase(t)
	env := []string{"DATABASE_URL=" + dbURL, "TASKSYNC_DIR=" + dir, "INNGEST_DEV=" + dev.URL,
		"TASKSYNC_APP_PREFIX=" + fmt.Sprintf("k%d", time.Now().UnixNano()%1e6), "TASKSYNC_ALLOW_CIDRS=127.0.0.1/32",
		"TASKSYNC_SECRETS_DIR=" + sampleSecrets(t, "s3cr3t"), "TASKSYNC_ABANDON_GRACE=1s"}
	base, cmd, _, exited := startDaemon(t, bin, env, "1s")
	waittest.For(t, "the daemon to be ready", 30*time.Second, func() bool { code, _ := get(base + "/readyz"); return code == 200 })
	body, _ := json.Marshal(map[string]any{"name": "app/slow", "data": map[string]any{"tenant_id": "acme"}})
	res, err := http.Post(dev.URL+"/e/key", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the slow run did not start within 30s")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
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
