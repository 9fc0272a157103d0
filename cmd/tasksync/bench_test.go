package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/loopback"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// BenchmarkDaemon measures the daemon on a generated tree of 1,000
// tenants × 10 definitions (make bench; TASKSYNC_BENCH_DAEMON_TENANTS
// sets the number of tenants) against a fresh database and the dev
// server: cold start to ready, the first registration of every app
// (apps/s and total time), one-file edit to verified-live in Inngest over
// 20 edits, restart to ready with nothing changed and the registrations
// the restart made, then idle CPU over 60 s
// (TASKSYNC_BENCH_DAEMON_IDLE sets the window; 0 skips it), resident
// memory, and last a failover: a follower started next to the leader,
// the leader killed, one file edited, until the edit is live in Inngest.
// When the first registration has not finished within
// TASKSYNC_BENCH_DAEMON_REG_WAIT (default 30m), it reports how far it got,
// the restart to ready and the failover, and stops there.
//
// The tree's schedules fire rarely (deftest.GenerateRare): the dev server
// executes every fire on the same machine, and the benchmark measures the
// registration, not the runs. The first daemon runs with
// --resync-interval 60m, so that no resync falls in the first
// registration or the edits; the restarted one with the default (1 m),
// so that the idle window holds the periodic resyncs an idle daemon
// makes. Each figure is also printed to stderr as soon as it is measured,
// with the machine's load average then. The daemon takes its other
// settings from the environment, e.g. TASKSYNC_SYNC_CONCURRENCY.
func BenchmarkDaemon(b *testing.B) {
	tenants := 1000
	if s := os.Getenv("TASKSYNC_BENCH_DAEMON_TENANTS"); s != "" {
		tenants, _ = strconv.Atoi(s)
	}
	idle := 60 * time.Second
	if s := os.Getenv("TASKSYNC_BENCH_DAEMON_IDLE"); s != "" {
		idle, _ = time.ParseDuration(s)
	}
	regWait := 30 * time.Minute
	if s := os.Getenv("TASKSYNC_BENCH_DAEMON_REG_WAIT"); s != "" {
		regWait, _ = time.ParseDuration(s)
	}
	report := func(v float64, unit string) {
		load, _ := os.ReadFile("/proc/loadavg")
		fmt.Fprintf(os.Stderr, "BenchmarkDaemon: %s %.3f (load %s)\n", unit, v, strings.Join(strings.Fields(string(load))[:3], " "))
		b.ReportMetric(v, unit)
	}
	for b.Loop() {
		dir := filepath.Join(b.TempDir(), "tree")
		if err := deftest.GenerateRare(dir, tenants); err != nil {
			b.Fatal(err)
		}
		bin := buildBinary(b)
		prefix := fmt.Sprintf("b%d", time.Now().UnixNano()%1e6)
		addr, err := loopback.FreeAddr()
		if err != nil {
			b.Fatal(err)
		}
		env := append([]string{"DATABASE_URL=" + pg.NewDatabase(b), "TASKSYNC_DIR=" + dir,
			"INNGEST_DEV=" + dev.URL, "TASKSYNC_APP_PREFIX=" + prefix}, exportGrant...)
		start := time.Now()
		base, cmd, logs, exited := startDaemonAt(b, bin, addr, env, "60m")
		fmt.Fprintf(os.Stderr, "BenchmarkDaemon: daemon pid %d, dev server %s\n", cmd.Process.Pid, dev.URL)
		waittest.For(b, "ready", 10*time.Minute, func() bool { code, _ := get(base + "/readyz"); return code == 200 })
		ready := time.Since(start)
		report(ready.Seconds(), "cold-ready-s")
		first, drained := backlogWithin(logs, regWait)
		if !drained {
			// The dev server bounds the first registration: report how far
			// it got, restart at once and measure the restart to ready
			// (which does not wait for Inngest); the other figures need
			// every app registered.
			p := lastProgress(logs)
			report(float64(p.Done), "first-reg-apps-done")
			if p.Elapsed > 0 {
				report(float64(p.Registered)/time.Duration(p.Elapsed).Seconds(), "first-reg-apps/s")
			}
			// Edits while the backlog drains: each tenant edited goes
			// ahead of it.
			p50, p99 := editLatencies(b, dir, prefix)
			report(float64(p50.Milliseconds()), "edit-p50-ms")
			report(float64(p99.Milliseconds()), "edit-p99-ms")
			report(float64(rssKiB(b, cmd.Process.Pid, "VmRSS"))/1024, "rss-MiB")
			report(float64(rssKiB(b, cmd.Process.Pid, "VmHWM"))/1024, "rss-peak-MiB")
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				b.Fatal(err)
			}
			if err := <-exited; err != nil {
				b.Fatalf("exit after SIGTERM: %v", err)
			}
			start = time.Now()
			base, cmd, _, exited = startDaemonAt(b, bin, addr, env, "1m")
			waittest.For(b, "ready after the restart", 10*time.Minute, func() bool { code, _ := get(base + "/readyz"); return code == 200 })
			report(time.Since(start).Seconds(), "restart-ready-s")
			report(float64(rssKiB(b, cmd.Process.Pid, "VmHWM"))/1024, "restart-rss-peak-MiB")
			report(failover(b, bin, env, cmd, exited, dir, prefix).Seconds(), "failover-edit-live-s")
			fmt.Fprintf(os.Stderr, "BenchmarkDaemon: the first registration did not finish within %v; stopped there\n", regWait)
			continue
		}
		if first.Registered != tenants || first.Failed != 0 {
			b.Fatalf("first registration: %+v, want %d apps registered and none failed", first, tenants)
		}
		report(time.Since(start).Seconds(), "cold-all-synced-s")
		report(time.Duration(first.Duration).Seconds(), "first-reg-s")
		report(float64(tenants)/time.Duration(first.Duration).Seconds(), "first-reg-apps/s")

		p50, p99 := editLatencies(b, dir, prefix)
		report(float64(p50.Milliseconds()), "edit-p50-ms")
		report(float64(p99.Milliseconds()), "edit-p99-ms")

		// Restart with nothing changed: Inngest holds every app, and the
		// last edit's sync has recorded what it registered.
		waittest.For(b, "the last edit's sync done", time.Minute, func() bool {
			_, m := get(base + "/metrics")
			return strings.Contains(m, "\ntasksync_inngest_sync_queue 0\n")
		})
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			b.Fatal(err)
		}
		if err := <-exited; err != nil {
			b.Fatalf("exit after SIGTERM: %v", err)
		}
		start = time.Now()
		base, cmd, logs, exited = startDaemonAt(b, bin, addr, env, "1m") // the default
		fmt.Fprintf(os.Stderr, "BenchmarkDaemon: restarted daemon pid %d\n", cmd.Process.Pid)
		waittest.For(b, "ready after the restart", 10*time.Minute, func() bool { code, _ := get(base + "/readyz"); return code == 200 })
		report(time.Since(start).Seconds(), "restart-ready-s")
		cpu := cpuTicks(b, cmd.Process.Pid)
		check := backlogDone(b, logs, 30*time.Minute)
		report(float64(cpuTicks(b, cmd.Process.Pid)-cpu)/100, "restart-check-cpu-s")
		report(float64(check.Registered), "restart-registrations")
		report(time.Duration(check.Duration).Seconds(), "restart-check-s")

		if idle > 0 {
			cpu0 := cpuTicks(b, cmd.Process.Pid)
			time.Sleep(idle) // the idle window itself is what is measured
			cpu1 := cpuTicks(b, cmd.Process.Pid)
			report(float64(cpu1-cpu0)/100/idle.Seconds()*100, "idle-cpu-%")
		}
		report(float64(rssKiB(b, cmd.Process.Pid, "VmRSS"))/1024, "rss-MiB")
		report(float64(rssKiB(b, cmd.Process.Pid, "VmHWM"))/1024, "rss-peak-MiB")
		report(failover(b, bin, env, cmd, exited, dir, prefix).Seconds(), "failover-edit-live-s")
	}
}

