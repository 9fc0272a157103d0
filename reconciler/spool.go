package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// ErrStoreUnavailable means the store could not be reached (a refused or
// broken connection, a database shutting down), as opposed to an answer
// such as "not found". Adapters wrap their connection errors with it.
var ErrStoreUnavailable = errors.New("the database cannot be reached")

// SpooledRun is one run record kept in memory while the store cannot be
// reached: an attempt's start (Status RunRunning, FinishedAt zero) or its
// outcome. It names its definition by Ref.ID when the store was asked for
// the applied version, or else by Ref.Tenant, Ref.Code and Ref.Hash, the
// version this replica served.
type SpooledRun struct {
	Ref        AppliedRef
	RunID      string
	Attempt    int
	Status     RunStatus
	StartedAt  time.Time
	FinishedAt time.Time // zero while running
	// Deadline is when a running attempt must have ended, or recorded
	// again (the leader closes it as abandoned some grace after).
	Deadline time.Time
	Error    string
	Output   json.RawMessage // a JSON value, nil for none
	// Final marks the run's last attempt.
	Final bool
	// Workflow marks a workflow run's record, whose Steps are its steps'
	// outcomes so far and FailedStep the step that failed, if one did. A
	// workflow's Attempt is the engine's counter of the step it ran;
	// the store numbers the run's attempts (WorkflowRecorder).
	Workflow   bool
	Steps      []StepOutcome
	FailedStep string
	// Manual marks a run started by hand (RunInput.Manual).
	Manual bool
	// ScheduledFor and CatchUp are the run's fire (RunInput).
	ScheduledFor time.Time
	CatchUp      bool
}

// SpoolStore writes spooled run records (store.Store). WriteSpooledRun is
// an upsert on the attempt (RunID, Attempt), so that a record written
// twice, or an outcome after its start, leaves one row.
type SpoolStore interface {
	WriteSpooledRun(ctx context.Context, rec SpooledRun) error
}

// SpoolOptions tune a RunSpool.
type SpoolOptions struct {
	// Max is how many records the spool keeps; past it the oldest are
	// dropped and counted. Default 10,000.
	Max int
	// MinBackoff and MaxBackoff bound the wait between flush attempts
	// while the store cannot be reached; defaults 500ms and 15s.
	MinBackoff, MaxBackoff time.Duration
	// ShutdownFlush bounds the last flush when Run stops; default 5s.
	ShutdownFlush time.Duration
	Logger        *slog.Logger
}

// writeAttempts is how often a record the store refuses for another
// reason than being unreachable is tried before it is dropped.
const writeAttempts = 3

// RunSpool keeps the run records of attempts executed while the store
// cannot be reached, in order, and writes them when it answers again.
// It is bounded: past Max records the oldest are dropped and counted.
type RunSpool struct {
	store SpoolStore
	opts  SpoolOptions
	log   *slog.Logger
	wake  chan struct{}

	mu       sync.Mutex
	queue    []spooled
	seq      uint64
	dropped  uint64
	flushed  uint64
	failures int // failed writes of the head record, other than unreachable
	full     bool
}

type spooled struct {
	seq uint64
	rec SpooledRun
}

