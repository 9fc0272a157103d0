package executor

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Values of Sandbox.Cgroup besides a directory.
const (
	// CgroupAuto finds a cgroup the daemon may create the runs' cgroups
	// in: its own cgroup v2, delegated to it, else its own cgroups of the
	// v1 memory, pids and cpu hierarchies, where writable.
	CgroupAuto = "auto"
	// CgroupNone runs scripts without a cgroup per run: each process has
	// its own limits, and a run as a whole has none.
	CgroupNone = "none"
)

// cgroupCPUPeriod is the CFS period of a run's CPU quota, and
// cgroupMinCPUQuota the kernel's least quota, in µs.
const (
	cgroupCPUPeriod   = 100000
	cgroupMinCPUQuota = 1000
)

// cgroupDaemonLeaf is the child of a cgroup v2 the daemon moves its
// processes into, so that the cgroup may enable controllers for the
// runs' cgroups beside it.
const cgroupDaemonLeaf = "tasksync-daemon"

// cgroupRemoveWait bounds the wait for a run's cgroup to empty once the
// run's processes are gone (the kernel detaches exiting tasks lazily).
const cgroupRemoveWait = 5 * time.Second

// cgroupParent is where a sandbox makes one cgroup per run: a cgroup v2
// directory with the memory, pids (and cpu) controllers enabled for its
// children, or one directory per cgroup v1 hierarchy.
type cgroupParent struct {
	v2 bool
	// dirs maps a controller to the directory the runs' cgroups go in;
	// in v2 every controller's is the same directory.
	dirs map[string]string
	// prefix names the runs' cgroups: tasksync-<daemon pid>-<token>-<n>.
	prefix, token string
	seq           atomic.Uint64
}

// cgroupControllers are the controllers a run is limited by; cpu only
// where the host has it.
func cgroupControllers() []string { return []string{"memory", "pids", "cpu"} }

func cgroupRequired(ctrl string) bool { return ctrl != "cpu" }

// newCgroupParent sets up where runs' cgroups go, as Sandbox.Cgroup says:
// nil for CgroupNone.
func newCgroupParent(mode string) (*cgroupParent, error) {
	var p *cgroupParent
	var err error
	switch mode {
	case CgroupNone:
		return nil, nil
	case "", CgroupAuto:
		p, err = autoCgroupParent()
	default:
		p, err = cgroupParentAt(mode)
	}
	if err != nil {
		return nil, err
	}
	// The token tells this sandbox's cgroups from those of an earlier
	// daemon that had the same pid (pid 1 of a container, restarted).
	p.token = fmt.Sprintf("%08x", rand.Uint32())
	p.prefix = fmt.Sprintf("tasksync-%d-%s-", os.Getpid(), p.token)
	p.removeStale()
	return p, nil
}

// removeStale removes the empty run cgroups a daemon that is gone left
// behind (killed before it could remove them; its runs died with it):
// those of a pid no process has, or of this process's pid with another
// token. A cgroup a process is in cannot be removed.
func (p *cgroupParent) removeStale() {
	for _, parent := range p.dirs {
		stale, _ := filepath.Glob(filepath.Join(parent, "tasksync-*-*-*"))
		for _, dir := range stale {
			f := strings.SplitN(strings.TrimPrefix(filepath.Base(dir), "tasksync-"), "-", 3)
			pid, err := strconv.Atoi(f[0])
			if len(f) != 3 || err != nil || f[1] == p.token {
				continue
			}
			if pid == os.Getpid() || syscall.Kill(pid, 0) == syscall.ESRCH {
				os.Remove(dir) // fails, as it should, while a process is in it
			}
		}
	}
}

// String says where the runs' cgroups go, for the start-up log.
func (p *cgroupParent) String() string {
	if p == nil {
		return CgroupNone
	}
	if p.v2 {
		return "cgroup v2 " + p.dirs["memory"]
	}
	var parts []string
	for _, c := range cgroupControllers() {
		if d, ok := p.dirs[c]; ok {
			parts = append(parts, c+"="+d)
		}
	}
	return "cgroup v1 " + strings.Join(parts, " ")
}

// cgroupMount is a cgroup file system in /proc/self/mountinfo.
type cgroupMount struct {
	point, root string
	v2          bool
	controllers []string // v1 only
}

