package reconciler

import (
	"cmp"
	"fmt"
	"slices"
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
}

// String formats p as "path:line:col: message", the form editors and CI
// annotations understand. Unknown positions are left out.
func (p Problem) String() string {
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
