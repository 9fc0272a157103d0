package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// BenchmarkDaemon measures the daemon on 1,000 tenants × 10 definitions
// (make bench): cold start to ready, one-file edit to verified-live in
// Inngest over 20 edits, idle CPU over 60 s and resident memory.
func BenchmarkDaemon(b *testing.B) {
	tenants := 1000
	if s := os.Getenv("TASKSYNC_BENCH_DAEMON_TENANTS"); s != "" {
		tenants, _ = strconv.Atoi(s)
	}
	for b.Loop() {
		dir := filepath.Join(b.TempDir(), "tree")
		if err := deftest.Generate(dir, tenants); err != nil {
			b.Fatal(err)
		}
		bin := buildBinary(b)
		prefix := fmt.Sprintf("b%d", time.Now().UnixNano()%1e6)
		start := time.Now()
		base, cmd, _, _ := startDaemon(b, bin, []string{"DATABASE_URL=" + pg.NewDatabase(b), "TASKSYNC_DIR=" + dir,
			"INNGEST_DEV=" + dev.URL, "TASKSYNC_APP_PREFIX=" + prefix}, "10m")
		waittest.For(b, "ready", 10*time.Minute, func() bool { code, _ := get(base + "/readyz"); return code == 200 })
		b.ReportMetric(time.Since(start).Seconds(), "cold-start-s")

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
		b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "edit-p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "edit-p99-ms")

		cpu0 := cpuTicks(b, cmd.Process.Pid)
		time.Sleep(60 * time.Second) // the idle window itself is what is measured
		cpu1 := cpuTicks(b, cmd.Process.Pid)
		b.ReportMetric(float64(cpu1-cpu0)/100/60*100, "idle-cpu-%")
		b.ReportMetric(float64(rssKiB(b, cmd.Process.Pid))/1024, "rss-MiB")
	}
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

func rssKiB(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}
