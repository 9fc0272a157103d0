package executor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/executor"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

func sandbox(t *testing.T) *executor.Sandbox { return sandboxB(t) }

func sandboxB(t testing.TB) *executor.Sandbox {
	t.Helper()
	return sandboxWith(t, &executor.Sandbox{Python: "/usr/bin/python3"})
}

// sandboxCgroupEnv names the cgroup the sandbox's tests use, as the
// daemon's --sandbox-cgroup does; unset, they find one themselves.
// TestSandboxUnprivilegedDaemon sets it to a cgroup delegated to the
// unprivileged uid.
const sandboxCgroupEnv = "TASKSYNC_SANDBOX_CGROUP"

// sandboxWith checks s, with the tests' cgroup, and returns it.
func sandboxWith(t testing.TB, s *executor.Sandbox) *executor.Sandbox {
	t.Helper()
	if s.Cgroup == "" {
		s.Cgroup = os.Getenv(sandboxCgroupEnv)
	}
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("the sandbox must work on the test machines (run as root): %v", err)
	}
	return s
}

func script(src string) reconciler.PythonScript {
	return reconciler.PythonScript{Script: src, Timeout: reconciler.Duration(20 * time.Second), MemoryMB: 256}
}

func TestSandboxRunsAScript(t *testing.T) {
	s := sandbox(t)
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "tasksync-script-*"))
	red := &executor.Redactor{}
	red.Add("hunter2")
	res, err := s.Run(context.Background(), script(`
import json, os, sys
print("args", sys.argv[1:])
print("secret", os.environ["TOKEN"])
# The environment the process was given (Python itself may add LC_CTYPE).
given = sorted(e.split(b"=", 1)[0].decode() for e in open("/proc/self/environ", "rb").read().split(b"\0") if e)
print(json.dumps({"env": given, "uid": os.getuid(), "pid": os.getpid(), "cwd": os.getcwd()}))
`), []string{"--tenant", "acme"}, map[string]string{"TOKEN": "hunter2", "MODE": "test"}, red)
	if err != nil {
		t.Fatalf("run: %v\n%+v", err, res)
	}
	m, ok := res.Result.(map[string]any)
	if !ok {
		t.Fatalf("result = %#v, want the JSON of the last line; stdout %q", res.Result, res.Stdout)
	}
	if fmt.Sprint(m["env"]) != "[MODE TOKEN]" {
		t.Errorf("environment = %v, want exactly the declared MODE and TOKEN", m["env"])
	}
	n, _ := m["uid"].(json.Number)
	uid, _ := n.Int64()
	r, _ := executor.ParseUIDRange(executor.DefaultSandboxUIDs)
	if os.Geteuid() != 0 {
		r = executor.UIDRange{First: os.Geteuid(), Last: os.Geteuid()} // in a user namespace, as itself
	}
	if int(uid) < r.First || int(uid) > r.Last || m["pid"] != json.Number("1") {
		t.Errorf("uid %v pid %v, want one of %s and 1 (own PID namespace)", m["uid"], m["pid"], r)
	}
	if !strings.Contains(res.Stdout, "args ['--tenant', 'acme']") {
		t.Errorf("stdout = %q, want the args", res.Stdout)
	}
	if strings.Contains(res.Stdout, "hunter2") || !strings.Contains(res.Stdout, "secret "+executor.Redacted) {
		t.Errorf("stdout = %q, want the secret redacted", res.Stdout)
	}
	if m["cwd"] != "/tmp/work" {
		t.Errorf("cwd = %v, want /tmp/work", m["cwd"])
	}
	if after, _ := filepath.Glob(filepath.Join(os.TempDir(), "tasksync-script-*")); len(after) > len(before) {
		t.Errorf("work directories left behind: %v", after)
	}
}

func TestSandboxConfines(t *testing.T) {
	s := sandbox(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	cases := []struct {
		name, src string
	}{
		{"no network", fmt.Sprintf(`
import socket
try:
    socket.create_connection(("127.0.0.1", %d), timeout=2)
    print("REACHED")
except OSError as e:
    print("refused", e)
`, port)},
		{"cannot write outside its directory", `
import os
for p in ["/etc/tasksync-probe", "/root/tasksync-probe", "/usr/tasksync-probe"]:
    try:
        open(p, "w").write("x")
        print("WROTE", p)
    except OSError as e:
        print("refused", p, e.errno)
open("mine.txt", "w").write("ok")
print("own dir ok")
`},
		{"cannot read root-only files", `
try:
    open("/etc/shadow").read()
    print("READ")
except OSError as e:
    print("refused", e.errno)
`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := s.Run(context.Background(), script(tc.src), nil, nil, nil)
			if err != nil {
				t.Fatalf("run: %v (%+v)", err, res)
			}
			if strings.Contains(res.Stdout, "REACHED") || strings.Contains(res.Stdout, "WROTE") || strings.Contains(res.Stdout, "READ") || !strings.Contains(res.Stdout, "refused") {
				t.Errorf("stdout = %q", res.Stdout)
			}
		})
	}
	if _, err := os.Stat("/etc/tasksync-probe"); err == nil {
		t.Errorf("/etc/tasksync-probe exists")
	}
}

