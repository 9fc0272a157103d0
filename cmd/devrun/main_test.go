package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler/executor"
	"github.com/riveredge/tasksync/reconciler/inngest/inngesttest"
	"github.com/riveredge/tasksync/reconciler/loopback"
	"github.com/riveredge/tasksync/reconciler/statusapi/statusapitest"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// TestPlaceholderSecrets: every secret the sample tree names is granted
// to its tenant in the directory make run gives tasksync, except the
// sample API's host, which devrun grants through the environment.
func TestPlaceholderSecrets(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	if err := placeholderSecrets("../../tasks.d", dir); err != nil {
		t.Fatal(err)
	}
	s := executor.NewSecrets(dir, func(string) string { return "" })
	want := map[string][]string{
		"acme":   {"ACME_MAIL_TOKEN", "ACME_REPORTS_TOKEN", "ACME_DASHBOARD_KEY"},
		"globex": {"GLOBEX_CRM_TOKEN"},
	}
	for tenant, names := range want {
		for _, name := range names {
			if err := s.Check(tenant, name); err != nil {
				t.Errorf("Check(%s, %s) = %v", tenant, name, err)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, tenant, sampleAPIHost)); err == nil {
			t.Errorf("a placeholder for %s/%s was written; it would hide the sample API's address", tenant, sampleAPIHost)
		}
	}
	// A second start keeps what is there.
	p := filepath.Join(dir, "acme", "ACME_MAIL_TOKEN")
	if err := os.WriteFile(p, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := placeholderSecrets("../../tasks.d", dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "mine" {
		t.Errorf("placeholderSecrets overwrote %s: %q", p, b)
	}
}

// reachableDir is a temporary directory the postgres user can enter:
// t.TempDir's parent is private (0700).
func reachableDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestClusterDirFallback: a checkout the postgres user cannot enter (as
// one under /root, mode 0700) gets its cluster in a directory of its own
// under the fallback root, the same one each time; one it can enter keeps
// it in place.
func TestClusterDirFallback(t *testing.T) {
	if os.Geteuid() != 0 {
		dir, reason, err := clusterDir("/x/.run", "/var/tmp", func(string) bool { return false })
		if dir != "/x/.run" || reason != "" || err != nil {
			t.Errorf("clusterDir as a user = %q, %q, %v; want the data directory itself", dir, reason, err)
		}
		return
	}
	private := t.TempDir() // 0700, owned by root
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(private, "checkout", ".run")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	root := reachableDir(t)
	dir, reason, err := clusterDir(data, root, postgresCanEnter)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(dir) != root || !strings.Contains(reason, data) || !dirExists(dir) {
		t.Errorf("clusterDir(%s) = %q, %q; want a directory under %s and the reason", data, dir, reason, root)
	}
	if again, _, _ := clusterDir(data, root, postgresCanEnter); again != dir {
		t.Errorf("second clusterDir(%s) = %q, want %q again", data, again, dir)
	}
	open := filepath.Join(reachableDir(t), ".run")
	if err := os.MkdirAll(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if dir, reason, err := clusterDir(open, root, postgresCanEnter); dir != open || reason != "" || err != nil {
		t.Errorf("clusterDir(%s) = %q, %q, %v; want it kept", open, dir, reason, err)
	}
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// TestPortTaken: a port another make run holds is refused before anything
// starts, naming the setting that moves it.
func TestPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	inngest, err := loopback.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	listen, err := loopback.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	// The dev server's other ports set too: their defaults (INNGEST_PORT
	// and the three after it) could meet the free -listen port by chance.
	var others [3]int
	for i := range others {
		if others[i], err = loopback.FreePort(); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(t.TempDir(), "run")
	err = run(context.Background(), []string{"-data", data, "-pg-port", fmt.Sprint(taken), "-inngest-port", fmt.Sprint(inngest), "-listen", listen,
		"-inngest-gateway-port", fmt.Sprint(others[0]), "-inngest-gateway-grpc-port", fmt.Sprint(others[1]), "-inngest-executor-grpc-port", fmt.Sprint(others[2])},
		nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("127.0.0.1:%d (Postgres: -pg-port, make run PG_PORT=...)", taken)) {
		t.Errorf("run with a taken Postgres port = %v", err)
	}
	if dirExists(data) {
		t.Errorf("%s was created although nothing could start", data)
	}
}

// TestMakeRun runs the launcher as make run does, on free ports, with
// the real Postgres, dev server and tasksync: the banner lists what it
// promises, its curl (run as printed) starts a run of the sample tree
// that succeeds, so does its trigger line, and the approval walk-through of docs/workflows.md (run
// as written, on this test's ports) ends with the workflow and the
// messages it sent succeeded.
func TestMakeRun(t *testing.T) {
	inngestBin, err := inngesttest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	tasksyncBin := filepath.Join(t.TempDir(), "tasksync")
	if out, err := exec.Command("go", "build", "-o", tasksyncBin, "../tasksync").CombinedOutput(); err != nil {
		t.Fatalf("build tasksync: %v\n%s", err, out)
	}
	var ports [5]int
	for i := range ports {
		if ports[i], err = loopback.FreePort(); err != nil {
			t.Fatal(err)
		}
	}
	listen, err := loopback.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	tree, err := filepath.Abs("../../tasks.d")
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(reachableDir(t), "run")
	args := []string{"-data", data, "-dir", tree, "-tasksync", tasksyncBin, "-inngest", inngestBin,
		"-pg-port", fmt.Sprint(ports[0]), "-inngest-port", fmt.Sprint(ports[1]), "-listen", listen,
		"-inngest-gateway-port", fmt.Sprint(ports[2]), "-inngest-gateway-grpc-port", fmt.Sprint(ports[3]), "-inngest-executor-grpc-port", fmt.Sprint(ports[4])}
	env := os.Environ()
	var out, errOut waittest.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, env, &out, &errOut) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run after Ctrl-C = %v", err)
			}
		case <-time.After(time.Minute):
			t.Errorf("run did not return within a minute of Ctrl-C")
		}
	}
	defer stop()
	defer func() {
		if t.Failed() {
			t.Logf("devrun's output:\n%s\n%s", out.String(), errOut.String())
		}
	}()

	if !waittest.Within(3*time.Minute, func() bool { return strings.Contains(out.String(), "Ctrl-C stops everything") }) {
		t.Fatalf("no banner within 3 minutes")
	}
	text := out.String()
	banner := text[strings.Index(text, "tasksync is ready"):]
	for _, want := range []string{"http://" + listen + "/v1/status", "http://" + listen + "/ui/", "/readyz", "/metrics",
		filepath.Join(data, "tasksync.log"), filepath.Join(data, "inngest.log"), filepath.Join(data, "postgres.log"), filepath.Join(data, "sample-api.log"),
		filepath.Join(data, "secrets") + "/<tenant>/NAME", fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
		"tasksync-acme, tasksync-globex", `"decision" step`} {
		if !strings.Contains(banner, want) {
			t.Errorf("the banner does not show %s:\n%s", want, banner)
		}
	}
	// The UI pages the banner names serve the UI (TestInngestUI checks
	// its assets).
	inngestURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	for _, path := range []string{"/apps", "/functions", "/runs", "/run?runID="} {
		if !strings.Contains(banner, inngestURL+path) {
			t.Errorf("the banner does not show %s:\n%s", inngestURL+path, banner)
		}
		checkUIPage(t, inngestURL+strings.TrimSuffix(path, "?runID="))
	}

	// The banner's curls, run as printed.
	var curls []string
	for _, line := range strings.Split(banner, "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "curl ") {
			curls = append(curls, line)
		}
	}
	if len(curls) != 2 || !strings.HasPrefix(curls[0], "curl -sS ") {
		t.Fatalf("the banner's curls = %q, want the event's and the runs'", curls)
	}
	if stdout, stderr := shell(t, curls[0]); !strings.Contains(stdout, `"ids"`) || stderr != "" {
		t.Fatalf("%s: stdout %q, stderr %q (want the event's id and no progress meter)", curls[0], stdout, stderr)
	}
	waitRun(t, curls[1], "succeeded")
	if got := readFile(t, filepath.Join(data, "sample-api.log")); !strings.Contains(got, "POST /globex/onboarding") || !strings.Contains(got, `"customer_id":"C-1001"`) {
		t.Errorf("the sample API did not get the onboarding call with the customer:\n%s", got)
	}

	// The banner's trigger line, run as printed: the task runs now and
	// --wait prints that it succeeded.
	var trigger string
	for _, line := range strings.Split(banner, "\n") {
		if line = strings.TrimSpace(line); strings.Contains(line, " trigger acme weekly-revenue-report --wait") {
			trigger = line
		}
	}
	if want := fmt.Sprintf("DATABASE_URL='postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable' INNGEST_DEV=http://127.0.0.1:%d %s trigger", ports[0], ports[1], tasksyncBin); !strings.HasPrefix(trigger, want) {
		t.Errorf("the banner's trigger line = %q, want it to start %q", trigger, want)
	} else if stdout, stderr := shell(t, trigger); !strings.Contains(stdout, "trigger: run ") || !strings.Contains(stdout, " succeeded") {
		t.Errorf("%s: stdout %q, stderr %q; want the run succeeded", trigger, stdout, stderr)
	}

	// The approval walk-through, as docs/workflows.md writes it.
	steps := walkThrough(t, "../../docs/workflows.md", map[string]string{
		"http://127.0.0.1:8288": fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
		"http://127.0.0.1:8080": "http://" + listen,
	})
	if len(steps) != 3 {
		t.Fatalf("the walk-through's commands = %q, want two events and the runs", steps)
	}
	if stdout, stderr := shell(t, steps[0]); !strings.Contains(stdout, `"ids"`) || stderr != "" {
		t.Fatalf("%s: stdout %q, stderr %q", steps[0], stdout, stderr)
	}
	// A person sends the decision seconds later, when the workflow waits
	// for it; a decision sent before the wait began resumes nothing, so
	// the test sends it again until the run has ended.
	decided := waittest.Within(time.Minute, func() bool {
		if stdout, stderr := shell(t, steps[1]); !strings.Contains(stdout, `"ids"`) || stderr != "" {
			t.Fatalf("%s: stdout %q, stderr %q", steps[1], stdout, stderr)
		}
		return waittest.Within(3*time.Second, func() bool { return newestRunEnded(t, steps[2]) })
	})
	if !decided {
		t.Fatalf("the workflow did not end within a minute of the decisions")
	}
	if run := waitRun(t, steps[2], "succeeded"); !strings.Contains(run, `"record"`) {
		t.Errorf("the workflow's run does not show the record step: %s", run)
	}
	if got := readFile(t, filepath.Join(data, "sample-api.log")); !strings.Contains(got, "POST /acme/purchase-orders") || !strings.Contains(got, `"outcome":"approved"`) {
		t.Errorf("the sample API did not get the recorded outcome:\n%s", got)
	}
	messages := "http://" + listen + "/v1/tenants/acme/definitions/message-delivery/runs"
	waittest.For(t, "the two messages to be delivered", time.Minute, func() bool {
		return strings.Count(get(t, messages), `"status":"succeeded"`)+strings.Count(get(t, messages), `"status": "succeeded"`) >= 2
	})
	if got := get(t, messages); strings.Contains(got, `"failed"`) {
		t.Errorf("a message-delivery run failed: %s", got)
	}

	// The sample API's address is a secret: redacted wherever a run shows.
	addr := regexp.MustCompile(`sample API +http://(\S+)`).FindStringSubmatch(banner)
	if addr == nil {
		t.Fatalf("the banner names no sample API address:\n%s", banner)
	}
	if got := get(t, messages) + shellOut(t, curls[1]); strings.Contains(got, addr[1]) {
		t.Errorf("the sample API's address %s is in the runs: %s", addr[1], got)
	}

	stop()
	if strings.Contains(errOut.String()+out.String(), "panic") {
		t.Errorf("a panic was logged")
	}
}

