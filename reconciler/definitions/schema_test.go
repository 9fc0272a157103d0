package definitions

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSchemaVariantsAgree: the per-kind variants the validator uses must
// accept and reject exactly the documents the whole schema does. Every
// document of the golden trees, the examples and the sample tree is
// checked both ways, and each also with its kind or type changed.
func TestSchemaVariantsAgree(t *testing.T) {
	sv, err := compileSchema()
	if err != nil {
		t.Fatal(err)
	}
	var docs []any
	for _, root := range []string{"../../cmd/tasksync/testdata/validate", "../../examples", "../../tasks.d"} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !isDefinitionFile(d.Name()) {
				return nil // unreadable or symlinked test inputs are not the point here
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			ds, _ := parseDocuments(data)
			for _, d := range ds {
				docs = append(docs, d.value)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(docs) < 100 {
		t.Fatalf("only %d documents found; the test inputs moved?", len(docs))
	}
	mutations := []func(map[string]any){
		func(map[string]any) {},
		func(m map[string]any) { m["kind"] = "Workflow" },
		func(m map[string]any) { m["kind"] = "ScheduledTask" },
		func(m map[string]any) {
			if spec, ok := m["spec"].(map[string]any); ok {
				spec["type"] = "python_script"
			}
		},
		func(m map[string]any) {
			if spec, ok := m["spec"].(map[string]any); ok {
				spec["type"] = "api_call"
			}
		},
	}
	checked := 0
	for _, d := range docs {
		for _, mutate := range mutations {
			m, ok := deepCopy(d).(map[string]any)
			if !ok {
				continue
			}
			mutate(m)
			werrs, walso := sv.compiledSchema.validate(m)
			verrs, valso := sv.validate(m)
			whole := len(werrs)+len(walso) == 0
			variant := len(verrs)+len(valso) == 0
			if whole != variant {
				t.Errorf("whole schema valid=%v, variant valid=%v for %s", whole, variant, strings.TrimSpace(describe(m)))
			}
			checked++
		}
	}
	t.Logf("%d documents checked", checked)
}
