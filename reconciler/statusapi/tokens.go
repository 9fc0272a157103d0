package statusapi

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// tokens reads a tokens file (lines "token tenant", "*" for every tenant,
// "#" comments) and reloads it when it changes.
type tokens struct {
	path string

	mu      sync.Mutex
	modTime time.Time
	size    int64
	entries []tokenEntry
	err     error
}

type tokenEntry struct {
	sum    [sha256.Size]byte // tokens are compared by hash, in constant time
	tenant string
}

// lookup returns the tenant a token may read ("*" for all) and whether
// the token is known. Every entry is compared, so the time taken does not
// tell how close a guess was.
func (t *tokens) lookup(token string) (string, bool, error) {
	if err := t.reload(); err != nil {
		return "", false, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	sum := sha256.Sum256([]byte(token))
	tenant, found := "", false
	for _, e := range t.entries {
		if subtle.ConstantTimeCompare(sum[:], e.sum[:]) == 1 && !found {
			tenant, found = e.tenant, true
		}
	}
	return tenant, found, nil
}

func (t *tokens) reload() error {
	info, err := os.Stat(t.path)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.err = fmt.Errorf("status tokens file: %w", err)
		return t.err
	}
	if info.ModTime().Equal(t.modTime) && info.Size() == t.size && t.err == nil {
		return nil
	}
	data, err := os.ReadFile(t.path)
	if err != nil {
		t.err = fmt.Errorf("status tokens file: %w", err)
		return t.err
	}
	var entries []tokenEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			t.err = fmt.Errorf("status tokens file %s:%d: want \"token tenant\" (tenant * for all)", t.path, n)
			return t.err
		}
		entries = append(entries, tokenEntry{sum: sha256.Sum256([]byte(f[0])), tenant: f[1]})
	}
	t.entries, t.modTime, t.size, t.err = entries, info.ModTime(), info.Size(), nil
	return nil
}