// NewRunSpool returns an empty spool that flushes into store.
func NewRunSpool(store SpoolStore, opts SpoolOptions) *RunSpool {
	if opts.Max <= 0 {
		opts.Max = 10000
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 500 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(15*time.Second, opts.MinBackoff)
	}
	if opts.ShutdownFlush <= 0 {
		opts.ShutdownFlush = 5 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RunSpool{store: store, opts: opts, log: log.With("component", "run-spool"), wake: make(chan struct{}, 1)}
}

// Add appends a record, dropping the oldest when the spool is full.
func (s *RunSpool) Add(rec SpooledRun) {
	s.mu.Lock()
	if len(s.queue) == 0 {
		s.log.Warn("the database cannot be reached: spooling run records until it answers")
	}
	if len(s.queue) >= s.opts.Max {
		if !s.full {
			s.log.Error("the run record spool is full: dropping the oldest records", "max", s.opts.Max)
			s.full = true
		}
		s.queue = s.queue[1:]
		s.dropped++
		s.failures = 0
	}
	s.seq++
	s.queue = append(s.queue, spooled{s.seq, rec})
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Len is the number of records waiting; 0 for a nil spool.
func (s *RunSpool) Len() int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// Dropped is the number of records dropped so far: to stay within Max, or
// refused by the store.
func (s *RunSpool) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// Flushed is the number of records written to the store so far.
func (s *RunSpool) Flushed() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushed
}

// Flush writes the waiting records in order until none is left, and
// returns an error wrapping ErrStoreUnavailable when the store cannot be
// reached (the records stay) or ctx's error. A record the store refuses
// for another reason is tried again on the next flush, and dropped and
// counted after a few attempts.
func (s *RunSpool) Flush(ctx context.Context) (written int, err error) {
	for {
		if err := ctx.Err(); err != nil {
			return written, err
		}
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.full = false
			s.mu.Unlock()
			return written, nil
		}
		head := s.queue[0]
		s.mu.Unlock()
		werr := s.store.WriteSpooledRun(ctx, head.rec)
		if errors.Is(werr, ErrStoreUnavailable) || (werr != nil && ctx.Err() != nil) {
			return written, werr
		}
		s.mu.Lock()
		if len(s.queue) > 0 && s.queue[0].seq == head.seq { // not dropped meanwhile
			switch {
			case werr == nil:
				s.queue = s.queue[1:]
				s.flushed++
				s.failures = 0
				written++
			case s.failures+1 >= writeAttempts:
				s.queue = s.queue[1:]
				s.dropped++
				s.failures = 0
				s.log.Error("run record dropped: the database refused it", "tenant", head.rec.Ref.Tenant, "code", head.rec.Ref.Code,
					"run_id", head.rec.RunID, "attempt", head.rec.Attempt, "err", werr)
			default:
				s.failures++
			}
		}
		s.mu.Unlock()
		if werr != nil && !errors.Is(werr, ErrStoreUnavailable) {
			return written, fmt.Errorf("write a spooled run record: %w", werr)
		}
	}
}

// Run flushes the spool whenever it holds records, backing off while the
// store cannot be reached, until ctx is done; then it tries a last flush,
// bounded by ShutdownFlush, and reports what is left unwritten.
func (s *RunSpool) Run(ctx context.Context) error {
	backoff := s.opts.MinBackoff
	for {
		n, err := s.Flush(ctx)
		if n > 0 {
			s.log.Info("flushed spooled run records", "flushed", n, "left", s.Len())
		}
		if err == nil || ctx.Err() != nil {
			backoff = s.opts.MinBackoff
			select {
			case <-ctx.Done():
				s.Close(context.WithoutCancel(ctx))
				return nil
			case <-s.wake:
			}
			continue
		}
		if !errors.Is(err, ErrStoreUnavailable) {
			s.log.Warn("flush spooled run records", "err", err)
		}
		t := time.NewTimer(backoff)
		backoff = min(2*backoff, s.opts.MaxBackoff)
		select {
		case <-ctx.Done():
			t.Stop()
			s.Close(context.WithoutCancel(ctx))
			return nil
		case <-t.C:
		}
	}
}

// Close makes a last attempt, bounded by ShutdownFlush, to write what the
// spool holds, and logs what is lost.
func (s *RunSpool) Close(ctx context.Context) {
	if s.Len() == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.ShutdownFlush)
	defer cancel()
	n, err := s.Flush(ctx)
	if left := s.Len(); left > 0 {
		s.log.Error("run records lost at shutdown: the database cannot be reached", "flushed", n, "lost", left, "err", err)
		return
	}
	s.log.Info("flushed spooled run records at shutdown", "flushed", n)
}
