package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// leaderLockID is the advisory lock the reconciling replica holds.
const leaderLockID int64 = 0x7461736b6c656164 >> 1

// Leadership is the leader lock, held on a dedicated connection. It is lost
// the moment that connection is: Lost is closed then, and every write
// fenced by it is refused.
type Leadership struct {
	conn *pgx.Conn
	pid  uint32
	lost chan struct{}
	once sync.Once
	stop context.CancelFunc
	done chan struct{}
}

// Options for acquiring the leader lock.
type LeaderOptions struct {
	// Poll is how often a waiting replica retries; default 1s.
	Poll time.Duration
	// Check is how often the holder checks its connection; default 1s.
	Check  time.Duration
	Logger *slog.Logger
	// Once makes one attempt: without the lock, AcquireLeadership returns
	// ErrNotLeader at once.
	Once bool
}

// AcquireLeadership blocks until this replica holds the leader lock, ctx
// ends, or the database cannot be reached at all.
func (s *Store) AcquireLeadership(ctx context.Context, opts LeaderOptions) (*Leadership, error) {
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Check <= 0 {
		opts.Check = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgx.ParseConfig(s.url)
	if err != nil {
		return nil, fmt.Errorf("leader: %w", redact(err))
	}
	for {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			var got bool
			err = conn.QueryRow(ctx, `select pg_try_advisory_lock($1)`, leaderLockID).Scan(&got)
			if err == nil && got {
				l := &Leadership{conn: conn, pid: conn.PgConn().PID(), lost: make(chan struct{}), done: make(chan struct{})}
				watchCtx, cancel := context.WithCancel(context.Background())
				l.stop = cancel
				go l.watch(watchCtx, opts.Check)
				return l, nil
			}
			conn.Close(context.Background())
		}
		if err != nil {
			opts.Logger.Warn("leader election: database unreachable, retrying", "err", redact(err))
		}
		if opts.Once {
			if err != nil {
				return nil, redact(err)
			}
			return nil, ErrNotLeader
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(opts.Poll):
		}
	}
}

// watch pings the lock's connection and declares the lock lost as soon as
// a ping fails.
func (l *Leadership) watch(ctx context.Context, every time.Duration) {
	defer close(l.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, every)
			err := l.conn.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				l.markLost()
				return
			}
		}
	}
}

func (l *Leadership) markLost() { l.once.Do(func() { close(l.lost) }) }

// Lost is closed when the lock is lost.
func (l *Leadership) Lost() <-chan struct{} { return l.lost }

// Release gives the lock up and closes its connection.
func (l *Leadership) Release(ctx context.Context) error {
	l.stop()
	<-l.done
	defer l.markLost()
	_, err := l.conn.Exec(ctx, `select pg_advisory_unlock($1)`, leaderLockID)
	cerr := l.conn.Close(ctx)
	return errors.Join(err, cerr)
}

// check implements Fence: the lock's backend must still hold it.
func (l *Leadership) check(ctx context.Context, tx pgx.Tx) error {
	select {
	case <-l.lost:
		return ErrNotLeader
	default:
	}
	var held bool
	err := tx.QueryRow(ctx, `
		select exists (select 1 from pg_locks where locktype = 'advisory' and granted and pid = $1
			and classid = ($2::bigint >> 32)::oid and objid = ($2::bigint & 4294967295)::oid and objsubid = 1)`,
		l.pid, leaderLockID).Scan(&held)
	if err != nil {
		return fmt.Errorf("check leadership: %w", err)
	}
	if !held {
		l.markLost()
		return ErrNotLeader
	}
	return nil
}
