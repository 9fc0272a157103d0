package reconciler_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/store"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// loadCount counts, per tenant, the applied definitions a follower loads
// from the real store, and the apps it serves them as; scans counts the
// loads of every tenant in one query.
type loadCount struct {
	reconciler.AppliedState
	mu    sync.Mutex
	loads map[string]int
	scans int
}

func (c *loadCount) EachTenantDefinitions(ctx context.Context, fn func(string, []reconciler.Definition) error) error {
	c.mu.Lock()
	c.scans++
	c.mu.Unlock()
	return c.AppliedState.(reconciler.DefinitionsScanner).EachTenantDefinitions(ctx, func(tenant string, defs []reconciler.Definition) error {
		c.mu.Lock()
		c.loads[tenant]++
		c.mu.Unlock()
		return fn(tenant, defs)
	})
}

func (c *loadCount) Definitions(ctx context.Context, tenant string) ([]reconciler.Definition, error) {
	c.mu.Lock()
	c.loads[tenant]++
	c.mu.Unlock()
	return c.AppliedState.Definitions(ctx, tenant)
}

func (c *loadCount) of(tenant string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loads[tenant]
}

// servedApps records what a follower serves: the hashes of each tenant's
// definitions, as last set. Nothing is synced by a follower.
type servedApps struct {
	reconciler.Apps
	mu     sync.Mutex
	hashes map[string][]string
}

func (a *servedApps) SetTenant(tenant string, defs []reconciler.Definition) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var hs []string
	for _, d := range defs {
		hs = append(hs, d.Metadata.Code+"="+d.Hash)
	}
	a.hashes[tenant] = hs
	return nil
}

func (a *servedApps) served(tenant string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hashes[tenant]
}

// TestFollowerReloadsOnlyChangedTenant: when the leader applies a change
// to one tenant, a follower reloads that tenant's definitions (one query)
// and no other's. The follower's last load shows in
// tasksync_follower_last_load_success_timestamp_seconds, and every tenant
// has its tasksync_missed_fires_total at 0 on the leader before any miss.
func TestFollowerReloadsOnlyChangedTenant(t *testing.T) {
	r := newRig(t, map[string]string{
		"acme/tasks.yaml":    controllerTask("nightly", "0 2 * * *"),
		"globex/tasks.yaml":  controllerTask("nightly", "0 3 * * *"),
		"initech/tasks.yaml": controllerTask("nightly", "0 4 * * *"),
	}, rigOptions{})
	r.run(t)

	counted := &loadCount{AppliedState: r.st, loads: map[string]int{}}
	apps := &servedApps{hashes: map[string][]string{}}
	metrics := prometheus.NewRegistry()
	follower := reconciler.NewController(reconciler.ControllerOptions{
		State: counted, Registerer: metrics,
		Elector: r.st.Elector(store.LeaderOptions{Poll: time.Hour, Check: time.Hour}),
		Apps:    apps,
		Resync:  time.Hour, Poll: 50 * time.Millisecond, Grace: time.Second,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- follower.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waittest.For(t, "the follower ready", 30*time.Second, follower.Ready)
	if follower.Leader() {
		t.Fatal("the follower leads; the rig's controller should")
	}
	for _, tenant := range []string{"acme", "globex", "initech"} {
		if got := counted.of(tenant); got != 1 {
			t.Fatalf("tenant %s loaded %d times at the start, want 1", tenant, got)
		}
	}
	counted.mu.Lock()
	if counted.scans != 1 {
		t.Errorf("the follower's first load read the tenants in %d scans, want one query for all", counted.scans)
	}
	counted.mu.Unlock()
	before := apps.served("globex")
	loadedAt := func() float64 {
		fams, err := metrics.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() == "tasksync_follower_last_load_success_timestamp_seconds" {
				return f.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("the follower exports no tasksync_follower_last_load_success_timestamp_seconds")
		return 0
	}
	first := loadedAt()
	if now := float64(time.Now().Unix()); first < now-60 || first > now+1 {
		t.Errorf("the follower's last load at %v, want about now (%v)", first, now)
	}
	waittest.For(t, "the follower's next load", 10*time.Second, func() bool { return loadedAt() > first })
	for _, tenant := range []string{"acme", "globex", "initech"} {
		if got := r.metric("tasksync_missed_fires_total", tenant); got != 0 {
			t.Errorf("tasksync_missed_fires_total{tenant=%q} = %v on the leader, want present at 0", tenant, got)
		}
	}

	r.write(t, "globex/tasks.yaml", controllerTask("nightly", "0 5 * * *"))
	r.change(t, reconciler.TreeChange{Tenants: []string{"globex"}})
	waittest.For(t, "the follower serving globex's new version", 30*time.Second, func() bool {
		got := apps.served("globex")
		return len(got) == 1 && got[0] != before[0]
	})
	// Many more polls than it took to see the change: no other tenant is
	// reloaded by any of them.
	waittest.Never(t, "a reload of an unchanged tenant", time.Second, func() bool {
		return counted.of("acme") != 1 || counted.of("initech") != 1 || counted.of("globex") != 2
	})
}
