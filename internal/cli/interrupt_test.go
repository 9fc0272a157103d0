package cli_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/internal/cli"
)

// TestInterruptible: a command (validate) whose loading never returns
// ends when its context is cancelled, with the reason.
func TestInterruptible(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	defer close(release)
	errc := make(chan error, 1)
	go func() {
		_, err := cli.Interruptible(ctx, "validate", func() (int, error) {
			<-release // a read stuck in the kernel
			return 0, nil
		})
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "validate: interrupted") {
			t.Errorf("Interruptible = %v, want validate: interrupted and context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Interruptible did not return after cancel")
	}
}
