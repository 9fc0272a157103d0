package executor_test

// Red-team tests of the python_script sandbox's walls: each one is an
// attack a hostile tenant's script tries, and what it must find.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/executor"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// runOK runs src in s and fails the test unless it exits 0.
func runOK(t *testing.T, s *executor.Sandbox, src string, args ...string) string {
	t.Helper()
	res, err := s.Run(context.Background(), script(src), args, nil, nil)
	if err != nil {
		t.Fatalf("run: %v\nstdout: %s", err, stdoutOf(res))
	}
	return res.Stdout
}

func stdoutOf(res *executor.ScriptResult) string {
	if res == nil {
		return "<no result>"
	}
	return res.Stdout + res.Stderr
}

// freshDir makes a new directory under base (under the temporary
// directory when the test does not run as root), readable by all, removed
// at the end of the test.
func freshDir(t *testing.T, base string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		base = os.TempDir()
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(base, "tasksync-redteam-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestSandboxHostSocketUnreachable: a host unix socket anyone may connect
// to is not in the script's filesystem, so not reachable.
func TestSandboxHostSocketUnreachable(t *testing.T) {
	s := sandbox(t)
	path := filepath.Join(freshDir(t, "/run"), "test.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	if err := os.Chmod(path, 0o777); err != nil {
		t.Fatal(err)
	}
	out := runOK(t, s, fmt.Sprintf(`
import socket
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(%q)
    print("REACHED")
except OSError as e:
    print("refused", e.errno)
`, path))
	if !strings.Contains(out, "refused") {
		t.Errorf("stdout = %q, want the host socket unreachable", out)
	}
}

// TestSandboxHostPathsAbsent: nothing of the host's filesystem but the
// interpreter's read-only tree is there: no lock directories to share
// between runs, no token files, no /etc, /root, /home, /run, /var.
func TestSandboxHostPathsAbsent(t *testing.T) {
	s := sandbox(t)
	base := "/srv"
	token := filepath.Join(freshDir(t, base), "tokens")
	if err := os.WriteFile(token, []byte("status-token-of-everyone"), 0o644); err != nil {
		t.Fatal(err)
	}
	paths := []string{token, filepath.Dir(token), "/run/lock", "/var/lock", "/etc/shadow", "/etc/passwd", "/etc",
		"/root", "/home", "/run", "/var", "/srv", "/opt", "/mnt", "/boot", "/sys", "/work"}
	out := runOK(t, s, fmt.Sprintf(`
import os
for p in %s:
    print(p, "PRESENT" if os.path.lexists(p) else "absent")
for d in ["/run/lock", "/var/lock"]:
    try:
        open(d + "/tasksync-probe", "w").write("x")
        print(d, "WRITABLE")
    except OSError as e:
        print(d, "not writable", e.errno)
`, pyList(paths)))
	for _, p := range paths {
		if !strings.Contains(out, p+" absent\n") {
			t.Errorf("%s is in the sandbox; stdout:\n%s", p, out)
		}
	}
	if strings.Contains(out, "WRITABLE") || strings.Contains(out, "status-token-of-everyone") {
		t.Errorf("stdout:\n%s", out)
	}
}

func pyList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// TestSandboxOwnTmpAndSubprocess: what a script needs still works: its
// own writable /tmp and work directory, the devices it may use, and
// starting the interpreter again.
func TestSandboxOwnTmpAndSubprocess(t *testing.T) {
	s := sandbox(t)
	out := runOK(t, s, `
import os, subprocess
open("/tmp/scratch", "w").write("x")
open("mine.txt", "w").write("x")
open("/dev/null", "w").write("x")
assert len(open("/dev/urandom", "rb").read(8)) == 8
r = subprocess.run(["/usr/bin/python3", "-c", "print(1)"], capture_output=True, text=True)
print("child", r.returncode, r.stdout.strip())
print("cwd", os.getcwd())
print("main", __name__, __file__, sorted(k for k in globals() if not k.startswith("__")))
print("dev", sorted(os.listdir("/dev")))
print("root", sorted(os.listdir("/")))
for p in ["/usr/tasksync-probe", "/tasksync-probe", "/dev/tasksync-probe"]:
    try:
        open(p, "w")
        print("WROTE", p)
    except OSError as e:
        print("refused", p, e.errno)
`)
	for _, want := range []string{"child 0 1\n", "cwd /tmp/work\n", "main __main__ /tmp/work/main.py ['os', 'r', 'subprocess']\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "WROTE") {
		t.Errorf("the root is writable:\n%s", out)
	}
	for _, dev := range []string{"'sda'", "'vda'", "'mem'", "'kmsg'", "'tty'", "'console'"} {
		if strings.Contains(out, dev) {
			t.Errorf("/dev holds %s:\n%s", dev, out)
		}
	}
}

// TestSandboxProcessLimitPerRun: a tenant holding every process its limit
// allows does not make another tenant's concurrent run fail.
func TestSandboxProcessLimitPerRun(t *testing.T) {
	s := sandbox(t)
	marker := fmt.Sprintf("tasksync-holder-%d", time.Now().UnixNano())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		py := script(fmt.Sprintf(`
import subprocess, time
n = 0
try:
    for _ in range(200):
        subprocess.Popen([%q, "60"], executable="/bin/sleep")
        n += 1
except OSError as e:
    print("holding", n, "children:", e, flush=True)
time.sleep(60)
`, marker))
		py.Timeout = reconciler.Duration(60 * time.Second)
		s.Run(ctx, py, nil, nil, nil)
	}()
	// Wait until tenant A holds its processes (the limit, 64, less itself).
	waittest.For(t, "tenant A to hold 63 processes", 20*time.Second, func() bool {
		out, _ := exec.Command("pgrep", "-c", "-f", marker).Output()
		n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		return n >= 63
	})
	res, err := s.Run(context.Background(), script(`
import subprocess
r = subprocess.run(["/usr/bin/python3", "-c", "print(1)"], capture_output=True, text=True)
print("child", r.returncode, r.stdout.strip())
`), nil, nil, nil)
	cancel()
	wg.Wait()
	if err != nil || !strings.Contains(res.Stdout, "child 0 1") {
		t.Errorf("tenant B's run with tenant A holding 63 processes: %v\n%s", err, stdoutOf(res))
	}
}

// TestSandboxPrivileges: no_new_privs, no capability in any set, and a
// seccomp filter.
func TestSandboxPrivileges(t *testing.T) {
	s := sandbox(t)
	out := runOK(t, s, `
for line in open("/proc/self/status"):
    k = line.split(":")[0]
    if k in ("NoNewPrivs", "Seccomp", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        print(k, line.split()[1])
`)
	for _, want := range []string{"NoNewPrivs 1", "Seccomp 2", "CapInh 0000000000000000", "CapPrm 0000000000000000",
		"CapEff 0000000000000000", "CapBnd 0000000000000000", "CapAmb 0000000000000000"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("/proc/self/status lacks %q:\n%s", want, out)
		}
	}
}

