package executor_test

import (
	"os"
	"testing"

	"github.com/riveredge/tasksync/reconciler/testmain"
)

// TestMain lets this test binary serve as the sandbox's init, as the
// tasksync binary does.
func TestMain(m *testing.M) { os.Exit(testmain.Run(m, testmain.Options{})) }
