package expr_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler/expr"
)

// The expressions of the review: four nested all() over a 60-element
// event list, and three nested map() over 200 elements in a template.
const (
	fourNestedAll = "event.data.items.all(a, event.data.items.all(b, event.data.items.all(c, event.data.items.all(d, a.n + b.n + c.n + d.n >= 0))))"
	cubeMap       = "{{ event.data.ids.map(a, event.data.ids.map(b, event.data.ids.map(c, a + b + c))) }}"
)

func attackVars(items, ids int) map[string]any {
	list := make([]any, items)
	for i := range list {
		list[i] = map[string]any{"n": int64(i), "s": "abc"}
	}
	nums := make([]any, ids)
	for i := range nums {
		nums[i] = int64(i)
	}
	return map[string]any{
		"event":  map[string]any{"data": map[string]any{"items": list, "ids": nums, "big": strings.Repeat("x", expr.MaxEventBytes)}},
		"steps":  map[string]any{},
		"tenant": "acme",
	}
}

func newEnvs(t *testing.T) *expr.Envs {
	t.Helper()
	e, err := expr.NewEnvs()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestEvalStopsAtCostLimit: the expressions that kept a CPU busy for
// tens of seconds stop at the cost limit with an error naming them.
func TestEvalStopsAtCostLimit(t *testing.T) {
	e := newEnvs(t)
	vars := attackVars(60, 200)
	cases := []struct {
		name string
		run  func() (any, error)
		want string
	}{
		{"step if", func() (any, error) { return e.Eval(context.Background(), expr.Step, fourNestedAll, vars) }, "event.data.items.all(a,"},
		{"task template", func() (any, error) { return e.Render(context.Background(), expr.Task, cubeMap, vars) }, "event.data.ids.map(a,"},
		{"step template in text", func() (any, error) { return e.Render(context.Background(), expr.Step, "cube "+cubeMap, vars) }, "event.data.ids.map(a,"},
		// Concatenation is charged per byte, so strings an expression
		// builds are bounded by the cost limit too.
		{"concatenation", func() (any, error) {
			return e.Eval(context.Background(), expr.Step, "event.data.items.map(i, event.data.big + event.data.big).size()", vars)
		}, "event.data.big + event.data.big"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.run()
			if !errors.Is(err, expr.ErrCostLimit) {
				t.Fatalf("err = %v, want %v", err, expr.ErrCostLimit)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to name the expression (%q)", err, tc.want)
			}
		})
	}
}

// TestEvalInterrupted: a cancelled or expired run stops an evaluation in
// progress, with the context's error.
func TestEvalInterrupted(t *testing.T) {
	e := newEnvs(t)
	vars := attackVars(60, 200)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Eval(cancelled, expr.Step, fourNestedAll, vars); !errors.Is(err, context.Canceled) {
		t.Errorf("Eval with a cancelled context: err = %v, want %v", err, context.Canceled)
	}
	if _, err := e.Render(cancelled, expr.Task, cubeMap, vars); !errors.Is(err, context.Canceled) {
		t.Errorf("Render with a cancelled context: err = %v, want %v", err, context.Canceled)
	}
	// A deadline well before the cost limit could be reached.
	expiring, stop := context.WithTimeout(context.Background(), time.Millisecond)
	defer stop()
	if _, err := e.Eval(expiring, expr.Step, fourNestedAll, vars); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Eval past its deadline: err = %v, want %v", err, context.DeadlineExceeded)
	}
}

// TestRenderOutputBounded: rendered text and values larger than
// MaxRenderedBytes are refused, before a copy of a huge value is made.
func TestRenderOutputBounded(t *testing.T) {
	e := newEnvs(t)
	vars := attackVars(3, 0)
	ctx := context.Background()
	cases := []struct {
		name string
		run  func() (any, error)
	}{
		{"text of two large values", func() (any, error) {
			return e.Render(ctx, expr.Step, "{{ event.data.big }}{{ event.data.big }}{{ event.data.big }}", vars)
		}},
		// A list of references to one large string is cheap to build but
		// huge as text: it is measured, not formatted.
		{"list of large strings", func() (any, error) {
			return e.Render(ctx, expr.Step, "{{ event.data.items.map(i, event.data.big) }}", vars)
		}},
		{"eval of a large list", func() (any, error) {
			return e.Eval(ctx, expr.Step, "event.data.items.map(i, event.data.big)", vars)
		}},
		{"whole body", func() (any, error) {
			body := map[string]any{"a": "{{ event.data.big }}", "b": []any{"{{ event.data.big }}", "{{ event.data.big }}"}}
			return e.RenderValue(ctx, expr.Step, body, vars, nil)
		}},
		{"literal text", func() (any, error) {
			return e.RenderLiteral(ctx, expr.Step, "{{ tenant }} and more", vars, func(string) (string, error) {
				return strings.Repeat("y", expr.MaxRenderedBytes), nil
			})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.run(); !errors.Is(err, expr.ErrTooLarge) {
				t.Fatalf("err = %v, want %v", err, expr.ErrTooLarge)
			}
		})
	}
	// One large value fits.
	got, err := e.RenderValue(ctx, expr.Step, map[string]any{"a": "{{ event.data.big }}", "n": 1.0}, vars, nil)
	if err != nil {
		t.Fatalf("RenderValue of one event-sized string: %v", err)
	}
	if s := got.(map[string]any)["a"].(string); len(s) != expr.MaxEventBytes {
		t.Errorf("RenderValue: a has %d bytes, want %d", len(s), expr.MaxEventBytes)
	}
}

// TestEvalMatchesCostLimit: a regular expression is charged at run time by
// the size of the string times the size of its program, so the largest
// pattern allowed, matched against an event-sized string, stops at the
// cost limit rather than running to the end of a pass.
func TestEvalMatchesCostLimit(t *testing.T) {
	e := newEnvs(t)
	vars := attackVars(60, 0)
	vars["event"].(map[string]any)["data"].(map[string]any)["s"] = strings.Repeat("a", 500_000)
	// 98 instructions: allowed, and slow on a long string of a's.
	const pattern = "(a?){19}a{19}c"
	if n, err := expr.RegexProgramSize(pattern); err != nil || n > expr.MaxRegexInstructions {
		t.Fatalf("RegexProgramSize(%q) = %d, %v; want an allowed pattern", pattern, n, err)
	}
	for _, src := range []string{
		"event.data.s.matches('" + pattern + "')",
		"event.data.items.exists(i, event.data.s.matches('" + pattern + "'))",
	} {
		_, err := e.Eval(context.Background(), expr.Step, src, vars)
		if !errors.Is(err, expr.ErrCostLimit) {
			t.Errorf("Eval(%.50q...): err = %v, want %v", src, err, expr.ErrCostLimit)
		}
	}
	// On a short string the same pattern is cheap.
	vars["event"].(map[string]any)["data"].(map[string]any)["s"] = strings.Repeat("a", 100) + "c"
	got, err := e.Eval(context.Background(), expr.Step, "event.data.s.matches('"+pattern+"')", vars)
	if err != nil || got != true {
		t.Errorf("Eval on a short string = %v, %v; want true", got, err)
	}
}
