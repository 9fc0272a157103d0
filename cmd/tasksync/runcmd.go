package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/riveredge/tasksync/internal/cli"
	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/executor"
	"github.com/riveredge/tasksync/reconciler/inngest"
	"github.com/riveredge/tasksync/reconciler/store"
)

type runOptions struct {
	treeOptions
	inngestFlags
	once            bool
	postgresOnly    bool
	logFormat       string
	resyncInterval  time.Duration
	syncConcurrency int
	runRetention    time.Duration
	abandonGrace    time.Duration
	allowCIDRs      string
	python          string
	sandboxUIDs     string
	sandboxCgroup   string
	tokensFile      string
	inngestUI       string
	dnsServer       string
	// allowInsecureListen lets a dev-mode daemon listen beyond loopback.
	allowInsecureListen bool
}

func runFlags(f *cli.FlagSet) {
	o := &runOptions{}
	o.treeOptions.flags(f)
	o.inngestFlags.flags(f)
	f.Bool(&o.once, "once", "TASKSYNC_ONCE", "reconcile the whole tree once, then exit: 0 applied, 1 errors, changes applied with no Inngest configured, or another replica leads (for deploy pipelines)")
	f.Bool(&o.postgresOnly, "postgres-only", "TASKSYNC_POSTGRES_ONLY", "with --once and no Inngest configured: apply to Postgres only and exit 0, leaving the apps' sync to the daemon")
	f.String(&o.logFormat, "log-format", "TASKSYNC_LOG_FORMAT", "text", "log `format`: text or json")
	f.Duration(&o.resyncInterval, "resync-interval", "TASKSYNC_RESYNC_INTERVAL", time.Minute, "how often the whole tree is reconciled and every app verified, besides watching")
	f.Int(&o.syncConcurrency, "sync-concurrency", "TASKSYNC_SYNC_CONCURRENCY", reconciler.DefaultSyncConcurrency, "how many tenants' Inngest apps are synced or checked at once")
	f.Duration(&o.runRetention, "run-retention", "TASKSYNC_RUN_RETENTION", reconciler.DefaultRunRetention, "how long run records are kept; the leader deletes older ones in small batches (0 keeps them forever)")
	f.Duration(&o.abandonGrace, "abandon-grace", "TASKSYNC_ABANDON_GRACE", reconciler.DefaultAbandonGrace, "how long after its timeout an attempt still running is closed by the leader as failed (abandoned: its replica stopped)")
	f.String(&o.allowCIDRs, "allow-cidr", "TASKSYNC_ALLOW_CIDRS", "", "comma-separated `networks` api_call may reach despite the SSRF guard")
	f.String(&o.python, "python", "TASKSYNC_PYTHON", "/usr/bin/python3", "the `interpreter` of python_script runs, under /usr or in a prefix of its own; the scripts' uids must be able to run it")
	f.String(&o.sandboxUIDs, "sandbox-uids", "TASKSYNC_SANDBOX_UIDS", executor.DefaultSandboxUIDs, "`range` FIRST-LAST of uids no host user has; a root daemon runs each concurrent python_script as one of them (not root: each as the daemon's uid in a user namespace of its own)")
	f.String(&o.sandboxCgroup, "sandbox-cgroup", "TASKSYNC_SANDBOX_CGROUP", executor.CgroupAuto, "where each python_script run gets a cgroup bounding its memory, processes and CPU: auto (the daemon's own, if delegated or writable), a delegated cgroup `dir` (cgroup v1: one per hierarchy, comma-separated), or none (per-process limits only)")
	f.String(&o.dnsServer, "dns-server", "TASKSYNC_DNS_SERVER", "", "`host:port` of the DNS server api_call resolves names with (default the system's resolver)")
	f.Bool(&o.allowInsecureListen, "allow-insecure-listen", "TASKSYNC_ALLOW_INSECURE_LISTEN", "in dev mode (INNGEST_DEV), listen on a non-loopback --listen address although anyone reaching it can forge calls to the apps")
	f.String(&o.tokensFile, "status-tokens-file", "TASKSYNC_STATUS_TOKENS_FILE", "", "`file` of status API tokens, lines \"token tenant\" (* for all); a * token also reads /metrics; without it both are open")
	f.String(&o.inngestUI, "inngest-ui-url", "TASKSYNC_INNGEST_UI_URL", "", "base `url` of the Inngest UI the web page (/ui/) links functions and runs to (default $INNGEST_DEV, whose dev server serves its UI)")
	f.Opts = o
}

