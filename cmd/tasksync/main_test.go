package main

import (
	"fmt"
	"os"
	"testing"

	"github.com/riveredge/tasksync/reconciler/executor"
	"github.com/riveredge/tasksync/reconciler/inngest/inngesttest"
	"github.com/riveredge/tasksync/reconciler/store/storetest"
)

var (
	pg  *storetest.Cluster
	dev *inngesttest.Server
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == executor.SandboxInitArg {
		os.Exit(executor.SandboxInit())
	}
	s, err := inngesttest.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tasksync tests:", err)
		os.Exit(1)
	}
	dev = s
	code := storetest.Main(m, &pg)
	s.Stop()
	os.Exit(code)
}
