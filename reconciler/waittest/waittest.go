// Package waittest waits in tests on a condition with a deadline, never a
// fixed sleep: For until something happens, Never while something must
// not; Buffer collects the output such a condition reads.
package waittest

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// every is how often the condition is polled.
const every = 20 * time.Millisecond

// Within polls cond until it holds or d has passed, and reports whether it
// held: for a test that must clean up before it fails.
func Within(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(every)
	}
	return true
}

// For polls cond until it holds, and fails the test when it has not
// within d. what completes "timed out waiting for ...".
func For(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	if !Within(d, cond) {
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// Never polls cond for d and fails the test as soon as it holds: for what
// must not happen, such as a duplicate run, within the time it would take
// to show. what completes "... happened".
func Never(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			t.Fatalf("%s happened (within %v)", what, d)
		}
		time.Sleep(every)
	}
	if cond() {
		t.Fatalf("%s happened (within %v)", what, d)
	}
}

// Buffer collects what another goroutine writes (a process's output, a
// logger's lines) for a test to read while it waits with For or Never.
// Its zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