func cgroupMounts() ([]cgroupMount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ms []cgroupMount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent dev root point opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		a, b := strings.Fields(pre), strings.Fields(post)
		if !ok || len(a) < 5 || len(b) < 3 || (b[0] != "cgroup" && b[0] != "cgroup2") {
			continue
		}
		m := cgroupMount{point: unescapeMountPath(a[4]), root: unescapeMountPath(a[3]), v2: b[0] == "cgroup2"}
		if !m.v2 {
			m.controllers = strings.Split(b[2], ",")
		}
		ms = append(ms, m)
	}
	return ms, sc.Err()
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ownCgroups reads /proc/self/cgroup: a controller ("" for v2) to the
// process's cgroup path.
func ownCgroups() (map[string]string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	own := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[1] == "" {
			own[""] = f[2]
			continue
		}
		for _, c := range strings.Split(f[1], ",") {
			own[c] = f[2]
		}
	}
	return own, nil
}

// dirOf is the directory of cgroup path in mount m.
func (m cgroupMount) dirOf(path string) string {
	if m.root != "/" {
		path = strings.TrimPrefix(path, m.root)
	}
	return filepath.Join(m.point, path)
}

// autoCgroupParent finds the daemon's own cgroup v2, if delegated to it
// (writable, with the controllers), else its own v1 cgroups, if writable.
func autoCgroupParent() (*cgroupParent, error) {
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, fmt.Errorf("find the cgroup file systems: %w", err)
	}
	own, err := ownCgroups()
	if err != nil {
		return nil, fmt.Errorf("find the daemon's cgroups: %w", err)
	}
	var why []string
	for _, m := range mounts {
		if path, ok := own[""]; ok && m.v2 {
			dir := m.dirOf(path)
			if filepath.Base(dir) == cgroupDaemonLeaf {
				dir = filepath.Dir(dir) // moved there by an earlier sandbox of this daemon
			}
			p, err := cgroupV2Parent(dir)
			if err == nil {
				return p, nil
			}
			why = append(why, "cgroup v2: "+err.Error())
			break
		}
	}
	p, err := cgroupV1Parent(mounts, func(m cgroupMount, ctrl string) (string, bool) {
		path, ok := own[ctrl]
		return m.dirOf(path), ok
	})
	if err == nil {
		return p, nil
	}
	why = append(why, "cgroup v1: "+err.Error())
	return nil, fmt.Errorf("no cgroup to limit each run in (%s): run the daemon with a cgroup delegated to it (systemd: Delegate=yes), give --sandbox-cgroup such a cgroup's directory, or --sandbox-cgroup none to accept per-process limits only", strings.Join(why, "; "))
}

// cgroupParentAt uses the cgroup directory dir: a cgroup v2 one; or one
// of a v1 hierarchy, whose path is then used in the memory, pids and cpu
// hierarchies alike; or a comma-separated list of v1 directories, one
// per hierarchy.
func cgroupParentAt(dir string) (*cgroupParent, error) {
	list := strings.Split(dir, ",")
	byMount := map[string]string{} // v1 mount point → the directory given in it
	for i, d := range list {
		if !filepath.IsAbs(d) {
			return nil, fmt.Errorf("sandbox cgroup %q: want auto, none or the absolute path of a cgroup directory (for cgroup v1, one per hierarchy, separated by commas)", dir)
		}
		// /sys/fs/cgroup/cpu is often a link to cpu,cpuacct.
		real, err := filepath.EvalSymlinks(d)
		if err != nil {
			return nil, fmt.Errorf("sandbox cgroup %s: %w", d, err)
		}
		d = real
		list[i] = d
		var st unix.Statfs_t
		if err := unix.Statfs(d, &st); err != nil {
			return nil, fmt.Errorf("sandbox cgroup %s: %w", d, err)
		}
		switch {
		case st.Type == unix.CGROUP2_SUPER_MAGIC && len(list) == 1:
			p, err := cgroupV2Parent(d)
			if err != nil {
				return nil, fmt.Errorf("sandbox cgroup %s: %w", d, err)
			}
			return p, nil
		case st.Type != unix.CGROUP_SUPER_MAGIC:
			return nil, fmt.Errorf("sandbox cgroup %s: not a directory of a cgroup v1 hierarchy (a cgroup v2 directory stands alone)", d)
		}
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, fmt.Errorf("find the cgroup file systems: %w", err)
	}
	rel := ""
	for _, d := range list {
		for _, m := range mounts {
			if r, err := filepath.Rel(m.point, d); err == nil && !m.v2 && !strings.HasPrefix(r, "..") {
				byMount[m.point] = d
				rel = r
			}
		}
	}
	p, err := cgroupV1Parent(mounts, func(m cgroupMount, _ string) (string, bool) {
		if d, ok := byMount[m.point]; ok {
			return d, true
		}
		if len(list) > 1 {
			return "", false
		}
		return filepath.Join(m.point, rel), true
	})
	if err != nil {
		return nil, fmt.Errorf("sandbox cgroup %s: %w", dir, err)
	}
	return p, nil
}

