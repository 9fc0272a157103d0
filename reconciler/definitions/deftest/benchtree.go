package deftest

import (
	"os"
	"strconv"
	"testing"
)

// BenchTree returns the tree a benchmark reads: $TASKSYNC_BENCH_TREE when
// set (make bench points it at the 10k-tenant tree), otherwise a tree
// Generate writes in a temporary directory with $TASKSYNC_BENCH_TENANTS
// tenants, or tenants when that is unset.
func BenchTree(b *testing.B, tenants int) string {
	b.Helper()
	if dir := os.Getenv("TASKSYNC_BENCH_TREE"); dir != "" {
		return dir
	}
	if s := os.Getenv("TASKSYNC_BENCH_TENANTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("TASKSYNC_BENCH_TENANTS=%q: %v; set it to a number of tenants", s, err)
		}
		tenants = n
	}
	dir := b.TempDir()
	if err := Generate(dir, tenants); err != nil {
		b.Fatal(err)
	}
	return dir
}
