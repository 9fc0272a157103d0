package reconciler

import (
	"slices"
	"testing"
)

// drain pops every waiting tenant, ending each sync at once.
func drain(q *syncQueue) []string {
	var got []string
	for range 100 {
		t, _, ok := q.pop()
		if !ok {
			break
		}
		got = append(got, t)
		q.done(t, false, false)
	}
	return got
}

// TestSyncQueueUrgentFirst: a tenant pushed as urgent while a backlog
// waits is taken next, once, and the backlog keeps its order.
func TestSyncQueueUrgentFirst(t *testing.T) {
	q := newSyncQueue()
	q.push(nil, []string{"a", "b", "c", "d"})
	if got, urgent, _ := q.pop(); got != "a" || urgent {
		t.Fatalf("first pop = %q (urgent %v), want a, not urgent", got, urgent)
	}
	q.push([]string{"d"}, nil)
	q.push(nil, []string{"b"}) // already waiting: keeps its place
	if got, urgent, _ := q.pop(); got != "d" || !urgent {
		t.Fatalf("pop after d was pushed as urgent = %q (urgent %v), want d, urgent", got, urgent)
	}
	q.done("d", false, false)
	if got, want := drain(q), []string{"b", "c"}; !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
	if n := q.pending(); n != 1 {
		t.Errorf("pending with a still busy = %d, want 1", n)
	}
}

// TestSyncQueueAgainAfterBusy: a tenant pushed while its sync runs is not
// handed to a second worker, and is synced once more after it.
func TestSyncQueueAgainAfterBusy(t *testing.T) {
	q := newSyncQueue()
	q.push(nil, []string{"a", "b"})
	a, _, _ := q.pop()
	q.push([]string{"a"}, nil)
	if got, _, _ := q.pop(); got != "b" {
		t.Fatalf("pop while a is busy = %q, want b", got)
	}
	if _, _, ok := q.pop(); ok {
		t.Fatal("a second pop handed out a tenant whose sync runs")
	}
	q.done(a, true, false)
	if _, empty := q.done("b", false, true); empty {
		t.Error("done reported the queue empty while a waits again")
	}
	if got, urgent, ok := q.pop(); !ok || got != "a" || !urgent {
		t.Fatalf("pop after a's sync ended = %q %v, want a again", got, ok)
	}
	if _, empty := q.done("a", false, false); !empty {
		t.Error("done did not report the queue empty after the last sync")
	}
	waiting, busy, b := q.progress()
	if waiting != 0 || busy != 0 || b.done != 3 || b.registered != 1 || b.failed != 1 {
		t.Errorf("progress = %d waiting, %d busy, %+v; want 0, 0, 3 done of which 1 registered and 1 failed", waiting, busy, b)
	}
}

// TestSyncQueueOnePass: a pass queues its changed tenants and the whole
// tree in one push; each tenant is synced once, the changed ones first.
func TestSyncQueueOnePass(t *testing.T) {
	q := newSyncQueue()
	q.push([]string{"c"}, []string{"b", "a", "b", "c"})
	if got, want := drain(q), []string{"c", "b", "a"}; !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
}

// TestSyncQueueUrgentWorker: the worker kept for edits is woken by an
// edited tenant only, and takes edited tenants only, none of a pass's
// checks.
func TestSyncQueueUrgentWorker(t *testing.T) {
	q := newSyncQueue()
	q.push(nil, []string{"a", "b"})
	select {
	case <-q.wakeUrgent:
		t.Fatal("a pass's checks woke the worker kept for edits")
	default:
	}
	if got, ok := q.popUrgent(); ok {
		t.Fatalf("popUrgent with only checks waiting = %q, want none", got)
	}
	q.push([]string{"c"}, nil)
	select {
	case <-q.wakeUrgent:
	default:
		t.Fatal("an edited tenant did not wake the worker kept for edits")
	}
	if got, ok := q.popUrgent(); !ok || got != "c" {
		t.Fatalf("popUrgent = %q, %v; want c", got, ok)
	}
	if got, ok := q.popUrgent(); ok {
		t.Fatalf("popUrgent after the edit = %q, want none", got)
	}
	q.done("c", true, false)
	if got, urgent, ok := q.pop(); !ok || got != "a" || urgent {
		t.Fatalf("pop = %q %v %v; want the check of a", got, urgent, ok)
	}
}

// TestSyncQueueChecksWaitForEdits: while an edited tenant's sync is under
// way no check of a pass starts; they go on when it ends.
func TestSyncQueueChecksWaitForEdits(t *testing.T) {
	q := newSyncQueue()
	q.push([]string{"e"}, []string{"a", "b"})
	if got, ok := q.popUrgent(); !ok || got != "e" {
		t.Fatalf("popUrgent = %q %v, want e", got, ok)
	}
	if got, _, ok := q.pop(); ok {
		t.Fatalf("pop while the edit syncs = %q, want none", got)
	}
	q.push(nil, []string{"e"}) // queued again while busy: after it
	for len(q.wake) > 0 {
		<-q.wake
	}
	q.done("e", true, false)
	select {
	case <-q.wake:
	default:
		t.Fatal("the end of the edit's sync woke no worker for the checks")
	}
	if got, urgent, ok := q.pop(); !ok || got != "a" || urgent {
		t.Fatalf("pop after the edit = %q %v %v, want the check of a", got, urgent, ok)
	}
}