// shell runs a command line as a user pastes it.
func shell(t *testing.T, line string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s%s", line, err, o.String(), e.String())
	}
	return o.String(), e.String()
}

// newestRunEnded reports whether the newest run the runs curl shows has
// ended.
func newestRunEnded(t *testing.T, curl string) bool {
	t.Helper()
	stdout, _ := shell(t, curl)
	var page struct {
		Runs []struct {
			Status string `json:"status"`
		} `json:"runs"`
	}
	if json.Unmarshal([]byte(stdout), &page) != nil || len(page.Runs) == 0 {
		return false
	}
	return page.Runs[0].Status == "succeeded" || page.Runs[0].Status == "failed"
}

// shellOut is shell's stdout.
func shellOut(t *testing.T, line string) string {
	t.Helper()
	stdout, _ := shell(t, line)
	return stdout
}

// waitRun runs the runs curl until the newest run has ended, and fails
// unless it ended as want; it returns that run.
func waitRun(t *testing.T, curl, want string) string {
	t.Helper()
	var last string
	var status string
	ok := waittest.Within(2*time.Minute, func() bool {
		stdout, _ := shell(t, curl)
		var page struct {
			Runs []json.RawMessage `json:"runs"`
		}
		if json.Unmarshal([]byte(stdout), &page) != nil || len(page.Runs) == 0 {
			return false
		}
		last = string(page.Runs[0])
		var r struct {
			Status string `json:"status"`
		}
		if json.Unmarshal(page.Runs[0], &r) != nil {
			return false
		}
		status = r.Status
		return status == "succeeded" || status == "failed"
	})
	if !ok || status != want {
		t.Fatalf("%s: the newest run is %q, want %s: %s", curl, status, want, last)
	}
	return last
}

