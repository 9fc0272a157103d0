package storetest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/riveredge/tasksync/reconciler/loopback"
	"github.com/riveredge/tasksync/reconciler/store"
	"github.com/riveredge/tasksync/reconciler/store/pgserver"
)

// Cluster is a running PostgreSQL server.
type Cluster struct {
	// URL connects as the superuser to the "postgres" database.
	URL string

	dir string // the temporary directory; "" for an external server
	pg  *pgserver.Runner
	dbs atomic.Int64
}

// Start starts a cluster, or returns the external one named by
// TASKSYNC_TEST_DATABASE_URL. It fails (it never skips) when PostgreSQL's
// server binaries cannot be found: set TASKSYNC_PG_BIN to their directory.
func Start() (*Cluster, error) {
	if u := os.Getenv("TASKSYNC_TEST_DATABASE_URL"); u != "" {
		return &Cluster{URL: u}, nil
	}
	dir, err := os.MkdirTemp("", "tasksync-pg-")
	if err != nil {
		return nil, err
	}
	pg, err := pgserver.NewRunner(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c := &Cluster{dir: dir, pg: pg}
	if err := c.start(); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start() error {
	data := filepath.Join(c.dir, "data")
	if err := c.pg.Run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"); err != nil {
		return err
	}
	port, err := loopback.FreePort()
	if err != nil {
		return err
	}
	opts := strings.Join([]string{
		"-c listen_addresses=127.0.0.1",
		"-p " + strconv.Itoa(port),
		"-k " + c.dir,
		"-c fsync=off",
		"-c synchronous_commit=off",
		"-c full_page_writes=off",
		"-c max_connections=300",
	}, " ")
	if err := c.pg.Run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(c.dir, "server.log"), "-w", "-t", "60", "start"); err != nil {
		return err
	}
	c.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	return nil
}

// Stop stops the server and removes its files.
func (c *Cluster) Stop() {
	if c == nil || c.dir == "" {
		return
	}
	_ = c.pg.Run("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "-w", "stop")
	os.RemoveAll(c.dir)
}

// NewDatabase creates an empty database for one test, dropped when the
// test ends, and returns its URL.
func (c *Cluster) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("tasksync_test_%d_%d", os.Getpid(), c.dbs.Add(1))
	if err := c.admin("create database " + pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		if err := c.admin("drop database if exists " + pgx.Identifier{name}.Sanitize() + " with (force)"); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	u, err := url.Parse(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// NewStore opens a store with opts on a new database (NewDatabase) and
// migrates it; the store is closed when the test ends. It returns the
// database's URL too, for tests that look at the rows themselves.
func (c *Cluster) NewStore(t testing.TB, opts store.Options) (*store.Store, string) {
	t.Helper()
	url := c.NewDatabase(t)
	return Open(t, url, opts), url
}

// Open opens the store of the database dbURL names and migrates it to
// the newest schema; the store closes when the test ends.
func Open(t testing.TB, dbURL string, opts store.Options) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := store.Open(ctx, dbURL, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

// Main runs a package's tests against a fresh cluster: call it from
// TestMain as os.Exit(storetest.Main(m, &cluster)).
func Main(m *testing.M, c **Cluster) int {
	cl, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "storetest:", err)
		return 1
	}
	*c = cl
	defer cl.Stop()
	return m.Run()
}

// CutOff makes the database at dbURL (one of NewDatabase's) unreachable, as
// in an outage: it refuses new connections, the superuser's included
// (allow_connections false), and ends the open ones. The function it
// returns makes the database reachable again; it runs at the end of the
// test too.
func (c *Cluster) CutOff(t testing.TB, dbURL string) (restore func()) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	admin := func(sql string, args ...any) {
		t.Helper()
		if err := c.admin(sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	admin("alter database " + pgx.Identifier{name}.Sanitize() + " allow_connections false")
	admin("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()", name)
	restored := false
	restore = func() {
		t.Helper()
		if !restored {
			restored = true
			admin("alter database " + pgx.Identifier{name}.Sanitize() + " allow_connections true")
		}
	}
	t.Cleanup(restore)
	return restore
}

// admin runs one statement as the cluster's superuser.
func (c *Cluster) admin(sql string, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL)
	if err != nil {
		return fmt.Errorf("connect to the test cluster: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// Conn connects to the database dbURL names, for a test to read or
// change rows behind the store's back; the test fails if it cannot, and
// the connection closes when the test ends.
func Conn(t testing.TB, dbURL string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
