package definitions

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestProvenanceOpenDoesNotBlock: a FIFO where a git file is expected
// (put there, or swapped in after a stat) is refused at once: the open
// does not wait for a writer.
func TestProvenanceOpenDoesNotBlock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "HEAD")
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := readGitFile(p, maxGitFileSize)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a FIFO was read as a git file")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("opening a FIFO as a git file blocked")
	}
}
