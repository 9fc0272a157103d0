package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/loopback"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "devrun:", err)
		os.Exit(1)
	}
}

// options are devrun's flags.
type options struct {
	data, tree, listen, sampleAPI string
	tasksyncBin, inngestBin       string
	pgPort, inngestPort           int
	// The dev server's connect ports; 0 means the API port plus 1, 2, 3.
	gatewayPort, gatewayGRPCPort, executorGRPCPort int
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	f := flag.NewFlagSet("devrun", flag.ContinueOnError)
	f.SetOutput(stderr)
	f.StringVar(&o.data, "data", ".run", "`directory` for the throwaway database, the placeholder secrets and the logs")
	f.IntVar(&o.pgPort, "pg-port", 55432, "PostgreSQL `port` on 127.0.0.1 (make run PG_PORT=...)")
	f.IntVar(&o.inngestPort, "inngest-port", 8288, "the Inngest dev server's API and UI `port` on 127.0.0.1 (make run INNGEST_PORT=...)")
	f.IntVar(&o.gatewayPort, "inngest-gateway-port", 0, "the dev server's connect gateway `port` (default the API port + 1)")
	f.IntVar(&o.gatewayGRPCPort, "inngest-gateway-grpc-port", 0, "the dev server's connect gateway gRPC `port` (default the API port + 2)")
	f.IntVar(&o.executorGRPCPort, "inngest-executor-grpc-port", 0, "the dev server's connect executor gRPC `port` (default the API port + 3)")
	f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "tasksync's listen `address` (make run LISTEN=...)")
	f.StringVar(&o.sampleAPI, "sample-api", "127.0.0.2:0", "listen `address` of the sample API the sample tree calls (port 0: any free one)")
	f.StringVar(&o.tree, "dir", "tasks.d", "the definitions `tree`")
	f.StringVar(&o.tasksyncBin, "tasksync", "bin/tasksync", "the tasksync `binary`")
	f.StringVar(&o.inngestBin, "inngest", "bin/inngest", "the Inngest dev server `binary` (make inngest builds it)")
	if err := f.Parse(args); err != nil {
		return o, err
	}
	if f.NArg() > 0 {
		return o, fmt.Errorf("devrun takes no arguments, got %q", f.Args())
	}
	for i, p := range []*int{&o.gatewayPort, &o.gatewayGRPCPort, &o.executorGRPCPort} {
		if *p == 0 {
			*p = o.inngestPort + 1 + i
		}
	}
	return o, nil
}

// port is one port devrun's servers take, named as the user sets it.
type port struct {
	addr string // what to try to listen on
	what string // who takes it and how to change it
}

// checkPorts fails, before anything starts, when two of the ports are
// the same or a port is taken, and says which setting moves it: on a
// shared machine another make run holds the defaults.
func checkPorts(ports []port) error {
	byNumber := map[string][]string{}
	var numbers []string
	for _, p := range ports {
		_, n, err := net.SplitHostPort(p.addr)
		if err != nil || n == "0" {
			continue // any free port, or an address net.Listen will refuse below
		}
		if byNumber[n] == nil {
			numbers = append(numbers, n)
		}
		byNumber[n] = append(byNumber[n], p.what)
	}
	var twice []string
	for _, n := range numbers {
		if len(byNumber[n]) > 1 {
			twice = append(twice, fmt.Sprintf("port %s is set for %s", n, strings.Join(byNumber[n], " and for ")))
		}
	}
	if len(twice) > 0 {
		return fmt.Errorf("%s; each server needs a port of its own: move one of them (the dev server takes INNGEST_PORT and the three ports after it unless they are set)", strings.Join(twice, "; "))
	}
	var taken []string
	for _, p := range ports {
		l, err := net.Listen("tcp", p.addr)
		if err != nil {
			taken = append(taken, fmt.Sprintf("%s (%s)", p.addr, p.what))
			continue
		}
		l.Close()
	}
	if len(taken) > 0 {
		return fmt.Errorf("in use: %s; another make run or test may hold them: choose free ones, e.g. make run PG_PORT=55532 INNGEST_PORT=8388 LISTEN=127.0.0.1:8180", strings.Join(taken, ", "))
	}
	return nil
}

