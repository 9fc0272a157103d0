// Package executor runs what Inngest invokes: api_call requests through an
// SSRF guard, with templates and secrets resolved only at execution.
package executor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Secrets resolves ${secret:NAME} references from a directory of files
// (one file per secret, as a Kubernetes secret volume) or the environment
// variable TASKSYNC_SECRET_<NAME>. Values are read when a task runs and
// never kept.
type Secrets struct {
	dir    string
	getenv func(string) string
}

// NewSecrets reads secrets from dir (may be empty) and getenv.
func NewSecrets(dir string, getenv func(string) string) *Secrets {
	return &Secrets{dir: dir, getenv: getenv}
}

var secretRef = regexp.MustCompile(`\$?\$\{secret:([A-Za-z_][A-Za-z0-9_]{0,127})\}`)

// lookup returns one secret's value.
func (s *Secrets) lookup(name string) (string, error) {
	if s.dir != "" {
		b, err := os.ReadFile(filepath.Join(s.dir, name))
		if err == nil {
			return strings.TrimSuffix(string(b), "\n"), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("secret %s: %w", name, err)
		}
	}
	if v := s.getenv("TASKSYNC_SECRET_" + name); v != "" {
		return v, nil
	}
	where := "the environment variable TASKSYNC_SECRET_" + name
	if s.dir != "" {
		where = fmt.Sprintf("%s, or %s", filepath.Join(s.dir, name), where)
	}
	return "", fmt.Errorf("secret %s is not set: provide %s", name, where)
}

// resolve replaces the secret references of s, remembering each value in
// r so that it can be redacted from anything shown later. "$${" is a
// literal "${".
func (s *Secrets) resolve(str string, r *Redactor) (string, error) {
	var err error
	out := secretRef.ReplaceAllStringFunc(str, func(ref string) string {
		if strings.HasPrefix(ref, "$$") {
			return ref[1:]
		}
		name := secretRef.FindStringSubmatch(ref)[1]
		v, lerr := s.lookup(name)
		if lerr != nil {
			err = errors.Join(err, lerr)
			return ""
		}
		r.Add(v)
		return v
	})
	return out, err
}

// Redactor removes secret values from text shown to anyone: errors, logs,
// stored output.
type Redactor struct {
	mu     sync.Mutex
	values []string
}

// Add remembers a value to redact.
func (r *Redactor) Add(v string) {
	if v == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.values {
		if e == v {
			return
		}
	}
	r.values = append(r.values, v)
	// Longest first, so that a value containing another is replaced whole.
	sort.Slice(r.values, func(i, j int) bool { return len(r.values[i]) > len(r.values[j]) })
}

// Redacted is what a secret value is replaced with.
const Redacted = "[redacted]"

// String removes every remembered value from s.
func (r *Redactor) String(s string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range r.values {
		s = strings.ReplaceAll(s, v, Redacted)
	}
	return s
}

// Error wraps err so that its message is redacted.
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	return &redactedError{msg: r.String(err.Error()), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }

// Unwrap keeps errors.Is working (ErrRefused, context errors).
func (e *redactedError) Unwrap() error { return e.err }