// inngestUIURL is the Inngest UI the web page links to: --inngest-ui-url,
// else the dev server's, which serves its UI at its own URL.
func (o *runOptions) inngestUIURL(getenv func(string) string) string {
	if o.inngestUI != "" {
		return o.inngestUI
	}
	switch dev := getenv("INNGEST_DEV"); dev {
	case "", "0", "false":
		return ""
	case "1", "true":
		return "http://127.0.0.1:8288"
	default:
		return dev
	}
}

// minResyncInterval is the shortest --resync-interval: short enough for a
// soak test to run hundreds of resyncs, long enough that a unit mistake
// (1ns) is refused.
const minResyncInterval = 100 * time.Millisecond

// maxSyncConcurrency bounds --sync-concurrency against a slip of the
// keyboard; the registry keeps at most 16 connections to the Inngest
// server anyway, and syncs beyond them wait for one.
const maxSyncConcurrency = 64

func runRun(ctx context.Context, c *cli.Invocation) error {
	o := c.Flags.Opts.(*runOptions)
	if len(c.Args) > 0 {
		return cli.UsageError("run takes no arguments; the tree is --dir")
	}
	logger, err := newLogger(o.logFormat, c.Stderr)
	if err != nil {
		return err
	}
	if o.runRetention < 0 || o.abandonGrace < 0 {
		return cli.UsageError("run: --run-retention and --abandon-grace must not be negative")
	}
	if o.syncConcurrency < 1 || o.syncConcurrency > maxSyncConcurrency {
		return cli.UsageError("run: --sync-concurrency must be between 1 and %d, got %d", maxSyncConcurrency, o.syncConcurrency)
	}
	if o.resyncInterval < minResyncInterval {
		return cli.UsageError("run: --resync-interval must be at least %s, got %s", minResyncInterval, o.resyncInterval)
	}
	if err := o.check(); err != nil {
		return err
	}
	if c := o.sandboxCgroup; c != executor.CgroupAuto && c != executor.CgroupNone && !strings.HasPrefix(c, "/") {
		return cli.UsageError("run: --sandbox-cgroup: want auto, none or the absolute path of a cgroup directory (cgroup v1: one per hierarchy, comma-separated), got %q", c)
	}
	if !o.once {
		dev := c.Getenv("INNGEST_DEV") != ""
		if err := checkListen(o.listen, dev, o.allowInsecureListen); err != nil {
			return err
		}
		if dev && o.allowInsecureListen {
			if host, _, err := net.SplitHostPort(o.listen); err != nil || !isLoopbackHost(host) {
				logger.Warn(insecureListenWarning, "listen", o.listen)
			}
		}
	}
	// The daemon resolves secrets: a reference the tenant may not use is
	// a problem of its definition, which keeps its last applied version.
	secrets := executor.NewSecrets(o.secretsDir, c.Getenv)
	o.grants = secrets.Grants(true)
	secrets.WarnUngranted(logger)
	promReg := prometheus.NewRegistry()
	promReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg, err := o.registry(c.Getenv, logger, promReg)
	if err != nil {
		return err
	}
	st, err := o.open(ctx, store.Options{AppPrefix: o.appPrefix})
	if err != nil {
		return err
	}
	defer st.Close()
	if n, err := st.Migrate(ctx); err != nil {
		return err
	} else if n > 0 {
		logger.Info("migrated", "applied", n)
	}
	if reg != nil {
		// Every replica and `tasksync trigger` sign and check tasksync's
		// own events with the key the store keeps.
		key, err := st.EventKey(ctx)
		if err != nil {
			return err
		}
		reg.SetSigner(key)
	}

	if !o.once {
		return runDaemon(ctx, o, c, logger, st, reg, promReg)
	}

	var apps reconciler.Apps
	if reg != nil {
		apps = reg.WithRunner(inngest.RefuseRuns{})
	}
	ctrl, err := o.controller(st, apps, nil, nil, 0, logger, promReg)
	if err != nil {
		return err
	}
	p, err := ctrl.Once(ctx)
	if errors.Is(err, reconciler.ErrNotLeader) {
		statuses, _ := st.TenantStatuses(ctx) // none when the store cannot say
		return &cli.ExitError{Code: cli.ExitFailure, Err: reconciler.NotLeaderError(reconciler.HeldTenants(statuses))}
	}
	if err != nil {
		return err
	}
	if p.Applied == nil {
		return &cli.ExitError{Code: cli.ExitFailure, Err: p.Err}
	}
	p.WriteText(c.Stdout, apps != nil)
	switch {
	case apps == nil && p.Applied.ServedChanged() > 0 && !o.postgresOnly:
		// Postgres now differs from what Inngest has: the apps would
		// have to be synced, and nothing here can.
		fmt.Fprintf(c.Stdout, "Inngest: not configured (INNGEST_DEV or INNGEST_SIGNING_KEY): %s changed in Postgres only, their apps are not synced.\n", reconciler.Plural(p.Applied.ServedChanged(), "tenant"))
		return &cli.ExitError{Code: cli.ExitFailure, Err: errors.New("Inngest is not configured: set INNGEST_DEV or INNGEST_SIGNING_KEY to sync the apps, " +
			"or pass --postgres-only to leave their sync to the daemon (it syncs every app when it starts)")}
	case apps == nil:
		logger.Warn("Inngest is not configured (INNGEST_DEV or INNGEST_SIGNING_KEY): definitions were applied to Postgres only")
	case len(p.Unsynced) > 0:
		return errExit1
	}
	if p.Err != nil {
		return &cli.ExitError{Code: cli.ExitFailure, Err: p.Err}
	}
	if p.Result != reconciler.ReconcileSuccess {
		return errExit1
	}
	return nil
}

