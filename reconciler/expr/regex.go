package expr

import (
	"fmt"
	"regexp/syntax"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/overloads"
)

// RegexProgramSize is the number of instructions of the program Go's
// regexp package (RE2) compiles pattern to: matching a string costs at
// most its length times this. Repetitions are bounded before the program
// is built, so that a short pattern cannot make a large one.
func RegexProgramSize(pattern string) (int, error) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return 0, fmt.Errorf("invalid pattern %q: %w", clip(pattern), err)
	}
	if n := expandedSize(re, maxRegexExpanded); n > maxRegexExpanded {
		return 0, fmt.Errorf("pattern %q repeats too much: its repetitions expand to more than %d instructions", clip(pattern), maxRegexExpanded)
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return 0, fmt.Errorf("invalid pattern %q: %w", clip(pattern), err)
	}
	return len(prog.Inst), nil
}

// expandedSize is about the size of re with its repetitions written out,
// counted up to just past limit.
func expandedSize(re *syntax.Regexp, limit int) int {
	n := 1
	switch re.Op {
	case syntax.OpLiteral:
		n = len(re.Rune)
	case syntax.OpRepeat:
		times := re.Max
		if times < 0 {
			times = re.Min + 1
		}
		if len(re.Sub) == 1 {
			sub := expandedSize(re.Sub[0], limit)
			if times > 0 && sub > limit/times {
				return limit + 1
			}
			n += times * sub
		}
	default:
		for _, sub := range re.Sub {
			if n += expandedSize(sub, limit); n > limit {
				return limit + 1
			}
		}
	}
	return n
}

// CheckMatches says what is wrong with the regular expressions of the
// checked expression a in scope s, or nil. Conditions Inngest evaluates
// may not use `matches` at all: tasksync cannot bound its work on the
// server. Elsewhere a pattern must be a string literal whose program has
// at most MaxRegexInstructions instructions, and all the patterns of an
// expression together at most MaxRegexInstructionsTotal.
func CheckMatches(s Scope, a *cel.Ast) error {
	native := a.NativeRep()
	column := func(e ast.Expr) int { return native.SourceInfo().GetStartLocation(e.ID()).Column() + 1 }
	var first error
	total := 0
	visit := ast.NewExprVisitor(func(e ast.Expr) {
		if first != nil || e.Kind() != ast.CallKind || e.AsCall().FunctionName() != overloads.Matches {
			return
		}
		if s.Inngest() {
			first = fmt.Errorf("matches (at column %d) is not allowed in a condition Inngest evaluates (trigger and wait_for_event if): a regular expression's work grows with its compiled size, which nothing bounds on the server every tenant shares; use contains, startsWith, endsWith or ==, or test the pattern in a workflow step's if", column(e))
			return
		}
		pattern, ok := literalPattern(e.AsCall())
		if !ok {
			first = fmt.Errorf("matches (at column %d) takes its pattern from data; write the pattern as a string literal, such as s.matches('^[A-Z]{2}-[0-9]+$')", column(e))
			return
		}
		n, err := RegexProgramSize(pattern)
		if err != nil {
			first = fmt.Errorf("matches (at column %d): %w", column(e), err)
			return
		}
		if n > MaxRegexInstructions {
			first = fmt.Errorf("matches (at column %d): pattern %q compiles to %d instructions, more than the %d allowed; simplify it (fewer or smaller counted repetitions {n,m}), or test in several steps", column(e), clip(pattern), n, MaxRegexInstructions)
			return
		}
		if total += n; total > MaxRegexInstructionsTotal {
			first = fmt.Errorf("the patterns of matches compile to more than %d instructions together (the last at column %d); use fewer patterns, or split the tests into workflow steps", MaxRegexInstructionsTotal, column(e))
		}
	})
	ast.PreOrderVisit(native.Expr(), visit)
	return first
}

// literalPattern returns the pattern of a call of matches, s.matches(p)
// or matches(s, p), when it is a string literal.
func literalPattern(c ast.CallExpr) (string, bool) {
	args := c.Args()
	if len(args) == 0 {
		return "", false
	}
	p := args[len(args)-1]
	if p.Kind() != ast.LiteralKind {
		return "", false
	}
	s, ok := p.AsLiteral().Value().(string)
	return s, ok
}

// matchesCost is the cost of matching a string of size n against a
// program of prog instructions: RE2 runs at most every instruction on
// every character, a few nanoseconds each, so ten of them make a unit.
func matchesCost(n, prog uint64) uint64 {
	if n == ^uint64(0) || prog != 0 && (n+1) > ^uint64(0)/prog {
		return ^uint64(0)
	}
	return ((n+1)*prog + 9) / 10
}
