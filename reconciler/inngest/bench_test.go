package inngest_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/inngest"
)

// BenchmarkSync measures the time from an applied change to a verified
// sync of one tenant's app: build the app, sync it, read Inngest's view.
func BenchmarkSync(b *testing.B) {
	for _, n := range []int{10, 500} {
		b.Run(fmt.Sprintf("functions=%d", n), func(b *testing.B) {
			reg := newRegistryB(b, nil)
			defs := make([]reconciler.Definition, n)
			for i := range defs {
				defs[i] = def(fmt.Sprintf("task-%03d", i), reconciler.Trigger{Cron: fmt.Sprintf("%d * * * *", i%60), Timezone: "Europe/Berlin"})
			}
			i := 0
			for b.Loop() {
				i++
				defs[0].Spec.Trigger.Cron = fmt.Sprintf("%d 2 * * *", i%60) // a change each time
				if err := reg.SetTenant("acme", defs, nopRunner{}); err != nil {
					b.Fatal(err)
				}
				if err := reg.Sync(context.Background(), "acme"); err != nil {
					b.Fatal(err)
				}
				d, err := reg.Verify(context.Background(), "acme")
				if err != nil || !d.None() {
					b.Fatalf("verify: %+v %v", d, err)
				}
			}
		})
	}
}

// BenchmarkRegistryMemory reports the heap a registry holds for 10,000
// tenants of 10 definitions each (run it with -benchtime=1x): after every
// tenant is set (heap-B/tenant), and after every app was used once, its
// registration computed (used-B/tenant). The definitions are api_calls
// with labels, headers and a body, decoded from their canonical documents
// as the store gives them, and counted: what the registry keeps of them
// is part of the figure (the documents they are decoded from, made before
// the first reading, are not). set-µs/tenant,
// build-µs/tenant (every app built, one after the other) and
// use-µs/tenant (every registration hash, each app built again) are the
// time each step took.
func BenchmarkRegistryMemory(b *testing.B) {
	const tenants, perTenant = 10_000, 10
	docs := make([][][]byte, tenants)
	for i := range docs {
		for j := range perTenant {
			var t reconciler.Trigger
			switch j % 5 {
			case 0:
				t = reconciler.Trigger{Cron: fmt.Sprintf("%d 2 * * *", j), Timezone: "Europe/Berlin"}
			case 1:
				t = reconciler.Trigger{Interval: reconciler.Duration(5 * time.Minute)}
			case 2:
				t = reconciler.Trigger{Interval: reconciler.Duration(7 * time.Minute)}
			case 3:
				t = reconciler.Trigger{Event: "user/signed-up", If: `event.data.plan != "free"`}
			case 4:
				at := time.Now().Add(24 * time.Hour)
				t = reconciler.Trigger{At: &at}
			}
			d := def(fmt.Sprintf("task-%02d", j), t)
			d.Metadata.Labels = map[string]string{"team": "data"}
			d.Spec.Type = reconciler.TaskAPICall
			d.Spec.Config = &reconciler.TaskConfig{APICall: &reconciler.APICall{Method: "POST",
				URL:     fmt.Sprintf("https://export.example.com/run?tenant=tenant-%05d", i),
				Headers: map[string]string{"Authorization": "Bearer ${secret:EXPORT_TOKEN}"},
				Body:    map[string]any{"tenant": fmt.Sprintf("tenant-%05d", i), "format": "csv"}, Timeout: reconciler.Duration(2 * time.Minute)}}
			doc, err := d.Canonical()
			if err != nil {
				b.Fatal(err)
			}
			docs[i] = append(docs[i], doc)
		}
	}
	// The definitions as the store gives them (decoded from their
	// documents), counted in the heap while the registry holds them.
	decoded := func(i int) []reconciler.Definition {
		defs := make([]reconciler.Definition, len(docs[i]))
		for j, doc := range docs[i] {
			d, err := reconciler.DecodeCanonical(fmt.Sprintf("tenant-%05d", i), doc, nil)
			if err != nil {
				b.Fatal(err)
			}
			d.Hash = fmt.Sprintf("%064x", i*perTenant+j)
			defs[j] = d
		}
		return defs
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for b.Loop() {
		base := heap()
		reg := newRegistryB(b, nil)
		start := time.Now()
		for i := range docs {
			if err := reg.SetTenant(fmt.Sprintf("tenant-%05d", i), decoded(i), nopRunner{}); err != nil {
				b.Fatal(err)
			}
		}
		setTook := time.Since(start)
		set := heap()
		start = time.Now()
		for i := range docs {
			if err := inngest.Build(reg, fmt.Sprintf("tenant-%05d", i)); err != nil {
				b.Fatal(err)
			}
		}
		buildTook := time.Since(start)
		start = time.Now()
		for i := range docs {
			if _, err := reg.RegistrationHash(context.Background(), fmt.Sprintf("tenant-%05d", i)); err != nil {
				b.Fatal(err)
			}
		}
		useTook := time.Since(start)
		used := heap()
		runtime.KeepAlive(reg)
		b.ReportMetric(float64(int64(set)-int64(base))/tenants, "heap-B/tenant")
		b.ReportMetric(float64(int64(used)-int64(base))/tenants, "used-B/tenant")
		b.ReportMetric(float64(setTook.Microseconds())/tenants, "set-µs/tenant")
		b.ReportMetric(float64(buildTook.Microseconds())/tenants, "build-µs/tenant")
		b.ReportMetric(float64(useTook.Microseconds())/tenants, "use-µs/tenant")
	}
	runtime.KeepAlive(docs)
}