// cgroupV2Parent makes dir the runs' parent: the controllers enabled for
// its children, which needs dir to hold no process itself, so its
// processes (the daemon, when dir is its own cgroup) move into a leaf
// child, cgroupDaemonLeaf, as systemd's delegation expects.
func cgroupV2Parent(dir string) (*cgroupParent, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return nil, err
	}
	have := strings.Fields(string(b))
	var enable []string
	for _, c := range cgroupControllers() {
		switch {
		case slices.Contains(have, c):
			enable = append(enable, "+"+c)
		case cgroupRequired(c):
			return nil, fmt.Errorf("%s: the %s controller is not available (cgroup.controllers: %q)", dir, c, strings.TrimSpace(string(b)))
		}
	}
	if err := unix.Access(filepath.Join(dir, "cgroup.subtree_control"), unix.W_OK); err != nil {
		return nil, fmt.Errorf("%s is not delegated to uid %d: %w", dir, os.Geteuid(), err)
	}
	if err := unix.Access(dir, unix.W_OK); err != nil {
		return nil, fmt.Errorf("%s is not delegated to uid %d: %w", dir, os.Geteuid(), err)
	}
	// The root cgroup, which has no cgroup.type, may hold processes and
	// enable controllers for its children at once.
	if _, err := os.Stat(filepath.Join(dir, "cgroup.type")); err == nil {
		if err := moveProcessesToLeaf(dir); err != nil {
			return nil, err
		}
	}
	if err := writeCgroupFile(dir, "cgroup.subtree_control", strings.Join(enable, " ")); err != nil {
		return nil, err
	}
	dirs := map[string]string{}
	for _, c := range enable {
		dirs[c[1:]] = dir
	}
	return &cgroupParent{v2: true, dirs: dirs}, nil
}

// moveProcessesToLeaf moves every process of dir into dir/tasksync-daemon.
func moveProcessesToLeaf(dir string) error {
	for range 10 {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			return err
		}
		pids := strings.Fields(string(b))
		if len(pids) == 0 {
			return nil
		}
		leaf := filepath.Join(dir, cgroupDaemonLeaf)
		if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create the daemon's leaf cgroup: %w", err)
		}
		for _, pid := range pids {
			if err := writeCgroupFile(leaf, "cgroup.procs", pid); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("move process %s into the daemon's leaf cgroup: %w", pid, err)
			}
		}
	}
	return fmt.Errorf("%s: processes keep appearing in it; give the daemon a cgroup of its own", dir)
}

// cgroupV1Parent finds each controller's directory with dirOf in its v1
// hierarchy: memory and pids must be there and writable, cpu is used
// where it is.
func cgroupV1Parent(mounts []cgroupMount, dirOf func(cgroupMount, string) (string, bool)) (*cgroupParent, error) {
	dirs := map[string]string{}
	for _, c := range cgroupControllers() {
		var dir string
		for _, m := range mounts {
			if !m.v2 && slices.Contains(m.controllers, c) {
				if d, ok := dirOf(m, c); ok {
					dir = d
				}
				break
			}
		}
		if dir == "" {
			if cgroupRequired(c) {
				return nil, fmt.Errorf("no %s hierarchy", c)
			}
			continue
		}
		if err := unix.Access(dir, unix.W_OK); err != nil {
			if cgroupRequired(c) {
				return nil, fmt.Errorf("%s is not writable by uid %d: %w", dir, os.Geteuid(), err)
			}
			continue
		}
		dirs[c] = dir
	}
	return &cgroupParent{dirs: dirs}, nil
}

// runCgroup is one run's cgroup (one directory per v1 hierarchy).
type runCgroup struct {
	v2       bool
	dirs     map[string]string
	memBytes uint64
	pids     int
}

