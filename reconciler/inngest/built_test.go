package inngest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/inngest"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// trackedRegistry is a registry with at most built apps built, served on
// loopback; calls records the status of every POST (a function call from
// Inngest) by tenant.
type trackedRegistry struct {
	*inngest.Registry
	mu    sync.Mutex
	calls map[string][]int
}

func newTrackedRegistry(t *testing.T, built int) *trackedRegistry {
	t.Helper()
	s := &trackedRegistry{calls: map[string][]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		s.ServeHTTP(rec, r)
		if r.Method == http.MethodPost {
			s.mu.Lock()
			tenant := strings.TrimPrefix(r.URL.Path, inngest.ServePath)
			s.calls[tenant] = append(s.calls[tenant], rec.status)
			s.mu.Unlock()
		}
	}))
	t.Cleanup(srv.Close)
	reg, err := inngest.New(inngest.Options{AppPrefix: fmt.Sprintf("b%d", time.Now().UnixNano()%1e6), ServeOrigin: srv.URL,
		DevURL: dev.URL, BuiltApps: built})
	if err != nil {
		t.Fatal(err)
	}
	s.Registry = reg
	return s
}

// callStatuses are the statuses of the calls of tenant's app so far.
func (s *trackedRegistry) callStatuses(tenant string) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.calls[tenant]...)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// gateRunner counts the runs that ended, by tenant and code; a run of
// code "slow" tells it started and waits for release.
type gateRunner struct {
	nopRunner
	started chan string
	release chan struct{}
	mu      sync.Mutex
	ended   map[string]int
}

func newGateRunner() *gateRunner {
	return &gateRunner{started: make(chan string, 8), release: make(chan struct{}), ended: map[string]int{}}
}

