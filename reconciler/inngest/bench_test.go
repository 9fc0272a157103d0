package inngest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/riveredge/tasksync/reconciler"
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
