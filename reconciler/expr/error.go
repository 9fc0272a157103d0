package expr

import "strconv"

// Error is a template or expression that could not be compiled or
// evaluated, with the expression it names. It carries the CEL library's
// message as text only: none of that library's error values is reachable
// from it. (Their errors.Is compares messages and calls Error on the
// target, which panics for targets such as the Inngest SDK's zero
// NoRetryError value; a *types.Err in an error chain made every
// errors.Is over that chain a hazard.) Unwrap yields ErrCostLimit,
// ErrTooLarge or the cause of the evaluation's context where one of them
// is why, and nil otherwise.
type Error struct {
	// Expr is the expression, empty for a template that does not parse.
	Expr string
	// Msg says what went wrong.
	Msg         string
	cause       error
	interrupted bool
}

func (e *Error) Error() string {
	if e.Expr == "" {
		return e.Msg
	}
	return "expression " + strconv.Quote(e.Expr) + ": " + e.Msg
}

// Unwrap returns the sentinel or context cause behind the error, if any.
func (e *Error) Unwrap() error { return e.cause }

// Interrupted reports whether the evaluation stopped because its context
// ended (the run was cancelled or timed out) rather than because of the
// expression or its data: only then may the same evaluation succeed on a
// retry.
func (e *Error) Interrupted() bool { return e.interrupted }
