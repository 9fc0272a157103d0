package definitions_test

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/riveredge/tasksync/reconciler/definitions"
)

// TestHyphenatedStepIDs: step ids may hold '-' as codes do; expressions
// read them as steps["id"], and steps.id-with-dash gets a message that
// gives the bracket form. A real subtraction after a step's field is no
// mistake.
func TestHyphenatedStepIDs(t *testing.T) {
	v := newValidator(t)
	wf := func(ifExpr string) string {
		return fmt.Sprintf(`apiVersion: tasksync/v1
kind: Workflow
metadata: {code: wf}
spec:
  trigger: {event: app/go}
  steps:
    - id: notify-manager
      api_call: {url: "https://a.example.com/"}
    - id: count
      api_call: {url: "https://a.example.com/"}
    - id: last_one
      if: %s
      api_call: {url: "https://a.example.com/"}
`, ifExpr)
	}
	for _, tc := range []struct{ expr, want string }{
		{`steps["notify-manager"].status == 200`, ""},
		{`steps.count.body.n - 1 > 0`, ""},
		{`steps.notify-manager.status == 200`, `spec.steps[2].if: expression "steps.notify-manager.status == 200" reads step "notify-manager" as steps.notify-manager, which CEL takes for a subtraction; write steps["notify-manager"], as in: steps["notify-manager"].status == 200`},
		{`steps.not-there.status == 200`, `write steps["not-there"]`},
		{`steps["last_one"].status == 200`, `refers to its own step "last_one"`},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			doc := wf("'" + tc.expr + "'")
			r := v.NewLoader(fstest.MapFS{"acme/wf.yaml": {Data: []byte(doc)}}, definitions.Options{}).LoadTenant("acme")
			got := messages(r.Problems)
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("problems = %s\nwant         %q", got, tc.want)
			}
			if tc.want == "" && (len(r.Definitions) != 1 || r.Definitions[0].Spec.Steps[0].ID != "notify-manager") {
				t.Errorf("definitions = %v, want the workflow with step notify-manager", r.Definitions)
			}
		})
	}
}