func run(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	getenv := func(key string) string {
		v := ""
		for _, kv := range env {
			if k, val, ok := strings.Cut(kv, "="); ok && k == key {
				v = val
			}
		}
		return v
	}
	if err := checkPorts([]port{
		{fmt.Sprintf("127.0.0.1:%d", o.pgPort), "Postgres: -pg-port, make run PG_PORT=..."},
		{fmt.Sprintf(":%d", o.inngestPort), "the Inngest dev server: -inngest-port, make run INNGEST_PORT=..."},
		{fmt.Sprintf(":%d", o.gatewayPort), "the dev server's connect gateway: -inngest-gateway-port (default INNGEST_PORT+1)"},
		{fmt.Sprintf(":%d", o.gatewayGRPCPort), "the dev server's connect gateway gRPC: -inngest-gateway-grpc-port (default INNGEST_PORT+2)"},
		{fmt.Sprintf(":%d", o.executorGRPCPort), "the dev server's connect executor gRPC: -inngest-executor-grpc-port (default INNGEST_PORT+3)"},
		{o.listen, "tasksync: -listen, make run LISTEN=..."},
		{o.sampleAPI, "the sample API: -sample-api"},
	}); err != nil {
		return err
	}

	abs, err := filepath.Abs(o.data)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}
	logPath := func(name string) string { return filepath.Join(o.data, name) }
	logFile := func(name string) (*os.File, error) { return os.Create(filepath.Join(abs, name)) }

	pgDir, moved, err := clusterDir(abs, fallbackRoot, postgresCanEnter)
	if err != nil {
		return err
	}
	if moved != "" {
		fmt.Fprintf(stdout, "devrun: %s;\n        the database and its log are in %s instead\n", moved, pgDir)
	}
	stopPG, err := startPostgres(pgDir, o.pgPort)
	if err != nil {
		return err
	}
	defer func() {
		if err := stopPG(); err != nil {
			fmt.Fprintln(stderr, "devrun: stop Postgres:", err)
		}
	}()
	pgLog := logPath("postgres.log")
	if moved != "" {
		pgLog = filepath.Join(pgDir, "postgres.log")
	}

	ilog, err := logFile("inngest.log")
	if err != nil {
		return err
	}
	defer ilog.Close()
	stopInngest, err := startInngest(ctx, o, ilog)
	if err != nil {
		return err
	}
	defer func() {
		if err := stopInngest(); err != nil {
			fmt.Fprintln(stderr, "devrun: the Inngest dev server stopped:", err)
		}
	}()

	alog, err := logFile("sample-api.log")
	if err != nil {
		return err
	}
	defer alog.Close()
	sampleAddr, stopSample, err := serveSampleAPI(ctx, o.sampleAPI, alog)
	if err != nil {
		return err
	}
	defer func() {
		if err := stopSample(); err != nil {
			fmt.Fprintln(stderr, "devrun: the sample API stopped:", err)
		}
	}()

	inngestURL := fmt.Sprintf("http://127.0.0.1:%d", o.inngestPort)
	dbURL := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", o.pgPort)
	daemonEnv := append(append([]string{}, env...), "DATABASE_URL="+dbURL, "TASKSYNC_DIR="+o.tree, "TASKSYNC_LISTEN="+o.listen, "INNGEST_DEV="+inngestURL)
	// The sample tree's api_calls reach the sample API, and only it: its
	// host is a secret every tenant is granted, and the SSRF guard lets
	// through its address alone (not 127.0.0.1, where Postgres, the dev
	// server and tasksync listen).
	sampleHost, _, err := net.SplitHostPort(sampleAddr)
	if err != nil {
		return err
	}
	allow := sampleHost + "/32"
	if prev := getenv("TASKSYNC_ALLOW_CIDRS"); prev != "" {
		allow = prev + "," + allow
	}
	daemonEnv = append(daemonEnv, "TASKSYNC_ALLOW_CIDRS="+allow,
		"TASKSYNC_SECRET_"+sampleAPIHost+"="+sampleAddr, "TASKSYNC_GRANT_"+sampleAPIHost+"=*")
	secrets := getenv("TASKSYNC_SECRETS_DIR")
	if secrets == "" {
		secrets = filepath.Join(o.data, "secrets")
		if err := placeholderSecrets(o.tree, filepath.Join(abs, "secrets")); err != nil {
			return err
		}
		daemonEnv = append(daemonEnv, "TASKSYNC_SECRETS_DIR="+filepath.Join(abs, "secrets"))
	}
	if getenv("TASKSYNC_DNS_SERVER") == "" {
		// The sample tree names no host: resolve nothing unless asked.
		daemonEnv = append(daemonEnv, "TASKSYNC_DNS_SERVER=127.0.0.1:1")
	}

	tlog, err := logFile("tasksync.log")
	if err != nil {
		return err
	}
	defer tlog.Close()
	daemon := exec.CommandContext(ctx, o.tasksyncBin, "run")
	daemon.Env = daemonEnv
	daemon.Stdout, daemon.Stderr = io.MultiWriter(stdout, tlog), io.MultiWriter(stderr, tlog)
	daemon.Cancel = func() error { return daemon.Process.Signal(syscall.SIGTERM) }
	daemon.WaitDelay = 20 * time.Second
	if err := daemon.Start(); err != nil {
		return fmt.Errorf("start tasksync (make build builds it): %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()

	base := "http://" + o.listen
	readyCtx, cancelReady := context.WithTimeout(ctx, 2*time.Minute)
	ready := make(chan error, 1)
	go func() { ready <- loopback.WaitHTTP(readyCtx, base+"/readyz") }()
	select {
	case err = <-exited:
		cancelReady()
		<-ready
	case rerr := <-ready:
		cancelReady()
		if rerr != nil && ctx.Err() == nil {
			fmt.Fprintf(stdout, "\ndevrun: tasksync is not ready after 2 minutes (%v); see %s\n", rerr, logPath("tasksync.log"))
		}
		if ctx.Err() == nil {
			kept := o.data
			if moved != "" {
				kept += " (the database in " + pgDir + ")"
			}
			prefix := getenv("TASKSYNC_APP_PREFIX")
			if prefix == "" {
				prefix = reconciler.DefaultAppPrefix
			}
			fmt.Fprint(stdout, banner(o, inngestURL, base, dbURL, sampleAddr, secrets, kept,
				[]string{logPath("tasksync.log"), logPath("inngest.log"), pgLog, logPath("sample-api.log")},
				uiGuide(inngestURL, prefix, tenantDirs(o.tree))))
		}
		err = <-exited
	}
	if ctx.Err() != nil {
		return nil
	}
	if err == nil {
		err = errors.New("tasksync exited")
	}
	return fmt.Errorf("tasksync run: %w (log: %s)", err, logPath("tasksync.log"))
}

// startInngest starts the dev server on 127.0.0.1 with every port set,
// waits until it answers and returns its stop.
func startInngest(ctx context.Context, o options, log io.Writer) (func() error, error) {
	cmd := exec.Command(o.inngestBin, "dev", "--no-discovery", "--no-poll", "--host", "127.0.0.1",
		"--port", strconv.Itoa(o.inngestPort),
		"--connect-gateway-port", strconv.Itoa(o.gatewayPort),
		"--connect-gateway-grpc-port", strconv.Itoa(o.gatewayGRPCPort),
		"--connect-executor-grpc-port", strconv.Itoa(o.executorGRPCPort))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "DO_NOT_TRACK=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the Inngest dev server (make inngest builds it): %w", err)
	}
	stop := func() error {
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM); err != nil {
			return err
		}
		err := cmd.Wait()
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signal() == syscall.SIGTERM {
			return nil // stopped as asked
		}
		return err
	}
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := loopback.WaitHTTP(waitCtx, fmt.Sprintf("http://127.0.0.1:%d/dev", o.inngestPort)); err != nil {
		if serr := stop(); serr != nil {
			err = errors.Join(err, serr)
		}
		return nil, fmt.Errorf("the Inngest dev server did not start (see its log in %s): %w", filepath.Join(o.data, "inngest.log"), err)
	}
	return stop, nil
}

