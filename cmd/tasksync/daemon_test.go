package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildBinary builds tasksync once per test that needs it.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tasksync")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// lockedBuffer collects a process's output safely.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func eventually(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func get(url string) (int, string) {
	res, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// appCrons returns the cron of each function of an app in the dev server.
func appCrons(app string) map[string]string {
	_, body := get(dev.URL + "/v1/apps/" + app + "/functions")
	var fns []struct {
		ID     string `json:"id"`
		Config struct {
			Triggers []struct {
				Cron string `json:"cron"`
			} `json:"triggers"`
		} `json:"config"`
	}
	out := map[string]string{}
	if json.Unmarshal([]byte(body), &fns) != nil {
		return out
	}
	for _, f := range fns {
		cron := ""
		if len(f.Config.Triggers) > 0 {
			cron = f.Config.Triggers[0].Cron
		}
		out[f.ID] = cron
	}
	return out
}

// TestDaemon runs the built binary as SREs would: it becomes ready, serves
// the apps it synced, picks up a cron edit within seconds, exposes its
// metrics, and exits 0 on SIGTERM.
func TestDaemon(t *testing.T) {
	bin := buildBinary(t)
	dir := copyTree(t)
	addr := freeAddr(t)
	prefix := fmt.Sprintf("d%d", time.Now().UnixNano()%1e6)
	cmd := exec.Command(bin, "run", "--resync-interval", "3s")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+pg.NewDatabase(t), "TASKSYNC_DIR="+dir, "INNGEST_DEV="+dev.URL,
		"TASKSYNC_LISTEN="+addr, "TASKSYNC_APP_PREFIX="+prefix, "TASKSYNC_LOG_FORMAT=json")
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil && cmd.Process.Kill() == nil {
			<-exited
		}
		if t.Failed() {
			t.Logf("daemon logs:\n%s", logs.String())
		}
	})
	base := "http://" + addr
	eventually(t, "the daemon to answer /healthz", 30*time.Second, func() bool { code, _ := get(base + "/healthz"); return code == 200 })
	eventually(t, "the daemon to be ready", 30*time.Second, func() bool { code, _ := get(base + "/readyz"); return code == 200 })
	if _, body := get(base + "/readyz"); !strings.Contains(body, `"leader":true`) {
		t.Errorf("/readyz = %s, want the leader", body)
	}
	app := prefix + "-acme"
	if crons := appCrons(app); len(crons) != 5 || crons[app+"-weekly-revenue-report"] != "TZ=America/Chicago 0 7 * * 1" {
		t.Fatalf("functions of %s = %v", app, crons)
	}

	// Edit a cron: the new schedule is live in Inngest within 5 seconds.
	reports := filepath.Join(dir, "acme", "reports.yaml")
	data, err := os.ReadFile(reports)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(data), `cron: "0 7 * * 1"`, `cron: "15 4 * * 2"`, 1)
	start := time.Now()
	if err := os.WriteFile(reports, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the edited cron in Inngest", 5*time.Second, func() bool {
		return appCrons(app)[app+"-weekly-revenue-report"] == "TZ=America/Chicago 15 4 * * 2"
	})
	t.Logf("edit live in Inngest after %v", time.Since(start).Round(time.Millisecond))

	_, metrics := get(base + "/metrics")
	for _, want := range []string{"tasksync_leader 1", `tasksync_reconcile_total{result="success"}`, "tasksync_build_info{", `tasksync_inngest_sync_total{result="success",tenant="acme"}`, "go_goroutines"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if code, _ := get(base + "/api/inngest/nope"); code != 404 {
		t.Errorf("/api/inngest/nope = %d, want 404", code)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v, want status 0", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the daemon did not exit within 15s of SIGTERM")
	}
}
