package definitions_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
)

// BenchmarkValidate loads and validates the whole tree, in parallel, as
// "tasksync validate" does.
func BenchmarkValidate(b *testing.B) {
	dir := deftest.BenchTree(b, 200)
	v, err := definitions.NewValidator()
	if err != nil {
		b.Fatal(err)
	}
	var defs int
	for b.Loop() {
		defs = 0
		l := v.NewLoader(os.DirFS(dir), definitions.Options{})
		top, err := l.LoadAll(context.Background(), func(r *reconciler.TenantTree) {
			defs += len(r.Definitions)
			if len(r.Problems) > 0 {
				b.Fatalf("unexpected problem: %v", r.Problems[0])
			}
		})
		if err != nil || len(top) > 0 {
			b.Fatalf("LoadAll: %v %v", top, err)
		}
	}
	b.ReportMetric(float64(defs), "defs/op")
}

// BenchmarkYAMLDecodeFloor is the floor BenchmarkValidate is measured
// against: one goroutine that reads every definition file of the tree and
// merely decodes its YAML documents into yaml.Node trees with yaml.v3.
func BenchmarkYAMLDecodeFloor(b *testing.B) {
	dir := deftest.BenchTree(b, 200)
	var docs int
	for b.Loop() {
		docs = 0
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || filepath.Ext(path) != ".yaml" {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			dec := yaml.NewDecoder(bytes.NewReader(data))
			for {
				var n yaml.Node
				if err := dec.Decode(&n); errors.Is(err, io.EOF) {
					return nil
				} else if err != nil {
					return err
				}
				docs++
			}
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(docs), "docs/op")
}
