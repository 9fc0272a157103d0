package definitions_test

import (
	"slices"
	"testing"
	"testing/fstest"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
)

// FuzzLoad feeds arbitrary bytes to the loader as a definition file. It
// must never panic or hang, every problem must name the file, and a file
// that loads must load to the same hash twice. Crashers found by
// "make fuzz" are kept under testdata/fuzz/FuzzLoad as regression cases.
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{
		baseTask,
		baseWorkflow,
		baseTask + "---\n" + baseWorkflow,
		"a: &a [*a]\n",
		"a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n",
		"<<: {apiVersion: tasksync/v1}\nkind: ScheduledTask\n",
		"key: !!binary aGVsbG8=\n",
		"x: 1e400\n",
		"- [[[[[[]]]]]]\n",
		"apiVersion: tasksync/v1\nkind: Workflow\nmetadata: {code: w}\nspec: {trigger: {cron: '*/5 * * * *', jitter: 1s}, steps: [{id: a, sleep_until: 'event.ts'}]}\n",
		"\xef\xbb\xbfapiVersion: tasksync/v1\n",
		"%YAML 1.1\n---\na: b\n",
		// Regression cases from review: a merge into its own mapping once
		// overflowed the stack; "..." then directives once split wrongly.
		"a: &a\n  <<: *a\n",
		"a: &a\n  <<: *a\n  x: 1\n",
		"a: &a [x]\n<<: [*a, *a]\n",
		"a: 1\n...\n%YAML 1.1\n---\nb: 2\n",
		"- a\n- a\n]\n",
	} {
		f.Add([]byte(seed))
	}
	v, err := definitions.NewValidator()
	if err != nil {
		f.Fatal(err)
	}
	now := func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
	f.Fuzz(func(t *testing.T, data []byte) {
		files := fstest.MapFS{"acme/x.yaml": {Data: data}, "acme/scripts/job.py": {Data: []byte("print(1)\n")}}
		l := v.NewLoader(files, definitions.Options{Now: now})
		r := l.LoadTenant("acme")
		for _, p := range r.Problems {
			if p.Path != "acme/x.yaml" || p.Tenant != "acme" || p.Message == "" || p.Line < 0 || p.Column < 0 {
				t.Errorf("badly located problem: %+v", p)
			}
		}
		if !slices.IsSortedFunc(r.Problems, func(a, b reconciler.Problem) int {
			if a.Line != b.Line {
				return a.Line - b.Line
			}
			return a.Column - b.Column
		}) {
			t.Errorf("problems not sorted: %v", r.Problems)
		}
		again := l.LoadTenant("acme")
		if len(again.Definitions) != len(r.Definitions) {
			t.Fatalf("second load: %d definitions, first %d", len(again.Definitions), len(r.Definitions))
		}
		for i, d := range r.Definitions {
			if d.Hash == "" || d.Hash != again.Definitions[i].Hash {
				t.Errorf("hash of %s unstable: %q then %q", d.Metadata.Code, d.Hash, again.Definitions[i].Hash)
			}
		}
	})
}
