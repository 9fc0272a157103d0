package webui

import (
	"testing"

	"github.com/riveredge/tasksync/reconciler"
)

// TestDefaultCatchUpWindow: the window the page names for a trigger that
// sets none is the one the daemon applies.
func TestDefaultCatchUpWindow(t *testing.T) {
	if defaultCatchUpWindow != reconciler.DefaultCatchUpWindow.String() {
		t.Errorf("the page's default window %s, the daemon's %s", defaultCatchUpWindow, reconciler.DefaultCatchUpWindow)
	}
}
