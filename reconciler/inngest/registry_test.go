package inngest_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/inngest"
	"github.com/riveredge/tasksync/reconciler/inngest/inngesttest"
	"github.com/riveredge/tasksync/reconciler/store"
	"github.com/riveredge/tasksync/reconciler/store/storetest"
	"github.com/riveredge/tasksync/reconciler/testmain"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

var (
	dev *inngesttest.Server
	pg  *storetest.Cluster
)

func TestMain(m *testing.M) {
	os.Exit(testmain.Run(m, testmain.Options{Postgres: &pg, Inngest: &dev}))
}

type nopRunner struct{}

func (nopRunner) Run(context.Context, string, reconciler.Definition, reconciler.RunInput) (any, error) {
	return nil, nil
}

func (nopRunner) StepActions() reconciler.Actions { return nil }

func (nopRunner) RunRecords() reconciler.RunRecorder { return nil }

func def(code string, t reconciler.Trigger) reconciler.Definition {
	return reconciler.Definition{Kind: reconciler.KindScheduledTask, Metadata: reconciler.Metadata{Code: code},
		Spec: reconciler.Spec{Active: true, Trigger: t, Retries: 3, Concurrency: 1}}
}

func newRegistry(t *testing.T) *inngest.Registry { return newRegistryB(t, nil) }

func newRegistryB(t testing.TB, metrics prometheus.Registerer) *inngest.Registry {
	return servedRegistry(t, inngest.Options{Registerer: metrics})
}

// servedRegistry is a registry with opts, served by an HTTP server of its
// own that the dev server calls, under an app prefix of its own ("t" and
// a number, unless opts names one).
func servedRegistry(t testing.TB, opts inngest.Options) *inngest.Registry {
	t.Helper()
	var reg *inngest.Registry
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reg.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	if opts.AppPrefix == "" {
		opts.AppPrefix = fmt.Sprintf("t%d", time.Now().UnixNano()%1e6)
	}
	opts.ServeOrigin, opts.DevURL = srv.URL, dev.URL
	r, err := inngest.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	reg = r
	return reg
}

func syncAndVerify(t *testing.T, reg *inngest.Registry, tenant string) {
	t.Helper()
	ctx := context.Background()
	if err := reg.Sync(ctx, tenant); err != nil {
		t.Fatalf("sync %s: %v", tenant, err)
	}
	d, err := reg.Verify(ctx, tenant)
	if err != nil || !d.None() {
		t.Fatalf("verify %s after sync: drift %+v, err %v", tenant, d, err)
	}
}

