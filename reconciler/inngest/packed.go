package inngest

import (
	"fmt"

	"github.com/riveredge/tasksync/reconciler"
)

// packed is an active definition as an app keeps it: what the registry
// reads without building the app (code, kind, hash, and the trigger of a
// one-shot or an interval started by fire events), and its canonical
// document and script files, decoded again when the app is built. A
// decoded definition holds its config as maps and slices, a few times the
// size of its document (docs/benchmarks.md).
type packed struct {
	code, hash, commit string
	kind               reconciler.Kind
	source             reconciler.Source
	trigger            *reconciler.Trigger // set when the registry sends its events (SendOneShots, SeedFires)
	doc                []byte
	scripts            map[string]string // file → content, of the python scripts it runs
}

// pack packs an active definition; withTrigger keeps its trigger.
func pack(d reconciler.Definition, withTrigger bool) (packed, error) {
	doc, err := d.Canonical()
	if err != nil {
		return packed{}, fmt.Errorf("function %s: %w", d.Metadata.Code, err)
	}
	p := packed{code: d.Metadata.Code, hash: d.Hash, commit: d.Commit, kind: d.Kind, source: d.Source, doc: doc}
	if withTrigger {
		t := d.Spec.Trigger
		p.trigger = &t
	}
	keep := func(py *reconciler.PythonScript) {
		if py == nil || py.File == "" {
			return
		}
		if p.scripts == nil {
			p.scripts = map[string]string{}
		}
		p.scripts[py.File] = py.FileContent
	}
	if d.Spec.Config != nil {
		keep(d.Spec.Config.PythonScript)
	}
	for _, st := range d.Spec.Steps {
		keep(st.PythonScript)
	}
	return p, nil
}

// head is the definition as the events sent for it read it: tenant, kind,
// code, hash and (when kept) trigger.
func (p packed) head(tenant string) reconciler.Definition {
	d := reconciler.Definition{Tenant: tenant, Kind: p.kind, Metadata: reconciler.Metadata{Code: p.code}, Hash: p.hash,
		Source: p.source, Commit: p.commit, Spec: reconciler.Spec{Active: true}}
	if p.trigger != nil {
		d.Spec.Trigger = *p.trigger
	}
	return d
}

// unpack decodes the definition p was packed from.
func (p packed) unpack(tenant string) (reconciler.Definition, error) {
	d, err := reconciler.DecodeCanonical(tenant, p.doc, p.scripts)
	if err != nil {
		return d, fmt.Errorf("function %s: %w", p.code, err)
	}
	d.Source, d.Commit, d.Hash = p.source, p.commit, p.hash
	return d, nil
}
