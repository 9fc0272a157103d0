// Command gentree writes the deterministic definitions tree the benchmarks
// use: gentree -tenants 10000 DIR.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
)

func main() {
	tenants := flag.Int("tenants", 10000, "number of tenants; each gets 10 definitions")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: gentree [-tenants N] DIR")
		os.Exit(2)
	}
	if err := deftest.Generate(flag.Arg(0), *tenants); err != nil {
		fmt.Fprintln(os.Stderr, "gentree:", err)
		os.Exit(1)
	}
}