// TestSandboxSeccompDenies: what scripts never need fails with EPERM,
// including through the 32-bit syscall entry.
func TestSandboxSeccompDenies(t *testing.T) {
	s := sandbox(t)
	src := `
import ctypes, errno, mmap, os, platform, sys
sys.stdout.reconfigure(line_buffering=True)
libc = ctypes.CDLL(None, use_errno=True)
def check(name, rc):
    e = ctypes.get_errno()
    print(name, "ALLOWED" if rc == 0 else errno.errorcode.get(e, e))
check("unshare-user", libc.unshare(0x10000000))
check("unshare-net", libc.unshare(0x40000000))
check("mount", libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
check("ptrace", libc.ptrace(16, 999999, None, None))  # PTRACE_ATTACH: ESRCH unless denied
check("keyctl", libc.syscall(250, 0, 0))
check("bpf", libc.syscall(321, 0, 0, 0))
check("userfaultfd", 0 if libc.syscall(323, 0) >= 0 else -1)
check("perf_event_open", 0 if libc.syscall(298, 0, 0, -1, -1, 0) >= 0 else -1)
r = os.fork()
if r == 0:
    os._exit(0)
os.waitpid(r, 0)
print("fork ok")
if platform.machine() == "x86_64":
    # getpid through the ia32 entry (int 0x80, nr 20) and the x32 ABI, each
    # in a child: a kernel without that entry kills the caller instead.
    for name, code in [("ia32", b"\xb8\x14\x00\x00\x00\xcd\x80\xc3"), ("x32", b"\xb8\x27\x00\x00\x40\x0f\x05\xc3")]:
        r = os.fork()
        if r == 0:
            m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
            m.write(code)
            addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
            rc = ctypes.CFUNCTYPE(ctypes.c_int)(addr)()
            print(name, "ALLOWED" if rc == os.getpid() else errno.errorcode.get(-rc, rc), flush=True)
            os._exit(0)
        _, st = os.waitpid(r, 0)
        if os.WIFSIGNALED(st):
            print(name, "no such entry: killed by signal", os.WTERMSIG(st))
`
	out := runOK(t, s, src)
	want := []string{"unshare-user EPERM", "unshare-net EPERM", "mount EPERM", "ptrace EPERM", "keyctl EPERM",
		"bpf EPERM", "userfaultfd EPERM", "perf_event_open EPERM", "fork ok"}
	if runtime.GOARCH == "amd64" && !strings.Contains(out, "ia32 no such entry") {
		// Where the kernel has the ia32 entry, the filter denies it.
		want = append(want, "ia32 EPERM")
	}
	wantSyscalls(t, out, want)
}

