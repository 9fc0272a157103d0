// Command gentree writes the deterministic definitions tree the benchmarks
// use: gentree -tenants 10000 DIR; with -rare, the tree whose schedules
// fire rarely that the daemon benchmark registers (deftest.GenerateRare).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
)

func main() {
	tenants := flag.Int("tenants", 10000, "number of tenants; each gets 10 definitions")
	rare := flag.Bool("rare", false, "daily and weekly schedules instead of hourly and minutes-long ones")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: gentree [-tenants N] [-rare] DIR")
		os.Exit(2)
	}
	generate := deftest.Generate
	if *rare {
		generate = deftest.GenerateRare
	}
	if err := generate(flag.Arg(0), *tenants); err != nil {
		fmt.Fprintln(os.Stderr, "gentree:", err)
		os.Exit(1)
	}
}
