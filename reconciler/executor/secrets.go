package executor

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
)

// Secrets resolves ${secret:NAME} references for one tenant at a time,
// from what was granted to that tenant:
//
//   - <dir>/<tenant>/NAME, the tenant's own secret (a Kubernetes secret
//     volume mounted per tenant fits);
//   - <dir>/_shared/NAME, shared with the tenants that
//     <dir>/_shared/NAME.tenants lists;
//   - the environment variable TASKSYNC_SECRET_<NAME>, usable by the
//     tenants that TASKSYNC_GRANT_<NAME> lists.
//
// A list of tenants is separated by commas or white space, "*" meaning
// every tenant, "#" starting a comment. The first of these that exists
// and is granted wins. A file at the top of dir is usable by nobody.
// Values are read when a task runs and never kept.
type Secrets struct {
	dir    string
	getenv func(string) string
}

// NewSecrets reads secrets from dir (may be empty) and getenv.
func NewSecrets(dir string, getenv func(string) string) *Secrets {
	return &Secrets{dir: dir, getenv: getenv}
}

// SharedDir is the directory under the secrets directory that holds the
// secrets granted to several tenants. Tenant codes have no '_', so it is
// never a tenant's.
const SharedDir = "_shared"

// Environment variable prefixes of secrets and of their grants.
const (
	SecretEnvPrefix = "TASKSYNC_SECRET_"
	GrantEnvPrefix  = "TASKSYNC_GRANT_"
)

// maxSecretBytes caps a secret file and a grants file.
const maxSecretBytes = 64 << 10

var secretRef = regexp.MustCompile(`\$?\$\{secret:([A-Za-z_][A-Za-z0-9_]{0,127})\}`)

// validName is what NAME may be; it has no '.', so NAME.tenants never
// names a secret.
var validName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// NotGrantedError is the refusal of a secret to a tenant. It says the
// same whether or not the secret exists for another tenant.
type NotGrantedError struct {
	Tenant, Name string
	Dir          string // the secrets directory, if any
}

func (e *NotGrantedError) Error() string {
	if e.Dir == "" {
		return fmt.Sprintf("secret %s is not granted to tenant %q: set %s%s and list the tenant in %s%s (or run with --secrets-dir and put it in <secrets-dir>/%s/%s)",
			e.Name, e.Tenant, SecretEnvPrefix, e.Name, GrantEnvPrefix, e.Name, e.Tenant, e.Name)
	}
	return fmt.Sprintf("secret %s is not granted to tenant %q: put it in %s, or share one by listing the tenant in %s (or in %s%s, with %s%s)",
		e.Name, e.Tenant, filepath.Join(e.Dir, e.Tenant, e.Name), filepath.Join(e.Dir, SharedDir, e.Name+".tenants"),
		GrantEnvPrefix, e.Name, SecretEnvPrefix, e.Name)
}

// source is where a granted secret's value is: a file, or else an
// environment variable.
type source struct {
	file, env string
}

// Check reports whether tenant may use the secret name, without reading
// its value: nil, a *NotGrantedError, or why a granted file is unusable.
func (s *Secrets) Check(tenant, name string) error {
	_, err := s.locate(tenant, name)
	return err
}

// Grants is the definitions loader's check that a tenant may use a
// secret it names (definitions.Options.Secrets). A daemon, which runs the
// tasks, checks every reference (always). A check that may run where the
// secrets are not (tasksync validate and plan) checks every reference when
// a secrets directory is given, else only those whose
// TASKSYNC_GRANT_<NAME> is set.
func (s *Secrets) Grants(always bool) func(tenant, name string) error {
	if always || s.dir != "" {
		return s.Check
	}
	return func(tenant, name string) error {
		if s.getenv(GrantEnvPrefix+name) == "" {
			return nil
		}
		return s.Check(tenant, name)
	}
}

// locate finds the secret name granted to tenant.
func (s *Secrets) locate(tenant, name string) (source, error) {
	if !validName.MatchString(name) || tenant == "" || strings.ContainsAny(tenant, `/\_.`) {
		return source{}, &NotGrantedError{Tenant: tenant, Name: name, Dir: s.dir}
	}
	if s.dir != "" {
		own := filepath.Join(s.dir, tenant)
		switch err := checkFile(own, name); {
		case err == nil:
			return source{file: filepath.Join(own, name)}, nil
		case !errors.Is(err, fs.ErrNotExist):
			return source{}, fmt.Errorf("secret %s of tenant %q: %w", name, tenant, err)
		}
		shared := filepath.Join(s.dir, SharedDir)
		if granted(readGrants(shared, name), tenant) {
			switch err := checkFile(shared, name); {
			case err == nil:
				return source{file: filepath.Join(shared, name)}, nil
			case !errors.Is(err, fs.ErrNotExist):
				return source{}, fmt.Errorf("shared secret %s: %w", name, err)
			}
		}
	}
	// The grant variable is the grant: validation needs no value (a CI job
	// has the grants, not the secrets); a run does.
	if granted(s.getenv(GrantEnvPrefix+name), tenant) {
		return source{env: SecretEnvPrefix + name}, nil
	}
	return source{}, &NotGrantedError{Tenant: tenant, Name: name, Dir: s.dir}
}