// wantSyscalls fails the test for each line of want the probe's stdout
// out lacks, and when the probe reports a denied syscall allowed.
func wantSyscalls(t *testing.T, out string, want []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w+"\n") {
			t.Errorf("stdout lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "ALLOWED") {
		t.Errorf("a denied syscall was allowed:\n%s", out)
	}
}

// TestSandboxNoInheritedFDs: a descriptor the daemon leaves inheritable
// (a library's pipe without close-on-exec) does not reach the script.
func TestSandboxNoInheritedFDs(t *testing.T) {
	s := sandbox(t)
	var p [2]int
	if err := syscall.Pipe(p[:]); err != nil { // deliberately without O_CLOEXEC
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(p[0]); syscall.Close(p[1]) })
	out := runOK(t, s, `
import os
open_fds = []
for fd in range(0, 1024):
    try:
        os.fstat(fd)
        open_fds.append(fd)
    except OSError:
        pass
print("fds", open_fds)
print("listing", sorted(int(f) for f in os.listdir("/proc/self/fd")))
`)
	if !strings.Contains(out, "fds [0, 1, 2]\n") || !strings.Contains(out, "listing [0, 1, 2, 3]\n") {
		t.Errorf("want only 0, 1, 2 open (and the listing's own fd):\n%s", out)
	}
}

