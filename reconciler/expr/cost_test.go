package expr_test

import (
	"testing"

	"github.com/riveredge/tasksync/reconciler/expr"
)

func TestNesting(t *testing.T) {
	e := newEnvs(t)
	cases := []struct {
		src        string
		wantDepth  int
		wantColumn int
	}{
		{"event.data.amount > 1000", 0, 0},
		{"event.data.items.exists(i, i.n == 3)", 1, 24},
		// Chained passes run one after the other: depth 1.
		{"event.data.items.filter(i, i.n > 0).map(i, i.n).exists(n, n == 3)", 1, 55},
		{"event.data.items.exists(i, event.data.blocked.exists(b, b == i.sku))", 2, 53},
		{fourNestedAll, 4, 93},
	}
	for _, tc := range cases {
		a, iss := e.Env(expr.Step).Compile(tc.src)
		if iss.Err() != nil {
			t.Fatalf("Compile(%q): %v", tc.src, iss.Err())
		}
		depth, col := expr.Nesting(a)
		if depth != tc.wantDepth || (depth > 0 && col != tc.wantColumn) {
			t.Errorf("Nesting(%q) = %d at column %d, want %d at column %d", tc.src, depth, col, tc.wantDepth, tc.wantColumn)
		}
	}
}

func TestCost(t *testing.T) {
	e := newEnvs(t)
	cases := []struct {
		scope expr.Scope
		src   string
		ok    bool
	}{
		{expr.Trigger, "event.data.amount >= 1000 && event.data.currency == 'EUR'", true},
		{expr.Trigger, "event.data.items.exists(i, i.amount > 1000)", true},
		{expr.Wait, "async.data.parcels.exists(p, p.order_id == event.data.order_id)", true},
		{expr.Step, "event.data.items.map(i, {'sku': i.sku, 'qty': i.qty})", true},
		{expr.Step, "steps.stock.body.items.all(i, i.available)", true},
		{expr.Step, "['a', 'b'].all(x, ['a', 'b', 'c'].exists(y, x == y))", true},
		{expr.Trigger, "event.data.items.exists(i, i.memo.matches(event.data.pattern))", false},
		{expr.Step, "event.data.items.all(a, event.data.items.all(b, a.n != b.n))", false},
		{expr.Step, "steps.fetch.body.ids.map(a, steps.fetch.body.ids.map(b, [a, b]))", false},
		// Concatenation is charged per byte it copies.
		{expr.Step, "event.data.items.map(i, event.data.s + event.data.s + event.data.s)", false},
	}
	for _, tc := range cases {
		a, iss := e.Env(tc.scope).Compile(tc.src)
		if iss.Err() != nil {
			t.Fatalf("Compile(%q): %v", tc.src, iss.Err())
		}
		cost, err := e.Cost(tc.scope, a)
		if err != nil {
			t.Fatalf("Cost(%q): %v", tc.src, err)
		}
		if ok := cost <= tc.scope.CostLimit(); ok != tc.ok {
			t.Errorf("Cost(%q) = %s against a limit of %d: within = %v, want %v", tc.src, expr.FormatCost(cost), tc.scope.CostLimit(), ok, tc.ok)
		}
	}
}

// BenchmarkCompileEstimate measures what validation pays per distinct
// expression: compiling it, and compiling it with the nesting and cost
// checks.
func BenchmarkCompileEstimate(b *testing.B) {
	e, err := expr.NewEnvs()
	if err != nil {
		b.Fatal(err)
	}
	const src = "event.data.amount >= 1000 && event.data.items.exists(i, i.sku.startsWith('A-'))"
	env := e.Env(expr.Trigger)
	b.Run("compile", func(b *testing.B) {
		for b.Loop() {
			if _, iss := env.Compile(src); iss.Err() != nil {
				b.Fatal(iss.Err())
			}
		}
	})
	b.Run("compile+estimate", func(b *testing.B) {
		for b.Loop() {
			a, iss := env.Compile(src)
			if iss.Err() != nil {
				b.Fatal(iss.Err())
			}
			expr.Nesting(a)
			if _, err := e.Cost(expr.Trigger, a); err != nil {
				b.Fatal(err)
			}
		}
	})
}
