package executor

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// initFailure is the exit status of an init that could not set the
// sandbox up; its reason is on stderr.
const initFailure = 125

// Paths inside the sandbox.
const (
	// sandboxWorkDir is where a script finds its work directory.
	sandboxWorkDir = "/tmp/work"
	// sandboxBuildDir is the host directory, in the init's own mount
	// namespace, on which the new root is built before it becomes "/".
	sandboxBuildDir = "/tmp"
)

// sandboxDevices are the only device nodes in the sandbox's /dev.
func sandboxDevices() []string { return []string{"null", "zero", "full", "random", "urandom"} }

// sandboxBootstrap is the interpreter's -c program: it reads the script's
// arguments (NUL-terminated) from the descriptor %d, closes it, and runs
// main.py as __main__, as `python3 -I main.py` would, in the module's own
// namespace (runpy would cost as much as the interpreter's start). The
// arguments so reach sys.argv without being in any command line.
const sandboxBootstrap = `import sys
with open(%d, "rb") as _f:
    sys.argv = ["main.py"] + [a.decode("utf-8", "surrogateescape") for a in _f.read().split(b"\0")[:-1]]
del _f, sys
__file__ = "` + sandboxWorkDir + `/main.py"
exec(compile(open("main.py", "rb").read(), __file__, "exec"))
`

// SandboxInit is the sandbox's init process: started by Sandbox.run in
// fresh namespaces (as root, or with two capabilities in a user namespace
// of its own), it builds a new root holding only the interpreter's tree,
// a minimal /dev, its own /proc and an empty /tmp with the work
// directory, pivots into it and detaches the host's; then it drops to the
// run's uid, drops every capability, sets the limits and no_new_privs,
// leaves only stdin, stdout and stderr (and the arguments' descriptor,
// which the bootstrap closes) open, loads the seccomp filter and becomes
// the interpreter. It only returns (with a status to exit with) when that
// fails.
func SandboxInit() int {
	// Capabilities, no_new_privs and seccomp belong to a thread: the one
	// that sets them must be the one that execs.
	runtime.LockOSThread()
	// A short life: no collection, and so fewer allocations by the
	// runtime once the memory limit is set.
	debug.SetGCPercent(-1)
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
	filter, err := seccompProgram()
	if err != nil {
		return fail("%v", err)
	}
	if err := buildRoot(&spec); err != nil {
		return fail("%v", err)
	}
	argsFD, err := argsMemfd(spec.Args)
	if err != nil {
		return fail("pass the arguments: %v", err)
	}
	if err := dropBoundingSet(); err != nil {
		return fail("%v", err)
	}
	if !spec.UserNS {
		if err := syscall.Setgroups(nil); err != nil {
			return fail("drop groups: %v", err)
		}
		if err := syscall.Setgid(spec.GID); err != nil {
			return fail("setgid: %v", err)
		}
		if err := syscall.Setuid(spec.UID); err != nil {
			return fail("setuid: %v", err)
		}
		// Changing uid cleared the parent-death signal the daemon started
		// this init with: set it again, so that the run (this init is PID
		// 1 of its namespace, its end is the end of every process in it)
		// dies with the daemon instead of running on unbounded. A daemon
		// killed in the instant before this line leaves the run to its
		// CPU-time limit.
		if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0); errno != 0 {
			return fail("set the parent-death signal: %v", errno)
		}
	}
	if err := syscall.Chdir(sandboxWorkDir); err != nil {
		return fail("enter the work directory: %v", err)
	}
	env := spec.Env
	if env == nil {
		env = []string{}
	}
	argv := []string{spec.Python, "-I", "-c", fmt.Sprintf(sandboxBootstrap, argsFD)}
	// Everything the exec needs is made ready here: once the address
	// space is capped, this Go process could fail to grow (its runtime
	// does, now and then), so the limits come last, just before the exec,
	// and nothing after them allocates.
	path, err := syscall.BytePtrFromString(spec.Python)
	if err != nil {
		return fail("start %s: %v", spec.Python, err)
	}
	argvp, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return fail("start %s: %v", spec.Python, err)
	}
	envp, err := syscall.SlicePtrFromStrings(env)
	if err != nil {
		return fail("start %s: %v", spec.Python, err)
	}
	limits := []struct {
		res int
		lim unix.Rlimit
	}{
		{unix.RLIMIT_AS, unix.Rlimit{Cur: spec.MemBytes, Max: spec.MemBytes}},
		{unix.RLIMIT_CPU, unix.Rlimit{Cur: spec.CPUSecs, Max: spec.CPUSecs}},
		{unix.RLIMIT_FSIZE, unix.Rlimit{Cur: sandboxMaxFileBytes, Max: sandboxMaxFileBytes}},
		{unix.RLIMIT_NPROC, unix.Rlimit{Cur: spec.Procs, Max: spec.Procs}},
		{unix.RLIMIT_NOFILE, unix.Rlimit{Cur: sandboxMaxOpenFiles, Max: sandboxMaxOpenFiles}},
		{unix.RLIMIT_CORE, unix.Rlimit{}},
	}
	if err := dropCapabilities(); err != nil {
		return fail("%v", err)
	}
	// Every descriptor but 0, 1, 2 and the arguments' closes on exec,
	// whatever the daemon (or a library of it) left inheritable.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fail("close inherited descriptors: %v", err)
	}
	if _, err := unix.FcntlInt(uintptr(argsFD), unix.F_SETFD, 0); err != nil {
		return fail("pass the arguments: %v", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fail("set no_new_privs: %v", err)
	}
	if err := loadSeccomp(filter); err != nil {
		return fail("%v", err)
	}
	for i := range limits {
		l := &limits[i]
		if _, _, errno := unix.RawSyscall6(unix.SYS_PRLIMIT64, 0, uintptr(l.res), uintptr(unsafe.Pointer(&l.lim)), 0, 0, 0); errno != 0 {
			return fail("limit %d: %v", l.res, errno)
		}
	}
	_, _, errno := unix.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(path)), uintptr(unsafe.Pointer(&argvp[0])), uintptr(unsafe.Pointer(&envp[0])))
	return fail("start %s: %v", spec.Python, errno)
}