// TestAppsTriggersSyncVerify registers two tenants' apps with a real dev
// server and checks what it holds: cron with its time zone, intervals as
// exact crons, event triggers with the tenant guard; then retires one
// function, and recovers from a server restart.
func TestAppsTriggersSyncVerify(t *testing.T) {
	reg := newRegistry(t)
	acme := []reconciler.Definition{
		def("nightly", reconciler.Trigger{Cron: "0 2 * * *", Timezone: "Asia/Shanghai"}),
		def("daily", reconciler.Trigger{Cron: "@daily", Timezone: "UTC", Jitter: reconciler.Duration(30 * time.Second)}),
		def("every5", reconciler.Trigger{Interval: reconciler.Duration(5 * time.Minute)}),
		def("every7", reconciler.Trigger{Interval: reconciler.Duration(7 * time.Minute)}),
		def("on-signup", reconciler.Trigger{Event: "user/signed-up", If: `event.data.plan != "free"`}),
	}
	stopped := def("stopped", reconciler.Trigger{Interval: reconciler.Duration(time.Hour)})
	stopped.Spec.Active = false
	acme = append(acme, stopped)
	globex := []reconciler.Definition{def("on-signup", reconciler.Trigger{Event: "user/signed-up"})}
	if err := reg.SetTenant("acme", acme, nopRunner{}); err != nil {
		t.Fatal(err)
	}
	if err := reg.SetTenant("globex", globex, nopRunner{}); err != nil {
		t.Fatal(err)
	}
	syncAndVerify(t, reg, "acme")
	syncAndVerify(t, reg, "globex")

	fns := dev.Functions(t, reg.AppID("acme"))
	want := map[string]string{
		"nightly":   "cron:TZ=Asia/Shanghai 0 2 * * *",
		"daily":     "cron:TZ=UTC 0 0 * * *",
		"every5":    "cron:TZ=UTC */5 * * * *",
		"every7":    "event:tasksync/fire.due:event.data.tenant_id == 'acme' && event.data.code == 'every7'",
		"on-signup": `event:user/signed-up:(event.data.tenant_id == 'acme') && (event.data.plan != "free")`,
	}
	if len(fns) != len(want) {
		t.Errorf("acme functions = %v, want %d (the inactive one not served)", slices.Sorted(maps.Keys(fns)), len(want))
	}
	for code, w := range want {
		f, ok := fns[reg.FunctionID("acme", code)]
		if !ok {
			t.Errorf("function %s missing", code)
			continue
		}
		tr := f.Config.Triggers[0]
		got := "cron:" + tr.Cron
		if tr.Event != "" {
			got = "event:" + tr.Event + ":" + tr.Expression
		}
		if got != w {
			t.Errorf("%s trigger = %s, want %s", code, got, w)
		}
		// A scheduled function takes its catch-up runs' event too, and
		// every function its own manual run event, last.
		guard := "event.data.tenant_id == 'acme' && event.data.code == '" + code + "'"
		wantManual := inngesttest.Trigger{Event: reconciler.ManualRunEvent, Expression: guard}
		wantLen := 2
		if strings.HasPrefix(w, "cron:") {
			wantLen = 3
			if len(f.Config.Triggers) != 3 || f.Config.Triggers[1].Event != reconciler.FireEventName || f.Config.Triggers[1].Expression != guard {
				t.Errorf("%s triggers = %+v, want the cron and %s if %s", code, f.Config.Triggers, reconciler.FireEventName, guard)
			}
		}
		if len(f.Config.Triggers) != wantLen || f.Config.Triggers[wantLen-1] != wantManual {
			t.Errorf("%s triggers = %+v, want its own, then %+v", code, f.Config.Triggers, wantManual)
		}
	}
	if g := dev.Functions(t, reg.AppID("globex"))[reg.FunctionID("globex", "on-signup")]; !strings.Contains(g.Config.Triggers[0].Expression, "'globex'") {
		t.Errorf("globex trigger = %+v, want its own tenant guard", g.Config.Triggers)
	}

	// Retire one function: the others stay.
	if err := reg.SetTenant("acme", acme[1:], nopRunner{}); err != nil {
		t.Fatal(err)
	}
	syncAndVerify(t, reg, "acme")
	if fns := dev.Functions(t, reg.AppID("acme")); len(fns) != len(want)-1 || fns[reg.FunctionID("acme", "nightly")].ID != "" {
		t.Errorf("after retiring nightly: %v", slices.Sorted(maps.Keys(fns)))
	}
	if fns := dev.Functions(t, reg.AppID("globex")); len(fns) != 1 {
		t.Errorf("globex touched by acme's change: %v", slices.Sorted(maps.Keys(fns)))
	}

	// The server restarts and forgets everything: verify sees the drift,
	// a sync repairs it.
	if err := dev.Restart(); err != nil {
		t.Fatal(err)
	}
	d, err := reg.Verify(context.Background(), "acme")
	if err != nil || len(d.Missing) != len(want)-1 {
		t.Fatalf("verify after restart: %+v, %v; want every function missing", d, err)
	}
	syncAndVerify(t, reg, "acme")
}

