package reconciler

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Problem is one thing wrong with the definitions tree, located as precisely
// as the input allows. Line and Column are 1-based; 0 means unknown.
type Problem struct {
	Path    string `json:"path"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Tenant  string `json:"tenant"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// Severity is SeverityWarning for a warning; a problem is an error
	// otherwise (validate writes SeverityError out).
	Severity Severity `json:"severity,omitempty"`
}

// Severity tells an error, which keeps a file from being applied and
// fails validate, from a warning, which does neither unless validate runs
// with --strict.
type Severity string

// The severities.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// IsWarning reports whether p is a warning rather than an error.
func (p Problem) IsWarning() bool { return p.Severity == SeverityWarning }

// String formats p as "path:line:col: message", the form editors and CI
// annotations understand, with "warning: " before the message of a
// warning. Unknown positions are left out. Path and message are escaped
// (see EscapeText), so a problem is always one printable line.
func (p Problem) String() string {
	p = p.Escaped()
	if p.IsWarning() {
		p.Message = "warning: " + p.Message
	}
	switch {
	case p.Line == 0:
		return fmt.Sprintf("%s: %s", p.Path, p.Message)
	case p.Column == 0:
		return fmt.Sprintf("%s:%d: %s", p.Path, p.Line, p.Message)
	}
	return fmt.Sprintf("%s:%d:%d: %s", p.Path, p.Line, p.Column, p.Message)
}

// SortProblems orders problems by path, line, column and message.
func SortProblems(ps []Problem) {
	slices.SortFunc(ps, func(a, b Problem) int {
		return cmp.Or(
			cmp.Compare(a.Path, b.Path),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Column, b.Column),
			cmp.Compare(a.Message, b.Message),
		)
	})
}

// MaxProblemMessage bounds a problem's message in bytes. Messages quote at
// most a short excerpt of a file (see Excerpt); this is the backstop that
// keeps any message from carrying a file's content.
const MaxProblemMessage = 1000

// Escaped returns p with its path and message made safe to print (see
// EscapeText), and the message cut to MaxProblemMessage bytes. Problems
// are escaped where they are made, so that every output (validate's text
// and JSON, logs, the status API, the database) carries the same safe
// text.
func (p Problem) Escaped() Problem {
	p.Path = EscapeText(p.Path)
	p.Tenant = EscapeText(p.Tenant)
	p.Code = EscapeText(p.Code)
	p.Message = EscapeText(p.Message)
	if len(p.Message) > MaxProblemMessage {
		cut := MaxProblemMessage - len(" [...]")
		for cut > 0 && !utf8.RuneStart(p.Message[cut]) {
			cut--
		}
		p.Message = p.Message[:cut] + " [...]"
	}
	return p
}

// EscapeText makes user-controlled text (a file name, a symlink target, a
// quoted value) safe to print on one line of a terminal or CI log: control
// characters (C0, DEL, C1), other characters that are not printable
// (format characters such as bidi overrides and zero-width spaces, line
// and paragraph separators) and bytes that are not valid UTF-8 are written
// as Go escapes (\n, \x1b, \u202e, \xff). Printable text, including
// spaces, quotes and backslashes, is kept as it is, so escaping twice
// changes nothing.
func EscapeText(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case printable(r):
			b.WriteString(s[i : i+size])
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

func needsEscape(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || !printable(r) {
			return true
		}
		i += size
	}
	return false
}

// printable reports whether r is shown as itself: a graphic character or
// the ASCII space.
func printable(r rune) bool {
	return r == ' ' || unicode.IsPrint(r)
}

// Excerpt quotes at most max bytes of s (cut at a character boundary,
// with "..." when cut), escaped as strconv.Quote does: the form in which a
// message may quote what a file holds.
func Excerpt(s string, max int) string {
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}