func TestSandboxLimits(t *testing.T) {
	s := sandbox(t)
	t.Run("memory", func(t *testing.T) {
		py := script(`
try:
    b = bytearray(512 * 1024 * 1024)
    print("ALLOCATED")
except MemoryError:
    print("memory refused")
`)
		py.MemoryMB = 96
		res, err := s.Run(context.Background(), py, nil, nil, nil)
		if err != nil || !strings.Contains(res.Stdout, "memory refused") {
			t.Errorf("memory: %v %+v", err, res)
		}
	})
	t.Run("fork bomb", func(t *testing.T) {
		start := time.Now()
		res, err := s.Run(context.Background(), script(`
import os
n = 0
try:
    while True:
        if os.fork() == 0:
            import time; time.sleep(30); os._exit(0)
        n += 1
except OSError as e:
    print("contained after", n, "forks")
`), nil, nil, nil)
		if err != nil || !strings.Contains(res.Stdout, "contained after") {
			t.Errorf("fork bomb: %v %+v", err, res)
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("the run took %v: the children outlived the script", d)
		}
	})
	t.Run("timeout kills grandchildren", func(t *testing.T) {
		marker := fmt.Sprintf("tasksync-grandchild-%d", time.Now().UnixNano())
		py := script(fmt.Sprintf(`
import subprocess, time
subprocess.Popen([%q, "300"], executable="/bin/sleep", start_new_session=True)
print("started", flush=True)
time.sleep(300)
`, marker))
		py.Timeout = reconciler.Duration(time.Second)
		start := time.Now()
		res, err := s.Run(context.Background(), py, nil, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "timeout") {
			t.Errorf("err = %v, want the timeout", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("the timeout took %v", d)
		}
		if res == nil || !strings.Contains(res.Stdout, "started") {
			t.Errorf("stdout = %+v", res)
		}
		waittest.For(t, "the grandchild "+marker+" to end with the timed-out run", 5*time.Second, func() bool {
			out, _ := exec.Command("pgrep", "-f", marker).Output()
			return len(strings.TrimSpace(string(out))) == 0
		})
	})
	t.Run("output capped", func(t *testing.T) {
		res, err := s.Run(context.Background(), script(`print("x" * 200000)`), nil, nil, nil)
		if err != nil || !res.Truncated || len(res.Stdout) != reconciler.MaxResponseCaptureBytes {
			t.Errorf("output: %v truncated=%v len=%d", err, res.Truncated, len(res.Stdout))
		}
	})
	t.Run("failure", func(t *testing.T) {
		res, err := s.Run(context.Background(), script("import sys\nprint('oops', file=sys.stderr)\nsys.exit(3)"), nil, nil, nil)
		if err == nil || res.ExitCode != 3 || !strings.Contains(err.Error(), "status 3") || !strings.Contains(err.Error(), "oops") {
			t.Errorf("failure: %v %+v", err, res)
		}
	})
}

// TestSandboxRefusesWithoutSandbox: an interpreter the sandbox user cannot
// run makes every script refused, with a clear error.
func TestSandboxRefusesWithoutSandbox(t *testing.T) {
	s := &executor.Sandbox{Python: "/nonexistent/python3"}
	_, err := s.Run(context.Background(), script("print(1)"), nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "sandbox cannot be set up") {
		t.Errorf("err = %v, want ErrSandboxUnavailable", err)
	}
}

// TestSandboxMasksPaths: the definitions tree and the secrets directory
// are hidden from scripts even where an operator put them inside the tree
// the sandbox exposes read-only (/usr), with world-readable files.
func TestSandboxMasksPaths(t *testing.T) {
	base := "/usr/local/share"
	dir, err := os.MkdirTemp(base, "tasksync-mask-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	secret := filepath.Join(dir, "secrets", "TOKEN")
	if err := os.MkdirAll(filepath.Dir(secret), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secret, []byte("world-readable-secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	read := script(fmt.Sprintf(`
try:
    print(open(%q).read())
except OSError as e:
    print("hidden", e.errno)
`, secret))
	open := &executor.Sandbox{Python: "/usr/bin/python3"}
	if res, err := open.Run(context.Background(), read, nil, nil, nil); err != nil || !strings.Contains(res.Stdout, "world-readable-secret") {
		t.Fatalf("without the mask the file should be readable (or this test proves nothing): %v %+v", err, res)
	}
	masked := &executor.Sandbox{Python: "/usr/bin/python3", Mask: []string{filepath.Dir(secret)}}
	res, err := masked.Run(context.Background(), read, nil, nil, nil)
	if err != nil {
		t.Fatalf("run: %v %+v", err, res)
	}
	if strings.Contains(res.Stdout, "world-readable-secret") || !strings.Contains(res.Stdout, "hidden") {
		t.Errorf("stdout = %q, want the file hidden", res.Stdout)
	}
}