// lookup returns the value of the secret name granted to tenant.
func (s *Secrets) lookup(tenant, name string) (string, error) {
	src, err := s.locate(tenant, name)
	if err != nil {
		return "", err
	}
	if src.env != "" {
		v := s.getenv(src.env)
		if v == "" {
			return "", fmt.Errorf("secret %s is granted to tenant %q by %s%s, but %s is not set", name, tenant, GrantEnvPrefix, name, src.env)
		}
		return v, nil
	}
	b, err := readFile(filepath.Dir(src.file), filepath.Base(src.file))
	if err != nil {
		return "", fmt.Errorf("secret %s of tenant %q: %w", name, tenant, err)
	}
	return strings.TrimSuffix(string(b), "\n"), nil
}

// granted reports whether the list of tenants names tenant, or "*".
func granted(list, tenant string) bool {
	for _, line := range strings.Split(list, "\n") {
		line, _, _ = strings.Cut(line, "#")
		for _, t := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\r' }) {
			if t == tenant || t == "*" {
				return true
			}
		}
	}
	return false
}

// readGrants returns the list of tenants dir/NAME.tenants grants, or ""
// when it cannot be read (no grant).
func readGrants(dir, name string) string {
	b, err := readFile(dir, name+".tenants")
	if err != nil {
		return ""
	}
	return string(b)
}

// checkFile reports whether dir/name is a usable secret file: a regular
// file, of at most maxSecretBytes, that is dir's own (a symlink may lead
// only to a place inside dir, as a Kubernetes volume's links do).
func checkFile(dir, name string) error {
	f, err := openInside(dir, name)
	if err != nil {
		return err
	}
	return f.Close()
}

// readFile reads a secret file that checkFile accepts.
func readFile(dir, name string) ([]byte, error) {
	f, err := openInside(dir, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSecretBytes {
		return nil, fmt.Errorf("larger than %d KiB; refused", maxSecretBytes>>10)
	}
	return b, nil
}

func openInside(dir, name string) (*os.File, error) {
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	p := filepath.Join(realDir, name)
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return nil, err
	}
	if rel, err := filepath.Rel(realDir, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("%s is a symlink out of %s; refused", name, dir)
	}
	// Non-blocking, so that a FIFO swapped in does not hang the open; the
	// opened file itself is then checked.
	f, err := os.OpenFile(real, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err == nil && !info.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file; refused", name)
	}
	if err == nil && info.Size() > maxSecretBytes {
		err = fmt.Errorf("%s is larger than %d KiB; refused", name, maxSecretBytes>>10)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// CheckDir reports whether the secrets directory, if one is set, is a
// directory that can be listed: a mistyped --secrets-dir is one error,
// not a "not granted" problem for every reference.
func (s *Secrets) CheckDir() error {
	if s.dir == "" {
		return nil
	}
	if _, err := os.ReadDir(s.dir); err != nil {
		return fmt.Errorf("secrets directory: %w", err)
	}
	return nil
}

// Ungranted lists the files at the top of the secrets directory: the
// global layout of earlier versions, which no tenant may use. Hidden
// names (a volume's ..data) are left out.
func (s *Secrets) Ungranted() ([]string, error) {
	if s.dir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("secrets directory: %w", err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if info, err := os.Stat(filepath.Join(s.dir, e.Name())); err == nil && !info.IsDir() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// WarnUngranted logs, once, the files at the top of the secrets
// directory (Ungranted) and where to move them. Only their names are
// logged.
func (s *Secrets) WarnUngranted(logger *slog.Logger) {
	names, err := s.Ungranted()
	if err != nil {
		logger.Warn("cannot list the secrets directory", "err", err)
		return
	}
	if len(names) > 0 {
		logger.Warn("files at the top of the secrets directory are usable by no tenant: move each to <dir>/<tenant>/NAME, or to <dir>/_shared/NAME with <dir>/_shared/NAME.tenants listing the tenants it is granted to",
			"dir", s.dir, "files", names)
	}
}

// resolve replaces the secret references of str with the values granted
// to tenant, remembering each value in r so that it is redacted from
// anything shown later. "$${" is a literal "${".
func (s *Secrets) resolve(tenant, str string, r *Redactor) (string, error) {
	var err error
	out := secretRef.ReplaceAllStringFunc(str, func(ref string) string {
		if strings.HasPrefix(ref, "$$") {
			return ref[1:]
		}
		name := secretRef.FindStringSubmatch(ref)[1]
		v, lerr := s.lookup(tenant, name)
		if lerr != nil {
			err = errors.Join(err, lerr)
			return ""
		}
		r.Add(v)
		return v
	})
	return out, err
}
