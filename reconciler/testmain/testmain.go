// Package testmain is the TestMain of the test binaries that run tasks or
// need the real servers: the binary doubles as the sandbox's init, as the
// tasksync binary does, and the PostgreSQL cluster and the Inngest dev
// server the package's tests share start before them and stop after.
package testmain

import (
	"fmt"
	"os"
	"testing"

	"github.com/riveredge/tasksync/reconciler/executor"
	"github.com/riveredge/tasksync/reconciler/inngest/inngesttest"
	"github.com/riveredge/tasksync/reconciler/store/storetest"
)

// Options names the servers a package's tests share; a nil field starts
// nothing.
type Options struct {
	// Postgres receives a throwaway PostgreSQL cluster (storetest.Start).
	Postgres **storetest.Cluster
	// Inngest receives a running Inngest dev server (inngesttest.Start).
	Inngest **inngesttest.Server
}

// Run is a package's TestMain body: os.Exit(testmain.Run(m, opts)). A
// start as the sandbox's init (executor.SandboxInitArg) becomes that init;
// any other starts the servers opts names, runs the tests and stops the
// servers. It returns the code to exit with.
func Run(m *testing.M, opts Options) int {
	if len(os.Args) > 1 && os.Args[1] == executor.SandboxInitArg {
		return executor.SandboxInit()
	}
	if opts.Inngest != nil {
		s, err := inngesttest.Start()
		if err != nil {
			fmt.Fprintln(os.Stderr, "testmain:", err)
			return 1
		}
		defer s.Stop()
		*opts.Inngest = s
	}
	if opts.Postgres != nil {
		return storetest.Main(m, opts.Postgres)
	}
	return m.Run()
}
