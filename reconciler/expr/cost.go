package expr

import (
	"fmt"
	"math"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/overloads"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// sizeHints tells CEL's cost estimator how large the variables of
// expressions can be, which CEL cannot know: a list or map of an event has
// at most half as many entries as the event has bytes (each entry takes a
// value and a comma), a string at most as many characters. It also
// estimates the calls whose cost CEL gets wrong for tasksync.
type sizeHints struct {
	// inngest is set for conditions Inngest evaluates, where work on
	// strings, lists and maps is charged by their size unless they are
	// parts of an element (see parts).
	inngest bool
	// parts holds the identifiers that stand for an element of a list or
	// map of the variables (the iteration variable of a pass over
	// event.data.items, not one over a list an expression built).
	parts map[int64]bool
}

// EstimateSize implements checker.CostEstimator.
func (sizeHints) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	path := n.Path()
	if len(path) == 0 {
		return nil
	}
	var bytes uint64
	switch path[0] {
	case "event", "async":
		bytes = MaxEventBytes
	case "steps":
		bytes = MaxStepOutputBytes
	case "tenant":
		bytes = MaxTenantBytes
	default:
		return nil
	}
	if t := n.Type(); t == nil || !(t.IsExactType(types.StringType) || t.IsExactType(types.BytesType)) {
		bytes /= 2
	}
	return &checker.SizeEstimate{Min: 0, Max: bytes}
}

// EstimateCallCost implements checker.CostEstimator.
//
// In expressions tasksync evaluates, comparisons and substring tests count
// as one operation: Go runs them at memory speed, where CEL's default
// estimate charges a tenth per character, which would refuse any test of
// an element's field in a pass over a list; the run-time limit charges
// them by size. Concatenation counts a unit per byte it copies, as at run
// time. matches counts the string's size times its pattern's program.
//
// In conditions Inngest evaluates, for which there is no run-time limit,
// comparisons, substring tests, size, map lookups and `in` count a tenth
// per character (a unit per entry for `in` a list) of the operand they
// scan, unless that operand is a part of the element of a pass: the
// elements of one list together are no larger than the event, so a test
// of each costs no more than a pass over the event, while a test of a
// fixed string of the event costs its size on every iteration. A
// timestamp accessor with a time zone name counts timeZoneCost.
func (h sizeHints) EstimateCallCost(function, overloadID string, target *checker.AstNode, args []checker.AstNode) *checker.CallEstimate {
	all := args
	if target != nil {
		all = append([]checker.AstNode{*target}, args...)
	}
	switch overloadID {
	case overloads.Matches, overloads.MatchesString:
		if len(all) != 2 || all[1].Expr().Kind() != ast.LiteralKind {
			return nil
		}
		pattern, ok := all[1].Expr().AsLiteral().Value().(string)
		if !ok {
			return nil
		}
		prog, err := RegexProgramSize(pattern)
		if err != nil {
			return nil
		}
		return fixed(matchesCost(h.scanned(all[0]), uint64(prog)))
	case overloads.AddString, overloads.AddBytes:
		if len(args) != 2 {
			return nil
		}
		size := h.sizeOf(args[0]).Add(h.sizeOf(args[1]))
		return &checker.CallEstimate{CostEstimate: size.AsCost(), ResultSize: &size}
	}
	if !h.inngest {
		switch overloadID {
		case overloads.Equals, overloads.NotEquals,
			overloads.LessString, overloads.LessEqualsString, overloads.GreaterString, overloads.GreaterEqualsString,
			overloads.LessBytes, overloads.LessEqualsBytes, overloads.GreaterBytes, overloads.GreaterEqualsBytes,
			overloads.StartsWithString, overloads.EndsWithString, overloads.ContainsString:
			return fixed(1)
		}
		return nil
	}
	switch overloadID {
	case overloads.Equals, overloads.NotEquals,
		overloads.LessString, overloads.LessEqualsString, overloads.GreaterString, overloads.GreaterEqualsString,
		overloads.LessBytes, overloads.LessEqualsBytes, overloads.GreaterBytes, overloads.GreaterEqualsBytes,
		overloads.StartsWithString, overloads.EndsWithString:
		// Go compares at most the shorter operand.
		if len(all) == 2 {
			return fixed(perChar(min(h.scanned(all[0]), h.scanned(all[1]))))
		}
	case overloads.ContainsString:
		if len(all) == 2 {
			return fixed(perChar(h.scanned(all[0])))
		}
	case overloads.SizeString, overloads.SizeStringInst, overloads.SizeBytes, overloads.SizeBytesInst:
		if len(all) == 1 {
			return fixed(perChar(h.scanned(all[0])))
		}
	case overloads.IndexMap:
		if len(all) == 2 {
			return fixed(perChar(h.scanned(all[1])))
		}
	case overloads.InMap:
		if len(all) == 2 {
			return fixed(perChar(h.scanned(all[0])))
		}
	case overloads.InList:
		if len(all) == 2 {
			return fixed(max(1, h.scanned(all[1])))
		}
	}
	if strings.HasSuffix(overloadID, "_tz") {
		return fixed(timeZoneCost)
	}
	return nil
}

