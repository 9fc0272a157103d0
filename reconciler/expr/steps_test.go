package expr_test

import (
	"testing"

	"github.com/riveredge/tasksync/reconciler/expr"
)

func TestStepRefs(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{"notify_manager", "steps.notify_manager"},
		{"notify-manager", `steps["notify-manager"]`},
		{"a-b-c", `steps["a-b-c"]`},
	} {
		if got := expr.StepRef(tc.id); got != tc.want {
			t.Errorf("StepRef(%q) = %s, want %s", tc.id, got, tc.want)
		}
	}
	for _, tc := range []struct{ src, id, rewritten string }{
		{"steps.notify-manager.status == 200", "notify-manager", `steps["notify-manager"].status == 200`},
		{"steps.a-b.x + steps.c-d-e.y", "a-b", `steps["a-b"].x + steps["c-d-e"].y`},
		{"steps.count - 1 > 0", "", "steps.count - 1 > 0"}, // a subtraction, spaced
		{`steps["notify-manager"].status`, "", `steps["notify-manager"].status`},
		{"mysteps.a-b", "", "mysteps.a-b"},
	} {
		if got := expr.DottedStepRef(tc.src); got != tc.id {
			t.Errorf("DottedStepRef(%q) = %q, want %q", tc.src, got, tc.id)
		}
		if got := expr.BracketStepRefs(tc.src); got != tc.rewritten {
			t.Errorf("BracketStepRefs(%q) = %s, want %s", tc.src, got, tc.rewritten)
		}
	}
}