func (g *gateRunner) Run(ctx context.Context, tenant string, d reconciler.Definition, _ reconciler.RunInput) (any, error) {
	if d.Metadata.Code == "slow" {
		g.started <- tenant
		select {
		case <-g.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	g.mu.Lock()
	g.ended[tenant+"/"+d.Metadata.Code]++
	g.mu.Unlock()
	return map[string]any{"ok": true}, nil
}

func (g *gateRunner) count(key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ended[key]
}

// TestEvictedAppStillServes: with room for two built apps and three
// tenants, an app that fell out of the set still serves a run Inngest
// sends it (built again for the call), a call in flight when its app
// falls out completes, and the app built again registers the same: the
// same registration hash, the same functions in Inngest, no drift.
func TestEvictedAppStillServes(t *testing.T) {
	reg := newTrackedRegistry(t, 2)
	runner := newGateRunner()
	ctx := context.Background()
	later := time.Now().Add(365 * 24 * time.Hour)
	for _, tenant := range []string{"acme", "globex", "initech"} {
		defs := []reconciler.Definition{
			def("nightly", reconciler.Trigger{Cron: "0 2 * * *", Timezone: "Asia/Shanghai"}),
			def("ping", reconciler.Trigger{Event: "built/ping", If: `event.data.plan != "free"`}),
			def("slow", reconciler.Trigger{Event: "built/slow"}),
			def("later", reconciler.Trigger{At: &later}),
		}
		defs[3].Hash = "later-" + tenant
		if err := reg.SetTenant(tenant, defs, runner); err != nil {
			t.Fatal(err)
		}
	}
	if n := inngest.Builds(reg.Registry); n != 0 {
		t.Fatalf("SetTenant built %d apps, want none before their first use", n)
	}
	hash, err := reg.RegistrationHash(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	syncAndVerify(t, reg.Registry, "acme")
	registered := dev.Functions(t, reg.AppID("acme"))
	syncAndVerify(t, reg.Registry, "globex")
	syncAndVerify(t, reg.Registry, "initech")
	if inngest.Built(reg.Registry, "acme") || inngest.BuiltApps(reg.Registry) != 2 || inngest.Builds(reg.Registry) != 3 {
		t.Fatalf("after syncing three apps with room for two: acme built %v, %d built, %d builds; want acme out, 2, 3",
			inngest.Built(reg.Registry, "acme"), inngest.BuiltApps(reg.Registry), inngest.Builds(reg.Registry))
	}
	// Sending tasksync's own events builds no app.
	if n, err := reg.SendOneShots(ctx, "acme", time.Now()); err != nil || n != 1 {
		t.Fatalf("SendOneShots = %d, %v; want the one-shot sent", n, err)
	}
	if inngest.Built(reg.Registry, "acme") {
		t.Error("SendOneShots built the app")
	}

	// Inngest calls the evicted app: it is built again and runs.
	waittest.For(t, "acme's ping to run", 60*time.Second, func() bool {
		sendEvent(t, "built/ping", map[string]any{"tenant_id": "acme", "plan": "pro"})
		return waittest.Within(5*time.Second, func() bool { return runner.count("acme/ping") > 0 })
	})
	if !inngest.Built(reg.Registry, "acme") || inngest.Builds(reg.Registry) != 4 {
		t.Errorf("after acme's run: built %v, %d builds; want acme built again, 4", inngest.Built(reg.Registry, "acme"), inngest.Builds(reg.Registry))
	}

	// A call in flight when its app falls out completes.
	sendEvent(t, "built/slow", map[string]any{"tenant_id": "acme"})
	select {
	case <-runner.started:
	case <-time.After(60 * time.Second):
		t.Fatal("acme's slow run did not start")
	}
	before := len(reg.callStatuses("acme"))
	for _, other := range []string{"globex", "initech"} {
		if _, err := reg.RegistrationHash(ctx, other); err != nil {
			t.Fatal(err)
		}
	}
	if inngest.Built(reg.Registry, "acme") {
		t.Fatal("acme is still built after two other apps were used")
	}
	close(runner.release)
	waittest.For(t, "acme's slow run to end", 30*time.Second, func() bool { return runner.count("acme/slow") > 0 })
	waittest.For(t, "the slow call to be answered", 10*time.Second, func() bool { return len(reg.callStatuses("acme")) > before })
	for _, status := range reg.callStatuses("acme") {
		if status/100 != 2 {
			t.Errorf("acme's calls answered %v, want every one 2xx", reg.callStatuses("acme"))
			break
		}
	}

	// Built again, the app registers the same.
	if inngest.Built(reg.Registry, "acme") {
		t.Fatal("acme built again before its registration hash was asked for")
	}
	again, err := reg.RegistrationHash(ctx, "acme")
	if err != nil || again != hash {
		t.Errorf("registration hash of acme built again = %s, %v; want %s", again, err, hash)
	}
	for _, other := range []string{"globex", "initech"} {
		if _, err := reg.RegistrationHash(ctx, other); err != nil {
			t.Fatal(err)
		}
	}
	syncAndVerify(t, reg.Registry, "acme")
	if got := dev.Functions(t, reg.AppID("acme")); !reflect.DeepEqual(got, registered) {
		t.Errorf("functions registered by acme built again = %+v, want %+v", got, registered)
	}
	if inngest.BuiltApps(reg.Registry) > 2 {
		t.Errorf("%d apps built, want at most 2", inngest.BuiltApps(reg.Registry))
	}
}

// TestFirstUseBuildsOnce: callers that use an app not built at the same
// time build it once, and see the same app.
func TestFirstUseBuildsOnce(t *testing.T) {
	reg := newTrackedRegistry(t, 2)
	if err := reg.SetTenant("acme", []reconciler.Definition{
		def("nightly", reconciler.Trigger{Cron: "0 2 * * *"}),
		def("ping", reconciler.Trigger{Event: "user/ping"}),
	}, nopRunner{}); err != nil {
		t.Fatal(err)
	}
	const callers = 16
	hashes := make([]string, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range callers {
		wg.Go(func() {
			<-start
			hashes[i], errs[i] = reg.RegistrationHash(context.Background(), "acme")
		})
	}
	close(start)
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || hashes[i] != hashes[0] {
			t.Errorf("caller %d: hash %s, err %v; want %s", i, hashes[i], errs[i], hashes[0])
		}
	}
	if n := inngest.Builds(reg.Registry); n != 1 {
		t.Errorf("%d callers at once built the app %d times, want once", callers, n)
	}
	// Replacing the app drops the built one: the next use builds anew.
	if err := reg.SetTenant("acme", []reconciler.Definition{def("ping", reconciler.Trigger{Event: "user/ping"})}, nopRunner{}); err != nil {
		t.Fatal(err)
	}
	if inngest.Built(reg.Registry, "acme") || inngest.BuiltApps(reg.Registry) != 0 {
		t.Errorf("the replaced app is still built (%d built)", inngest.BuiltApps(reg.Registry))
	}
	if h, err := reg.RegistrationHash(context.Background(), "acme"); err != nil || h == hashes[0] {
		t.Errorf("hash of the replaced app = %s, %v; want another than %s", h, err, hashes[0])
	}
	if n := inngest.Builds(reg.Registry); n != 2 {
		t.Errorf("%d builds, want 2", n)
	}
}

// TestSetTenantRefuses: what building an app would refuse, SetTenant
// refuses at once, though it builds nothing, and the tenant keeps the app
// it had.
func TestSetTenantRefuses(t *testing.T) {
	reg := newTrackedRegistry(t, 2)
	good := []reconciler.Definition{def("nightly", reconciler.Trigger{Cron: "0 2 * * *"})}
	if err := reg.SetTenant("acme", good, nopRunner{}); err != nil {
		t.Fatal(err)
	}
	want := reg.Functions("acme")
	// An interval that is not positive (the loader refuses it; the
	// registry does not rely on that) has no Inngest trigger.
	negative := def("negative", reconciler.Trigger{Interval: reconciler.Duration(-time.Minute)})
	err := reg.SetTenant("acme", []reconciler.Definition{def("other", reconciler.Trigger{Event: "x/y"}), negative}, nopRunner{})
	if err == nil || !strings.Contains(err.Error(), "negative") || !strings.Contains(err.Error(), "not positive") {
		t.Errorf("SetTenant with a negative interval = %v, want an error naming the function and why", err)
	}
	if got := reg.Functions("acme"); !reflect.DeepEqual(got, want) {
		t.Errorf("after a refused SetTenant the app serves %v, want %v", got, want)
	}
	// An inactive definition is not served, so not refused.
	off := negative
	off.Spec.Active = false
	if err := reg.SetTenant("acme", append(good, off), nopRunner{}); err != nil {
		t.Errorf("SetTenant with an inactive definition of a negative interval: %v", err)
	}
	if n := inngest.Builds(reg.Registry); n != 0 {
		t.Errorf("%d builds, want none", n)
	}

	bad, err := inngest.New(inngest.Options{ServeOrigin: "tasksync.example.com", DevURL: dev.URL})
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.SetTenant("acme", good, nopRunner{}); err == nil || !strings.Contains(err.Error(), "serve origin") {
		t.Errorf("SetTenant with a relative serve origin = %v, want refused", err)
	}
}
