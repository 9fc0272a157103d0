// Package expr holds the CEL environments of definitions: which variables
// an expression may use where it is written, the {{ }} template syntax,
// and the evaluation of expressions and templates when a task runs. The
// definitions package compiles every expression with it at validation; the
// executor evaluates them with it at run time, so both agree.
package expr
