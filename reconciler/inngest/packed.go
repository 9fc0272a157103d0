package inngest

import (
	"fmt"

	"github.com/riveredge/tasksync/reconciler"
)

// packed is an active definition as an app keeps it: its head, what the
// registry reads without building the app (tenant, kind, code, name, hash,
// source, trigger), and its canonical document and script files, decoded
// again when the app is built. A decoded definition holds its config as
// maps and slices, a few times the size of its document: at 10,000
// tenants the apps kept about 17 KiB per tenant decoded
// (docs/benchmarks.md).
type packed struct {
	head    reconciler.Definition
	doc     []byte
	scripts map[string]string // file → content, of the python scripts it runs
}

// pack packs an active definition.
func pack(d reconciler.Definition) (packed, error) {
	doc, err := d.Canonical()
	if err != nil {
		return packed{}, fmt.Errorf("function %s: %w", d.Metadata.Code, err)
	}
	var scripts map[string]string
	keep := func(py *reconciler.PythonScript) {
		if py == nil || py.File == "" {
			return
		}
		if scripts == nil {
			scripts = map[string]string{}
		}
		scripts[py.File] = py.FileContent
	}
	if d.Spec.Config != nil {
		keep(d.Spec.Config.PythonScript)
	}
	for _, st := range d.Spec.Steps {
		keep(st.PythonScript)
	}
	head := reconciler.Definition{Tenant: d.Tenant, Kind: d.Kind, Source: d.Source, Commit: d.Commit, Hash: d.Hash,
		Metadata: reconciler.Metadata{Code: d.Metadata.Code, Name: d.Metadata.Name},
		Spec:     reconciler.Spec{Active: d.Spec.Active, Trigger: d.Spec.Trigger}}
	return packed{head: head, doc: doc, scripts: scripts}, nil
}

// unpack decodes the definition p was packed from.
func (p packed) unpack() (reconciler.Definition, error) {
	d, err := reconciler.DecodeCanonical(p.head.Tenant, p.doc, p.scripts)
	if err != nil {
		return d, fmt.Errorf("function %s: %w", p.head.Metadata.Code, err)
	}
	d.Source, d.Commit, d.Hash = p.head.Source, p.head.Commit, p.head.Hash
	return d, nil
}
