package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// soakResyncs is how many full resyncs the soak test runs the daemon
// through; soakTenants, how many tenants each syncs.
const (
	soakResyncs = 200
	soakTenants = 6
	// soakRegistrations is how many registrations of the edited tenant's
	// app the soak must see at least.
	soakRegistrations = 50
)

// TestSoakResyncs runs the built binary through 200 full resyncs of
// several unchanged tenants against the real dev server and Postgres: the
// daemon's open file descriptors and goroutines stay flat. A connection
// left open per sync (a response body never closed) grows both by one or
// more per tenant and resync.
//
// A full resync of an unchanged tenant no longer registers its app (the
// check stops when Inngest's view shows it served), so the registration
// path, where the leak was, would go unexercised: one tenant's trigger is
// edited all along, so that its app is registered again and again (at
// least soakRegistrations times) while the others stay unchanged.
func TestSoakResyncs(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test")
	}
	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "tasks.d")
	for i := range soakTenants {
		tenant := fmt.Sprintf("soak-%d", i)
		for _, code := range []string{"on-order", "on-refund"} {
			deftest.WriteFile(t, filepath.Join(dir, tenant, code+".yaml"), fmt.Sprintf(
				"apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: %s}\nspec: {trigger: {event: soak/%s}, type: api_call, config: {url: 'https://a.example.com'}}\n", code, code))
		}
	}
	prefix := fmt.Sprintf("k%d", time.Now().UnixNano()%1e6)
	base, cmd, _, _ := startDaemon(t, bin, []string{"DATABASE_URL=" + pg.NewDatabase(t), "TASKSYNC_DIR=" + dir, "INNGEST_DEV=" + dev.URL,
		"TASKSYNC_APP_PREFIX=" + prefix}, "100ms")
	waittest.For(t, "the daemon to be ready", 30*time.Second, func() bool { code, _ := get(base + "/readyz"); return code == 200 })

	pid := cmd.Process.Pid
	type sample struct{ resyncs, registrations, fds, goroutines int }
	edited := `tasksync_inngest_sync_total{result="success",tenant="soak-0"}`
	take := func() sample {
		m := scrape(t, base+"/metrics")
		return sample{resyncs: int(m[`tasksync_reconcile_total{result="success"}`]), registrations: int(m[edited]),
			fds: openFDs(t, pid), goroutines: int(m["go_goroutines"])}
	}
	// One tenant's trigger changes every 100 ms while the soak lasts (at
	// most 1,000 edits): each change is applied and its app registered.
	scratch := t.TempDir()
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := range 1000 {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			// Written aside and renamed, so the loader never reads half a file.
			tmp := filepath.Join(scratch, "on-order.yaml")
			doc := fmt.Sprintf("apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: on-order}\n"+
				"spec: {trigger: {event: soak/edit-%d}, type: api_call, config: {url: 'https://a.example.com'}}\n", i%2)
			if err := os.WriteFile(tmp, []byte(doc), 0o644); err != nil {
				t.Error(err)
				return
			}
			if err := os.Rename(tmp, filepath.Join(dir, "soak-0", "on-order.yaml")); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	defer func() { close(stop); <-stopped }()
	// A few resyncs first, so that pools and caches reach their size.
	const warmup = 10
	waittest.For(t, "the warm-up resyncs", 30*time.Second, func() bool { return take().resyncs >= warmup })
	start := take()
	started := time.Now()
	waittest.For(t, fmt.Sprintf("%d resyncs and %d registrations", soakResyncs, soakRegistrations), 60*time.Second, func() bool {
		s := take()
		return s.resyncs >= start.resyncs+soakResyncs && s.registrations >= start.registrations+soakRegistrations
	})
	end := take()
	n := end.resyncs - start.resyncs
	t.Logf("%d resyncs of %d tenants and %d registrations of the edited one in %v: fds %d → %d, goroutines %d → %d (per resync: %+.3f fds, %+.3f goroutines)",
		n, soakTenants, end.registrations-start.registrations, time.Since(started).Round(time.Millisecond), start.fds, end.fds, start.goroutines, end.goroutines,
		float64(end.fds-start.fds)/float64(n), float64(end.goroutines-start.goroutines)/float64(n))
	// Flat: a sync or two may be under way at either sample, no more.
	if end.fds-start.fds > 2*reconciler.DefaultSyncConcurrency {
		t.Errorf("open file descriptors grew from %d to %d over %d resyncs", start.fds, end.fds, n)
	}
	if end.goroutines-start.goroutines > 4*reconciler.DefaultSyncConcurrency {
		t.Errorf("goroutines grew from %d to %d over %d resyncs", start.goroutines, end.goroutines, n)
	}
}

// openFDs counts a process's open file descriptors.
func openFDs(t testing.TB, pid int) int {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("open file descriptors of %d: %v", pid, err)
	}
	return len(entries)
}

// scrape reads the unlabelled-or-labelled samples of a /metrics page,
// each by its name and labels as printed, over a connection of its own
// that is closed afterwards (it is not the daemon's to keep).
func scrape(t testing.TB, url string) map[string]float64 {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Close = true
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer res.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	return out
}
