package deftest

import (
	"os"
	"path/filepath"
	"testing"
)

// WriteFile writes data to path (mode 0644), creating its directories,
// and fails the test if it cannot.
func WriteFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// WriteTree writes files (slash-separated path → content) under a new
// temporary directory and returns the directory.
func WriteTree(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, data := range files {
		WriteFile(t, filepath.Join(root, filepath.FromSlash(name)), data)
	}
	return root
}