// TestIntervalGrid: an interval a cron states exactly stays that cron;
// any other is started by fire events, one per instant: one Inngest run
// per fire.
func TestIntervalGrid(t *testing.T) {
	cases := []struct {
		every time.Duration
		cron  string // "" for fire events
	}{
		{5 * time.Minute, "TZ=UTC */5 * * * *"},
		{2 * time.Hour, "TZ=UTC 0 */2 * * *"},
		{7 * time.Minute, ""},
		{59 * time.Minute, ""},
		{61 * time.Minute, ""},
		{90 * time.Minute, ""},
		{25 * time.Hour, ""},
	}
	for _, tc := range cases {
		s, err := inngest.ScheduleOf("acme", "x", reconciler.Trigger{Interval: reconciler.Duration(tc.every)})
		if err != nil {
			t.Fatal(err)
		}
		if tc.cron != "" {
			if s.Trigger.CronTrigger == nil || s.Trigger.CronTrigger.Cron != tc.cron || s.Every != 0 {
				t.Errorf("%v: trigger %+v, want cron %s", tc.every, s.Trigger, tc.cron)
			}
			if len(s.Triggers()) != 2 {
				t.Errorf("%v: %d triggers, want the cron and the catch-up event", tc.every, len(s.Triggers()))
			}
			continue
		}
		if s.Trigger.EventTrigger == nil || s.Trigger.EventTrigger.Event != reconciler.FireEventName || s.Every != tc.every || len(s.Triggers()) != 1 {
			t.Errorf("%v: trigger %+v, every %v; want the fire event alone", tc.every, s.Triggers(), s.Every)
		}
	}
}

// TestSyncIsolatesARejectedFunction: when Inngest refuses an app because of
// one function, that function is kept out and named; the others sync.
func TestSyncIsolatesARejectedFunction(t *testing.T) {
	reg := newRegistry(t)
	bad := def("bad", reconciler.Trigger{Cron: "@every 5m", Timezone: "UTC"}) // Inngest's registration refuses @every
	defs := []reconciler.Definition{
		def("one", reconciler.Trigger{Cron: "0 1 * * *", Timezone: "UTC"}),
		bad,
		def("two", reconciler.Trigger{Event: "x/y"}),
	}
	if err := reg.SetTenant("acme", defs, nopRunner{}); err != nil {
		t.Fatal(err)
	}
	if err := reg.Sync(context.Background(), "acme"); !errors.Is(err, inngest.ErrRejected) {
		t.Fatalf("plain sync: err = %v, want ErrRejected", err)
	}
	rejected, err := reg.SyncIsolating(context.Background(), "acme")
	if err != nil || len(rejected) != 1 || rejected["bad"] == "" {
		t.Fatalf("SyncIsolating = %v, %v; want bad rejected", rejected, err)
	}
	d, err := reg.Verify(context.Background(), "acme")
	if err != nil || !d.None() {
		t.Errorf("verify: %+v %v", d, err)
	}
	fns := dev.Functions(t, reg.AppID("acme"))
	if len(fns) != 2 {
		t.Errorf("functions = %v, want one and two", slices.Sorted(maps.Keys(fns)))
	}
}