// TestSandboxArgsNotInCmdline: an argument holding a secret is in no
// process's command line on the host while the script runs.
func TestSandboxArgsNotInCmdline(t *testing.T) {
	s := sandbox(t)
	secret := fmt.Sprintf("arg-s3cr3t-%d", time.Now().UnixNano())
	marker := fmt.Sprintf("tasksync-argwait-%d", time.Now().UnixNano())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		py := script(fmt.Sprintf(`
import subprocess, sys
print("argv", sys.argv, flush=True)
subprocess.run([%q, "60"], executable="/bin/sleep")
`, marker))
		res, err := s.Run(ctx, py, []string{"--token", secret, "--tenant=acme"}, nil, nil)
		done <- result{stdoutOf(res), err}
	}()
	if !waittest.Within(20*time.Second, func() bool {
		out, _ := exec.Command("pgrep", "-f", marker).Output()
		return len(strings.TrimSpace(string(out))) > 0
	}) {
		cancel()
		t.Fatalf("the script did not start: %+v", <-done)
	}
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range cmdlines {
		b, err := os.ReadFile(f)
		if err == nil && strings.Contains(string(b), secret) {
			t.Errorf("%s shows the secret argument: %q", f, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	cancel()
	r := <-done
	if want := fmt.Sprintf("argv ['main.py', '--token', '%s', '--tenant=acme']", secret); !strings.Contains(r.out, want) {
		t.Errorf("stdout = %q, want %q", r.out, want)
	}
}

// unprivilegedTestUID is the uid TestSandboxUnprivilegedDaemon runs the
// tests above as: no host user's, outside the default sandbox range.
const unprivilegedTestUID = 2000100000

// unprivilegedTests are the tests TestSandboxUnprivilegedDaemon runs
// again as an unprivileged uid.
const unprivilegedTests = "RunsAScript|Confines|Limits|HostSocketUnreachable|HostPathsAbsent|OwnTmpAndSubprocess|ProcessLimitPerRun|" +
	"Privileges|SeccompDenies|SeccompKernelSurface|CommonPythonWorks|NoInheritedFDs|ArgsNotInCmdline|" +
	"DiskBounded|RunMemoryBounded|RunOOMSaysWhy|ForkBombPidsLimit|CPUQuota|CgroupRemoved"

// delegateCgroup makes a cgroup below this process's own and delegates it
// to uid, as systemd's Delegate=yes does for a service: the directory and
// the files that move processes and enable controllers become uid's. It
// returns what to give the sandbox: for cgroup v1, the directories made
// in the memory, pids and cpu hierarchies, separated by commas.
func delegateCgroup(t *testing.T, uid int) string {
	t.Helper()
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("tasksync-test-delegated-%d", os.Getpid())
	var dirs []string
	for _, line := range strings.Split(strings.TrimSpace(string(own)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		for _, ctrl := range strings.Split(f[1], ",") {
			if ctrl == "memory" || ctrl == "pids" || ctrl == "cpu" {
				dirs = append(dirs, filepath.Join("/sys/fs/cgroup", ctrl, f[2], name))
			}
		}
	}
	if len(dirs) == 0 {
		t.Skip("delegating a cgroup v2 to the unprivileged test process needs it started inside it; only cgroup v1 is done here")
	}
	for _, d := range dirs {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(d) })
		for _, f := range []string{"", "cgroup.procs", "tasks"} {
			if err := os.Chown(filepath.Join(d, f), uid, uid); err != nil {
				t.Fatal(err)
			}
		}
	}
	return strings.Join(dirs, ",")
}

// TestSandboxUnprivilegedDaemon runs the sandbox's tests again from a
// process that is not root, as a daemon run the recommended way: each
// script then gets a user namespace of its own, and every wall must hold
// the same.
func TestSandboxUnprivilegedDaemon(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start the tests as an unprivileged uid (this process may be that start)")
	}
	if testing.Short() {
		t.Skip("runs the sandbox's tests again")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	// The test binary's own directory is root's alone: copy it where the
	// unprivileged uid may run it.
	dir := freshDir(t, os.TempDir())
	exe := filepath.Join(dir, "executor.test")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.count=1", "-test.v",
		"-test.run", "^TestSandbox("+unprivilegedTests+")$")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "TMPDIR=/tmp", "HOME=" + dir, sandboxCgroupEnv + "=" + delegateCgroup(t, unprivilegedTestUID)}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: unprivilegedTestUID, Gid: unprivilegedTestUID}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the sandbox's tests as uid %d: %v\n%s", unprivilegedTestUID, err, out)
	}
	if n, want := strings.Count(string(out), "--- PASS: TestSandbox"), strings.Count(unprivilegedTests, "|")+1; n < want {
		t.Errorf("only %d tests passed as uid %d:\n%s", n, unprivilegedTestUID, out)
	}
	t.Logf("as uid %d:\n%s", unprivilegedTestUID, out)
}

