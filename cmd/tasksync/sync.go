package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/inngest"
	"github.com/riveredge/tasksync/reconciler/store"
)

// inngestFlags are the flags that place tasksync's apps for Inngest; the
// connection itself is configured by the SDK's environment variables.
type inngestFlags struct {
	listen      string
	serveOrigin string
	appPrefix   string
}

func (o *inngestFlags) flags(f *flagSet) {
	f.string(&o.listen, "listen", "TASKSYNC_LISTEN", "127.0.0.1:8080", "`address` the daemon serves HTTP on")
	f.string(&o.serveOrigin, "serve-origin", "TASKSYNC_SERVE_ORIGIN", "", "`origin` Inngest calls the apps at (default http:// + --listen)")
	f.string(&o.appPrefix, "app-prefix", "TASKSYNC_APP_PREFIX", "tasksync", "`prefix` of the Inngest app ids: <prefix>-<tenant>")
}

// registry builds the Inngest registry from the flags and the SDK's
// environment variables, or returns nil when Inngest is not configured.
func (o *inngestFlags) registry(getenv func(string) string, logger *slog.Logger, metrics prometheus.Registerer) (*inngest.Registry, error) {
	dev, signing := getenv("INNGEST_DEV"), getenv("INNGEST_SIGNING_KEY")
	if dev == "" && signing == "" {
		return nil, nil
	}
	if dev == "1" || dev == "true" {
		dev = "http://127.0.0.1:8288"
	}
	origin := o.serveOrigin
	if origin == "" {
		host, port, err := net.SplitHostPort(o.listen)
		if err != nil {
			return nil, usageError("--listen %q: %v", o.listen, err)
		}
		origin = "http://" + net.JoinHostPort(host, port)
	}
	reg, err := inngest.New(inngest.Options{
		AppPrefix:          o.appPrefix,
		ServeOrigin:        origin,
		DevURL:             dev,
		BaseURL:            getenv("INNGEST_BASE_URL"),
		SigningKey:         signing,
		SigningKeyFallback: getenv("INNGEST_SIGNING_KEY_FALLBACK"),
		EventKey:           getenv("INNGEST_EVENT_KEY"),
		Env:                getenv("INNGEST_ENV"),
		Logger:             logger,
		Registerer:         metrics,
	})
	if err != nil {
		return nil, err
	}
	return reg, nil
}

// errRejected is a tenant synced without the functions Inngest refused.
var errRejected = errors.New("Inngest rejected functions")

// refuseRuns stands in for the task runner in a process that registers
// apps but does not serve them (run --once): the daemon executes runs.
type refuseRuns struct{}

func (refuseRuns) Run(context.Context, string, reconciler.Definition, reconciler.RunInput) (any, error) {
	return nil, errors.New("this process registers apps but does not execute runs")
}

// StepActions: none, this process executes no runs.
func (refuseRuns) StepActions() reconciler.Actions { return nil }

// RunRecords: none, this process executes no runs.
func (refuseRuns) RunRecords() reconciler.RunRecorder { return nil }

// syncAttempts and syncBackoff bound how a tenant's failing sync is retried
// within one run: 0.5 s, then 1 s, then it is reported.
const (
	syncAttempts = 3
	syncBackoff  = 500 * time.Millisecond
	// syncParallel tenants sync at once. More did not help: with 1,000
	// apps, 16 at once made a cold start slower (docs/benchmarks.md).
	syncParallel = 4
)

// syncTenants serves each tenant's applied definitions (last known good
// versions included) as its app, syncs it, verifies Inngest's view and
// syncs once more on drift; a failure is retried with backoff. Tenants
// sync a few at a time, so that one tenant's trouble never holds up the
// others. It records each tenant's sync state and returns the tenants
// that could not be synced.
//
// only limits the sync to the named tenants; nil syncs every tenant.
func syncTenants(ctx context.Context, st *store.Store, reg *inngest.Registry, run inngest.Runner, logger *slog.Logger, only []string) map[string]error {
	failed := map[string]error{}
	tenants := only
	if tenants == nil {
		var err error
		if tenants, err = st.Tenants(ctx); err != nil {
			failed["*"] = err
			return failed
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	slots := make(chan struct{}, syncParallel)
	for _, tenant := range tenants {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			var err error
			for attempt := range syncAttempts {
				if attempt > 0 {
					select {
					case <-ctx.Done():
						err = ctx.Err()
					case <-time.After(syncBackoff << (attempt - 1)):
					}
				}
				if err = syncTenant(ctx, st, reg, run, tenant); err == nil || ctx.Err() != nil || errors.Is(err, errRejected) {
					break
				}
			}
			state, msg := store.SyncSynced, ""
			if err != nil {
				state, msg = store.SyncFailed, err.Error()
				if errors.Is(err, errRejected) {
					state = store.SyncSynced // synced, without what was rejected
				}
				mu.Lock()
				failed[tenant] = err
				mu.Unlock()
				logger.Error("sync", "tenant", tenant, "app", reg.AppID(tenant), "err", err)
			} else {
				logger.Info("sync", "tenant", tenant, "app", reg.AppID(tenant), "functions", len(reg.Functions(tenant)))
			}
			if err := st.SetSyncState(ctx, tenant, state, msg); err != nil {
				logger.Warn("cannot record the sync state", "tenant", tenant, "err", err)
			}
		})
	}
	wg.Wait()
	return failed
}

func syncTenant(ctx context.Context, st *store.Store, reg *inngest.Registry, run inngest.Runner, tenant string) error {
	defs, err := st.Definitions(ctx, tenant)
	if err != nil {
		return err
	}
	if err := reg.SetTenant(tenant, defs, run); err != nil {
		return err
	}
	versions := make(map[string]string, len(defs)) // code → the hash served
	for _, d := range defs {
		versions[d.Metadata.Code] = d.Hash
	}
	for attempt := 0; attempt < 2; attempt++ {
		rejected, err := reg.SyncIsolating(ctx, tenant)
		if err != nil {
			return err
		}
		for code, why := range rejected {
			if err := st.SetDefinitionSyncState(ctx, tenant, code, versions[code], store.SyncRejected, why); err != nil {
				return err
			}
		}
		if len(rejected) > 0 {
			// The rest of the app is synced: its one-shots are due too.
			synced := maps.Clone(versions)
			maps.DeleteFunc(synced, func(code, _ string) bool { _, ok := rejected[code]; return ok })
			if err := st.SetDefinitionsSynced(ctx, tenant, synced); err != nil {
				return err
			}
			if _, err := reg.SendOneShots(ctx, tenant, time.Now()); err != nil {
				return err
			}
			return fmt.Errorf("%w: kept out of the app: %v", errRejected, slices.Sorted(maps.Keys(rejected)))
		}
		drift, err := reg.Verify(ctx, tenant)
		if err != nil {
			return err
		}
		if drift.None() {
			if err := st.SetDefinitionsSynced(ctx, tenant, versions); err != nil {
				return err
			}
			_, err := reg.SendOneShots(ctx, tenant, time.Now())
			return err
		}
		if attempt == 1 {
			return fmt.Errorf("inngest still differs after a re-sync: missing %v, left over %v", drift.Missing, drift.Extra)
		}
	}
	return nil
}
