package main

import (
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"

	"github.com/riveredge/tasksync/reconciler/inngest/inngesttest"
	"github.com/riveredge/tasksync/reconciler/store/storetest"
	"github.com/riveredge/tasksync/reconciler/testmain"
)

var (
	pg  *storetest.Cluster
	dev *inngesttest.Server
)

func TestMain(m *testing.M) {
	// Every test that runs a command also checks that the command's help
	// names each environment variable it reads (TestEnvReadsAreInHelp
	// drives the reads on purpose).
	var mu sync.Mutex
	undeclared := map[string]bool{}
	undeclaredEnv = func(command, name string) {
		mu.Lock()
		defer mu.Unlock()
		undeclared[command+" reads $"+name] = true
	}
	code := testmain.Run(m, testmain.Options{Postgres: &pg, Inngest: &dev})
	if len(undeclared) > 0 && len(os.Args) > 0 {
		var list []string
		for u := range undeclared {
			list = append(list, u)
		}
		sort.Strings(list)
		fmt.Fprintf(os.Stderr, "FAIL: environment variables read but not named in the command's help (add them to commandEnv in help.go): %v\n", list)
		code = 1
	}
	os.Exit(code)
}
