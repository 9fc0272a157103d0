package main

import (
	"os"
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
	os.Exit(testmain.Run(m, testmain.Options{Postgres: &pg, Inngest: &dev}))
}