// TestSandboxUIDPool: with one uid, a second concurrent run waits for it
// (and gives up with its context); the uid comes back only once no
// process of the first run holds it.
func TestSandboxUIDPool(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the uid pool is a root daemon's")
	}
	const uid = 2000100001
	s := &executor.Sandbox{Python: "/usr/bin/python3", UIDs: executor.UIDRange{First: uid, Last: uid}}
	if err := s.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	marker := fmt.Sprintf("tasksync-pool-%d", time.Now().UnixNano())
	done := make(chan error, 1)
	go func() {
		// The script leaves a detached child behind: the uid must not come
		// back while it lives.
		_, err := s.Run(context.Background(), script(fmt.Sprintf(`
import subprocess
subprocess.Popen([%q, "60"], executable="/bin/sleep", start_new_session=True)
subprocess.run([%q, "1"], executable="/bin/sleep")
`, marker, marker+"-fg")), nil, nil, nil)
		done <- err
	}()
	waittest.For(t, "the first run to start", 20*time.Second, func() bool {
		out, _ := exec.Command("pgrep", "-f", marker+"-fg").Output()
		return len(strings.TrimSpace(string(out))) > 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := s.Run(ctx, script("print(1)"), nil, nil, nil); err == nil || !strings.Contains(err.Error(), "every sandbox uid") {
		t.Errorf("a run with every uid in use: err = %v, want it to wait and give up", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("first run: %v", err)
	}
	if pids := processesOf(t, uid); len(pids) > 0 {
		t.Errorf("processes of uid %d outlived their run: %v", uid, pids)
	}
	if out := runOK(t, s, "import os; print('uid', os.getuid())"); !strings.Contains(out, fmt.Sprintf("uid %d", uid)) {
		t.Errorf("stdout = %q, want the uid back in use", out)
	}
}

// processesOf lists the host's processes whose real uid is uid.
func processesOf(t *testing.T, uid int) []string {
	t.Helper()
	files, _ := filepath.Glob("/proc/[0-9]*/status")
	var pids []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if fields := strings.Fields(line); len(fields) > 1 && fields[0] == "Uid:" && fields[1] == strconv.Itoa(uid) {
				pids = append(pids, filepath.Base(filepath.Dir(f)))
			}
		}
	}
	return pids
}

