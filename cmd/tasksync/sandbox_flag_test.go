package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler/waittest"
)

// TestSandboxCgroupFlag: --sandbox-cgroup takes auto, none or an absolute
// directory; the daemon logs where runs' cgroups go, warns about none,
// and refuses scripts (with a warning saying why) where no cgroup can be
// set up.
func TestSandboxCgroupFlag(t *testing.T) {
	t.Run("a relative path is a usage error", func(t *testing.T) {
		var stdout, stderr strings.Builder
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		env := map[string]string{"INNGEST_DEV": "http://127.0.0.1:1", "DATABASE_URL": "postgres://u@127.0.0.1:1/x?connect_timeout=1"}
		err := run(ctx, []string{"run", "--dir", t.TempDir(), "--sandbox-cgroup", "tasksync"}, func(k string) string { return env[k] }, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), "--sandbox-cgroup") {
			t.Errorf("run --sandbox-cgroup tasksync = %v, want a usage error", err)
		}
	})
	if os.Geteuid() != 0 {
		t.Skip("auto finds a cgroup on the test machines as root")
	}
	bin := buildBinary(t)
	for _, tc := range []struct {
		name, value, want string
	}{
		{"auto", "auto", `"cgroups":"cgroup v`},
		{"none", "none", `no cgroup (--sandbox-cgroup none)`},
		{"not a cgroup", t.TempDir(), `python_script runs will be refused`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, logs, _ := startDaemon(t, bin, []string{"DATABASE_URL=" + pg.NewDatabase(t), "TASKSYNC_DIR=" + copyTree(t), "INNGEST_DEV=" + dev.URL,
				"TASKSYNC_SANDBOX_CGROUP=" + tc.value}, "1m")
			waittest.For(t, "the start-up log to say "+tc.want, 30*time.Second, func() bool { return strings.Contains(logs.String(), tc.want) })
		})
	}
}
