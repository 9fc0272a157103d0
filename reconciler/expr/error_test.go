package expr_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/riveredge/tasksync/reconciler/expr"
)

// explosive is an error whose zero value panics in Error, as the
// Inngest SDK's NoRetryError does: the SDK asks errors.Is(err,
// explosive{}) of every error a function returns.
type explosive struct{ err error }

func (e explosive) Error() string { return e.err.Error() }

// TestEvalErrorsHoldNoCELError: whatever goes wrong in an evaluation,
// errors.Is over its error never reaches CEL's error values (whose Is
// calls Error on the target), and the error says which expression.
func TestEvalErrorsHoldNoCELError(t *testing.T) {
	e, err := expr.NewEnvs()
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]any{"event": map[string]any{"data": map[string]any{"n": "text", "m": map[string]any{}, "l": make([]any, 100_000)}}, "tenant": "acme"}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name, template string
		ctx            context.Context
		interrupted    bool
	}{
		{"missing key", "{{ event.data.customer_id }}", context.Background(), false},
		{"missing key in text", "id {{ event.data.customer_id }}", context.Background(), false},
		{"wrong type", "{{ event.data.n + 1 }}", context.Background(), false},
		{"division by zero", "{{ 1 / (size(event.data.m)) }}", context.Background(), false},
		{"bad template", "{{ event.data.n", context.Background(), false},
		{"interrupted", "{{ event.data.l.map(x, x * 2) }}", cancelled, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Render(tc.ctx, expr.Task, tc.template, vars)
			if err == nil {
				t.Fatalf("Render(%q) = nil error", tc.template)
			}
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Errorf("errors.Is over Render(%q)'s error panicked: %v", tc.template, p)
					}
				}()
				if errors.Is(err, explosive{}) {
					t.Errorf("Render(%q)'s error is explosive{}", tc.template)
				}
			}()
			var ee *expr.Error
			if !errors.As(err, &ee) {
				t.Fatalf("Render(%q) = %T %v, want an *expr.Error", tc.template, err, err)
			}
			if ee.Interrupted() != tc.interrupted {
				t.Errorf("Render(%q): Interrupted() = %v, want %v", tc.template, ee.Interrupted(), tc.interrupted)
			}
		})
	}
}

// TestRenderObjectIsJSON: an event field holding an object or list,
// rendered as a whole value, is plain JSON (it goes into a request body
// or an event), whatever keys it has.
func TestRenderObjectIsJSON(t *testing.T) {
	e, err := expr.NewEnvs()
	if err != nil {
		t.Fatal(err)
	}
	data := map[string]any{"o": map[string]any{"a": 1.0, "b": []any{map[string]any{"c": nil}}}}
	vars := map[string]any{"event": map[string]any{"data": data}, "tenant": "acme"}
	for _, tc := range []struct{ template, want string }{
		{"{{ event.data.o }}", `{"a":1,"b":[{"c":null}]}`},
		{"{{ event.data }}", `{"o":{"a":1,"b":[{"c":null}]}}`},
		{"{{ {1: 'x', true: [{'k': 2}]} }}", `{"1":"x","true":[{"k":2}]}`},
		{"o={{ event.data.o }}", `"o={\"a\":1,\"b\":[{\"c\":null}]}"`},
	} {
		v, err := e.Render(context.Background(), expr.Task, tc.template, vars)
		if err != nil {
			t.Fatalf("Render(%q): %v", tc.template, err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("Render(%q) = %#v, which is not JSON: %v", tc.template, v, err)
		}
		if string(b) != tc.want {
			t.Errorf("Render(%q) = %s, want %s", tc.template, b, tc.want)
		}
	}
}
