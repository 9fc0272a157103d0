package executor_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/executor"
	"github.com/riveredge/tasksync/reconciler/testmain"
)

// holdScriptArg starts this test binary as a stand-in daemon that runs
// one sandboxed script, its source in holdScriptEnv, and waits for it:
// TestSandboxDiesWithDaemon kills it while the script runs.
const (
	holdScriptArg = "tasksync-test-hold-script"
	holdScriptEnv = "TASKSYNC_TEST_HOLD_SCRIPT"
)

// TestMain lets this test binary serve as the sandbox's init, as the
// tasksync binary does, and as holdScriptArg's stand-in daemon.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == holdScriptArg {
		s := &executor.Sandbox{Python: "/usr/bin/python3", Cgroup: os.Getenv(sandboxCgroupEnv)}
		py := reconciler.PythonScript{Script: os.Getenv(holdScriptEnv), Timeout: reconciler.Duration(time.Minute), MemoryMB: 256}
		_, err := s.Run(context.Background(), py, nil, nil, nil)
		fmt.Fprintln(os.Stderr, "the held script ended:", err)
		os.Exit(0)
	}
	os.Exit(testmain.Run(m, testmain.Options{}))
}