// editLatencies edits one definition 20 times and returns the median
// and the 99th percentile of the time from each write until Inngest
// shows the edit.
func editLatencies(b *testing.B, dir, prefix string) (p50, p99 time.Duration) {
	b.Helper()
	app := prefix + "-tenant-00000"
	file := filepath.Join(dir, "tenant-00000", "def-00.yaml")
	orig, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	for i := range 20 {
		want := fmt.Sprintf("%d 5 * * *", i)
		data := strings.Replace(string(orig), `cron: "0 0 * * *"`, fmt.Sprintf("cron: %q", want), 1)
		edit := time.Now()
		if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
			b.Fatal(err)
		}
		waittest.For(b, "the edit in Inngest", time.Minute, func() bool {
			return appCrons(b, app)[app+"-_nightly-export"] == "TZ=Europe/Berlin "+want
		})
		lat = append(lat, time.Since(edit))
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100]
}

// failover starts a follower next to the leader, waits until it is
// ready, kills the leader (SIGKILL: no release of the lock), edits one
// definition and returns the time from the kill until the edit is live
// in Inngest, served and synced by the follower become leader.
func failover(b *testing.B, bin string, env []string, leader *exec.Cmd, leaderExited chan error, dir, prefix string) time.Duration {
	b.Helper()
	base, follower, _, _ := startDaemon(b, bin, env, "1m")
	waittest.For(b, "the follower ready", 10*time.Minute, func() bool { code, _ := get(base + "/readyz"); return code == 200 })
	fmt.Fprintf(os.Stderr, "BenchmarkDaemon: follower pid %d\n", follower.Process.Pid)
	file := filepath.Join(dir, "tenant-00000", "def-00.yaml")
	orig, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	data := regexp.MustCompile(`cron: "[^"]*"`).ReplaceAllString(string(orig), `cron: "30 5 * * *"`)
	killed := time.Now()
	if err := leader.Process.Kill(); err != nil {
		b.Fatal(err)
	}
	<-leaderExited
	if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
		b.Fatal(err)
	}
	app := prefix + "-tenant-00000"
	waittest.For(b, "the edit live after the failover", 10*time.Minute, func() bool {
		return appCrons(b, app)[app+"-_nightly-export"] == "TZ=Europe/Berlin 30 5 * * *"
	})
	return time.Since(killed)
}

