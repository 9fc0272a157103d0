package main

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestInterruptible: a validate whose loading never returns ends when its
// context is cancelled, with the reason.
func TestInterruptible(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	defer close(release)
	errc := make(chan error, 1)
	go func() {
		_, err := interruptible(ctx, func() (int, error) {
			<-release // a read stuck in the kernel
			return 0, nil
		})
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("interruptible = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("interruptible did not return after cancel")
	}
}
