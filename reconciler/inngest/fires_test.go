package inngest_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/inngest"
	"github.com/riveredge/tasksync/reconciler/inngest/inngesttest"
	"github.com/riveredge/tasksync/reconciler/store"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// countingRunner counts the Inngest runs that call each definition.
type countingRunner struct {
	inngest.Runner
	mu    sync.Mutex
	calls map[string]int
}

func (c *countingRunner) Run(ctx context.Context, tenant string, def reconciler.Definition, in reconciler.RunInput) (any, error) {
	c.mu.Lock()
	c.calls[def.Metadata.Code]++
	c.mu.Unlock()
	return c.Runner.Run(ctx, tenant, def, in)
}

func (c *countingRunner) count(code string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[code]
}

// firesRig is tasksync's daemon in the test process, as far as fires go:
// a controller leading over a tree, its apps served on one listener, a
// real runner recording in Postgres, and a dev server of its own (the
// test stops it).
type firesRig struct {
	t       *testing.T
	engine  *inngesttest.Server
	st      *store.Store
	tree    *definitions.Loader
	rec     *recorder
	runner  *countingRunner
	serving atomic.Pointer[inngest.Registry] // nil while tasksync is down
	origin  string
	metrics *prometheus.Registry
	log     *waittest.Buffer
	stop    func() // stops the running controller
}

const (
	firesResync = 2 * time.Second
	firesGrace  = 15 * time.Second
)

