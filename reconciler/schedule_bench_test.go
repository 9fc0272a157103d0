package reconciler

import (
	"testing"
	"time"
)

// BenchmarkNextFires is the missed-fire check's cost per definition: the
// next fire of a cron in a named zone.
func BenchmarkNextFires(b *testing.B) {
	t := Trigger{Cron: "13 13 * * *", Timezone: "Europe/Berlin"}
	from := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if len(NextFires(t, from, 1)) != 1 {
			b.Fatal("no fire")
		}
	}
}