// buildRoot builds the sandbox's root on a fresh tmpfs, pivots into it
// and detaches the host's root, so that nothing of the host is reachable
// but what is bound here.
func buildRoot(spec *initSpec) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	root := sandboxBuildDir
	if err := unix.Mount("tmpfs", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=1m,mode=0755"); err != nil {
		return fmt.Errorf("mount the new root: %w", err)
	}
	for _, d := range sandboxSystemDirs() {
		info, err := os.Lstat(d)
		switch {
		case err != nil:
			continue // not on this host
		case info.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(d)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, root+d); err != nil {
				return fmt.Errorf("link %s: %w", d, err)
			}
		case info.IsDir():
			if err := bindReadOnly(d, root+d); err != nil {
				return err
			}
		}
	}
	for _, d := range spec.ReadOnly {
		if err := bindReadOnly(d, root+d); err != nil {
			return err
		}
	}
	// /proc before the host's root goes: the kernel lets a user namespace
	// mount a proc only where a full one is visible.
	if err := os.Mkdir(root+"/proc", 0o555); err != nil {
		return err
	}
	if err := unix.Mount("proc", root+"/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	if err := buildDev(root + "/dev"); err != nil {
		return err
	}
	if err := mountTmp(root+"/tmp", sandboxTmpBytes); err != nil {
		return err
	}
	if err := writeWorkDir(root+sandboxWorkDir, spec); err != nil {
		return err
	}
	if err := unix.Chdir(root); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot into the new root: %w", err)
	}
	// The host's root is now stacked under the new one: detach it.
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the host's root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	for _, m := range spec.Mask {
		info, err := os.Stat(m)
		switch {
		case err != nil:
			continue // not in the sandbox: nothing to hide
		case info.IsDir():
			err = unix.Mount("tmpfs", m, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, "size=4k,mode=0555")
		default:
			err = unix.Mount("/dev/null", m, "", unix.MS_BIND, "")
		}
		if err != nil {
			return fmt.Errorf("hide %s: %w", m, err)
		}
	}
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("make the root read-only: %w", err)
	}
	return nil
}

