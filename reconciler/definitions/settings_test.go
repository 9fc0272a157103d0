package definitions_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
)

// TestTenantSettings: a TenantSettings document sets the tenant's prune
// budget; it is validated like every document, a tenant has at most one,
// and one in a file with a problem sets nothing (the operator's default
// applies: a mistake never loosens the budget).
func TestTenantSettings(t *testing.T) {
	v := newValidator(t)
	task := deftest.Task{Code: "report"}.String()
	settings := func(spec string) string {
		return "apiVersion: tasksync/v1\nkind: TenantSettings\nspec:\n  " + spec + "\n"
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string // the budget set, "" for none
		prob  string // a problem that must be reported, "" for none
	}{
		{name: "all", files: map[string]string{"acme/tenant.yaml": settings("maxRetire: all")}, want: "all"},
		{name: "number", files: map[string]string{"acme/tenant.yaml": settings("maxRetire: 5")}, want: "5"},
		{name: "with metadata", files: map[string]string{"acme/tenant.yaml": "apiVersion: tasksync/v1\nkind: TenantSettings\nmetadata: {tenant: acme, description: release the old reports}\nspec: {maxRetire: half}\n"}, want: "half"},
		{name: "empty spec", files: map[string]string{"acme/tenant.yaml": "apiVersion: tasksync/v1\nkind: TenantSettings\nspec: {}\n"}},
		{name: "negative", files: map[string]string{"acme/tenant.yaml": settings("maxRetire: -1")}, prob: "acme/tenant.yaml:4:"},
		{name: "word", files: map[string]string{"acme/tenant.yaml": settings("maxRetire: everything")}, prob: "acme/tenant.yaml:4:"},
		{name: "string number", files: map[string]string{"acme/tenant.yaml": settings(`maxRetire: "5"`)}, prob: "acme/tenant.yaml:4:"},
		{name: "unknown field", files: map[string]string{"acme/tenant.yaml": settings("maxRetires: all")}, prob: "acme/tenant.yaml:4:"},
		{name: "code", files: map[string]string{"acme/tenant.yaml": "apiVersion: tasksync/v1\nkind: TenantSettings\nmetadata: {code: x}\nspec: {maxRetire: all}\n"}, prob: "acme/tenant.yaml:3:"},
		{name: "other tenant", files: map[string]string{"acme/tenant.yaml": "apiVersion: tasksync/v1\nkind: TenantSettings\nmetadata: {tenant: globex}\nspec: {maxRetire: all}\n"}, prob: "globex"},
		{name: "two", files: map[string]string{"acme/a.yaml": settings("maxRetire: all"), "acme/b.yaml": settings("maxRetire: 3")}, prob: "at most one TenantSettings"},
		{name: "file with a problem", files: map[string]string{"acme/tenant.yaml": settings("maxRetire: all") + "---\napiVersion: tasksync/v1\nkind: ScheduledTask\n"}, prob: "acme/tenant.yaml:6:"},
		{name: "beside definitions", files: map[string]string{"acme/tenant.yaml": settings("maxRetire: all") + "---\n" + task}, want: "all"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, data := range tc.files {
				fsys[name] = &fstest.MapFile{Data: []byte(data)}
			}
			r := v.NewLoader(fsys, definitions.Options{}).LoadTenant("acme")
			got := ""
			if r.Settings != nil && r.Settings.MaxRetire != nil {
				got = r.Settings.MaxRetire.String()
			}
			if got != tc.want {
				t.Errorf("maxRetire = %q, want %q (problems: %s)", got, tc.want, messages(r.Problems))
			}
			switch msgs := messages(r.Problems); {
			case tc.prob == "" && msgs != "":
				t.Errorf("problems:\n%s", msgs)
			case tc.prob != "" && !strings.Contains(msgs, tc.prob):
				t.Errorf("problems:\n%s\nwant one with %q", msgs, tc.prob)
			}
			if tc.name == "beside definitions" && len(r.Definitions) != 1 {
				t.Errorf("definitions = %v, want the task beside the settings", codes(r))
			}
		})
	}
}
