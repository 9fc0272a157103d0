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
// registration computed (used-B/tenant). The definitions themselves,
// made before the first reading, are not counted. set-µs/tenant,
// build-µs/tenant (every app built, one after the other) and
// use-µs/tenant (every registration hash, each app built again) are the
// time each step took.
func BenchmarkRegistryMemory(b *testing.B) {
	const tenants, perTenant = 10_000, 10
	all := make([][]reconciler.Definition, tenants)
	for i := range all {
		defs := make([]reconciler.Definition, perTenant)
		for j := range defs {
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
			defs[j] = def(fmt.Sprintf("task-%02d", j), t)
			defs[j].Hash = fmt.Sprintf("%064x", i*perTenant+j)
		}
		all[i] = defs
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
		for i, defs := range all {
			if err := reg.SetTenant(fmt.Sprintf("tenant-%05d", i), defs, nopRunner{}); err != nil {
				b.Fatal(err)
			}
		}
		setTook := time.Since(start)
		set := heap()
		start = time.Now()
		for i := range all {
			if err := inngest.Build(reg, fmt.Sprintf("tenant-%05d", i)); err != nil {
				b.Fatal(err)
			}
		}
		buildTook := time.Since(start)
		start = time.Now()
		for i := range all {
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
	runtime.KeepAlive(all)
}
