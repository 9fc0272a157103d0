package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/riveredge/tasksync/internal/cli"
	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/executor"
	"github.com/riveredge/tasksync/reconciler/inngest"
	"github.com/riveredge/tasksync/reconciler/statusapi"
	"github.com/riveredge/tasksync/reconciler/store"
	"github.com/riveredge/tasksync/reconciler/watch"
	"github.com/riveredge/tasksync/reconciler/webui"
)

// shutdownGrace bounds draining HTTP and in-flight work on shutdown.
const shutdownGrace = 10 * time.Second

// Reasons /readyz gives for a 503: fixed phrases, never an error's text.
const (
	reasonStarting = "starting"
	reasonDatabase = "database unavailable"
)

// runDaemon is `tasksync run`: it serves every tenant's Inngest app and
// executes runs from the applied state; the replica holding the leader
// lock also watches the tree and reconciles it (reconciler.Controller).
func runDaemon(ctx context.Context, o *runOptions, c *cli.Invocation, logger *slog.Logger, st *store.Store, reg *inngest.Registry, promReg *prometheus.Registry) error {
	if reg == nil {
		return cli.UsageError("run: Inngest is not configured: set INNGEST_DEV (the dev server's URL) or INNGEST_SIGNING_KEY")
	}
	actions, err := o.actions(ctx, c.Getenv, logger)
	if err != nil {
		return err
	}
	spool := reconciler.NewRunSpool(st, reconciler.SpoolOptions{Logger: logger})
	spool.RegisterMetrics(promReg)
	registerBuildInfo(promReg)
	runner := &reconciler.TaskRunner{Records: st, Spool: spool, Actions: actions}
	changes := make(chan watch.Change, 1)
	rescan := make(chan struct{}, 1)
	ctrl, err := o.controller(st, reg.WithRunner(runner), changes, rescan, reuseParsed, logger, promReg)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	if err := checkListener(ln, c.Getenv("INNGEST_DEV") != "", o.allowInsecureListen); err != nil {
		ln.Close()
		return err
	}
	handler, err := routes(ctrl, st, reg, promReg, o.tokensFile, o.inngestUIURL(c.Getenv), logger)
	if err != nil {
		ln.Close()
		return cli.UsageError("%v", err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	logger.Info("serving", "listen", ln.Addr().String(), "inngest_apps", reg.ServeOrigin()+inngest.ServePath+"<tenant>")

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	g.Go(func() error {
		return watch.New(o.dir, watch.Options{Logger: logger}).Run(gctx, changes)
	})
	g.Go(func() error { return ctrl.Run(gctx) })
	g.Go(func() error { queueRescans(gctx, c.Hangups, rescan, logger); return nil })
	g.Go(func() error { return spool.Run(gctx) })
	err = g.Wait()
	// Runs drained by the HTTP server's shutdown may have spooled records
	// after the spool's own last flush.
	spool.Close(context.WithoutCancel(ctx))
	if ctx.Err() != nil {
		logger.Info("stopped")
		return nil
	}
	return err
}

// queueRescans turns each SIGHUP into a rescan request for the
// controller; one already queued absorbs the next.
func queueRescans(ctx context.Context, hangups <-chan os.Signal, rescan chan<- struct{}, logger *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hangups:
		}
		logger.Info("SIGHUP: rescan queued")
		select {
		case rescan <- struct{}{}:
		default:
		}
	}
}

// actions are the executors of the task steps (executor.NewActions).
func (o *runOptions) actions(ctx context.Context, getenv func(string) string, logger *slog.Logger) (*executor.Actions, error) {
	allow, err := executor.ParseCIDRs(strings.Split(o.allowCIDRs, ","))
	if err != nil {
		return nil, cli.UsageError("%v", err)
	}
	uids, err := executor.ParseUIDRange(o.sandboxUIDs)
	if err != nil {
		return nil, cli.UsageError("--sandbox-uids: %v", err)
	}
	return executor.NewActions(ctx, executor.ActionsOptions{
		Allow: allow, DNSServer: o.dnsServer, Secrets: executor.NewSecrets(o.secretsDir, getenv), Hide: []string{o.dir, o.secretsDir},
		Sandbox: &executor.Sandbox{Python: o.python, UIDs: uids, Cgroup: o.sandboxCgroup, Logger: logger}, Logger: logger,
	})
}

// routes are the daemon's HTTP endpoints. inngestUI is the base URL of
// the Inngest UI the web page links to ("" for no links).
func routes(ctrl *reconciler.Controller, st *store.Store, reg *inngest.Registry, promReg *prometheus.Registry, tokensFile, inngestUI string, logger *slog.Logger) (http.Handler, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !ctrl.Ready() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "reason": reasonStarting})
			return
		}
		if err := st.Ping(r.Context()); err != nil {
			// Anyone may read /readyz: the reason is a fixed phrase, the
			// error (with the database's address) goes to the log only.
			logger.Warn("readiness: the database does not answer", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "reason": reasonDatabase})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"ready": true, "leader": ctrl.Leader()})
	})
	// The metrics carry every tenant's counts: with a tokens file they
	// take a token for every tenant, as the status API's global view does.
	status := statusapi.NewHandler(statusapi.Options{Reader: st, Leader: ctrl.Leader, TokensFile: tokensFile, Logger: logger,
		Metrics: promhttp.HandlerFor(promReg, promhttp.HandlerOpts{})})
	mux.Handle("/metrics", status) // GET and HEAD; other methods 405, as the status API
	mux.Handle(inngest.ServePath, reg)
	mux.Handle("/v1/", status)
	// The read-only web page reads the status API through its handler,
	// with the caller's token: it shows what the API would, no more.
	ui, err := webui.NewHandler(webui.Options{API: status, InngestUIURL: inngestUI, Logger: logger})
	if err != nil {
		return nil, err
	}
	mux.Handle(webui.Path, ui)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, webui.Path, http.StatusFound)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "no such endpoint: " + r.URL.Path, "status": http.StatusNotFound})
	})
	// A panic anywhere below is logged and counted (tasksync_panics_total).
	return reg.Recover(mux), nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return // the client went away; nothing else to tell it
	}
}

// registerBuildInfo exposes the running version.
func registerBuildInfo(reg prometheus.Registerer) {
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tasksync_build_info", Help: "The running version."}, []string{"version"})
	build.WithLabelValues(version).Set(1)
	reg.MustRegister(build)
}