// sampleEvent is the event the banner's curl sends: the fields the sample
// task it starts (globex/events.yaml, welcome-new-customer) templates.
const sampleEvent = `{"name":"customer/created","data":{"tenant_id":"globex","customer_id":"C-1001","plan":"pro"}}`

// banner is what devrun prints once tasksync is ready; guide is what to
// look at in the Inngest UI (uiGuide).
func banner(o options, inngestURL, base, dbURL, sampleAddr, secrets, kept string, logs []string, guide string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\ntasksync is ready, serving %s (edit a file there: the change is live within a second)\n\n", o.tree)
	fmt.Fprintf(&b, "  Inngest UI   %s\n", inngestURL)
	fmt.Fprintf(&b, "  web page     %s/ui/\n", base)
	fmt.Fprintf(&b, "  status       %s/v1/status   (also /v1/tenants, /readyz, /metrics)\n", base)
	fmt.Fprintf(&b, "  Postgres     %s\n", dbURL)
	fmt.Fprintf(&b, "  sample API   http://%s   (the sample tree's api_calls reach it; it echoes each request)\n", sampleAddr)
	fmt.Fprintf(&b, "  secrets      %s/<tenant>/NAME\n", secrets)
	fmt.Fprintf(&b, "  logs         %s\n\n", strings.Join(logs, "  "))
	fmt.Fprintf(&b, "Send an event, then see the run it started:\n")
	fmt.Fprintf(&b, "  curl -sS -X POST %s/e/dev -d '%s'\n", inngestURL, sampleEvent)
	fmt.Fprintf(&b, "  curl -sS %s/v1/tenants/globex/definitions/welcome-new-customer/runs\n\n", base)
	fmt.Fprintf(&b, "Run a task now, whatever its schedule, and wait for its outcome (from the checkout):\n")
	fmt.Fprintf(&b, "  DATABASE_URL='%s' INNGEST_DEV=%s %s trigger acme weekly-revenue-report --wait\n\n", dbURL, inngestURL, o.tasksyncBin)
	b.WriteString(guide)
	fmt.Fprintf(&b, "Ctrl-C stops everything; data and logs stay in %s.\n\n", kept)
	return b.String()
}

