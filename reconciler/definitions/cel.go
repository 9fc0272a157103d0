package definitions

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"

	"github.com/riveredge/tasksync/reconciler/expr"
)

// scope is where an expression is written; see expr.Scope.
type scope = expr.Scope

const (
	scopeTrigger = expr.Trigger
	scopeTask    = expr.Task
	scopeStep    = expr.Step
	scopeWait    = expr.Wait
)

// want is the type an expression must produce.
type want int

const (
	wantAny want = iota
	wantBool
	wantTime // a timestamp, or a string holding an RFC 3339 one
)

// celChecker compiles CEL expressions once per process: definitions repeat
// the same expressions across files and tenants, and compiling is the most
// expensive part of validation. Environments are safe for concurrent use.
type celChecker struct {
	envs *expr.Envs

	mu    sync.Mutex
	cache map[celKey]celResult
}

type celKey struct {
	scope scope
	want  want
	expr  string
}

type celResult struct {
	err   string   // empty when the expression is fine
	steps []string // step ids referenced as steps.<id> or steps["id"]
}

// maxExpressionBytes bounds one expression; messages quote expressions.
const maxExpressionBytes = 4096

// maxCELCache bounds the cache; a long-running daemon sees edits forever.
const maxCELCache = 10_000

func newCELChecker() (*celChecker, error) {
	envs, err := expr.NewEnvs()
	if err != nil {
		return nil, err
	}
	return &celChecker{envs: envs, cache: map[celKey]celResult{}}, nil
}

// check compiles expr in scope and returns a message saying what is wrong,
// or "". steps lists the workflow's step ids in order, and current the
// index of the step the expression belongs to: it may refer only to the
// steps before it.
func (c *celChecker) check(s scope, w want, src string, steps []string, current int) string {
	if len(src) > maxExpressionBytes {
		return fmt.Sprintf("expression of %d bytes is longer than the %d allowed", len(src), maxExpressionBytes)
	}
	key := celKey{s, w, src}
	c.mu.Lock()
	res, ok := c.cache[key]
	c.mu.Unlock()
	if !ok {
		res = c.compile(s, w, src)
		c.mu.Lock()
		if len(c.cache) >= maxCELCache {
			clear(c.cache)
		}
		c.cache[key] = res
		c.mu.Unlock()
	}
	if s == scopeStep {
		// steps.notify-manager is a subtraction to CEL: say how to write it.
		if id := expr.DottedStepRef(src); id != "" && (res.err != "" || slices.Contains(steps, id)) {
			return fmt.Sprintf("expression %q reads step %q as steps.%s, which CEL takes for a subtraction; write %s, as in: %s",
				src, id, id, expr.StepRef(id), expr.BracketStepRefs(src))
		}
	}
	if res.err != "" {
		return res.err
	}
	for _, id := range res.steps {
		i := slices.Index(steps, id)
		switch {
		case i >= 0 && i < current:
			continue
		case i == current:
			return fmt.Sprintf("expression %q refers to its own step %q; a step can read only the steps before it", src, id)
		case i > current:
			return fmt.Sprintf("expression %q refers to step %q, which runs later (step %d); a step can read only the steps before it", src, id, i+1)
		case current == 0:
			return fmt.Sprintf("expression %q refers to step %q, which does not exist (and no step runs before this one)", src, id)
		}
		return fmt.Sprintf("expression %q refers to step %q, which does not exist; earlier steps: %s", src, id, strings.Join(steps[:current], ", "))
	}
	return ""
}

func (c *celChecker) compile(s scope, w want, src string) celResult {
	checked, iss := c.envs.Env(s).Compile(src)
	if iss != nil && iss.Err() != nil {
		return celResult{err: fmt.Sprintf("invalid expression %q: %s (variables here: %s)", src, oneLine(iss.Err().Error()), s.Vars())}
	}
	out := checked.OutputType()
	switch w {
	case wantBool:
		if !out.IsExactType(types.BoolType) && !out.IsExactType(types.DynType) {
			return celResult{err: fmt.Sprintf("expression %q must be true or false, but yields %s", src, out)}
		}
	case wantTime:
		if !out.IsExactType(types.TimestampType) && !out.IsExactType(types.StringType) && !out.IsExactType(types.DynType) {
			return celResult{err: fmt.Sprintf("expression %q must yield a timestamp, but yields %s", src, out)}
		}
	}
	if msg := bounded(c.envs, s, src, checked); msg != "" {
		return celResult{err: msg}
	}
	return celResult{steps: stepRefs(checked.NativeRep())}
}

