package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/riveredge/tasksync/reconciler"
)

// SandboxInitArg is the hidden first argument with which the tasksync
// binary (or a test binary) starts as the sandbox's init process. Its
// main must hand such a start to SandboxInit before anything else.
const SandboxInitArg = "__tasksync-sandbox-init"

// Sandbox runs python_script actions out of process, each under an init
// process (this binary) that builds the sandbox and becomes the
// interpreter: in their own network (no interfaces but a down loopback),
// PID, mount, IPC and UTS namespaces; in a root of their own holding only
// /usr (and the interpreter's prefix) read-only, a minimal /dev, their own
// /proc and small writable tmpfs mounts of their own (/tmp, holding the
// work directory with the script, and /dev/shm); as a uid of their own,
// with no capabilities, no_new_privs and a seccomp filter, no inherited
// file descriptors, an empty environment plus the declared env and the
// arguments out of every command line; in a cgroup of the run's own that
// bounds the memory, processes and CPU of all its processes together;
// under per-process CPU, memory, file-size, process and open-file limits
// and a wall-clock timeout that kills every process of the run. It never
// runs a script unsandboxed.
//
// As root, each concurrent run takes a uid of its own from UIDs. A
// daemon that is not root (the recommended way) runs each script as its
// own uid in a user namespace of the run's own, which the kernel needs to
// allow to unprivileged users.
type Sandbox struct {
	// Python is the interpreter; it must be runnable by the scripts' uids.
	Python string
	// UIDs is the range a root daemon's runs take their uids (and gids)
	// from, one per concurrent run; default DefaultSandboxUIDs. A run
	// waits, up to its context, while every uid is in use.
	UIDs UIDRange
	// Self is the executable started as the sandbox's init; default the
	// running binary.
	Self string
	// Mask lists host paths hidden from scripts behind empty mounts, such
	// as the definitions tree and the secrets directory, in case they lie
	// inside a tree the sandbox exposes read-only (/usr or the
	// interpreter's prefix); nothing else of the host is there anyway.
	Mask []string
	// Cgroup is where each run gets a cgroup of its own, which bounds the
	// memory (with swap), processes and CPU of the whole run: CgroupAuto
	// (or empty), the directory of a cgroup delegated to the daemon, or
	// CgroupNone (each process has its own limits only). Where no cgroup
	// can be set up, scripts are refused.
	Cgroup string
	// CPUs is the CPU time a run may use, in cores; default
	// DefaultSandboxCPUs. It needs the cpu controller.
	CPUs float64
	// Logger receives what goes wrong after a run (a cgroup that could
	// not be removed); default none.
	Logger *slog.Logger

	poolOnce  sync.Once
	pool      *uidPool
	checkOnce sync.Once
	checkErr  error
	cgroups   *cgroupParent
}

// DefaultSandboxCPUs is the CPU time a run may use by default: one core.
const DefaultSandboxCPUs = 1.0

// ScriptResult is what a python_script produced: `steps.<id>` in a
// workflow.
type ScriptResult struct {
	ExitCode int    `json:"exit_code"`
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	// Result is the JSON value the script printed on its last line, if any.
	Result    any  `json:"result"`
	Truncated bool `json:"truncated,omitempty"`
}

// Limits of every sandboxed run besides the definition's own timeout and
// memory.
const (
	sandboxMaxFileBytes = 16 << 20
	sandboxMaxProcs     = 64
	sandboxMaxOpenFiles = 256
	// The sandbox's writable tmpfs mounts, memory the run's cgroup is
	// charged for: /tmp, with the work directory, and /dev/shm; nothing
	// else is writable. Each holds at most sandboxTmpfsInodes files.
	sandboxTmpBytes    = 64 << 20
	sandboxShmBytes    = 16 << 20
	sandboxTmpfsInodes = 4096
)

// SandboxWritableBytes is all a run may write: its /tmp (with the work
// directory) and its /dev/shm, both tmpfs mounts of its own that vanish
// with the run. Nothing of it reaches the host's disk.
const SandboxWritableBytes = sandboxTmpBytes + sandboxShmBytes

// initSpec is what the parent tells the init process, through a pipe so
// that env values and arguments (secrets) appear in no command line.
type initSpec struct {
	Python string   `json:"python"`
	Args   []string `json:"args"` // the script's, not the interpreter's
	Env    []string `json:"env"`
	// Source is the script, which the init writes into the sandbox's
	// own tmpfs: no host directory holds anything of a run.
	Source string `json:"source"`
	UID    int    `json:"uid"`
	GID    int    `json:"gid"`
	// UserNS: the init runs in a user namespace of its own, as the
	// daemon's uid, and changes no uid.
	UserNS bool `json:"user_ns"`
	// ReadOnly lists host directories bound read-only at the same path
	// besides /usr: the interpreter's prefix when it lives elsewhere.
	ReadOnly []string `json:"read_only"`
	CPUSecs  uint64   `json:"cpu_secs"`
	MemBytes uint64   `json:"mem_bytes"`
	Procs    uint64   `json:"procs"`
	Mask     []string `json:"mask"`
}