// create makes a run's cgroup: memory (and swap) limited to memBytes for
// all its processes together, at most pids tasks, cpus cores of CPU time.
func (p *cgroupParent) create(memBytes uint64, pids int, cpus float64) (*runCgroup, error) {
	name := p.prefix + strconv.FormatUint(p.seq.Add(1), 10)
	c := &runCgroup{v2: p.v2, dirs: map[string]string{}, memBytes: memBytes, pids: pids}
	made := map[string]bool{} // in v2, one directory serves every controller
	for _, ctrl := range cgroupControllers() {
		parent, ok := p.dirs[ctrl]
		if !ok {
			continue
		}
		dir := filepath.Join(parent, name)
		if !made[dir] {
			if err := os.Mkdir(dir, 0o755); err != nil {
				c.remove()
				return nil, fmt.Errorf("create the run's cgroup: %w", err)
			}
			made[dir] = true
		}
		c.dirs[ctrl] = dir
	}
	mem := strconv.FormatUint(memBytes, 10)
	quota := strconv.Itoa(max(int(cpus*cgroupCPUPeriod), cgroupMinCPUQuota))
	var writes [][3]string // controller, file, value; optional files end in "?"
	if p.v2 {
		writes = [][3]string{
			{"memory", "memory.max", mem}, {"memory", "memory.swap.max?", "0"}, {"memory", "memory.oom.group", "1"},
			{"pids", "pids.max", strconv.Itoa(pids)},
			{"cpu", "cpu.max", quota + " " + strconv.Itoa(cgroupCPUPeriod)},
		}
	} else {
		writes = [][3]string{
			{"memory", "memory.limit_in_bytes", mem}, {"memory", "memory.memsw.limit_in_bytes?", mem},
			{"pids", "pids.max", strconv.Itoa(pids)},
			{"cpu", "cpu.cfs_period_us", strconv.Itoa(cgroupCPUPeriod)}, {"cpu", "cpu.cfs_quota_us", quota},
		}
	}
	for _, w := range writes {
		dir, ok := c.dirs[w[0]]
		if !ok {
			continue
		}
		file, optional := strings.CutSuffix(w[1], "?")
		err := writeCgroupFile(dir, file, w[2])
		if err != nil && !(optional && errors.Is(err, fs.ErrNotExist)) {
			c.remove()
			return nil, fmt.Errorf("limit the run's cgroup: %w", err)
		}
	}
	return c, nil
}

// add moves process pid (every thread of it) into the run's cgroup.
func (c *runCgroup) add(pid int) error {
	done := map[string]bool{}
	for _, dir := range c.dirs {
		if done[dir] {
			continue
		}
		done[dir] = true
		if err := writeCgroupFile(dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("move the run's init into its cgroup: %w", err)
		}
	}
	return nil
}

// why says which of the run's limits the kernel enforced, if any: the
// OOM killer within its memory limit, forks refused at its process limit.
func (c *runCgroup) why() string {
	var reasons []string
	memFile, memKey := "memory.oom_control", "oom_kill"
	if c.v2 {
		memFile = "memory.events"
	}
	if n := cgroupCounter(c.dirs["memory"], memFile, memKey); n > 0 {
		reasons = append(reasons, fmt.Sprintf("the run's memory limit (%d MiB for all its processes) was reached: the kernel killed %d of its processes", c.memBytes>>20, n))
	}
	if n := cgroupCounter(c.dirs["pids"], "pids.events", "max"); n > 0 {
		reasons = append(reasons, fmt.Sprintf("the run's process limit (%d) was reached: %d forks refused", c.pids, n))
	}
	return strings.Join(reasons, "; ")
}

// cgroupCounter reads the counter key of a flat-keyed file; 0 if absent.
func cgroupCounter(dir, file, key string) int {
	if dir == "" {
		return 0
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == key {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// remove deletes the run's cgroup once every process of the run is gone
// (they are when the run's init has been reaped, but the kernel detaches
// exiting tasks lazily): it kills any process still in it and retries
// for up to cgroupRemoveWait.
func (c *runCgroup) remove() error {
	deadline := time.Now().Add(cgroupRemoveWait)
	for ctrl, dir := range c.dirs {
		for backoff := time.Millisecond; ; backoff = min(2*backoff, 100*time.Millisecond) {
			err := os.Remove(dir)
			if err == nil || errors.Is(err, fs.ErrNotExist) {
				break
			}
			if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
				return fmt.Errorf("remove the run's cgroup %s: %w", dir, err)
			}
			killCgroup(dir, c.v2)
			time.Sleep(backoff)
		}
		delete(c.dirs, ctrl)
	}
	return nil
}

// killCgroup kills every process left in the cgroup dir.
func killCgroup(dir string, v2 bool) {
	if v2 && writeCgroupFile(dir, "cgroup.kill", "1") == nil {
		return
	}
	b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// writeCgroupFile writes value into an existing file of a cgroup.
func writeCgroupFile(dir, file, value string) error {
	f, err := os.OpenFile(filepath.Join(dir, file), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(value); err != nil {
		f.Close()
		return fmt.Errorf("write %q to %s: %w", value, f.Name(), err)
	}
	return f.Close()
}
