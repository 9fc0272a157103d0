package main

import (
	"os"
	"testing"

	"github.com/riveredge/tasksync/reconciler/store/storetest"
)

var pg *storetest.Cluster

func TestMain(m *testing.M) { os.Exit(storetest.Main(m, &pg)) }
