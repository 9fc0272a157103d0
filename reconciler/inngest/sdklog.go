package inngest

import (
	"context"
	"log/slog"
)

// sdkLogger is the logger the SDK is given: everything it logs goes to
// the daemon's log at DEBUG, marked as the SDK's. The SDK logs an ERROR
// of its own for every failed function call (with its call context,
// pointers included), which the run's own line already says; a failed
// sync is returned to, and logged by, the caller.
func sdkLogger(l *slog.Logger) *slog.Logger {
	return slog.New(debugHandler{l.Handler()}).With("component", "inngestgo")
}

// debugHandler lowers every record to DEBUG.
type debugHandler struct{ h slog.Handler }

func (d debugHandler) Enabled(ctx context.Context, _ slog.Level) bool {
	return d.h.Enabled(ctx, slog.LevelDebug)
}

func (d debugHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Level = slog.LevelDebug
	return d.h.Handle(ctx, r)
}

func (d debugHandler) WithAttrs(as []slog.Attr) slog.Handler { return debugHandler{d.h.WithAttrs(as)} }

func (d debugHandler) WithGroup(name string) slog.Handler { return debugHandler{d.h.WithGroup(name)} }