// uiGuide is what to look at in the Inngest UI: the apps tasksync synced,
// their functions, the runs, and the sample approval flow waiting for its
// decision.
func uiGuide(inngestURL, prefix string, tenants []string) string {
	apps := make([]string, len(tenants))
	for i, t := range tenants {
		apps[i] = reconciler.AppID(prefix, t)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "In the Inngest UI:\n")
	fmt.Fprintf(&b, "  apps         %s/apps   one app per tenant (%s), synced by tasksync\n", inngestURL, strings.Join(apps, ", "))
	fmt.Fprintf(&b, "  functions    %s/functions   one function per definition, with its cron or event trigger\n", inngestURL)
	fmt.Fprintf(&b, "  runs         %s/runs   every run; open one for its steps, input, output and retries\n", inngestURL)
	fmt.Fprintf(&b, "  one run      %s/run?runID=<inngest_run_id>   (the runs curl above lists each run's inngest_run_id)\n", inngestURL)
	fmt.Fprintf(&b, "  approval     send purchase/requested as in docs/workflows.md: acme's Purchase approval run stays\n")
	fmt.Fprintf(&b, "               Running in /runs, its trace waiting at the \"decision\" step until purchase/decided arrives\n\n")
	return b.String()
}

// tenantDirs lists the tenant directories of the tree (the names of its
// directories, hidden ones aside), for the banner; none when it cannot
// be read.
func tenantDirs(tree string) []string {
	entries, err := os.ReadDir(tree)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}
