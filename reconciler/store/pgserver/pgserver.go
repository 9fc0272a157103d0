// Package pgserver runs PostgreSQL's server programs (initdb, pg_ctl) from
// a local installation, for the throwaway clusters of tests and `make run`.
package pgserver

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
)

// Bin finds PostgreSQL's server binaries: TASKSYNC_PG_BIN, else the newest
// /usr/lib/postgresql/<version>/bin, else initdb's directory on PATH.
func Bin() (string, error) {
	if b := os.Getenv("TASKSYNC_PG_BIN"); b != "" {
		return b, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dirs[i])), 64)
		vj, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dirs[j])), 64)
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin or PATH; install postgresql or set TASKSYNC_PG_BIN")
}

// Runner runs PostgreSQL's programs. PostgreSQL refuses to run as root, so
// when this process is root they run as the postgres user.
type Runner struct {
	bin   string
	runAs []string // command prefix that runs as the postgres user
}

// NewRunner finds the binaries and, when running as root, gives dir (where
// the cluster will live) to the postgres user.
func NewRunner(dir string) (*Runner, error) {
	bin, err := Bin()
	if err != nil {
		return nil, err
	}
	r := &Runner{bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs a postgres user to run the server as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
		r.runAs = []string{"runuser", "-u", "postgres", "--"}
	}
	return r, nil
}

// Run runs one program (initdb, pg_ctl, ...) in its own process group, so
// that a terminal's Ctrl-C reaches only its caller, which decides when the
// server stops. Its output is returned with the error when it fails.
func (r *Runner) Run(name string, args ...string) error {
	full := append(append(append([]string{}, r.runAs...), filepath.Join(r.bin, name)), args...)
	cmd := exec.Command(full[0], full[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", name, err, out.String())
	}
	return nil
}
