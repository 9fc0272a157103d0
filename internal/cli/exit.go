package cli

import (
	"errors"
	"fmt"
	"io"
)

// The exit statuses every command shares.
const (
	ExitOK      = 0
	ExitFailure = 1 // invalid input, errors, or what a command says
	ExitUsage   = 2 // usage or I/O errors that stop the run
)

// ExitError carries a command's exit status. A nil Err means the command
// already said everything it had to say.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// UsageError is a mistake in how the command was called: status
// ExitUsage (or the command's UsageExit).
func UsageError(format string, args ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

// Exit ends a command with status code after it printed its own report.
func Exit(code int) error { return &ExitError{Code: code} }

// ExitCode prints err, if it has anything to say, after the program's
// name, and returns the status the process exits with.
func (p *Program) ExitCode(err error, stderr io.Writer) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", p.Name, ee.Err)
		}
		return ee.Code
	}
	fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
	return ExitFailure
}
