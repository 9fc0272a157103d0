package executor_test

// Red-team tests of what one python_script run may take from the host:
// disk, memory, processes, CPU. Each is an attack a hostile tenant's
// script tries against the machine every tenant shares.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/executor"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// waitForProcess waits until a process whose command line holds marker
// runs, or fails the test after 30 s.
func waitForProcess(t *testing.T, marker string) {
	t.Helper()
	waittest.For(t, "a process "+marker, 30*time.Second, func() bool {
		out, _ := exec.Command("pgrep", "-f", marker).Output()
		return len(strings.TrimSpace(string(out))) > 0
	})
}

// TestSandboxDiskBounded: a script filling every directory it may write
// to (its work directory, /tmp, /dev/shm) with many files stops at the
// documented bound, and every one of them is a tmpfs of the sandbox's own,
// so the host's disk holds none of it. (The host's free space is not
// compared: other tests write to the same disk at the same time.)
func TestSandboxDiskBounded(t *testing.T) {
	s := sandbox(t)
	marker := fmt.Sprintf("tasksync-diskfill-%d", time.Now().UnixNano())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan string, 1)
	go func() {
		py := script(fmt.Sprintf(`
import errno, os, subprocess
mounts = {}
for line in open("/proc/self/mounts"):
    f = line.split()
    mounts[f[1]] = f[2]
for d in ["/tmp/work", "/tmp", "/dev/shm"]:
    m = d
    while m not in mounts:
        m = os.path.dirname(m)
    print("fs", d, mounts[m], flush=True)
for d in ["/tmp/work", "/tmp", "/dev/shm"]:
    written, err = 0, "none"
    try:
        for i in range(24):
            with open("%%s/fill-%%d" %% (d, i), "wb") as f:
                for _ in range(16):
                    f.write(b"x" * (1 << 20))
                    written += 1 << 20
    except OSError as e:
        err = errno.errorcode.get(e.errno, e.errno)
    print("dir", d, written, err, flush=True)
subprocess.Popen([%q, "60"], executable="/bin/sleep")
import time; time.sleep(60)
`, marker))
		py.Timeout = reconciler.Duration(60 * time.Second)
		res, _ := s.Run(ctx, py, nil, nil, nil)
		done <- stdoutOf(res)
	}()
	waitForProcess(t, marker)
	cancel()
	out := <-done
	for _, d := range []string{"/tmp/work", "/tmp", "/dev/shm"} {
		if !strings.Contains(out, "fs "+d+" tmpfs\n") {
			t.Errorf("%s is not a tmpfs of the sandbox's own (so it writes to a host filesystem):\n%s", d, out)
		}
	}
	var total int64
	for _, d := range []string{"/tmp/work", "/tmp", "/dev/shm"} {
		var written int64
		var errName string
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) == 4 && f[0] == "dir" && f[1] == d {
				written, _ = strconv.ParseInt(f[2], 10, 64)
				errName = f[3]
			}
		}
		if errName != "ENOSPC" && errName != "EFBIG" {
			t.Errorf("%s: the script wrote %d MiB and stopped with %q, want ENOSPC or EFBIG:\n%s", d, written>>20, errName, out)
		}
		total += written
	}
	if max := int64(executor.SandboxWritableBytes); total > max {
		t.Errorf("the script wrote %d MiB in all, want at most %d MiB", total>>20, max>>20)
	}
}

// TestSandboxRunMemoryBounded: the memory limit holds for the whole run,
// not per process: six children touching 300 MiB each under a 512 MiB
// limit do not all survive (and so never hold 1.8 GB of the host's).
func TestSandboxRunMemoryBounded(t *testing.T) {
	s := sandbox(t)
	py := script(`
import os, time
kids = []
for i in range(6):
    pid = os.fork()
    if pid == 0:
        try:
            b = bytearray(300 << 20)
            for j in range(0, len(b), 4096):
                b[j] = 1
        except MemoryError:
            os._exit(3)
        time.sleep(3)
        os._exit(0)
    kids.append(pid)
survived = 0
for pid in kids:
    _, st = os.waitpid(pid, 0)
    if os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0:
        survived += 1
print("survived", survived, flush=True)
`)
	py.MemoryMB = 512
	py.Timeout = reconciler.Duration(60 * time.Second)
	res, err := s.Run(context.Background(), py, nil, nil, nil)
	out := stdoutOf(res)
	switch {
	case err != nil:
		// The run as a whole was killed: it must say why.
		if !strings.Contains(err.Error(), "memory limit") {
			t.Errorf("err = %v, want it to name the run's memory limit", err)
		}
	case strings.Contains(out, "survived 0\n") || strings.Contains(out, "survived 1\n"):
		t.Logf("stdout: %s", out)
	default:
		t.Errorf("more than one 300 MiB child survived under a 512 MiB run limit:\n%s", out)
	}
}

// TestSandboxRunOOMSaysWhy: a run the kernel kills at its memory limit
// fails with an error that names the limit.
func TestSandboxRunOOMSaysWhy(t *testing.T) {
	s := sandbox(t)
	py := script(`
import subprocess
b = bytearray(200 << 20)
for j in range(0, len(b), 4096):
    b[j] = 1
subprocess.run(["/usr/bin/python3", "-c", "b = b'x' * (150 << 20); import time; time.sleep(5)"])
print("SURVIVED")
`)
	py.MemoryMB = 256
	py.Timeout = reconciler.Duration(60 * time.Second)
	res, err := s.Run(context.Background(), py, nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "memory limit (256 MiB for all its processes) was reached") {
		t.Errorf("err = %v, want the run's memory limit named\n%s", err, stdoutOf(res))
	}
}

