package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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

// noDNS points api_call's name resolution at a loopback port where nothing
// answers: runs the dev server fires against the sample trees' example
// hosts fail at once, and no query leaves the machine.
const noDNS = "TASKSYNC_DNS_SERVER=127.0.0.1:1"

// buildBinary builds tasksync once per test that needs it.
func buildBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tasksync")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
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

// appCrons returns the first cron of each function of an app in the dev
// server.
func appCrons(t testing.TB, app string) map[string]string {
	out := map[string]string{}
	for id, f := range dev.Functions(t, app) {
		out[id] = append(f.Crons(), "")[0]
	}
	return out
}

// TestDaemon runs the built binary as SREs would: it becomes ready, serves
// the apps it synced, picks up a cron edit within seconds, exposes its
// metrics, and exits 0 on SIGTERM.
func TestDaemon(t *testing.T) {
	const secret = "echo-s3cret-value"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "refused "+r.Header.Get("Authorization"), http.StatusUnauthorized)
	}))
	defer echo.Close()
	bin := buildBinary(t)
	dir := copyTree(t)
	deftest.WriteFile(t, filepath.Join(dir, "acme", "echo.yaml"), deftest.Task{Code: "echo", Trigger: "{event: app/echo}", Spec: []string{"retries: 0"},
		Config: fmt.Sprintf(`{url: "%s/x", headers: {Authorization: "Bearer ${secret:ECHO_TOKEN}"}}`, echo.URL)}.String())
	prefix := fmt.Sprintf("d%d", time.Now().UnixNano()%1e6)
	dbURL := pg.NewDatabase(t)
	base, cmd, logs, exited := startDaemon(t, bin, []string{"DATABASE_URL=" + dbURL, "TASKSYNC_DIR=" + dir, "INNGEST_DEV=" + dev.URL,
		"TASKSYNC_APP_PREFIX=" + prefix, "TASKSYNC_ALLOW_CIDRS=127.0.0.1/32", "TASKSYNC_SECRET_ECHO_TOKEN=" + secret, "TASKSYNC_GRANT_ECHO_TOKEN=acme",
		"TASKSYNC_SECRETS_DIR=" + sampleSecrets(t, secret)}, "3s")
	waittest.For(t, "the daemon to answer /healthz", 30*time.Second, func() bool { code, _ := get(base + "/healthz"); return code == 200 })
	waittest.For(t, "the daemon to be ready", 30*time.Second, func() bool { code, _ := get(base + "/readyz"); return code == 200 })
	if _, body := get(base + "/readyz"); !strings.Contains(body, `"leader":true`) {
		t.Errorf("/readyz = %s, want the leader", body)
	}
	app := prefix + "-acme"
	// Ready comes before registration: the apps follow within seconds.
	waittest.For(t, "the apps in Inngest", 30*time.Second, func() bool { return len(appCrons(t, app)) == 6 })
	if crons := appCrons(t, app); crons[app+"-_weekly-revenue-report"] != "TZ=America/Chicago 0 7 * * 1" {
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
	waittest.For(t, "the edited cron in Inngest", 5*time.Second, func() bool {
		return appCrons(t, app)[app+"-_weekly-revenue-report"] == "TZ=America/Chicago 15 4 * * 2"
	})
	t.Logf("edit live in Inngest after %v", time.Since(start).Round(time.Millisecond))

	// A run whose endpoint echoes the secret: the failure is recorded and
	// logged, the value nowhere.
	body, _ := json.Marshal(map[string]any{"name": "app/echo", "data": map[string]any{"tenant_id": "acme"}})
	if res, err := http.Post(dev.URL+"/e/key", "application/json", bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	} else {
		res.Body.Close()
	}
	waittest.For(t, "the echo run to be recorded", 30*time.Second, func() bool {
		return strings.Contains(dumpDatabase(t, dbURL), "unexpected status 401")
	})
	waittest.For(t, "the echo run to be logged", 10*time.Second, func() bool { return strings.Contains(logs.String(), `"code":"echo"`) })
	if strings.Contains(dumpDatabase(t, dbURL), secret) || strings.Contains(logs.String(), secret) {
		t.Errorf("the secret's value leaked into Postgres or the logs")
	}

	// The Inngest server restarts and forgets every app: within one resync
	// interval (3s here) they are back.
	if err := dev.Restart(); err != nil {
		t.Fatal(err)
	}
	waittest.For(t, "the apps to be re-synced after the server restarted", 10*time.Second, func() bool { return len(appCrons(t, app)) == 6 })

	// Break a file: the problem is reported with its line, its functions
	// stay registered, the error metric rises; fixing it clears it.
	good := edited
	broken := strings.Replace(good, `cron: "15 4 * * 2"`, `cron: "15 4 * *"`, 1)
	if err := os.WriteFile(reports, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	waittest.For(t, "the problem in the status API", 5*time.Second, func() bool {
		_, body := get(base + "/v1/tenants/acme/errors")
		return strings.Contains(body, "acme/reports.yaml:") && strings.Contains(body, "invalid cron expression")
	})
	if crons := appCrons(t, app); crons[app+"-_weekly-revenue-report"] != "TZ=America/Chicago 15 4 * * 2" || len(crons) != 6 {
		t.Errorf("functions of the broken file after the break: %v", crons)
	}
	waittest.For(t, "the error metric", 5*time.Second, func() bool {
		_, m := get(base + "/metrics")
		return strings.Contains(m, `tasksync_definition_errors{tenant="acme"} 1`)
	})
	if err := os.WriteFile(reports, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	waittest.For(t, "the problem to clear", 5*time.Second, func() bool {
		_, body := get(base + "/v1/tenants/acme/errors")
		return strings.Contains(body, `"errors": []`)
	})

	// Fifty files at once: all live, in one or a few reconciles.
	before := strings.Count(logs.String(), `"msg":"reconcile"`)
	for i := range 50 {
		deftest.WriteFile(t, filepath.Join(dir, "acme", "bulk", fmt.Sprintf("b%02d.yaml", i)), fmt.Sprintf(
			"apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: bulk-%02d}\nspec: {trigger: {cron: '%d 3 * * *'}, type: api_call, config: {url: 'https://a.example.com'}}\n", i, i))
	}
	waittest.For(t, "fifty new functions", 10*time.Second, func() bool { return len(appCrons(t, app)) == 56 })
	if n := strings.Count(logs.String(), `"msg":"reconcile"`) - before; n > 4 {
		t.Errorf("fifty files took %d reconciles, want one or a few", n)
	}

	// Rename a file: a move, no retirement.
	if err := os.Rename(filepath.Join(dir, "acme", "bulk", "b00.yaml"), filepath.Join(dir, "acme", "bulk", "renamed.yaml")); err != nil {
		t.Fatal(err)
	}
	waittest.For(t, "the move in the status API", 5*time.Second, func() bool {
		_, body := get(base + "/v1/tenants/acme/definitions/bulk-00")
		return strings.Contains(body, `"source_path": "acme/bulk/renamed.yaml"`) && strings.Contains(body, `"revision": 1`)
	})

	// A tenant mounted as a Kubernetes ConfigMap: the kubelet writes a new
	// timestamped directory and swaps the ..data symlink onto it.
	cm := filepath.Join(dir, "configmap")
	cmDoc := func(minute int) string {
		return fmt.Sprintf("apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: mounted}\nspec: {trigger: {cron: '%d 1 * * *'}, type: api_call, config: {url: 'https://a.example.com'}}\n", minute)
	}
	deftest.WriteFile(t, filepath.Join(cm, "..2026_01_01_00_00_00.000000001", "mounted.yaml"), cmDoc(10))
	if err := os.Symlink("..2026_01_01_00_00_00.000000001", filepath.Join(cm, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/mounted.yaml", filepath.Join(cm, "mounted.yaml")); err != nil {
		t.Fatal(err)
	}
	cmApp := prefix + "-configmap"
	waittest.For(t, "the mounted definition", 10*time.Second, func() bool { return appCrons(t, cmApp)[cmApp+"-_mounted"] == "TZ=UTC 10 1 * * *" })
	deftest.WriteFile(t, filepath.Join(cm, "..2026_01_01_00_05_00.000000002", "mounted.yaml"), cmDoc(20))
	if err := os.Symlink("..2026_01_01_00_05_00.000000002", filepath.Join(cm, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(cm, "..data_tmp"), filepath.Join(cm, "..data")); err != nil {
		t.Fatal(err)
	}
	waittest.For(t, "the swapped definition", 10*time.Second, func() bool { return appCrons(t, cmApp)[cmApp+"-_mounted"] == "TZ=UTC 20 1 * * *" })
	if crons := appCrons(t, cmApp); len(crons) != 1 {
		t.Errorf("the mounted tenant's functions = %v, want the one definition, loaded once", crons)
	}

	// A tenant directory deleted: the prune budget holds its retirements.
	if err := os.RemoveAll(filepath.Join(dir, "globex")); err != nil {
		t.Fatal(err)
	}
	waittest.For(t, "held retirements", 5*time.Second, func() bool {
		_, body := get(base + "/v1/status")
		return strings.Contains(body, `"total": 2`)
	})
	if crons := appCrons(t, prefix+"-globex"); len(crons) != 2 {
		t.Errorf("globex's functions after its directory vanished: %v, want both kept", crons)
	}

	if code, body := get(base + "/v1/tenants/acme/definitions/weekly-revenue-report"); code != 200 || !strings.Contains(body, `"next_fire_times"`) || !strings.Contains(body, "15 4 * * 2") {
		t.Errorf("status API definition = %d %s", code, body)
	}
	if code, body := get(base + "/v1/status"); code != 200 || !strings.Contains(body, `"leader": true`) {
		t.Errorf("/v1/status = %d %s", code, body)
	}

	_, metrics := get(base + "/metrics")
	for _, want := range []string{"tasksync_leader 1", `tasksync_reconcile_total{result="success"}`, "tasksync_build_info{", `tasksync_inngest_sync_total{result="success",tenant="acme"}`, "go_goroutines",
		`tasksync_definitions{kind="ScheduledTask",state="active",tenant="acme"}`, `tasksync_changes_total{action="create",tenant="acme"}`, `tasksync_retire_held{tenant="globex"} 2`,
		"tasksync_run_records_spooled 0", "tasksync_run_records_dropped_total 0"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if code, _ := get(base + "/api/inngest/nope"); code != 404 {
		t.Errorf("/api/inngest/nope = %d, want 404", code)
	}

	stopDaemon(t, cmd, exited, 15*time.Second)
}

// startDaemon starts the binary as a daemon and returns its base URL,
// process and logs.
func startDaemon(t testing.TB, bin string, env []string, resync string) (string, *exec.Cmd, *waittest.Buffer, chan error) {
	t.Helper()
	addr, err := loopback.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return startDaemonAt(t, bin, addr, env, resync)
}

// startDaemonAt is startDaemon listening on addr (host:port).
func startDaemonAt(t testing.TB, bin, addr string, env []string, resync string) (string, *exec.Cmd, *waittest.Buffer, chan error) {
	t.Helper()
	cmd := exec.Command(bin, "run", "--resync-interval", resync)
	cmd.Env = append(append(os.Environ(), env...), "TASKSYNC_LISTEN="+addr, "TASKSYNC_LOG_FORMAT=json", noDNS)
	logs, exited := startLogged(t, cmd, addr, false)
	return "http://" + addr, cmd, logs, exited
}

// startLogged starts cmd with its output in logs, and returns them with
// the channel of its exit. At the test's end a process still running is
// stopped (graceful: SIGTERM, then SIGKILL after 20 s; else SIGKILL), and
// a failed test shows the logs of the process on addr.
func startLogged(t testing.TB, cmd *exec.Cmd, addr string, graceful bool) (*waittest.Buffer, chan error) {
	t.Helper()
	logs := &waittest.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		switch {
		case cmd.ProcessState != nil:
		case !graceful:
			if cmd.Process.Kill() == nil {
				<-exited
			}
		case cmd.Process.Signal(syscall.SIGTERM) == nil:
			select {
			case <-exited:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		}
		if t.Failed() {
			t.Logf("logs of the process on %s:\n%s", addr, logs.String())
		}
	})
	return logs, exited
}

// TestFailover: a second replica serves as a follower; when the leader is
// killed, it takes over and applies the next edit.
func TestFailover(t *testing.T) {
	bin := buildBinary(t)
	dir := copyTree(t)
	prefix := fmt.Sprintf("f%d", time.Now().UnixNano()%1e6)
	env := []string{"DATABASE_URL=" + pg.NewDatabase(t), "TASKSYNC_DIR=" + dir, "INNGEST_DEV=" + dev.URL, "TASKSYNC_APP_PREFIX=" + prefix,
		"TASKSYNC_SECRETS_DIR=" + sampleSecrets(t, "s3cr3t")}
	leader, leaderCmd, _, leaderExited := startDaemon(t, bin, env, "3s")
	waittest.For(t, "the first replica to lead", 30*time.Second, func() bool {
		_, body := get(leader + "/readyz")
		return strings.Contains(body, `"leader":true`)
	})
	follower, _, _, _ := startDaemon(t, bin, env, "1m") // reloads by its 3 s check, not a resync
	waittest.For(t, "the second replica to be ready as a follower", 30*time.Second, func() bool {
		_, body := get(follower + "/readyz")
		return strings.Contains(body, `"ready":true`) && strings.Contains(body, `"leader":false`)
	})
	// The follower serves the apps too, and reloads what the leader applies.
	functions := func() int {
		code, body := get(follower + "/api/inngest/acme")
		var in struct {
			Count int `json:"function_count"`
		}
		if code != 200 || json.Unmarshal([]byte(body), &in) != nil {
			return -1
		}
		return in.Count
	}
	before := functions()
	if before < 1 {
		t.Fatalf("the follower's /api/inngest/acme serves %d functions", before)
	}
	extra := "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: follower-reload}\nspec:\n  trigger: {event: app/reload}\n  type: api_call\n  config: {url: 'https://reload.example.com/'}\n"
	if err := os.WriteFile(filepath.Join(dir, "acme", "reload.yaml"), []byte(extra), 0o644); err != nil {
		t.Fatal(err)
	}
	waittest.For(t, "the follower to serve the leader's new definition", 15*time.Second, func() bool { return functions() == before+1 })

	if err := leaderCmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-leaderExited
	waittest.For(t, "the follower to take over", 15*time.Second, func() bool {
		_, body := get(follower + "/readyz")
		return strings.Contains(body, `"leader":true`)
	})
	reports := filepath.Join(dir, "acme", "reports.yaml")
	data, err := os.ReadFile(reports)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(reports, []byte(strings.Replace(string(data), `cron: "0 7 * * 1"`, `cron: "45 6 * * 3"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	app := prefix + "-acme"
	waittest.For(t, "the new leader to apply an edit", 10*time.Second, func() bool {
		return appCrons(t, app)[app+"-_weekly-revenue-report"] == "TZ=America/Chicago 45 6 * * 3"
	})
}

// stopDaemon sends the daemon SIGTERM and fails the test unless it exits
// with status 0 within d.
func stopDaemon(t *testing.T, cmd *exec.Cmd, exited <-chan error, d time.Duration) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v, want status 0", err)
		}
	case <-time.After(d):
		t.Fatalf("the daemon did not exit within %v of SIGTERM", d)
	}
}

// slowServer is an api_call endpoint that holds every request until the
// test ends (at most 30 s); started receives when one arrives.
func slowServer(t *testing.T) (url string, started <-chan struct{}) {
	t.Helper()
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-time.After(30 * time.Second):
		}
	}))
	t.Cleanup(func() {
		close(release)
		srv.Close()
	})
	return srv.URL, arrived
}

// startSlowRun waits for acme's app (named with prefix) to serve the slow
// function, sends app/slow for acme to the dev server and waits until
// the run's request reaches the slow server.
func startSlowRun(t *testing.T, prefix string, started <-chan struct{}) {
	t.Helper()
	app := prefix + "-acme"
	waittest.For(t, "the slow function in Inngest", 30*time.Second, func() bool {
		_, ok := dev.Functions(t, app)[app+"-_slow"]
		return ok
	})
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
}

// TestSecondSignal: SIGTERM waits for a run in flight; a second SIGTERM
// ends the process at once.
func TestSecondSignal(t *testing.T) {
	slow, started := slowServer(t)
	bin := buildBinary(t)
	dir := copyTree(t)
	deftest.WriteFile(t, filepath.Join(dir, "acme", "slow.yaml"), deftest.Task{Code: "slow", Trigger: "{event: app/slow}", Spec: []string{"retries: 0"},
		Config: fmt.Sprintf(`{url: "%s/slow", timeout: 1m}`, slow)}.String())
	prefix := fmt.Sprintf("s%d", time.Now().UnixNano()%1e6)
	base, cmd, _, exited := startDaemon(t, bin, []string{"DATABASE_URL=" + pg.NewDatabase(t), "TASKSYNC_DIR=" + dir, "INNGEST_DEV=" + dev.URL,
		"TASKSYNC_APP_PREFIX=" + prefix, "TASKSYNC_ALLOW_CIDRS=127.0.0.1/32"}, "1m")
	waittest.For(t, "the daemon to be ready", 30*time.Second, func() bool { code, _ := get(base + "/readyz"); return code == 200 })
	startSlowRun(t, prefix, started)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		t.Fatalf("the daemon exited (%v) with a run in flight, want it to drain", err)
	case <-time.After(time.Second):
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err == nil {
			t.Errorf("exit after a second SIGTERM: status 0, want the signal's")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the daemon did not exit within 3s of a second SIGTERM")
	}
}
