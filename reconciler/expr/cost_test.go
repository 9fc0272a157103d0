package expr_test

import (
	"strings"
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

// TestCheckMatches: no regular expression in a condition Inngest
// evaluates; elsewhere only a literal pattern with a small program, and a
// bounded total per expression.
func TestCheckMatches(t *testing.T) {
	e := newEnvs(t)
	or36 := strings.Repeat("event.data.s.matches('(a?){500}a{500}c') || ", 35) + "event.data.s.matches('(a?){500}a{500}c')"
	small := strings.Repeat("event.data.s.matches('^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$') || ", 6) + "false"
	cases := []struct {
		scope expr.Scope
		src   string
		want  string // part of the error, or "" for none
	}{
		{expr.Trigger, "event.data.s.matches('(a?){500}a{500}c')", "not allowed in a condition Inngest evaluates"},
		{expr.Trigger, "event.data.s.matches('^a')", "not allowed in a condition Inngest evaluates"},
		{expr.Wait, "matches(async.data.s, 'x')", "not allowed in a condition Inngest evaluates"},
		{expr.Step, "event.data.s.matches('(a?){500}a{500}c')", "compiles to 2503 instructions"},
		{expr.Task, "event.data.s.matches('(a?){500}a{500}c')", "compiles to 2503 instructions"},
		{expr.Step, or36, "compiles to 2503 instructions"},
		{expr.Step, small, "200"},
		{expr.Step, "event.data.s.matches(event.data.p)", "literal"},
		{expr.Step, "event.data.s.matches('a' + event.data.p)", "literal"},
		{expr.Step, "matches(event.data.s, event.data.p)", "literal"},
		{expr.Step, "event.data.s.matches('((((a{100}){100}){100}){100})')", "repeat"},
		{expr.Step, "event.data.s.matches('(')", "invalid pattern"},
		{expr.Step, "event.data.ref.matches('^[A-Z]{2}-[0-9]{1,10}$')", ""},
		{expr.Step, "event.data.id.matches('^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')", ""},
		{expr.Task, `event.data.email.matches(r'^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$')`, ""},
		{expr.Step, "event.data.memo.matches('urgent|asap') || event.data.memo.matches('(?i)refund')", ""},
		{expr.Trigger, "event.data.memo.contains('urgent')", ""},
	}
	for _, tc := range cases {
		a, iss := e.Env(tc.scope).Compile(tc.src)
		if iss.Err() != nil {
			t.Fatalf("Compile(%q): %v", tc.src, iss.Err())
		}
		err := expr.CheckMatches(tc.scope, a)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckMatches(%q) = %v, want nil", tc.src, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("CheckMatches(%q) = %v, want an error with %q", tc.src, err, tc.want)
		}
	}
}

// TestRegexProgramSize: realistic patterns fit the limit.
func TestRegexProgramSize(t *testing.T) {
	for _, p := range []string{
		`^[A-Z]{2}-[0-9]{1,10}$`,
		`^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$`,
		`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`,
		`^\+?[0-9 ()-]{7,20}$`,
		`(?i)^(refund|chargeback|dispute)`,
	} {
		n, err := expr.RegexProgramSize(p)
		if err != nil || n > expr.MaxRegexInstructions {
			t.Errorf("RegexProgramSize(%q) = %d, %v; want at most %d", p, n, err, expr.MaxRegexInstructions)
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
		// In Inngest's conditions, work on a string, list or map that is
		// not part of the element is charged by its size on every
		// iteration; work on the element's own parts is not (together the
		// elements are no larger than the event).
		{expr.Trigger, "event.data.l.exists(x, event.data.big.contains(x))", false},
		{expr.Trigger, "event.data.l.exists(x, event.data.a == event.data.b)", false},
		{expr.Trigger, "event.data.l.exists(x, event.data.a.startsWith(event.data.b))", false},
		{expr.Trigger, "event.data.l.exists(x, size(event.data.big) > x)", false},
		{expr.Trigger, "event.data.l.exists(x, event.data.m[x].contains('a'))", false},
		{expr.Trigger, "event.data.l.exists(x, event.data.l[0].contains(x))", false},
		{expr.Trigger, "event.data.l.map(y, event.data.big).exists(x, x.contains('a'))", false},
		{expr.Trigger, "event.data.l.exists(x, event.data.m[event.data.big] == x)", false},
		{expr.Trigger, "event.data.l.exists(x, timestamp(x).getHours(event.data.tz) == 1)", false},
		{expr.Wait, "async.data.l.exists(x, event.data.big.endsWith(event.data.b))", false},
		// Go compares at most the shorter operand: with the element as
		// one, a pass costs no more than the event's size.
		{expr.Wait, "async.data.l.exists(x, event.data.big.endsWith(x))", true},
		{expr.Trigger, "event.data.note.contains('urgent') && !event.data.subject.contains(event.data.tag)", true},
		{expr.Trigger, "event.data.items.exists(i, i.sku.startsWith('A-') || i.memo.contains('gift') || 'urgent' in i.tags)", true},
		{expr.Trigger, "event.data.items.exists(i, i.name == event.data.name && size(i.memo) > 3)", true},
		{expr.Trigger, "event.data.m.exists(k, k.contains('a') && event.data.m[k] == 'b')", true},
		// matches is charged by the string's size times the pattern's
		// program.
		{expr.Step, "event.data.ref.matches('^[A-Z]{2}-[0-9]{1,10}$')", true},
		{expr.Step, "steps.fetch.body.ids.exists(i, i.matches('^[A-Z]{2}-[0-9]{1,10}$'))", true},
		{expr.Step, "event.data.items.exists(i, event.data.s.matches('[a-z]{1,10}x'))", false},
		{expr.Step, "event.data.s.matches('(a?){500}a{500}c')", false},
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