// ErrSandboxUnavailable means the sandbox cannot be set up on this host;
// scripts are refused rather than run without it.
var ErrSandboxUnavailable = errors.New("the python_script sandbox cannot be set up on this host (it needs root, or unprivileged user namespaces for a daemon that is not root; a cgroup per run, or --sandbox-cgroup none; and an interpreter under /usr or a prefix of its own that the scripts' uid may run); scripts are refused")

// Check runs a trivial script once and reports whether the sandbox works
// here; tasksync calls it at start-up.
func (s *Sandbox) Check(ctx context.Context) error {
	s.checkOnce.Do(func() {
		cg, err := newCgroupParent(s.Cgroup)
		if err != nil {
			s.checkErr = fmt.Errorf("%w: %v", ErrSandboxUnavailable, err)
			return
		}
		s.cgroups = cg
		res, err := s.run(ctx, reconciler.PythonScript{Script: "print('ok')", Timeout: reconciler.Duration(30 * time.Second), MemoryMB: 128}, nil, nil)
		switch {
		case err != nil:
			s.checkErr = fmt.Errorf("%w: %v", ErrSandboxUnavailable, err)
		case strings.TrimSpace(res.Stdout) != "ok":
			s.checkErr = fmt.Errorf("%w: the check script printed %q (exit %d): %s", ErrSandboxUnavailable, res.Stdout, res.ExitCode, snippet(res.Stderr))
		}
	})
	return s.checkErr
}

// CgroupMode says where each run's cgroup is made, after Check: "none",
// or the cgroup version and directories.
func (s *Sandbox) CgroupMode() string { return s.cgroups.String() }

// Run runs one python_script. env holds the declared environment with
// templates rendered and secrets resolved; red redacts secret values from
// the captured output and errors. A non-zero exit is an error, with the
// result still returned.
func (s *Sandbox) Run(ctx context.Context, py reconciler.PythonScript, args []string, env map[string]string, red *Redactor) (*ScriptResult, error) {
	if err := s.Check(ctx); err != nil {
		return nil, err
	}
	res, err := s.run(ctx, py, args, env)
	if red == nil {
		red = &Redactor{}
	}
	if res != nil {
		// The result was parsed from the raw stdout: its strings are
		// redacted after parsing, so that JSON escapes carry nothing past.
		res.Result = red.Value(res.Result)
		res.Stdout, res.Stderr = red.String(res.Stdout), red.String(res.Stderr)
		if res.Truncated {
			res.Stdout, res.Stderr = red.Truncated(res.Stdout), red.Truncated(res.Stderr)
		}
	}
	return res, red.Error(err)
}