func TestParseUIDRange(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want executor.UIDRange
		err  string
	}{
		{in: executor.DefaultSandboxUIDs, want: executor.UIDRange{First: 2000000000, Last: 2000000999}},
		{in: "100000-100999", want: executor.UIDRange{First: 100000, Last: 100999}},
		{in: "5000-5000", want: executor.UIDRange{First: 5000, Last: 5000}},
		{in: "0-999", err: "system users"},
		{in: "2000-1000", err: "below the first"},
		{in: "100000-300000", err: "more than"},
		{in: "100000", err: "FIRST-LAST"},
		{in: "a-b", err: "FIRST-LAST"},
		{in: "4294967000-4294967295", err: "not a uid"},
	} {
		got, err := executor.ParseUIDRange(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseUIDRange(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseUIDRange(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// TestSandboxSeccompKernelSurface: the kernel interfaces a script never
// needs and that reach past the sandbox's other walls fail: io_uring,
// socket families other than unix, IP and netlink (AF_VSOCK reaches the
// hypervisor past the network namespace), personalities beyond Docker's
// default set, secret memory, and reading into other processes (kcmp,
// pidfd_getfd, process_madvise). What scripts need still works.
func TestSandboxSeccompKernelSurface(t *testing.T) {
	s := sandbox(t)
	if runtime.GOARCH != "amd64" {
		t.Skip("the syscall numbers below are x86-64's")
	}
	out := runOK(t, s, `
import ctypes, errno, os, socket, sys
sys.stdout.reconfigure(line_buffering=True)
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def check(name, rc):
    e = ctypes.get_errno()
    print(name, "ALLOWED" if rc >= 0 else errno.errorcode.get(e, e))
    if rc > 2 and not name.startswith("personality"):
        os.close(rc)
params = ctypes.create_string_buffer(120)
check("io_uring_setup", libc.syscall(425, 1, params))
check("io_uring_enter", libc.syscall(426, -1, 0, 0, 0, None, 0))
check("io_uring_register", libc.syscall(427, -1, 0, None, 0))
for fam, name in [(40, "vsock"), (17, "packet"), (38, "alg"), (30, "tipc"), (3, "ax25"), (0x100000028, "vsock-high-bits")]:
    check("socket-" + name, libc.syscall(41, ctypes.c_long(fam), 1, 0))
sv = (ctypes.c_int * 2)()
check("socketpair-vsock", libc.syscall(53, 40, 1, 0, sv))
for fam, typ, name in [(1, 1, "unix"), (2, 1, "inet"), (10, 2, "inet6"), (16, 3, "netlink")]:
    print("socket-" + name, "ok" if libc.syscall(41, fam, typ, 0) >= 0 else errno.errorcode.get(ctypes.get_errno()))
print("socketpair-unix", "ok" if libc.syscall(53, 1, 1, 0, sv) == 0 else errno.errorcode.get(ctypes.get_errno()))
check("personality-addr-no-randomize", libc.syscall(135, 0x0040000))
check("personality-read-implies-exec", libc.syscall(135, 0x0400000))
check("personality-any", libc.syscall(135, 0x12345678))
for p in [0xffffffff, 0x8, 0x20000, 0x20008, 0x0]:
    print("personality-%#x" % p, "ok" if libc.syscall(135, ctypes.c_ulong(p)) >= 0 else errno.errorcode.get(ctypes.get_errno()))
check("memfd_secret", libc.syscall(447, 0))
me = os.getpid()
check("kcmp", libc.syscall(312, me, me, 0, 0, 0))
pidfd = libc.syscall(434, me, 0)
print("pidfd_open", "ok" if pidfd >= 0 else errno.errorcode.get(ctypes.get_errno()))
check("pidfd_getfd", libc.syscall(438, pidfd, 1, 0))
check("process_madvise", libc.syscall(440, pidfd, None, 0, 0, 0))
check("clock_settime", libc.syscall(227, 0, ctypes.create_string_buffer(16)))
check("syslog", libc.syscall(103, 3, ctypes.create_string_buffer(64), 64))
check("mbind", libc.syscall(237, 0, 0, 0, None, 0, 0))
s = socket.socket(socket.AF_INET)
s.close()
print("python socket ok")
`)
	want := []string{
		"io_uring_setup EPERM", "io_uring_enter EPERM", "io_uring_register EPERM",
		"socket-vsock EAFNOSUPPORT", "socket-packet EAFNOSUPPORT", "socket-alg EAFNOSUPPORT", "socket-tipc EAFNOSUPPORT",
		"socket-ax25 EAFNOSUPPORT", "socket-vsock-high-bits EAFNOSUPPORT", "socketpair-vsock EAFNOSUPPORT",
		"socket-unix ok", "socket-inet ok", "socket-inet6 ok", "socket-netlink ok", "socketpair-unix ok",
		"personality-addr-no-randomize EPERM", "personality-read-implies-exec EPERM", "personality-any EPERM",
		"personality-0xffffffff ok", "personality-0x8 ok", "personality-0x20000 ok", "personality-0x20008 ok", "personality-0x0 ok",
		"memfd_secret EPERM", "kcmp EPERM", "pidfd_open ok", "pidfd_getfd EPERM", "process_madvise EPERM",
		"clock_settime EPERM", "syslog EPERM", "mbind EPERM", "python socket ok",
	}
	wantSyscalls(t, out, want)
}

// TestSandboxCommonPythonWorks: what scripts commonly do still works
// under the filter and the limits: multiprocessing (socketpair, /dev/shm
// semaphores, fork), asyncio with a subprocess, threads, lookups of
// numeric addresses (no /etc: no names at all), sqlite, ssl, temporary
// files.
func TestSandboxCommonPythonWorks(t *testing.T) {
	s := sandbox(t)
	out := runOK(t, s, `
import asyncio, multiprocessing, socket, sqlite3, ssl, tempfile, threading
def sq(x):
    return x * x
if __name__ == "__main__":
    with multiprocessing.Pool(2) as p:
        print("pool", sum(p.map(sq, range(10))))
    async def main():
        proc = await asyncio.create_subprocess_exec("/usr/bin/python3", "-c", "print(7)", stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        return out.decode().strip()
    print("asyncio", asyncio.run(main()))
    t = threading.Thread(target=lambda: None); t.start(); t.join()
    print("thread ok")
    print("lookup", sorted({a[4][0] for a in socket.getaddrinfo("127.0.0.1", 80, proto=socket.IPPROTO_TCP)})[:1])
    db = sqlite3.connect(":memory:"); print("sqlite", db.execute("select 6*7").fetchone()[0])
    print("ssl", bool(ssl.create_default_context))
    with tempfile.NamedTemporaryFile() as f:
        f.write(b"x"); print("tempfile ok")
`)
	for _, want := range []string{"pool 285\n", "asyncio 7\n", "thread ok\n", "sqlite 42\n", "ssl True\n", "tempfile ok\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
}

// TestSandboxUIDWaitWithinTimeout: a run waiting for a free uid waits
// within its own timeout, not before it: with the one uid held by a
// longer run, a script of a 1 s timeout fails after about that second,
// saying why, instead of running late once the uid is back (the leader
// would have closed its attempt as abandoned in between).
func TestSandboxUIDWaitWithinTimeout(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the uid pool is a root daemon's")
	}
	const uid = 2000100002
	s := sandboxWith(t, &executor.Sandbox{Python: "/usr/bin/python3", UIDs: executor.UIDRange{First: uid, Last: uid}})
	done := make(chan error, 1)
	go func() {
		_, err := s.Run(context.Background(), script("import time; time.sleep(4)"), nil, nil, nil)
		done <- err
	}()
	waittest.For(t, "the first run to hold the uid", 20*time.Second, func() bool { return len(processesOf(t, uid)) > 0 })
	short := script("print('ran')")
	short.Timeout = reconciler.Duration(time.Second)
	start := time.Now()
	_, err := s.Run(context.Background(), short, nil, nil, nil)
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "every sandbox uid") {
		t.Errorf("a run of 1 s timeout behind a held uid: err = %v after %v, want it to give up within its timeout", err, took)
	}
	if took > 3*time.Second {
		t.Errorf("it gave up after %v, want about its 1 s timeout", took)
	}
	if err := <-done; err != nil {
		t.Fatalf("first run: %v", err)
	}
}

// TestSandboxDiesWithDaemon: a script does not outlive the daemon that
// started it. The daemon (here a stand-in, this test binary) is killed
// with SIGKILL while its script sleeps; the script is gone within
// seconds. Its uid is another than the daemon's, and changing uid clears
// the parent-death signal the sandbox's init was started with: the init
// sets it again after it.
func TestSandboxDiesWithDaemon(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	marker := fmt.Sprintf("tasksync-held-%d", time.Now().UnixNano())
	cmd := exec.Command(self, holdScriptArg)
	cmd.Env = append(os.Environ(), holdScriptEnv+"="+fmt.Sprintf(`
import subprocess
subprocess.run([%q, "50"], executable="/bin/sleep")
`, marker))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
		_ = exec.Command("pkill", "-KILL", "-f", marker).Run()
	}()
	running := func() bool {
		out, _ := exec.Command("pgrep", "-f", marker).Output()
		return len(strings.TrimSpace(string(out))) > 0
	}
	waittest.For(t, "the held script to run", 30*time.Second, running)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	waittest.For(t, "the script to end with its daemon", 10*time.Second, func() bool { return !running() })
}
