package expr

import (
	"fmt"
	"math"

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
// value and a comma), a string at most as many characters.
type sizeHints struct{}

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

// EstimateCallCost implements checker.CostEstimator. Comparisons and
// substring tests count as one operation: Go runs them at memory speed,
// where CEL's default estimate charges a tenth per character, which
// would refuse any test of an element's field in a pass over a list.
// Concatenation counts a unit per byte it copies, as at run time.
func (h sizeHints) EstimateCallCost(function, overloadID string, target *checker.AstNode, args []checker.AstNode) *checker.CallEstimate {
	switch overloadID {
	case overloads.Equals, overloads.NotEquals,
		overloads.LessString, overloads.LessEqualsString, overloads.GreaterString, overloads.GreaterEqualsString,
		overloads.LessBytes, overloads.LessEqualsBytes, overloads.GreaterBytes, overloads.GreaterEqualsBytes,
		overloads.StartsWithString, overloads.EndsWithString, overloads.ContainsString:
		return &checker.CallEstimate{CostEstimate: checker.FixedCostEstimate(1)}
	case overloads.AddString, overloads.AddBytes:
		if len(args) != 2 {
			return nil
		}
		size := h.sizeOf(args[0]).Add(h.sizeOf(args[1]))
		return &checker.CallEstimate{CostEstimate: size.AsCost(), ResultSize: &size}
	}
	return nil
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

// concatCost charges concatenation a unit per byte of its result, so that
// the cost limit also bounds the memory of strings an expression builds.
// It goes by the function and the result, not the overload: with `dyn`
// operands CEL picks the overload only at run time.
type concatCost struct{}

// CallCost implements interpreter.ActualCostEstimator.
func (concatCost) CallCost(function, _ string, _ []ref.Val, result ref.Val) *uint64 {
	if function != operators.Add {
		return nil
	}
	var n uint64
	switch r := result.(type) {
	case types.String:
		n = uint64(len(r))
	case types.Bytes:
		n = uint64(len(r))
	default:
		return nil
	}
	return &n
}

// programOptions are the options of every program tasksync evaluates.
func programOptions() []cel.ProgramOption {
	return []cel.ProgramOption{
		cel.CostTracking(concatCost{}),
		cel.CostLimit(MaxCost),
		cel.InterruptCheckFrequency(interruptEvery),
	}
}

// Cost is the estimated worst-case cost of the checked expression a in
// scope s, with the variables as large as their sizes allow.
func (e *Envs) Cost(s Scope, a *cel.Ast) (uint64, error) {
	est, err := e.envs[s].EstimateCost(a, sizeHints{})
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