// bindReadOnly binds the host directory src at dst, read-only, nosuid
// and nodev, keeping the flags a user namespace may not clear.
func bindReadOnly(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dst, &st); err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	keep := uintptr(st.Flags) & (unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME)
	flags := unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | keep
	if err := unix.Mount("", dst, "", flags, ""); err != nil {
		return fmt.Errorf("make %s read-only: %w", src, err)
	}
	return nil
}

// buildDev makes a read-only /dev holding the harmless devices, bound
// from the host's, the usual links, and a small writable /dev/shm.
func buildDev(dev string) error {
	if err := os.Mkdir(dev, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=64k,mode=0755"); err != nil {
		return fmt.Errorf("mount /dev: %w", err)
	}
	for _, d := range sandboxDevices() {
		if err := os.WriteFile(dev+"/"+d, nil, 0o666); err != nil {
			return err
		}
		if err := unix.Mount("/dev/"+d, dev+"/"+d, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind /dev/%s: %w", d, err)
		}
	}
	links := [][2]string{{"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"}}
	for _, l := range links {
		if err := os.Symlink(l[1], dev+"/"+l[0]); err != nil {
			return err
		}
	}
	if err := mountTmp(dev+"/shm", sandboxShmBytes); err != nil {
		return err
	}
	if err := unix.Mount("", dev, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("make /dev read-only: %w", err)
	}
	return nil
}

// mountTmp mounts an empty tmpfs anyone may write to at dir, creating
// it, capped at size bytes and sandboxTmpfsInodes files.
func mountTmp(dir string, size int) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	opts := fmt.Sprintf("size=%d,nr_inodes=%d,mode=1777", size, sandboxTmpfsInodes)
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount %s: %w", strings.TrimPrefix(dir, sandboxBuildDir), err)
	}
	return nil
}

// writeWorkDir makes the run's work directory, the script's uid's alone,
// holding the script as main.py (read-only), on the sandbox's /tmp.
func writeWorkDir(dir string, spec *initSpec) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", sandboxWorkDir, err)
	}
	if err := os.WriteFile(dir+"/main.py", []byte(spec.Source), 0o444); err != nil {
		return fmt.Errorf("write the script (%d bytes) into %s, which holds %d MiB: %w", len(spec.Source), sandboxWorkDir, sandboxTmpBytes>>20, err)
	}
	if err := os.Chown(dir, spec.UID, spec.GID); err != nil {
		return fmt.Errorf("give %s to the script's uid: %w", sandboxWorkDir, err)
	}
	return nil
}

// argsMemfd returns a descriptor, close-on-exec for now, holding args
// NUL-terminated, for the bootstrap to read.
func argsMemfd(args []string) (int, error) {
	fd, err := unix.MemfdCreate("args", unix.MFD_CLOEXEC)
	if err != nil {
		return -1, err
	}
	var b strings.Builder
	for _, a := range args {
		b.WriteString(a)
		b.WriteByte(0)
	}
	if _, err := unix.Write(fd, []byte(b.String())); err != nil {
		return -1, err
	}
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		return -1, err
	}
	return fd, nil
}

// dropBoundingSet removes every capability from the thread's bounding
// set, so that nothing the script executes can gain one back.
func dropBoundingSet() error {
	last := 63
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			last = n
		}
	}
	for c := 0; c <= last; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	return nil
}

// dropCapabilities clears the thread's ambient, effective, permitted and
// inheritable capabilities.
func dropCapabilities() error {
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear the ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("drop the capabilities: %w", err)
	}
	return nil
}
