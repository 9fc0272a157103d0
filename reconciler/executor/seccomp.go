package executor

import (
	"fmt"
	"unsafe"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// deniedSyscalls are what a script never needs and an escape or an attack
// on the kernel often does: mounts and namespaces, tracing other
// processes, loading code into the kernel, key rings, rebooting. They
// fail with EPERM. Names the running architecture lacks are skipped.
func deniedSyscalls() []string {
	return []string{
		// Mounts and namespaces: the root the sandbox built is final.
		"mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
		"fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
		// Other processes' memory.
		"ptrace", "process_vm_readv", "process_vm_writev",
		// Code and programs in the kernel.
		"kexec_load", "kexec_file_load", "bpf", "init_module", "finit_module", "delete_module",
		// Kernel key rings, shared by every process of a uid.
		"keyctl", "add_key", "request_key",
		// Another process's descriptors and memory, even in the run's own
		// PID namespace: comparing, stealing, advising.
		"kcmp", "pidfd_getfd", "process_madvise",
		// Frequent kernel attack surface: io_uring (its own path past
		// every syscall filter), secret memory, user page faults.
		"perf_event_open", "userfaultfd", "lookup_dcookie",
		"io_uring_setup", "io_uring_enter", "io_uring_register", "memfd_secret",
		// Memory placement of the whole machine's NUMA nodes.
		"mbind", "set_mempolicy", "set_mempolicy_home_node", "migrate_pages", "move_pages",
		// The machine's administration: clocks, logs, terminals, swap,
		// quotas, obsolete interfaces.
		"swapon", "swapoff", "reboot", "acct", "quotactl", "quotactl_fd",
		"open_by_handle_at", "name_to_handle_at", "iopl", "ioperm",
		"clock_settime", "clock_adjtime", "settimeofday", "stime", "syslog", "vhangup", "fanotify_init",
		"create_module", "get_kernel_syms", "query_module", "nfsservctl", "sysfs", "_sysctl", "uselib",
		"ustat", "vm86", "vm86old",
	}
}

// allowedSocketFamilies are the address families socket and socketpair
// may create: unix, IPv4, IPv6 (which the run's network namespace leaves
// with a down loopback only) and netlink (the C library's getaddrinfo
// asks the kernel for the interfaces' addresses). Every other family
// fails with EAFNOSUPPORT: AF_VSOCK reaches the hypervisor past the
// network namespace, AF_ALG the kernel's crypto, AF_PACKET and the rest
// drivers scripts never need.
func allowedSocketFamilies() []uint64 {
	return []uint64{unix.AF_UNIX, unix.AF_INET, unix.AF_INET6, unix.AF_NETLINK}
}

// allowedPersonalities are the execution domains personality may set, as
// Docker's default profile allows: PER_LINUX, PER_LINUX32, UNAME26 with
// either, and 0xffffffff (a query). Others (ADDR_NO_RANDOMIZE,
// READ_IMPLIES_EXEC, …) fail with EPERM.
func allowedPersonalities() []uint64 { return []uint64{0x0, 0x8, 0x20000, 0x20008, 0xffffffff} }

// notAnyOf is the condition that argument arg (all 64 bits) is none of
// values.
func notAnyOf(arg uint32, values []uint64) seccomp.ArgumentConditions {
	var cs seccomp.ArgumentConditions
	for _, v := range values {
		cs = append(cs, seccomp.Condition{Argument: arg, Operation: seccomp.NotEqual, Value: v})
	}
	return cs
}

// cloneNamespaceFlags are clone's CLONE_NEW* flags: a clone with any of
// them fails with EPERM; threads and forks pass.
const cloneNamespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET

// seccompProgram is the sandbox's filter for the running architecture:
// any other architecture's entry (the 32-bit ia32 one on x86-64) is
// denied first, then the library's program denies the x32 ABI (ENOSYS),
// deniedSyscalls and clone with namespace flags (EPERM), and clone3
// with ENOSYS, since its flags are in memory a filter cannot read; the C
// library then falls back to clone. Everything else is allowed.
func seccompProgram() ([]unix.SockFilter, error) {
	info, err := arch.GetInfo("")
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	var names []string
	for _, n := range deniedSyscalls() {
		if _, ok := info.SyscallNames[n]; ok {
			names = append(names, n)
		}
	}
	policy := seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls: []seccomp.SyscallGroup{
			{Names: names, Action: seccomp.ActionErrno},
			{NamesWithCondtions: []seccomp.NameWithConditions{{Name: "clone", Conditions: seccomp.ArgumentConditions{
				{Argument: cloneFlagsArg(info), Operation: seccomp.BitsSet, Value: cloneNamespaceFlags},
			}}}, Action: seccomp.ActionErrno},
			{NamesWithCondtions: []seccomp.NameWithConditions{
				{Name: "socket", Conditions: notAnyOf(0, allowedSocketFamilies())},
				{Name: "socketpair", Conditions: notAnyOf(0, allowedSocketFamilies())},
			}, Action: seccomp.ActionErrno | seccomp.Action(unix.EAFNOSUPPORT)},
			{NamesWithCondtions: []seccomp.NameWithConditions{
				{Name: "personality", Conditions: notAnyOf(0, allowedPersonalities())},
			}, Action: seccomp.ActionErrno},
			{Names: []string{"clone3"}, Action: seccomp.ActionErrno | seccomp.Action(unix.ENOSYS)},
		},
	}
	insts, err := policy.Assemble()
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	const archOffset = 4 // offsetof(struct seccomp_data, arch)
	prog := append([]bpf.Instruction{
		bpf.LoadAbsolute{Off: archOffset, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(info.ID), SkipTrue: 1},
		bpf.RetConstant{Val: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
	}, insts...)
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return filter, nil
}

// cloneFlagsArg is the position of clone's flags: the first argument
// everywhere but on s390, where the first two are swapped.
func cloneFlagsArg(info *arch.Info) uint32 {
	if info.Name == "s390x" || info.Name == "s390" {
		return 1
	}
	return 0
}

// loadSeccomp installs the filter on the calling thread, which must have
// no_new_privs set (the sandbox's init sets it just before). It
// allocates nothing: it runs under the script's memory limit.
func loadSeccomp(filter []unix.SockFilter) error {
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if _, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&prog))); errno != 0 {
		return fmt.Errorf("load the seccomp filter: %w", errno)
	}
	return nil
}
