package cli

import (
	"context"
	"fmt"
)

// Interruptible runs load and returns its result, or ctx's error as soon
// as ctx is done (a signal), saying that the command named what was
// interrupted: a read stuck in the kernel (a hung network file system)
// cannot be cancelled, and a command exits on return, so the stuck
// goroutine is left behind rather than waited for.
func Interruptible[T any](ctx context.Context, what string, load func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := load()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, fmt.Errorf("%s: interrupted: %w", what, ctx.Err())
	}
}