// TestSignedServer runs the same flow against the self-hosted server,
// which checks signatures: sync and verify with the signing key, an
// unsigned sync from outside refused, an event sent with the event key
// running the tenant's function through signed requests.
func TestSignedServer(t *testing.T) {
	srvInngest, err := inngesttest.StartSigned()
	if err != nil {
		t.Fatal(err)
	}
	defer srvInngest.Stop()
	rec := newRecorder(t)
	st, _ := pg.NewStore(t, store.Options{})
	tree := t.TempDir()
	deftest.WriteFile(t, filepath.Join(tree, "acme", "a.yaml"), deftest.Task{Code: "ping", Trigger: "{event: app/ping}", Config: fmt.Sprintf("{url: %q}", rec.URL+"/signed")}.String())
	applyTree(t, st, tree)
	var reg *inngest.Registry
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reg.ServeHTTP(w, r) }))
	defer srv.Close()
	reg, err = inngest.New(inngest.Options{AppPrefix: "signed", ServeOrigin: srv.URL, BaseURL: srvInngest.URL,
		SigningKey: srvInngest.SigningKey, EventKey: srvInngest.EventKey})
	if err != nil {
		t.Fatal(err)
	}
	defs, err := st.Definitions(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.SetTenant("acme", defs, newRunner(t, st, nil, nil)); err != nil {
		t.Fatal(err)
	}
	syncAndVerify(t, reg, "acme")

	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/api/inngest/acme", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned PUT from outside = %d, want 401", res.StatusCode)
	}

	body := `{"name":"app/ping","data":{"tenant_id":"acme"}}`
	res, err = http.Post(srvInngest.URL+"/e/"+srvInngest.EventKey, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	waittest.For(t, "the signed server to run the function", 30*time.Second, func() bool { return rec.count("/signed") == 1 })
}

// TestRegistrationHash: the hash of an app's registration is the same for
// the same definitions, built again (a restart), and differs when a
// function's configuration or the set of functions does.
func TestRegistrationHash(t *testing.T) {
	reg := newRegistry(t)
	ctx := context.Background()
	hash := func(defs ...reconciler.Definition) string {
		t.Helper()
		if err := reg.SetTenant("acme", defs, nopRunner{}); err != nil {
			t.Fatal(err)
		}
		h, err := reg.RegistrationHash(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	nightly := def("nightly", reconciler.Trigger{Cron: "0 2 * * *", Timezone: "Asia/Shanghai"})
	signup := def("on-signup", reconciler.Trigger{Event: "user/signed-up"})
	first := hash(nightly, signup)
	// The SDK lists an app's functions in no fixed order: eight
	// functions, built five times, must hash the same every time.
	var many []reconciler.Definition
	for i := range 8 {
		many = append(many, def(fmt.Sprintf("fn-%d", i), reconciler.Trigger{Event: fmt.Sprintf("e/%d", i)}))
	}
	want := hash(many...)
	for range 5 {
		if again := hash(many...); again != want {
			t.Fatalf("hash of the same app built again = %s, want %s", again, want)
		}
	}
	edited := def("nightly", reconciler.Trigger{Cron: "0 3 * * *", Timezone: "Asia/Shanghai"})
	if h := hash(edited, signup); h == first {
		t.Errorf("hash after a cron edit = the same %s, want another", h)
	}
	if h := hash(nightly); h == first {
		t.Errorf("hash without a function = the same %s, want another", h)
	}
	if _, err := reg.RegistrationHash(ctx, "nobody"); !errors.Is(err, inngest.ErrNoApp) {
		t.Errorf("RegistrationHash(nobody) = %v, want ErrNoApp", err)
	}
}

// TestViews: one read of the dev server's view of every app shows each
// synced app with its functions, and no app never synced.
func TestViews(t *testing.T) {
	reg := newRegistry(t)
	ctx := context.Background()
	if err := reg.SetTenant("acme", []reconciler.Definition{def("nightly", reconciler.Trigger{Cron: "0 2 * * *"}), def("on-signup", reconciler.Trigger{Event: "user/signed-up"})}, nopRunner{}); err != nil {
		t.Fatal(err)
	}
	if err := reg.SetTenant("globex", []reconciler.Definition{def("sync", reconciler.Trigger{Cron: "*/5 * * * *"})}, nopRunner{}); err != nil {
		t.Fatal(err)
	}
	syncAndVerify(t, reg, "acme")
	views, err := reg.Views(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(slices.Values(views[reg.AppID("acme")]))
	if want := reg.Functions("acme"); !slices.Equal(got, want) {
		t.Errorf("Views()[acme] = %v, want %v", got, want)
	}
	if fns, ok := views[reg.AppID("globex")]; ok {
		t.Errorf("Views() shows globex, never synced, with %v", fns)
	}
}
