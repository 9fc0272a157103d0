package executor

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// DefaultSandboxUIDs is the uid range python_script runs take their uids
// from when the daemon runs as root: above regular users (1000–60000),
// nobody (65534), systemd's dynamic and container ranges and the
// subordinate ranges useradd hands out (from 100000 up), and below 2^31.
const DefaultSandboxUIDs = "2000000000-2000000999"

// maxSandboxUIDs bounds the size of a uid range.
const maxSandboxUIDs = 65536

// UIDRange is a range of host uids, First to Last inclusive. Each
// concurrent run of a root daemon's sandbox has one of them to itself (as
// uid and gid), so per-uid limits such as the process count are per run.
type UIDRange struct {
	First, Last int
}

// ParseUIDRange parses "FIRST-LAST", as --sandbox-uids takes it.
func ParseUIDRange(s string) (UIDRange, error) {
	lo, hi, ok := strings.Cut(strings.TrimSpace(s), "-")
	first, err1 := strconv.ParseUint(lo, 10, 32)
	last, err2 := strconv.ParseUint(hi, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return UIDRange{}, fmt.Errorf("sandbox uid range %q: want FIRST-LAST, e.g. %s", s, DefaultSandboxUIDs)
	}
	r := UIDRange{First: int(first), Last: int(last)}
	switch {
	case r.First < 1000:
		return UIDRange{}, fmt.Errorf("sandbox uid range %q: starts in the system users' range (below 1000); choose uids no host user has, e.g. %s", s, DefaultSandboxUIDs)
	case r.Last < r.First:
		return UIDRange{}, fmt.Errorf("sandbox uid range %q: the last uid is below the first", s)
	case r.Last >= 1<<32-1:
		return UIDRange{}, fmt.Errorf("sandbox uid range %q: uid 4294967295 is not a uid", s)
	case r.Last-r.First >= maxSandboxUIDs:
		return UIDRange{}, fmt.Errorf("sandbox uid range %q: more than %d uids", s, maxSandboxUIDs)
	}
	return r, nil
}

// String returns the range as ParseUIDRange reads it.
func (r UIDRange) String() string { return fmt.Sprintf("%d-%d", r.First, r.Last) }

// uidPool hands out the uids of a range, one per run.
type uidPool struct {
	free chan int
}

func newUIDPool(r UIDRange) *uidPool {
	p := &uidPool{free: make(chan int, r.Last-r.First+1)}
	for u := r.First; u <= r.Last; u++ {
		p.free <- u
	}
	return p
}

// get takes a free uid, waiting while every one is in use, until ctx is
// done.
func (p *uidPool) get(ctx context.Context) (int, error) {
	select {
	case u := <-p.free:
		return u, nil
	default:
	}
	select {
	case u := <-p.free:
		return u, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("every sandbox uid (%d) is in use by a running script: raise --sandbox-uids: %w", cap(p.free), ctx.Err())
	}
}

// put returns a uid once no process of its run is left.
func (p *uidPool) put(u int) { p.free <- u }
