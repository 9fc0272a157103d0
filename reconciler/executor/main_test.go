package executor_test

import (
	"os"
	"testing"

	"github.com/riveredge/tasksync/reconciler/executor"
)

// TestMain lets this test binary serve as the sandbox's init, as the
// tasksync binary does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == executor.SandboxInitArg {
		os.Exit(executor.SandboxInit())
	}
	os.Exit(m.Run())
}