func newFiresRig(t *testing.T, files func(recorderURL string) map[string]string) *firesRig {
	t.Helper()
	engine, err := inngesttest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(engine.Stop)
	r := &firesRig{t: t, engine: engine, rec: newRecorder(t), log: &waittest.Buffer{}}
	st, _ := pg.NewStore(t, store.Options{AppPrefix: "fires"})
	r.st = st
	dir := deftest.WriteTree(t, files(r.rec.URL))
	v, err := definitions.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	// Intervals of seconds: the engine's schedule at a test's pace.
	r.tree = v.NewLoader(os.DirFS(dir), definitions.Options{IntervalUnit: time.Second})
	r.runner = &countingRunner{Runner: newRunner(t, st, nil, nil), calls: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		reg := r.serving.Load()
		if reg == nil {
			http.Error(w, "tasksync is restarting", http.StatusServiceUnavailable)
			return
		}
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.origin = srv.URL
	t.Cleanup(func() {
		if r.stop != nil {
			r.stop()
		}
		if t.Failed() {
			t.Logf("tasksync's log:\n%s", r.log.String())
		}
	})
	return r
}

// start starts tasksync: a new registry and controller (a new process),
// which leads once the former one released the lock.
func (r *firesRig) start() {
	t := r.t
	t.Helper()
	logger := slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	r.metrics = prometheus.NewRegistry()
	// The key the store keeps, as a restarted daemon reads it again.
	key, err := r.st.EventKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := inngest.New(inngest.Options{AppPrefix: "fires", ServeOrigin: r.origin, DevURL: r.engine.URL, Logger: logger, Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	ctrl := reconciler.NewController(reconciler.ControllerOptions{
		Tree: r.tree, Budget: mustAll(t), Workers: 1,
		State: r.st, Elector: r.st.Elector(store.LeaderOptions{Logger: logger, Poll: 100 * time.Millisecond, Check: 100 * time.Millisecond}),
		Apps: reg.WithRunner(r.runner), Resync: firesResync, MissedFireGrace: firesGrace, Grace: 5 * time.Second,
		Logger: logger, Registerer: r.metrics,
	})
	r.serving.Store(reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctrl.Run(ctx) }()
	r.stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("the controller did not stop within 30s")
		}
		r.serving.Store(nil)
		r.stop = nil
	}
	waittest.For(t, "tasksync to lead", 30*time.Second, func() bool { return ctrl.Ready() && ctrl.Leader() })
}

// runs are the definition's runs, oldest first.
func (r *firesRig) runs(code string) []reconciler.RunRecord {
	r.t.Helper()
	runs, err := r.st.Runs(context.Background(), "acme", code, 1000, 0)
	if err != nil {
		r.t.Fatalf("runs of %s: %v", code, err)
	}
	slices.Reverse(runs)
	return runs
}

// fired maps each fire the definition's runs were for to its runs.
func (r *firesRig) fired(code string) map[time.Time][]reconciler.RunRecord {
	out := map[time.Time][]reconciler.RunRecord{}
	for _, run := range r.runs(code) {
		if run.ScheduledFor == nil {
			r.t.Errorf("%s: run %s names no fire", code, run.InngestRunID)
			continue
		}
		out[run.ScheduledFor.UTC()] = append(out[run.ScheduledFor.UTC()], run)
	}
	return out
}

func (r *firesRig) definition(code string) reconciler.DefinitionDetail {
	r.t.Helper()
	d, err := r.st.Definition(context.Background(), "acme", code)
	if err != nil {
		r.t.Fatalf("definition %s: %v", code, err)
	}
	return d
}

// checkedPast reports whether the definition's fires are checked past at.
func (r *firesRig) checkedPast(code string, at time.Time) bool {
	checks, err := r.st.FireChecks(context.Background(), time.Now().Add(365*24*time.Hour))
	if err != nil {
		return false
	}
	for _, c := range checks {
		if c.Code == code {
			return c.From.After(at)
		}
	}
	return false
}

// checkedTo is where the definition's fires are checked up to.
func (r *firesRig) checkedTo(code string) time.Time {
	r.t.Helper()
	checks, err := r.st.FireChecks(context.Background(), time.Now().Add(365*24*time.Hour))
	if err != nil {
		r.t.Fatal(err)
	}
	for _, c := range checks {
		if c.Code == code {
			return c.From
		}
	}
	r.t.Fatalf("no fire check of %s", code)
	return time.Time{}
}

// waitForSecond waits until now's offset within a minute is in one of
// the ranges [lo, hi] of seconds given.
func waitForSecond(t *testing.T, ranges ...[2]int) {
	t.Helper()
	for range 70 {
		s := time.Now().Second()
		for _, rg := range ranges {
			if s >= rg[0] && s <= rg[1] {
				return
			}
		}
		time.Sleep(time.Second)
	}
	t.Fatal("never reached the second wanted")
}

func seconds(ts []time.Time) string {
	var s []string
	for _, t := range ts {
		s = append(s, t.UTC().Format("15:04:05"))
	}
	return "[" + strings.Join(s, " ") + "]"
}

// TestEngineOutageMissedFiresAndCatchUp runs, against a real dev server,
// per-minute crons and 20-second intervals (driven by fire events) under
// each catch-up policy, through a restart of tasksync (Inngest kept
// running) and then two minutes of the engine down (the dev server
// stopped, and started again empty). Every fire of the checked window
// either has exactly one run or is counted missed, never both; the
// crons miss exactly the two minutes the engine was down; nothing is
// missed around the restart of tasksync; every policy counts each
// missed fire as its grace passes (the first while the engine is still
// down), within a resync of the others and before any catch-up runs;
// latest catches up the last missed fire once, all each missed fire
// once, oldest first, about a grace after the engine is back; an
// interval's chain is re-seeded after the engine lost it, and each fire
// starts one Inngest run.
func TestEngineOutageMissedFiresAndCatchUp(t *testing.T) {
	t.Parallel() // mostly waiting, on a dev server of its own
	every := func(code, catchUp string) string {
		trig := "{interval: 20s}"
		if catchUp != "" {
			trig = fmt.Sprintf("{interval: 20s, catchup: %s, catchup_window: 10m}", catchUp)
		}
		return deftest.Task{Code: code, Trigger: trig, Config: fmt.Sprintf("{url: %q}", "http://127.0.0.1:1/"+code)}.String()
	}
	minutely := func(code, catchUp string) string {
		trig := `{cron: "* * * * *"}`
		if catchUp != "" {
			trig = fmt.Sprintf(`{cron: "* * * * *", catchup: %s}`, catchUp)
		}
		return deftest.Task{Code: code, Trigger: trig, Config: fmt.Sprintf("{url: %q}", "http://127.0.0.1:1/"+code)}.String()
	}
	docs := strings.Join([]string{minutely("cron-skip", ""), minutely("cron-latest", "latest"), minutely("cron-all", "all"),
		every("every-skip", ""), every("every-all", "all")}, "---\n")
	r := newFiresRig(t, func(url string) map[string]string {
		// The tasks call the recorder.
		return map[string]string{"acme/tasks.yaml": strings.ReplaceAll(docs, "http://127.0.0.1:1", url)}
	})
	codes := []string{"cron-skip", "cron-latest", "cron-all", "every-skip", "every-all"}
	began := time.Now()
	r.start()
	waittest.For(t, "the first runs of the intervals", 60*time.Second, func() bool {
		return len(r.runs("every-skip")) >= 1 && len(r.runs("every-all")) >= 1
	})

	// A restart of tasksync, Inngest running: just after an interval's
	// fire, down for 3 s.
	for time.Now().Second()%20 < 2 || time.Now().Second()%20 > 4 {
		time.Sleep(250 * time.Millisecond)
	}
	restartAt := time.Now()
	r.stop()
	time.Sleep(3 * time.Second)
	r.start()
	waittest.For(t, "an interval run after the restart", 40*time.Second, func() bool {
		for _, run := range r.runs("every-skip") {
			if run.ScheduledFor != nil && run.ScheduledFor.After(restartAt) {
				return true
			}
		}
		return false
	})

	// The engine down for two minutes, stopped away from every fire.
	waitForSecond(t, [2]int{5, 15}, [2]int{25, 35})
	down := time.Now()
	r.engine.Down()
	// When each cron's missed fires are counted: counted[code][n-1] is
	// when its count first read n, sampled every half second.
	counted := map[string][]time.Time{}
	sample := func() {
		for _, code := range codes[:3] {
			for n := int(r.definition(code).MissedFires); len(counted[code]) < n; {
				counted[code] = append(counted[code], time.Now())
			}
		}
	}
	for time.Since(down) < 2*time.Minute {
		sample()
		time.Sleep(500 * time.Millisecond)
	}
	if err := r.engine.Up(); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	t.Logf("tasksync restarted at %s; engine down from %s to %s", restartAt.UTC().Format("15:04:05.000"),
		down.UTC().Format("15:04:05.000"), up.UTC().Format("15:04:05.000"))

	// Every definition runs again after the outage, and its fires are
	// checked past that run.
	nextMinute := up.Truncate(time.Minute).Add(time.Minute)
	waittest.For(t, "runs after the outage, checked", 3*time.Minute, func() bool {
		sample()
		for _, code := range codes {
			ranAfter := false
			for at := range r.fired(code) {
				if !at.Before(nextMinute) {
					ranAfter = true
				}
			}
			if !ranAfter || !r.checkedPast(code, nextMinute) {
				return false
			}
		}
		return true
	})

	// And the catch-ups owed have run: latest one, all one per fire.
	waittest.For(t, "the catch-up runs", time.Minute, func() bool {
		sample()
		for _, code := range []string{"cron-latest", "cron-all", "every-all"} {
			n := 0
			for _, run := range r.runs(code) {
				if run.CatchUp && run.Attempt == 0 {
					n++
				}
			}
			want := int(r.definition(code).MissedFires)
			if strings.HasSuffix(code, "-latest") {
				want = min(want, 1)
			}
			if n < want {
				return false
			}
		}
		return true
	})
	catchUpsDone := time.Now()

	var wantCron []time.Time
	for m := down.Truncate(time.Minute).Add(time.Minute); m.Before(up); m = m.Add(time.Minute) {
		wantCron = append(wantCron, m.UTC())
	}
	if len(wantCron) != 2 {
		t.Fatalf("the outage %s–%s spans %d minute fires, want 2", down, up, len(wantCron))
	}
	iv := reconciler.Trigger{Interval: reconciler.Duration(20 * time.Second)}
	total := 0.0
	for _, code := range codes {
		d := r.definition(code)
		fired := r.fired(code)
		missed := d.LastMissedFires
		total += float64(d.MissedFires)
		if int(d.MissedFires) != len(missed) {
			t.Errorf("%s: %d missed fires counted, %d shown: %s", code, d.MissedFires, len(missed), seconds(missed))
		}
		trig := reconciler.Trigger{Cron: "* * * * *", Timezone: "UTC"}
		if strings.HasPrefix(code, "every") {
			trig = iv
		}
		to := r.checkedTo(code)
		// Every fire from the first run on either ran once or is missed.
		first := began
		for at := range fired {
			if at.Before(first) {
				first = at
			}
		}
		var ranFires []time.Time
		for _, f := range reconciler.FiresBetween(trig, first.Add(-time.Nanosecond), to, 1000) {
			f = f.UTC()
			isMissed := slices.ContainsFunc(missed, f.Equal)
			runs := fired[f]
			var regular, catchUps int
			for _, run := range runs {
				if run.Attempt != 0 {
					continue
				}
				if run.CatchUp {
					catchUps++
				} else {
					regular++
				}
			}
			switch {
			case isMissed && regular > 0:
				t.Errorf("%s: fire %s is counted missed and ran", code, f.Format("15:04:05"))
			case !isMissed && regular != 1:
				t.Errorf("%s: fire %s has %d runs, want 1", code, f.Format("15:04:05"), regular)
			case regular > 1 || catchUps > 1:
				t.Errorf("%s: fire %s has %d runs and %d catch-ups", code, f.Format("15:04:05"), regular, catchUps)
			}
			if !isMissed {
				ranFires = append(ranFires, f)
			}
		}
		// Nothing is missed outside the outage; for the crons, exactly
		// its two minutes.
		for _, f := range missed {
			if !f.After(down) || f.After(up.Add(firesResync+20*time.Second)) {
				t.Errorf("%s: fire %s is missed outside the outage %s–%s", code, f.Format("15:04:05"), down.Format("15:04:05"), up.Format("15:04:05"))
			}
		}
		if strings.HasPrefix(code, "cron") && seconds(missed) != seconds(wantCron) {
			t.Errorf("%s: missed %s, want %s", code, seconds(missed), seconds(wantCron))
		}
		if strings.HasPrefix(code, "every") {
			for _, f := range reconciler.FiresBetween(iv, down.Add(time.Second), up.Add(-time.Second), 100) {
				if !slices.ContainsFunc(missed, f.UTC().Equal) {
					t.Errorf("%s: fire %s, while the engine was down, is not counted missed", code, f.Format("15:04:05"))
				}
			}
		}
		// Catch-ups: latest the last missed fire, all each; skip none.
		var caught []time.Time
		for at, runs := range fired {
			for _, run := range runs {
				if run.CatchUp && run.Attempt == 0 {
					caught = append(caught, at)
				}
			}
		}
		sort.Slice(caught, func(i, j int) bool { return caught[i].Before(caught[j]) })
		want := []time.Time{}
		switch {
		case strings.HasSuffix(code, "-latest"):
			want = missed[len(missed)-1:]
		case strings.HasSuffix(code, "-all"):
			want = missed
		}
		if seconds(caught) != seconds(want) {
			t.Errorf("%s: catch-up runs for %s, want %s", code, seconds(caught), seconds(want))
		}
		// One Inngest run per fire: the runner was called once for each
		// run recorded.
		calls := r.runner.count(code)
		t.Logf("%s: %d fires ran, %d missed %s, %d caught up, %d Inngest runs called tasksync", code, len(ranFires), len(missed),
			seconds(missed), len(caught), calls)
		if strings.HasPrefix(code, "every") && calls != len(r.runs(code)) {
			t.Errorf("%s: %d Inngest runs for %d runs recorded: one Inngest run per fire", code, calls, len(r.runs(code)))
		}
	}
	// The crons' missed fires are counted when their grace passes, under
	// every policy alike: the first during the outage, each within a
	// resync (and a sample) of skip's, and before any catch-up runs.
	var firstCatchUp time.Time
	for _, code := range codes {
		for _, run := range r.runs(code) {
			if run.CatchUp && (firstCatchUp.IsZero() || run.StartedAt.Before(firstCatchUp)) {
				firstCatchUp = run.StartedAt
			}
		}
	}
	for _, code := range codes[:3] {
		c := counted[code]
		t.Logf("%s: missed fires counted at %s", code, seconds(c))
		if len(c) != len(wantCron) {
			t.Errorf("%s: %d counts seen, want %d", code, len(c), len(wantCron))
			continue
		}
		if !c[0].Before(up) {
			t.Errorf("%s: its first missed fire was counted at %s, after the outage ended (%s)", code, c[0].Format("15:04:05"), up.Format("15:04:05"))
		}
		for i := range c {
			skip := counted["cron-skip"]
			if i < len(skip) && (c[i].Sub(skip[i]) > firesResync+time.Second || skip[i].Sub(c[i]) > firesResync+time.Second) {
				t.Errorf("%s: missed fire %d counted at %s, skip's at %s: more than a resync apart", code, i+1, c[i].Format("15:04:05.0"), skip[i].Format("15:04:05.0"))
			}
			if !c[i].Before(firstCatchUp) {
				t.Errorf("%s: missed fire %d counted at %s, after the first catch-up run started (%s)", code, i+1, c[i].Format("15:04:05.0"), firstCatchUp.Format("15:04:05.0"))
			}
		}
	}
	// The catch-ups go out one grace (and a resync) after the app is
	// held again, not later; all's start oldest first.
	t.Logf("first catch-up run started at %s, %v after the engine came back; all caught up at %s", firstCatchUp.Format("15:04:05"),
		firstCatchUp.Sub(up).Round(time.Second), catchUpsDone.Format("15:04:05"))
	if late := firstCatchUp.Sub(up); late > firesGrace+30*time.Second {
		t.Errorf("the first catch-up run started %v after the engine came back; want about the grace (%v) after the apps are registered again", late, firesGrace)
	}
	for _, code := range []string{"cron-all", "every-all"} {
		var catchUps []reconciler.RunRecord
		for _, run := range r.runs(code) {
			if run.CatchUp && run.Attempt == 0 {
				catchUps = append(catchUps, run)
			}
		}
		sort.SliceStable(catchUps, func(i, j int) bool { return catchUps[i].StartedAt.Before(catchUps[j].StartedAt) })
		var order []time.Time
		for _, run := range catchUps {
			order = append(order, *run.ScheduledFor)
		}
		t.Logf("%s: catch-ups in the order they started: %s", code, seconds(order))
		if !slices.IsSortedFunc(order, time.Time.Compare) {
			t.Errorf("%s: catch-ups started in the order %s, want oldest first", code, seconds(order))
		}
	}
	if got := counterValue(t, r.metrics, "tasksync_missed_fires_total", map[string]string{"tenant": "acme"}); got != total {
		t.Errorf("tasksync_missed_fires_total{tenant=acme} = %v, want %v", got, total)
	}
}

// TestIntervalOneRunPerFire: an interval no cron states (here 5 s, at a
// test's pace; 7m, 59m or 90m alike) starts one Inngest run per fire,
// chained by fire events: none doubled across a change of leader (the
// new leader seeds the same instant again), and the chain re-seeded
// within one resync after the dev server lost its state.
func TestIntervalOneRunPerFire(t *testing.T) {
	t.Parallel() // a dev server of its own
	r := newFiresRig(t, func(url string) map[string]string {
		return map[string]string{"acme/tasks.yaml": deftest.Task{Code: "every-5s", Trigger: "{interval: 5s}", Config: fmt.Sprintf("{url: %q}", url+"/every")}.String()}
	})
	r.start()
	waittest.For(t, "three runs", 30*time.Second, func() bool { return len(r.runs("every-5s")) >= 3 })
	r.stop() // a change of leader: a new process takes over
	r.start()
	n := len(r.runs("every-5s"))
	waittest.For(t, "three more runs", 30*time.Second, func() bool { return len(r.runs("every-5s")) >= n+3 })
	lost := time.Now()
	if err := r.engine.Restart(); err != nil { // it forgets every app and every event
		t.Fatal(err)
	}
	back := time.Now()
	waittest.For(t, "runs after the dev server lost its state", 30*time.Second, func() bool {
		for at := range r.fired("every-5s") {
			if at.After(back) {
				return true
			}
		}
		return false
	})
	var firstAfter time.Time
	for at := range r.fired("every-5s") {
		if at.After(back) && (firstAfter.IsZero() || at.Before(firstAfter)) {
			firstAfter = at
		}
	}
	// Re-seeded within one resync of the restart (and the app's sync).
	if gap := firstAfter.Sub(back); gap > firesResync+5*time.Second+5*time.Second {
		t.Errorf("first fire after the restart %s, %v after it; want within a resync and an interval", firstAfter.Format("15:04:05"), gap)
	}
	// A fire more, to see it is not doubled.
	waittest.For(t, "a fire after the first after the restart", 30*time.Second, func() bool {
		for at := range r.fired("every-5s") {
			if at.After(firstAfter) {
				return true
			}
		}
		return false
	})
	waittest.Never(t, "a fire with two runs", 2*time.Second, func() bool {
		for _, runs := range r.fired("every-5s") {
			if len(runs) > 1 {
				return true
			}
		}
		return false
	})
	fired := r.fired("every-5s")
	for at, runs := range fired {
		if len(runs) != 1 {
			t.Errorf("fire %s has %d runs", at.Format("15:04:05"), len(runs))
		}
	}
	calls, runs := r.runner.count("every-5s"), len(r.runs("every-5s"))
	if calls != runs || r.rec.count("/every") != runs {
		t.Errorf("%d Inngest runs called tasksync and %d reached the endpoint, for %d runs recorded; want one per fire", calls, r.rec.count("/every"), runs)
	}
	// The fires between the first run and the loss all ran.
	var first time.Time
	for at := range fired {
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	iv := reconciler.Trigger{Interval: reconciler.Duration(5 * time.Second)}
	for _, f := range reconciler.FiresBetween(iv, first.Add(-time.Nanosecond), lost.Add(-time.Second), 1000) {
		if len(fired[f.UTC()]) != 1 {
			t.Errorf("fire %s, before the dev server restarted, has %d runs", f.Format("15:04:05"), len(fired[f.UTC()]))
		}
	}
	t.Logf("%d fires ran, %d Inngest runs called tasksync", len(fired), calls)
}
