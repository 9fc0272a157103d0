package executor

import (
	"encoding/json"
	"fmt"
	"os"
	"syscall"
)

// initFailure is the exit status of an init that could not set the
// sandbox up; its reason is on stderr.
const initFailure = 125

// SandboxInit is the sandbox's init process: started by Sandbox.run as
// root in fresh namespaces, it makes the mounts private, gives the
// sandbox its own /proc and empty temporary directories, sets the limits,
// drops to the unprivileged user and becomes the interpreter. It only
// returns (with a status to exit with) when that fails.
func SandboxInit() int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "sandbox init: "+format+"\n", args...)
		return initFailure
	}
	f := os.NewFile(3, "spec")
	var spec initSpec
	if err := json.NewDecoder(f).Decode(&spec); err != nil {
		return fail("read spec: %v", err)
	}
	f.Close()
	if os.Getpid() != 1 {
		return fail("not in a PID namespace of its own")
	}
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fail("make mounts private: %v", err)
	}
	if err := syscall.Mount("proc", "/proc", "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fail("mount /proc: %v", err)
	}
	// The work directory lives under the host's /tmp, which an empty
	// tmpfs is about to cover: hold it open, then bind it to a fixed path
	// inside the new /tmp, so that its parent is the sandbox's own.
	work, err := syscall.Open(spec.Dir, oPath|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fail("open the work directory: %v", err)
	}
	for _, d := range []string{"/tmp", "/var/tmp", "/dev/shm"} {
		if _, err := os.Stat(d); err != nil {
			continue
		}
		opts := fmt.Sprintf("size=%d,mode=1777", sandboxTmpfsBytes)
		if err := syscall.Mount("tmpfs", d, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, opts); err != nil {
			return fail("mount %s: %v", d, err)
		}
	}
	for _, m := range spec.Mask {
		info, err := os.Stat(m)
		switch {
		case err != nil:
			continue // nothing there to hide
		case info.IsDir():
			err = syscall.Mount("tmpfs", m, "tmpfs", syscall.MS_RDONLY|syscall.MS_NOSUID|syscall.MS_NODEV, "size=4k,mode=0555")
		default:
			err = syscall.Mount("/dev/null", m, "", syscall.MS_BIND, "")
		}
		if err != nil {
			return fail("hide %s: %v", m, err)
		}
	}
	if err := os.Mkdir(sandboxWorkDir, 0o700); err != nil {
		return fail("create %s: %v", sandboxWorkDir, err)
	}
	if err := syscall.Mount(fmt.Sprintf("/proc/self/fd/%d", work), sandboxWorkDir, "", syscall.MS_BIND, ""); err != nil {
		return fail("bind the work directory: %v", err)
	}
	syscall.Close(work)
	if err := syscall.Setgroups(nil); err != nil {
		return fail("drop groups: %v", err)
	}
	if err := syscall.Setgid(spec.GID); err != nil {
		return fail("setgid: %v", err)
	}
	if err := syscall.Setuid(spec.UID); err != nil {
		return fail("setuid: %v", err)
	}
	if err := syscall.Chdir(sandboxWorkDir); err != nil {
		return fail("enter the work directory: %v", err)
	}
	env := spec.Env
	if env == nil {
		env = []string{}
	}
	// The limits come last: once the address space is capped, this Go
	// process could fail to grow (the race detector's runtime does); the
	// interpreter it becomes starts under them.
	limits := []struct {
		res int
		val uint64
	}{
		{syscall.RLIMIT_AS, spec.MemBytes},
		{syscall.RLIMIT_CPU, spec.CPUSecs},
		{syscall.RLIMIT_FSIZE, sandboxMaxFileBytes},
		{rlimitNPROC, sandboxMaxProcs},
		{syscall.RLIMIT_NOFILE, sandboxMaxOpenFiles},
		{syscall.RLIMIT_CORE, 0},
	}
	for _, l := range limits {
		if err := syscall.Setrlimit(l.res, &syscall.Rlimit{Cur: l.val, Max: l.val}); err != nil {
			return fail("limit %d: %v", l.res, err)
		}
	}
	err = syscall.Exec(spec.Python, spec.Args, env)
	return fail("start %s: %v", spec.Python, err)
}

// sandboxWorkDir is where a script finds its work directory.
const sandboxWorkDir = "/tmp/work"

// rlimitNPROC is RLIMIT_NPROC, which package syscall does not name.
const rlimitNPROC = 6

// oPath is O_PATH, which package syscall does not name.
const oPath = 0x200000