// backlogLine is the daemon's log line of a drained sync backlog.
type backlogLine struct {
	Msg        string `json:"msg"`
	Tenants    int    `json:"tenants"`
	Registered int    `json:"registered"`
	Failed     int    `json:"failed"`
	Duration   int64  `json:"duration"` // nanoseconds
}

// backlogDone waits for the first "sync backlog done" line in logs.
func backlogDone(b *testing.B, logs *waittest.Buffer, timeout time.Duration) backlogLine {
	b.Helper()
	found, ok := backlogWithin(logs, timeout)
	if !ok {
		b.Fatalf("the sync backlog did not drain within %v", timeout)
	}
	return found
}

// backlogWithin waits up to timeout for the first "sync backlog done"
// line in logs; false when none came.
func backlogWithin(logs *waittest.Buffer, timeout time.Duration) (backlogLine, bool) {
	// Polled once a second: the log of thousands of registrations is
	// megabytes, and the benchmark shares the cores it measures.
	deadline := time.Now().Add(timeout)
	for {
		text := logs.String()
		if i := strings.Index(text, `"msg":"sync backlog done"`); i >= 0 {
			start := strings.LastIndexByte(text[:i], '\n') + 1
			end := strings.IndexByte(text[i:], '\n')
			if end < 0 {
				end = len(text) - i
			}
			var found backlogLine
			if json.Unmarshal([]byte(text[start:i+end]), &found) == nil {
				return found, true
			}
		}
		if time.Now().After(deadline) {
			return backlogLine{}, false
		}
		time.Sleep(time.Second)
	}
}

// progressLine is the daemon's log line of a sync backlog draining.
type progressLine struct {
	Done       int   `json:"done"`
	Registered int   `json:"registered"`
	Elapsed    int64 `json:"elapsed"` // nanoseconds
}

// lastProgress is the last "sync progress" line in logs.
func lastProgress(logs *waittest.Buffer) progressLine {
	var last progressLine
	for _, line := range strings.Split(logs.String(), "\n") {
		var p progressLine
		if strings.Contains(line, `"msg":"sync progress"`) && json.Unmarshal([]byte(line), &p) == nil {
			last = p
		}
	}
	return last
}

// cpuTicks is a process's user + system time in clock ticks (1/100 s).
func cpuTicks(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

// rssKiB is a memory figure of the process, in KiB, from
// /proc/<pid>/status: VmRSS (resident now) or VmHWM (its peak so far).
func rssKiB(b *testing.B, pid int, field string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}
