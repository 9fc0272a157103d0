package definitions_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// BenchmarkValidate loads and validates the whole tree, in parallel, as
// "tasksync validate" does.
func BenchmarkValidate(b *testing.B) {
	dir := deftest.BenchTree(b, 200)
	v, err := definitions.NewValidator()
	if err != nil {
		b.Fatal(err)
	}
	var defs int
	for b.Loop() {
		defs = 0
		l := v.NewLoader(os.DirFS(dir), definitions.Options{})
		top, err := l.LoadAll(context.Background(), func(r *reconciler.TenantTree) {
			defs += len(r.Definitions)
			if len(r.Problems) > 0 {
				b.Fatalf("unexpected problem: %v", r.Problems[0])
			}
		})
		if err != nil || len(top) > 0 {
			b.Fatalf("LoadAll: %v %v", top, err)
		}
	}
	b.ReportMetric(float64(defs), "defs/op")
}

// BenchmarkYAMLDecodeFloor is the floor BenchmarkValidate is measured
// against: one goroutine that reads every definition file of the tree and
// merely decodes its YAML documents into yaml.Node trees with yaml.v3.
func BenchmarkYAMLDecodeFloor(b *testing.B) {
	dir := deftest.BenchTree(b, 200)
	var docs int
	for b.Loop() {
		docs = 0
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || filepath.Ext(path) != ".yaml" {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			dec := yaml.NewDecoder(bytes.NewReader(data))
			for {
				var n yaml.Node
				if err := dec.Decode(&n); errors.Is(err, io.EOF) {
					return nil
				} else if err != nil {
					return err
				}
				docs++
			}
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(docs), "docs/op")
}

// BenchmarkResyncNoChange loads the whole tree again, nothing changed, as
// a periodic resync does: "parse" parses every file (Reuse off, as before
// the daemon reused results), "reuse" reuses every file's result and only
// stats it (every tenant's results kept: Options.KeepParsed above the
// tree's size; with the default, a full load of more tenants parses them
// again, see BenchmarkRetainedHeap). cpu-ms/op is the
// process's CPU time (all workers), B/op and allocs/op what a resync
// allocates, kept-MiB the heap the reused results hold.
func BenchmarkResyncNoChange(b *testing.B) {
	dir := deftest.BenchTree(b, 1000)
	v, err := definitions.NewValidator()
	if err != nil {
		b.Fatal(err)
	}
	generated := time.Now()
	// A result is kept once its file is over a second old.
	waittest.For(b, "the tree to settle", 5*time.Second, func() bool { return time.Since(generated) > 1100*time.Millisecond })
	// The daemon's loader, of the tree through a link as git-sync's
	// current: its path is resolved again at every read.
	link := filepath.Join(b.TempDir(), "current")
	if err := os.Symlink(dir, link); err != nil {
		b.Fatal(err)
	}
	for _, mode := range []struct {
		name   string
		reuse  time.Duration
		daemon bool
	}{{"parse", 0, false}, {"reuse", time.Hour, false}, {"reuse-through-link", time.Hour, true}} {
		b.Run(mode.name, func(b *testing.B) {
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			l := v.NewLoader(definitions.DirFS(dir), definitions.Options{AbsRoot: filepath.ToSlash(dir), Reuse: mode.reuse, KeepParsed: math.MaxInt})
			if mode.daemon {
				var err error
				if l, err = definitions.NewDirLoader(link, definitions.Options{Reuse: mode.reuse, KeepParsed: math.MaxInt}); err != nil {
					b.Fatal(err)
				}
			}
			load := func() int {
				defs := 0
				if _, err := l.LoadAll(context.Background(), func(r *reconciler.TenantTree) { defs += len(r.Definitions) }); err != nil {
					b.Fatal(err)
				}
				return defs
			}
			load() // the daemon's first pass
			runtime.GC()
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			p0, _ := l.FileStats()
			cpu0 := cpuTime(b)
			b.ReportAllocs()
			defs := 0
			for b.Loop() {
				defs = load()
			}
			p1, _ := l.FileStats()
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
			b.ReportMetric(float64(p1-p0)/float64(b.N), "parsed/op")
			b.ReportMetric(float64(defs), "defs/op")
			b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "kept-MiB")
			runtime.KeepAlive(l)
		})
	}
}

// cpuTime is the CPU time, user and system, the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRetainedHeap loads a tree of $TASKSYNC_BENCH_TENANTS (default
// 2,000) tenants × 10 files that deftest.GenerateRare writes, as the
// daemon's loader does (NewDirLoader, reuse on, KeepParsed default), and
// reports the heap the loader keeps per tenant afterwards
// (load-KiB/tenant), after a resync that finds every tenant unchanged by
// TenantStamp (stamp-KiB/tenant), and after a second full load
// (reload-KiB/tenant), with the files that load parsed (reload-parsed:
// every file, when there are more tenants than KeepParsed, since a load
// in the tree's order strips each tenant before it is read again; the
// daemon reads again only the tenants that changed).
// The heap counts from the loader made, its validator compiled; the
// validator's caches of what the tree names (zones, cron gaps) count.
func BenchmarkRetainedHeap(b *testing.B) {
	tenants := 2000
	if s := os.Getenv("TASKSYNC_BENCH_TENANTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("TASKSYNC_BENCH_TENANTS=%q: %v; set it to a number of tenants", s, err)
		}
		tenants = n
	}
	dir := b.TempDir()
	if err := deftest.GenerateRare(dir, tenants); err != nil {
		b.Fatal(err)
	}
	generated := time.Now()
	// A result is kept once its file is over a second old.
	waittest.For(b, "the tree to settle", 5*time.Second, func() bool { return time.Since(generated) > 1100*time.Millisecond })
	heap := func() int64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	loadAll := func(l *definitions.Loader) {
		defs := 0
		if _, err := l.LoadAll(context.Background(), func(r *reconciler.TenantTree) { defs += len(r.Definitions) }); err != nil {
			b.Fatal(err)
		}
		if defs != tenants*deftest.PerTenant {
			b.Fatalf("loaded %d definitions, want %d", defs, tenants*deftest.PerTenant)
		}
	}
	perTenant := func(before, after int64) float64 {
		return float64(after-before) / 1024 / float64(tenants)
	}
	var l *definitions.Loader
	var before int64
	for b.Loop() {
		l = nil // the last loader is garbage before the next one loads
		var err error
		if l, err = definitions.NewDirLoader(dir, definitions.Options{Reuse: time.Hour}); err != nil {
			b.Fatal(err)
		}
		before = heap() // with the loader's validator, compiled once whatever the tree
		loadAll(l)
	}
	b.ReportMetric(perTenant(before, heap()), "load-KiB/tenant")

	names, _, err := l.Tenants()
	if err != nil {
		b.Fatal(err)
	}
	p0, _ := l.FileStats()
	for _, t := range names {
		if l.TenantStamp(t) == "" {
			b.Fatalf("tenant %s has no stamp", t)
		}
	}
	p1, _ := l.FileStats()
	if p1 != p0 {
		b.Fatalf("TenantStamp parsed %d files", p1-p0)
	}
	b.ReportMetric(perTenant(before, heap()), "stamp-KiB/tenant")
	loadAll(l)
	p2, _ := l.FileStats()
	b.ReportMetric(perTenant(before, heap()), "reload-KiB/tenant")
	b.ReportMetric(float64(p2-p1), "reload-parsed")
	runtime.KeepAlive(l)
}
