package reconciler

import (
	"sync"
	"time"
)

// syncQueue holds the tenants waiting for their app's sync on the leader:
// edited tenants (urgent) ahead of the rest (a full pass's checks), each
// tenant at most once, and never two syncs of one tenant at a time. A
// tenant queued again while its sync runs is synced once more after it,
// since the sync under way may have read the older definitions.
type syncQueue struct {
	mu     sync.Mutex
	urgent []string
	rest   []string
	// queued maps each waiting tenant to whether it is urgent; an entry
	// of urgent or rest that disagrees with it is stale and skipped.
	queued map[string]bool
	busy   map[string]bool // tenants being synced → urgent
	// urgentBusy counts the urgent syncs under way: while there is one,
	// no check of a pass starts, so that the edit has the Inngest server
	// to itself but for the checks already under way.
	urgentBusy int
	again      map[string]bool // busy tenants queued again → urgent
	wake       chan struct{}   // a tenant was queued
	// wakeUrgent wakes the worker kept for edits (popUrgent): an edited
	// tenant was queued.
	wakeUrgent chan struct{}
	// gen counts the pushes of a whole pass (a rest list): a check
	// reads Inngest's view of every app once per pass (serverViews).
	gen uint64
	// backlog counts the work since the queue was last empty.
	backlog backlog
}

// backlog is the progress of the syncs since the queue was last empty.
type backlog struct {
	since                    time.Time
	done, registered, failed int
}

func newSyncQueue() *syncQueue {
	return &syncQueue{queued: map[string]bool{}, busy: map[string]bool{}, again: map[string]bool{},
		wake: make(chan struct{}, 1), wakeUrgent: make(chan struct{}, 1)}
}

// push queues tenants: urgent ones ahead of the rest, each once. A tenant
// already waiting keeps its place, or moves ahead when now urgent; one
// being synced is synced again after (its sync may have read what came
// before). Both lists are queued at once, so that no worker takes an
// urgent tenant before the rest of the same pass is queued.
func (q *syncQueue) push(urgent, rest []string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pendingLocked() == 0 {
		q.backlog = backlog{since: time.Now()}
	}
	for _, t := range urgent {
		q.add(t, true)
	}
	for _, t := range rest {
		q.add(t, false) // once: a tenant already waiting keeps its place
	}
	if len(rest) > 0 {
		q.gen++
	}
	q.signal()
}

func (q *syncQueue) add(t string, urgent bool) {
	if _, busy := q.busy[t]; busy {
		q.again[t] = q.again[t] || urgent
		return
	}
	was, waiting := q.queued[t]
	switch {
	case waiting && (was || !urgent):
		return
	case urgent:
		q.urgent = append(q.urgent, t)
	default:
		q.rest = append(q.rest, t)
	}
	q.queued[t] = urgent
}

// signal wakes a worker, if none is already due to wake, and the worker
// kept for edits when one waits.
func (q *syncQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
	if len(q.urgent) > 0 {
		select {
		case q.wakeUrgent <- struct{}{}:
		default:
		}
	}
}

// pop takes the next tenant to sync, urgent ones first, and says whether
// it was urgent; ok is false when none waits.
func (q *syncQueue) pop() (tenant string, urgent, ok bool) {
	return q.take(false)
}

// popUrgent takes the next urgent tenant only: the worker kept for edits
// takes none of a pass's checks, so that an edit waits for no sync of
// the backlog under way.
func (q *syncQueue) popUrgent() (tenant string, ok bool) {
	tenant, _, ok = q.take(true)
	return tenant, ok
}

func (q *syncQueue) take(urgentOnly bool) (tenant string, urgent, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	lists := []*[]string{&q.urgent, &q.rest}
	if urgentOnly {
		lists = lists[:1]
	}
	for _, list := range lists {
		urgent := list == &q.urgent
		if !urgent && q.urgentBusy > 0 {
			break // the checks wait for the edits under way
		}
		for len(*list) > 0 {
			t := (*list)[0]
			*list = (*list)[1:]
			if u, ok := q.queued[t]; !ok || u != urgent {
				continue // stale: moved ahead, or taken already
			}
			delete(q.queued, t)
			q.busy[t] = urgent
			if urgent {
				q.urgentBusy++
			}
			if len(q.queued) > 0 {
				q.signal() // another worker may take the next
			}
			return t, urgent, true
		}
	}
	return "", false, false
}

// done ends a tenant's sync; registered says it was registered, failed
// that it could not be synced. A tenant queued during its sync is queued
// again. When that was the last sync of a backlog, it returns the
// backlog's progress and true.
func (q *syncQueue) done(tenant string, registered, failed bool) (backlog, bool) {
	q.mu.Lock()
	if q.busy[tenant] {
		q.urgentBusy--
		if q.urgentBusy == 0 && len(q.rest) > 0 {
			q.signal() // the checks may go on
		}
	}
	delete(q.busy, tenant)
	q.backlog.done++
	if registered {
		q.backlog.registered++
	}
	if failed {
		q.backlog.failed++
	}
	urgent, again := q.again[tenant]
	delete(q.again, tenant)
	b, empty := q.backlog, q.pendingLocked() == 0 && !again
	q.mu.Unlock()
	if again {
		if urgent {
			q.push([]string{tenant}, nil)
		} else {
			q.push(nil, []string{tenant})
		}
	}
	return b, empty
}

// clear forgets every waiting tenant (a new leadership term queues the
// whole tree again).
func (q *syncQueue) clear() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.urgent, q.rest = nil, nil
	clear(q.queued)
	clear(q.again)
}

// generation is the number of whole passes queued so far.
func (q *syncQueue) generation() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.gen
}

// pending counts the tenants waiting or being synced.
func (q *syncQueue) pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pendingLocked()
}

func (q *syncQueue) pendingLocked() int { return len(q.queued) + len(q.busy) }

// progress returns the tenants waiting and being synced, and the work
// done since the queue was last empty.
func (q *syncQueue) progress() (waiting, inFlight int, b backlog) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queued), len(q.busy), q.backlog
}