func fixed(c uint64) *checker.CallEstimate {
	return &checker.CallEstimate{CostEstimate: checker.FixedCostEstimate(c)}
}

// perChar is CEL's charge for scanning n characters: a tenth of a unit
// each, at least one.
func perChar(n uint64) uint64 {
	return max(1, n/10+min(n%10, 1))
}

// scanned is how many characters or entries of n a call scans, for the
// estimate: none extra for a part of an element, whose size the pass
// already paid for.
func (h sizeHints) scanned(n checker.AstNode) uint64 {
	if h.isPart(n.Expr()) {
		return 1
	}
	return h.sizeOf(n).Max
}

// isPart reports whether e is an element of a pass over a variable's list
// or map, or a field or entry of one (i, i.sku, i.tags[0]).
func (h sizeHints) isPart(e ast.Expr) bool {
	id, ok := rootIdent(e)
	return ok && h.parts[id.ID()]
}

// rootIdent follows fields and indexes (i.sku, i.tags[0]) down to the
// identifier they start from; ok is false for anything else.
func rootIdent(e ast.Expr) (ast.Expr, bool) {
	for {
		switch e.Kind() {
		case ast.IdentKind:
			return e, true
		case ast.SelectKind:
			e = e.AsSelect().Operand()
		case ast.CallKind:
			c := e.AsCall()
			if c.FunctionName() != operators.Index || len(c.Args()) != 2 {
				return nil, false
			}
			e = c.Args()[0]
		default:
			return nil, false
		}
	}
}

// elementParts finds the identifiers of a that stand for an element of a
// pass over a list or map of the variables, or of a part of one: a pass
// over what an expression built (l.map(x, event.data.big)) can hold the
// same large value many times, one over event data only disjoint parts of
// the event.
func elementParts(a *cel.Ast) map[int64]bool {
	parts := map[int64]bool{}
	bound := map[string][]bool{} // iteration variables in scope, innermost last
	var fromData func(e ast.Expr) bool
	fromData = func(e ast.Expr) bool {
		id, ok := rootIdent(e)
		if !ok {
			return false
		}
		if b := bound[id.AsIdent()]; len(b) > 0 {
			return b[len(b)-1]
		}
		switch id.AsIdent() {
		case "event", "async", "steps", "tenant":
			return true
		}
		return false
	}
	var walk func(e ast.Expr)
	walk = func(e ast.Expr) {
		switch e.Kind() {
		case ast.IdentKind:
			if b := bound[e.AsIdent()]; len(b) > 0 && b[len(b)-1] {
				parts[e.ID()] = true
			}
		case ast.ComprehensionKind:
			c := e.AsComprehension()
			walk(c.IterRange())
			walk(c.AccuInit())
			data := fromData(c.IterRange())
			vars := []string{c.IterVar(), c.AccuVar()}
			if c.HasIterVar2() {
				vars = append(vars, c.IterVar2())
			}
			for i, v := range vars {
				bound[v] = append(bound[v], data && i != 1)
			}
			walk(c.LoopCondition())
			walk(c.LoopStep())
			for _, v := range vars {
				bound[v] = bound[v][:len(bound[v])-1]
			}
			bound[c.AccuVar()] = append(bound[c.AccuVar()], false)
			walk(c.Result())
			bound[c.AccuVar()] = bound[c.AccuVar()][:len(bound[c.AccuVar()])-1]
		case ast.CallKind:
			c := e.AsCall()
			if c.IsMemberFunction() {
				walk(c.Target())
			}
			for _, arg := range c.Args() {
				walk(arg)
			}
		case ast.SelectKind:
			walk(e.AsSelect().Operand())
		case ast.ListKind:
			for _, el := range e.AsList().Elements() {
				walk(el)
			}
		case ast.MapKind:
			for _, en := range e.AsMap().Entries() {
				walk(en.AsMapEntry().Key())
				walk(en.AsMapEntry().Value())
			}
		case ast.StructKind:
			for _, f := range e.AsStruct().Fields() {
				walk(f.AsStructField().Value())
			}
		}
	}
	walk(a.NativeRep().Expr())
	return parts
}

func (h sizeHints) sizeOf(n checker.AstNode) checker.SizeEstimate {
	if s := n.ComputedSize(); s != nil {
		return *s
	}
	if s := h.EstimateSize(n); s != nil {
		return *s
	}
	return checker.UnknownSizeEstimate()
}

