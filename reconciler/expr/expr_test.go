package expr_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/riveredge/tasksync/reconciler/expr"
)

func TestRender(t *testing.T) {
	e, err := expr.NewEnvs()
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]any{
		"event":  map[string]any{"data": map[string]any{"id": "e-1", "amount": 1500, "tags": []any{"a", "b"}}},
		"tenant": "acme",
		"steps":  map[string]any{"decision": nil, "notify": map[string]any{"status": 200}},
	}
	cases := []struct {
		in   string
		want any
	}{
		{"plain", "plain"},
		{"{{ event.data.amount }}", int64(1500)},
		{"{{ event.data.amount > 1000 }}", true},
		{"id={{ event.data.id }} for {{ tenant }}", "id=e-1 for acme"},
		{"{{ steps.decision }}", nil},
		{"{{ steps.decision == null }}", true},
		{"status {{ steps.notify.status }}", "status 200"},
		{"{{ event.data.tags }}", []any{"a", "b"}},
		{"tags {{ event.data.tags }}", `tags ["a","b"]`},
	}
	for _, tc := range cases {
		got, err := e.Render(context.Background(), expr.Step, tc.in, vars)
		if err != nil {
			t.Errorf("Render(%q): %v", tc.in, err)
			continue
		}
		if fmtAny(got) != fmtAny(tc.want) {
			t.Errorf("Render(%q) = %#v, want %#v", tc.in, got, tc.want)
		}
	}
	if _, err := e.Render(context.Background(), expr.Step, "{{ event.data.missing.x }}", vars); err == nil {
		t.Errorf("Render of a missing field: err = nil, want an evaluation error")
	}
}

func fmtAny(v any) string { return expr.Format(v) + "|" + typeName(v) }

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "nil"
	case string:
		return "string"
	case bool:
		return "bool"
	case int64:
		return "int64"
	case []any:
		return "list"
	}
	return "other"
}

func TestMapStrings(t *testing.T) {
	in := map[string]any{"a": "x", "b": []any{"y", 2.0, map[string]any{"c": "z"}}, "d": true}
	got, err := expr.MapStrings(in, func(s string) (any, error) { return s + "!", nil })
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": "x!", "b": []any{"y!", 2.0, map[string]any{"c": "z!"}}, "d": true}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if in["a"] != "x" {
		t.Fatal("the input was changed")
	}
	boom := errors.New("boom")
	if _, err := expr.MapStrings([]any{1.0, "s"}, func(string) (any, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
}