// TestSandboxForkBombPidsLimit: a fork bomb stops at the run's process
// limit, and the run's error says so.
func TestSandboxForkBombPidsLimit(t *testing.T) {
	s := sandbox(t)
	start := time.Now()
	res, err := s.Run(context.Background(), script(`
import os, time
n = 0
try:
    while n < 1000:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        n += 1
finally:
    print("forked", n, flush=True)
`), nil, nil, nil)
	out := stdoutOf(res)
	t.Logf("err = %v", err)
	if err == nil || !strings.Contains(err.Error(), "process limit") {
		t.Errorf("err = %v, want the run's process limit named\n%s", err, out)
	}
	var n int
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "forked" {
			n, _ = strconv.Atoi(f[1])
		}
	}
	if n < 1 || n >= 64 {
		t.Errorf("forked %d children, want fewer than 64:\n%s", n, out)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the run took %v: the children outlived the script", d)
	}
}

// TestSandboxCPUQuota: several processes spinning get no more CPU time,
// as the kernel counts it, than the run's quota.
func TestSandboxCPUQuota(t *testing.T) {
	s := sandboxWith(t, &executor.Sandbox{Python: "/usr/bin/python3", CPUs: 0.1})
	out := runOK(t, s, `
import os, time
end = time.monotonic() + 3
kids = []
for i in range(3):
    pid = os.fork()
    if pid == 0:
        while time.monotonic() < end:
            pass
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
t = os.times()
print("cpu", t.children_user + t.children_system)
`)
	var cpu float64
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "cpu" {
			cpu, _ = strconv.ParseFloat(f[1], 64)
		}
	}
	// 3 s at a tenth of a core is 0.3 s; three spinners unbounded take
	// more than a core.
	if cpu <= 0 || cpu > 0.5 {
		t.Errorf("three spinners used %.2f CPU-seconds in 3 s, want at most 0.5 (a tenth of a core):\n%s", cpu, out)
	}
}

// TestSandboxCgroupRemoved: each run is in a cgroup of its own, which is
// gone once the run is.
func TestSandboxCgroupRemoved(t *testing.T) {
	s := sandbox(t)
	out := runOK(t, s, `print(open("/proc/self/cgroup").read())`)
	var dirs []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 || !strings.Contains(f[2], "tasksync-") {
			continue
		}
		for _, ctrl := range strings.Split(f[1], ",") {
			switch ctrl {
			case "memory", "pids", "cpu":
				dirs = append(dirs, filepath.Join("/sys/fs/cgroup", ctrl, f[2]))
			case "":
				dirs = append(dirs, filepath.Join("/sys/fs/cgroup", f[2]), filepath.Join("/sys/fs/cgroup/unified", f[2]))
			}
		}
	}
	if len(dirs) == 0 {
		t.Fatalf("the script is in no cgroup of its run:\n%s", out)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("the run's cgroup %s is still there", d)
		}
	}
}

// TestSandboxStaleCgroupsRemoved: the empty run cgroups a killed daemon
// left behind are removed when a sandbox starts.
func TestSandboxStaleCgroupsRemoved(t *testing.T) {
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var parent string
	for _, line := range strings.Split(string(own), "\n") {
		if f := strings.SplitN(line, ":", 3); len(f) == 3 && f[1] == "pids" && os.Getenv(sandboxCgroupEnv) == "" {
			parent = filepath.Join("/sys/fs/cgroup/pids", f[2])
		}
	}
	if parent == "" {
		t.Skip("needs the cgroup v1 pids hierarchy the sandbox finds by itself")
	}
	// No process has pid 999999999 (the kernel's maximum is 2^22); a
	// daemon restarted as pid 1 of its container has its predecessor's
	// pid, with another token.
	var stale []string
	for _, name := range []string{"tasksync-999999999-deadbeef-1", fmt.Sprintf("tasksync-%d-00000000-1", os.Getpid())} {
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(dir) })
		stale = append(stale, dir)
	}
	sandboxWith(t, &executor.Sandbox{Python: "/usr/bin/python3"})
	for _, dir := range stale {
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("the stale cgroup %s is still there", dir)
		}
	}
}

// TestSandboxCgroupRefused: where no cgroup per run can be set up,
// scripts are refused, with the reason.
func TestSandboxCgroupRefused(t *testing.T) {
	cases := []struct{ cgroup, want string }{
		{"tasksync", "absolute path"},
		{t.TempDir(), "not a directory of a cgroup v1 hierarchy"},
		{"/sys/fs/cgroup/no-such-cgroup", "no such file"},
	}
	if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.controllers"); err == nil {
		// A hybrid host: its cgroup v2 has no controllers.
		cases = append(cases, struct{ cgroup, want string }{"/sys/fs/cgroup/unified", "the memory controller is not available"})
	}
	for _, tc := range cases {
		s := &executor.Sandbox{Python: "/usr/bin/python3", Cgroup: tc.cgroup}
		_, err := s.Run(context.Background(), script("print(1)"), nil, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "sandbox cannot be set up") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Cgroup %q: err = %v, want scripts refused because %q", tc.cgroup, err, tc.want)
		}
	}
}