// runtimeCost charges, at run time, what CEL's own tracker undercounts:
// concatenation a unit per byte of its result, so that the cost limit also
// bounds the memory of strings an expression builds; matches the size of
// its string times its pattern's program, as estimated; a timestamp
// accessor with a time zone name timeZoneCost. It goes by the function
// and the values, not the overload: with `dyn` operands CEL picks the
// overload only at run time.
type runtimeCost struct{}

// CallCost implements interpreter.ActualCostEstimator.
func (runtimeCost) CallCost(function, _ string, args []ref.Val, result ref.Val) *uint64 {
	var n uint64
	switch function {
	case operators.Add:
		switch r := result.(type) {
		case types.String:
			n = uint64(len(r))
		case types.Bytes:
			n = uint64(len(r))
		default:
			return nil
		}
	case overloads.Matches:
		if len(args) != 2 {
			return nil
		}
		s, ok1 := args[0].(types.String)
		p, ok2 := args[1].(types.String)
		if !ok1 || !ok2 {
			return nil
		}
		prog, err := RegexProgramSize(string(p))
		if err != nil {
			// Validation refuses such a pattern; stop here if one comes.
			n = MaxCost + 1
			break
		}
		n = matchesCost(uint64(len(s)), uint64(prog))
	case overloads.TimeGetFullYear, overloads.TimeGetMonth, overloads.TimeGetDayOfYear,
		overloads.TimeGetDayOfMonth, overloads.TimeGetDate, overloads.TimeGetDayOfWeek,
		overloads.TimeGetHours, overloads.TimeGetMinutes, overloads.TimeGetSeconds, overloads.TimeGetMilliseconds:
		if len(args) != 2 {
			return nil
		}
		n = timeZoneCost
	default:
		return nil
	}
	return &n
}

// programOptions are the options of every program tasksync evaluates.
func programOptions() []cel.ProgramOption {
	return []cel.ProgramOption{
		cel.CostTracking(runtimeCost{}),
		cel.CostLimit(MaxCost),
		cel.InterruptCheckFrequency(interruptEvery),
	}
}

// Cost is the estimated worst-case cost of the checked expression a in
// scope s, with the variables as large as their sizes allow.
func (e *Envs) Cost(s Scope, a *cel.Ast) (uint64, error) {
	est, err := e.envs[s].EstimateCost(a, sizeHints{inngest: s.Inngest(), parts: elementParts(a)})
	if err != nil {
		return 0, fmt.Errorf("estimate the cost: %w", err)
	}
	return est.Max, nil
}

// FormatCost writes a cost for messages: "unbounded" when the estimate
// overflowed.
func FormatCost(c uint64) string {
	if c == math.MaxUint64 {
		return "unbounded"
	}
	return fmt.Sprint(c)
}

// Nesting is how deep comprehensions nest in a, counting only those that
// run once per iteration of another (in its condition or step), and the
// column (from 1) where the innermost one of the deepest chain opens.
func Nesting(a *cel.Ast) (depth, column int) {
	native := a.NativeRep()
	var walk func(e ast.Expr, d int)
	walk = func(e ast.Expr, d int) {
		switch e.Kind() {
		case ast.ComprehensionKind:
			c := e.AsComprehension()
			if isBind(c) {
				walk(c.AccuInit(), d)
				walk(c.Result(), d)
				return
			}
			if d+1 > depth {
				depth = d + 1
				column = native.SourceInfo().GetStartLocation(e.ID()).Column() + 1
			}
			walk(c.IterRange(), d)
			walk(c.AccuInit(), d)
			walk(c.LoopCondition(), d+1)
			walk(c.LoopStep(), d+1)
			walk(c.Result(), d)
		case ast.CallKind:
			c := e.AsCall()
			if c.IsMemberFunction() {
				walk(c.Target(), d)
			}
			for _, arg := range c.Args() {
				walk(arg, d)
			}
		case ast.SelectKind:
			walk(e.AsSelect().Operand(), d)
		case ast.ListKind:
			for _, el := range e.AsList().Elements() {
				walk(el, d)
			}
		case ast.MapKind:
			for _, en := range e.AsMap().Entries() {
				walk(en.AsMapEntry().Key(), d)
				walk(en.AsMapEntry().Value(), d)
			}
		case ast.StructKind:
			for _, f := range e.AsStruct().Fields() {
				walk(f.AsStructField().Value(), d)
			}
		}
	}
	walk(native.Expr(), 0)
	return depth, column
}

// isBind reports whether c is a cel.bind, which runs its body once. (The
// environments do not offer bind; this keeps the count right if they do.)
func isBind(c ast.ComprehensionExpr) bool {
	r := c.IterRange()
	return r.Kind() == ast.ListKind && r.AsList().Size() == 0
}
