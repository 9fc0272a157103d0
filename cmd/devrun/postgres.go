package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/riveredge/tasksync/reconciler/store/pgserver"
)

// fallbackRoot is where the cluster goes when the postgres user cannot
// reach the data directory: a checkout under /root (mode 0700) is the
// usual case. /var/tmp is open to every user and kept across reboots.
const fallbackRoot = "/var/tmp"

// clusterDir returns the directory the cluster lives in: dataDir, or,
// when this process is root and the postgres user (whom the server runs
// as) cannot enter dataDir, a directory of its own under root, named
// after dataDir so that each checkout keeps its own cluster there.
// reason says why it moved ("" when it did not).
func clusterDir(dataDir, root string, canEnter func(dir string) bool) (dir, reason string, err error) {
	if os.Geteuid() != 0 || canEnter(dataDir) {
		return dataDir, "", nil
	}
	if !canEnter(root) {
		return "", "", fmt.Errorf("the postgres user can enter neither %s nor %s: move the checkout somewhere it can reach (not under /root), or pass -data DIR", dataDir, root)
	}
	sum := sha256.Sum256([]byte(dataDir))
	dir = filepath.Join(root, "tasksync-run-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("the postgres user cannot enter %s, and creating %s instead failed: %w", dataDir, dir, err)
	}
	reason = fmt.Sprintf("the postgres user, whom the server runs as, cannot enter %s (is a parent directory private, as /root is?)", dataDir)
	return dir, reason, nil
}

// postgresCanEnter reports whether the postgres user can enter dir, that
// is search it and every directory above it.
func postgresCanEnter(dir string) bool {
	return exec.Command("runuser", "-u", "postgres", "--", "test", "-x", dir).Run() == nil
}

// startPostgres initialises (once) and starts a cluster in dir/pg on
// 127.0.0.1:port, its socket and log (postgres.log) in dir, run as the
// postgres user when we are root, and returns its stop.
func startPostgres(dir string, port int) (func() error, error) {
	pg, err := pgserver.NewRunner(dir)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "pg")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		if err := pg.Run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-instructions"); err != nil {
			return nil, err
		}
	}
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s", port, dir)
	if err := pg.Run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "postgres.log"), "-w", "start"); err != nil {
		return nil, fmt.Errorf("start Postgres (log: %s): %w", filepath.Join(dir, "postgres.log"), err)
	}
	return func() error {
		return pg.Run("pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
	}, nil
}