// walkThrough returns the commands of the first sh block after the
// walk-through's heading in the document, with the default addresses
// replaced.
func walkThrough(t *testing.T, doc string, replace map[string]string) []string {
	t.Helper()
	text := readFile(t, doc)
	i := strings.Index(text, "## Walk-through")
	if i < 0 {
		t.Fatalf("%s has no walk-through", doc)
	}
	block := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(text[i:])
	if block == nil {
		t.Fatalf("%s: the walk-through has no sh block", doc)
	}
	var cmds []string
	sc := bufio.NewScanner(strings.NewReader(block[1]))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for from, to := range replace {
			line = strings.ReplaceAll(line, from, to)
		}
		cmds = append(cmds, line)
	}
	return cmds
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// get is the body of the status API's answer to GET url.
func get(t *testing.T, url string) string {
	t.Helper()
	_, body := statusapitest.Request(t, http.MethodGet, url, "")
	return body
}

// TestPortsClash: two of devrun's own ports that are the same (here
// tasksync's -listen on the dev server's API port + 2, its connect
// gateway gRPC port's default) are refused before anything starts,
// naming both settings.
func TestPortsClash(t *testing.T) {
	inngest, err := loopback.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	pgPort, err := loopback.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "run")
	err = run(context.Background(), []string{"-data", data, "-pg-port", fmt.Sprint(pgPort), "-inngest-port", fmt.Sprint(inngest),
		"-listen", fmt.Sprintf("127.0.0.1:%d", inngest+2)}, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("port %d", inngest+2)) ||
		!strings.Contains(err.Error(), "-inngest-gateway-grpc-port") || !strings.Contains(err.Error(), "-listen") {
		t.Errorf("run with -listen on the dev server's gateway gRPC port = %v, want both settings named", err)
	}
	if dirExists(data) {
		t.Errorf("%s was created although nothing could start", data)
	}
}