// reuseParsed is how long the daemon reuses a definition file's parsed
// result while nothing it was made from changed (definitions.Options.Reuse):
// each file is parsed again after one to two hours even so, and on SIGHUP.
const reuseParsed = time.Hour

// controller builds the controller of the tree in o.dir over st, syncing
// apps (nil: Inngest is not configured), reconciling changes and
// rescanning on request; reuse is the loader's definitions.Options.Reuse.
func (o *runOptions) controller(st *store.Store, apps reconciler.Apps, changes <-chan reconciler.TreeChange, rescan <-chan struct{}, reuse time.Duration, logger *slog.Logger, promReg prometheus.Registerer) (*reconciler.Controller, error) {
	tree, err := o.tree(reuse)
	if err != nil {
		return nil, err
	}
	rev := tree.Revision()
	logger.Info("tree", "dir", o.dir, "role", definitions.ClassifyPath(o.dir, o.dir, true).String(), "commit", rev.Commit, "ref", rev.Ref)
	return reconciler.NewController(reconciler.ControllerOptions{
		Tree: tree, Budget: o.budget, Workers: reconcileWorkers(),
		State: st, Elector: st.Elector(store.LeaderOptions{Logger: logger}), Apps: apps,
		Changes: changes, Rescan: rescan, Resync: o.resyncInterval, Grace: shutdownGrace, SyncConcurrency: o.syncConcurrency,
		Logger: logger, Registerer: promReg,
		Runs: st, RunRetention: o.runRetention, AbandonGrace: o.abandonGrace,
	}), nil
}
