package inngest

import (
	"log/slog"
	"strings"
	"testing"
)

// TestSDKLoggerAtDebug: what the SDK logs, its ERROR for a failed call
// included, reaches the log at DEBUG only: one line per event at INFO.
func TestSDKLoggerAtDebug(t *testing.T) {
	var b strings.Builder
	l := sdkLogger(slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelInfo})))
	l.With("fn", "x").Error("error calling function", "error", "boom")
	if b.Len() != 0 {
		t.Errorf("at INFO the SDK's error was logged: %s", b.String())
	}
	b.Reset()
	l = sdkLogger(slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})))
	l.Error("error calling function", "error", "boom")
	if got := b.String(); !strings.Contains(got, "level=DEBUG") || !strings.Contains(got, "component=inngestgo") {
		t.Errorf("at DEBUG: %q, want the line at DEBUG marked as the SDK's", got)
	}
}
