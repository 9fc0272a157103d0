package store_test

import (
	"context"
	"io/fs"
	"os"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/store"
)

// overlay serves one file with other content on top of a tree, as a
// one-file edit would, without touching the tree on disk.
type overlay struct {
	fs.FS
	path string
	data []byte
}

func (o overlay) Open(name string) (fs.File, error) {
	if name == o.path {
		return fstest.MapFS{name: {Data: o.data}}.Open(name)
	}
	return o.FS.Open(name)
}

func (o overlay) ReadLink(name string) (string, error) { return o.FS.(fs.ReadLinkFS).ReadLink(name) }

func (o overlay) Lstat(name string) (fs.FileInfo, error) { return o.FS.(fs.ReadLinkFS).Lstat(name) }

func benchReconciler(b *testing.B, fsys fs.FS, st *store.Store) *reconciler.Reconciler {
	return benchReconcilerReusing(b, fsys, st, 0)
}

// benchReconcilerReusing is benchReconciler with a loader that reuses
// parsed files (definitions.Options.Reuse), as the daemon's does.
func benchReconcilerReusing(b *testing.B, fsys fs.FS, st *store.Store, reuse time.Duration) *reconciler.Reconciler {
	v, err := definitions.NewValidator()
	if err != nil {
		b.Fatal(err)
	}
	return &reconciler.Reconciler{Tree: v.NewLoader(fsys, definitions.Options{Reuse: reuse}), Store: st, Workers: 4}
}

// cpuTime is the CPU time, user and system, the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkReconcile measures run --once's work on the generated tree: the
// first apply into an empty database, a no-op re-apply, a one-file change,
// and a plan with field detail. statements/op counts what was sent to
// Postgres, tenants-written/op how many tenants' transactions wrote.
func BenchmarkReconcile(b *testing.B) {
	dir := deftest.BenchTree(b, 100)
	ctx := context.Background()
	tree := os.DirFS(dir)

	b.Run("first-apply", func(b *testing.B) {
		var stmts, written int64
		for b.Loop() {
			b.StopTimer()
			st, _ := pg.NewStore(b, store.Options{MaxConns: 8})
			r := benchReconciler(b, tree, st)
			before := st.Statements()
			b.StartTimer()
			res, err := r.Apply(ctx)
			if err != nil || res.Err() != nil {
				b.Fatal(err, res.Err())
			}
			stmts, written = st.Statements()-before, int64(res.Written)
		}
		b.ReportMetric(float64(stmts), "statements/op")
		b.ReportMetric(float64(written), "tenants-written/op")
	})

	st, _ := pg.NewStore(b, store.Options{MaxConns: 8})
	if res, err := benchReconciler(b, tree, st).Apply(ctx); err != nil || res.Err() != nil {
		b.Fatal(err, res.Err())
	}
	// A no-op re-apply is the daemon's periodic resync when nothing
	// changed: parsing every file (as before files were reused), and
	// reusing the parsed result of every file (after a first pass).
	for _, mode := range []struct {
		name  string
		reuse time.Duration
	}{{"noop-reapply", 0}, {"noop-reapply-reusing", time.Hour}} {
		b.Run(mode.name, func(b *testing.B) {
			r := benchReconcilerReusing(b, tree, st, mode.reuse)
			if _, err := r.Apply(ctx); err != nil { // the daemon's first pass
				b.Fatal(err)
			}
			b.ReportAllocs()
			var stmts int64
			cpu0 := cpuTime(b)
			for b.Loop() {
				before := st.Statements()
				res, err := r.Apply(ctx)
				if err != nil || res.Written != 0 {
					b.Fatalf("no-op re-apply wrote %d tenants: %v", res.Written, err)
				}
				stmts = st.Statements() - before
			}
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
			b.ReportMetric(float64(stmts), "statements/op")
		})
	}

	file := "tenant-00000/def-00.yaml"
	orig, err := fs.ReadFile(tree, file)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("one-file-change", func(b *testing.B) {
		var stmts, written int64
		i := 0
		for b.Loop() {
			i++
			data := orig
			if i%2 == 1 {
				data = append([]byte("# edited\n"), orig...) // moves the definition one line down
				data = []byte(string(data[:len(data)-1]) + "\n  concurrency: 2\n")
			}
			r := benchReconciler(b, overlay{tree, file, data}, st)
			before := st.Statements()
			res, err := r.Apply(ctx)
			if err != nil || res.Err() != nil {
				b.Fatal(err, res.Err())
			}
			if res.Written != 1 {
				b.Fatalf("one-file change wrote %d tenants, want 1", res.Written)
			}
			stmts, written = st.Statements()-before, int64(res.Written)
		}
		b.ReportMetric(float64(stmts), "statements/op")
		b.ReportMetric(float64(written), "tenants-written/op")
	})

	b.Run("plan", func(b *testing.B) {
		r := benchReconciler(b, tree, st)
		for b.Loop() {
			if _, err := r.Plan(ctx, true); err != nil {
				b.Fatal(err)
			}
		}
	})
}