func (s *Sandbox) run(ctx context.Context, py reconciler.PythonScript, args []string, env map[string]string) (*ScriptResult, error) {
	self := s.Self
	if self == "" {
		self = "/proc/self/exe"
	}
	python := s.Python
	if python == "" {
		python = "/usr/bin/python3"
	}
	for _, a := range args {
		if strings.ContainsRune(a, 0) {
			return nil, reconciler.Final(errors.New("python_script args: an argument holds a NUL byte, which no process argument can carry"))
		}
	}
	readOnly, err := interpreterPrefix(python)
	if err != nil {
		return nil, err
	}
	timeout := time.Duration(py.Timeout)
	if timeout <= 0 {
		timeout = time.Duration(reconciler.DefaultPythonTimeout)
	}
	// The run's timeout covers its wait for a uid too: a run that waited
	// past it would start after the leader closed its attempt as
	// abandoned (timeout and grace).
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	userNS := os.Geteuid() != 0
	uid, gid := os.Geteuid(), os.Getegid()
	if !userNS {
		s.poolOnce.Do(func() {
			r := s.UIDs
			if r == (UIDRange{}) {
				r, _ = ParseUIDRange(DefaultSandboxUIDs)
			}
			s.pool = newUIDPool(r)
		})
		if uid, err = s.pool.get(ctx); err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		// Returned after Wait: the init is PID 1 of the run's namespace,
		// and the kernel reaps every process of it before the init's exit
		// is reported, so no process of the run holds the uid any more.
		defer s.pool.put(uid)
		gid = uid
	}
	source := py.Script
	if source == "" {
		source = py.FileContent
	}
	memMB := py.MemoryMB
	if memMB <= 0 {
		memMB = reconciler.DefaultPythonMemoryMB
	}
	spec := initSpec{
		Python:   python,
		Args:     args,
		Source:   source,
		UID:      uid,
		GID:      gid,
		UserNS:   userNS,
		ReadOnly: readOnly,
		CPUSecs:  uint64(timeout/time.Second) + 1,
		MemBytes: uint64(memMB) << 20,
		Procs:    sandboxMaxProcs,
		Mask:     s.Mask,
	}
	var cg *runCgroup
	if s.cgroups != nil {
		cpus := s.CPUs
		if cpus <= 0 {
			cpus = DefaultSandboxCPUs
		}
		if cg, err = s.cgroups.create(spec.MemBytes, sandboxMaxProcs, cpus); err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		// Removed after Wait, when no process of the run is left.
		defer func() {
			if err := cg.remove(); err != nil && s.Logger != nil {
				s.Logger.Warn("python_script run's cgroup left behind", "err", err)
			}
		}()
		// The cgroup's pids limit is the one a fork bomb meets (and its
		// events say so); the per-uid limit stays as a backstop.
		spec.Procs = 2 * sandboxMaxProcs
	}
	for k, v := range env {
		spec.Env = append(spec.Env, k+"="+v)
	}
	specR, specW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	defer specR.Close()

	cmd := exec.CommandContext(ctx, self, SandboxInitArg)
	cmd.Env = []string{}
	cmd.ExtraFiles = []*os.File{specR}
	stdout, stderr := &capped{max: reconciler.MaxResponseCaptureBytes}, &capped{max: reconciler.MaxResponseCaptureBytes}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS,
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
	}
	if userNS {
		// The daemon's own uid and gid, mapped to themselves, are all the
		// new user namespace knows. The init keeps the two capabilities it
		// needs in it (mounts, dropping the bounding set) across its exec;
		// the interpreter gets none.
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}}
		cmd.SysProcAttr.AmbientCaps = []uintptr{unix.CAP_SYS_ADMIN, unix.CAP_SETPCAP}
	}
	// Killing the init kills its whole PID namespace: every process the
	// script started, however it detached.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		specW.Close()
		return nil, fmt.Errorf("sandbox: start: %w", err)
	}
	if cg != nil {
		// The init reads its spec before it does anything else: it starts
		// nothing of the run before it is in the run's cgroup.
		if err := cg.add(cmd.Process.Pid); err != nil {
			specW.Close()
			cmd.Process.Kill()
			cmd.Wait()
			return nil, fmt.Errorf("sandbox: %w", err)
		}
	}
	enc := json.NewEncoder(specW)
	werr := enc.Encode(spec)
	specW.Close()
	err = cmd.Wait()
	res := &ScriptResult{Stdout: stdout.String(), Stderr: stderr.String(), Truncated: stdout.over || stderr.over}
	res.Result = lastLineJSON(res.Stdout)
	if werr != nil {
		return res, fmt.Errorf("sandbox: %w", werr)
	}
	if ctx.Err() == context.DeadlineExceeded {
		res.ExitCode = -1
		return res, fmt.Errorf("script killed after its %s timeout", timeout)
	}
	why := "" // which of the run's limits the kernel enforced
	if cg != nil {
		why = cg.why()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		res.ExitCode = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			if why == "" {
				why = "a limit was reached?"
			}
			return res, fmt.Errorf("script killed by %v (%s): %s", ws.Signal(), why, snippet(res.Stderr))
		}
		if res.ExitCode == initFailure {
			return res, fmt.Errorf("sandbox: %s", snippet(res.Stderr))
		}
		if why != "" {
			return res, fmt.Errorf("script exited with status %d (%s): %s", res.ExitCode, why, snippet(lastLines(res.Stderr, 3)))
		}
		return res, fmt.Errorf("script exited with status %d: %s", res.ExitCode, snippet(lastLines(res.Stderr, 3)))
	}
	if err != nil {
		return res, fmt.Errorf("sandbox: %w", err)
	}
	return res, nil
}

// interpreterPrefix returns the directory to expose read-only besides
// /usr for python: none when it lives under /usr (or the /bin and /lib
// links to it), else the prefix it is installed in (/opt/py for
// /opt/py/bin/python3), which must be a directory of its own.
func interpreterPrefix(python string) ([]string, error) {
	real, err := filepath.EvalSymlinks(python)
	if err != nil {
		return nil, fmt.Errorf("%w: the interpreter %s: %v", ErrSandboxUnavailable, python, err)
	}
	for _, d := range sandboxSystemDirs() {
		if strings.HasPrefix(real, d+"/") {
			return nil, nil
		}
	}
	prefix := filepath.Dir(filepath.Dir(real))
	if strings.Count(prefix, "/") < 2 {
		return nil, fmt.Errorf("%w: the interpreter %s (%s) is neither under /usr nor in a prefix of its own (such as /opt/python/bin/python3): the sandbox would expose all of %s", ErrSandboxUnavailable, python, real, prefix)
	}
	return []string{prefix}, nil
}

// sandboxSystemDirs are the host directories a script sees read-only,
// each as on the host: a directory, or (merged /usr) a link into /usr.
func sandboxSystemDirs() []string {
	return []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}
}

// lastLineJSON returns the JSON value on the last non-empty line of out,
// numbers as json.Number (see ParseJSON).
func lastLineJSON(out string) any {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if last == "" {
		return nil
	}
	v, _ := ParseJSON([]byte(last))
	return v
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// capped keeps the first max bytes written to it and counts the rest.
type capped struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		if len(p) > room {
			c.buf.Write(p[:room])
			c.over = true
		} else {
			c.buf.Write(p)
		}
	} else if len(p) > 0 {
		c.over = true
	}
	return len(p), nil
}

func (c *capped) String() string { return c.buf.String() }