// bounded says what is wrong when the checked expression src could cost
// too much where it is written, or "": comprehensions nested deeper than
// the scope allows, a regular expression that is not allowed there (see
// expr.CheckMatches), or an estimated worst-case cost above its limit.
// Conditions Inngest evaluates run on its server, shared by every tenant,
// and are held to lower limits.
func bounded(envs *expr.Envs, s scope, src string, checked *cel.Ast) string {
	where, fix := "here", "test fewer elements, or split the work into workflow steps"
	if s.Inngest() {
		where = "in a condition Inngest evaluates (trigger and wait_for_event if), which runs on the server every tenant shares"
		fix = "keep one pass over a list here and move the rest into a workflow step's if, which tasksync evaluates"
	}
	if depth, col := expr.Nesting(checked); depth > s.MaxNesting() {
		return fmt.Sprintf("expression %q nests all/exists/exists_one/map/filter %d deep (the innermost opens at column %d); at most %d %s allowed %s: %s",
			src, depth, col, s.MaxNesting(), levels(s.MaxNesting()), where, fix)
	}
	if err := expr.CheckMatches(s, checked); err != nil {
		return fmt.Sprintf("expression %q: %v", src, err)
	}
	cost, err := envs.Cost(s, checked)
	if err != nil {
		return fmt.Sprintf("expression %q: %v", src, err)
	}
	if cost > s.CostLimit() {
		return fmt.Sprintf("expression %q may cost up to %s (estimated worst case, with lists of event data up to %d elements and of step outputs up to %d), over the limit of %d %s: %s",
			src, expr.FormatCost(cost), expr.MaxEventBytes/2, expr.MaxStepOutputBytes/2, s.CostLimit(), where, fix)
	}
	return ""
}

func levels(n int) string {
	if n == 1 {
		return "level is"
	}
	return "levels are"
}

// stepRefs lists the ids an expression reads from `steps`.
func stepRefs(a *ast.AST) []string {
	var ids []string
	visit := ast.NewExprVisitor(func(e ast.Expr) {
		switch e.Kind() {
		case ast.SelectKind:
			sel := e.AsSelect()
			if isIdent(sel.Operand(), "steps") {
				ids = append(ids, sel.FieldName())
			}
		case ast.CallKind:
			call := e.AsCall()
			if call.FunctionName() != "_[_]" || len(call.Args()) != 2 || !isIdent(call.Args()[0], "steps") {
				return
			}
			if lit := call.Args()[1]; lit.Kind() == ast.LiteralKind {
				if s, ok := lit.AsLiteral().Value().(string); ok {
					ids = append(ids, s)
				}
			}
		}
	})
	ast.PreOrderVisit(a.Expr(), visit)
	return ids
}

func isIdent(e ast.Expr, name string) bool {
	return e.Kind() == ast.IdentKind && e.AsIdent() == name
}

// celPos matches the position CEL puts before each issue.
var celPos = regexp.MustCompile(`^ERROR: <input>:(-?\d+):(-?\d+): `)

// oneLine reduces CEL's first issue to one readable line: its column in
// the expression, without the caret drawing, the parser's list of
// expected tokens or an empty container name.
func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	where := ""
	if m := celPos.FindStringSubmatch(s); m != nil {
		s = strings.TrimPrefix(s, m[0])
		if !strings.HasPrefix(m[2], "-") && m[2] != "0" {
			where = " at column " + m[2]
		}
	}
	s = strings.Replace(s, " (in container '')", "", 1)
	if i := strings.Index(s, " expecting "); i >= 0 {
		s = s[:i]
	}
	s = strings.Replace(s, "mismatched input '<EOF>'", "the expression ends too early", 1)
	s = strings.TrimPrefix(s, "Syntax error: ")
	return strings.TrimSpace(s) + where
}
