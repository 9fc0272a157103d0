package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/riveredge/tasksync/migrations"
	"github.com/riveredge/tasksync/reconciler"
)

// ErrNotMigrated means the database lacks tasksync's tables.
var ErrNotMigrated = errors.New("the database has no tasksync schema; run tasksync migrate")

// ErrNotLeader means a write was refused because this replica no longer
// holds the leader lock (reconciler.ErrNotLeader).
var ErrNotLeader = reconciler.ErrNotLeader

// Options tune a Store.
type Options struct {
	// AppPrefix names Inngest apps: <prefix>-<tenant>. Default
	// reconciler.DefaultAppPrefix.
	AppPrefix string
	// MaxConns bounds the pool; default pgxpool's.
	MaxConns int32
}

// Store is the applied state in one PostgreSQL database.
type Store struct {
	pool       *pgxpool.Pool
	url        string
	appPrefix  string
	statements *atomic.Int64
	fence      *Leadership
}

// WithFence returns a view of s whose writes first check, inside their
// transaction, that l's backend still holds the leader lock: a replica
// that lost the lock while it was planning cannot write.
func (s *Store) WithFence(l *Leadership) *Store {
	c := *s
	c.fence = l
	return &c
}

// Open connects to the database at url (a libpq URL or DSN). It does not
// check the schema; call Migrate or CheckSchema.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", redact(err))
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	s := &Store{url: url, appPrefix: opts.AppPrefix, statements: new(atomic.Int64)}
	if s.appPrefix == "" {
		s.appPrefix = reconciler.DefaultAppPrefix
	}
	cfg.ConnConfig.Tracer = &counter{s.statements}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", redact(err))
	}
	s.pool = pool
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database: %w", redact(err))
	}
	return s, nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.pool.Ping(ctx); err != nil {
		return redact(err)
	}
	return nil
}

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

// Statements reports how many statements the store has sent, counting each
// statement of a batch: a measure of database work in benchmarks.
func (s *Store) Statements() int64 { return s.statements.Load() }

// counter counts statements as a pgx tracer.
type counter struct{ n *atomic.Int64 }

func (c *counter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *counter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *counter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (c *counter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {
	c.n.Add(1)
}

func (c *counter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (c *counter) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *counter) TraceCopyFromEnd(context.Context, *pgx.Conn, pgx.TraceCopyFromEndData) {}

// migrateLockID is the advisory lock migrations run under, so that replicas
// starting together migrate one at a time ("tasksync" in ASCII, shifted).
const migrateLockID int64 = 0x7461736b73796e63 >> 1

// Migrate applies the embedded migrations that are not applied yet. It is
// safe to call from several replicas at once: they take turns under an
// advisory lock, and the later ones find nothing to do.
func (s *Store) Migrate(ctx context.Context) (applied int, err error) {
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrateLockID), lock.WithLockTimeout(1, 600))
	if err != nil {
		return 0, err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS, goose.WithSessionLocker(locker))
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", redact(err))
	}
	return len(results), nil
}

// CheckSchema returns ErrNotMigrated when the database lacks the tables
// or has migrations this binary does not know of yet pending.
func (s *Store) CheckSchema(ctx context.Context) error {
	var ok bool
	err := s.pool.QueryRow(ctx, `select to_regclass('root_scheduled_tasks') is not null and to_regclass('root_definition_errors') is not null`).Scan(&ok)
	if err != nil {
		return fmt.Errorf("check schema: %w", redact(err))
	}
	if !ok {
		return ErrNotMigrated
	}
	return nil
}

// redact removes a password that a connection error may repeat.
func redact(err error) error {
	var pe *pgconn.ConnectError
	if errors.As(err, &pe) {
		// The driver joins one line per attempt (with TLS, then without),
		// often the same twice: say each distinct one once, on one line.
		var lines []string
		for _, l := range strings.Split(pe.Unwrap().Error(), "\n") {
			if l != "" && !slices.Contains(lines, l) {
				lines = append(lines, l)
			}
		}
		return errors.New(strings.Join(lines, "; "))
	}
	return err
}

// RecordReconcile stores the outcome of one reconcile for the status API.
func (s *Store) RecordReconcile(ctx context.Context, started, finished time.Time, result reconciler.ReconcileResult, c reconciler.Counts, message string) error {
	_, err := s.pool.Exec(ctx, `
		insert into root_reconciles (started_at, finished_at, result, created, updated, retired, unchanged, held, errors, message)
		values ($1, $2, $3, $4, $5, $6, $7, $8, $9, nullif($10, ''))`,
		started, finished, result, c.Created, c.Updated, c.Retired, c.Unchanged, c.Held, c.Errors, message)
	if err != nil {
		return fmt.Errorf("record reconcile: %w", redact(err))
	}
	return nil
}
