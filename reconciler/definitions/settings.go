package definitions

import (
	"encoding/json"
	"fmt"

	"github.com/riveredge/tasksync/reconciler"
)

// settingsSite is where a TenantSettings document is, and what it says
// when it is valid (nil otherwise).
type settingsSite struct {
	path      string
	line, col int
	settings  *reconciler.TenantSettings
}

// isSettings reports whether a document is a TenantSettings document.
func isSettings(v any) bool {
	return str(obj(v)["kind"]) == string(reconciler.KindTenantSettings)
}

// settingsDoc checks a TenantSettings document as every document is
// checked (the JSON Schema, then what the schema cannot say) and keeps
// it, valid or not, so that a second one in the tenant is reported.
func (t *tenantLoad) settingsDoc(path string, doc document, report func(fieldError)) {
	line, col := doc.pos("/kind", false)
	site := settingsSite{path: path, line: line, col: col}
	defer func() { t.settings = append(t.settings, site) }()
	bad := false
	// A settings document has no part that the loader checks again
	// (alsoCheckedMark): every error of the schema is reported.
	errs, also := t.l.v.schema.validate(doc.value)
	for _, fe := range append(errs, also...) {
		report(fe)
		bad = true
	}
	m := obj(doc.value)
	if tenant := str(obj(m["metadata"])["tenant"]); tenant != "" && tenant != t.res.Tenant {
		report(fieldError{pointer: "/metadata/tenant", msg: fmt.Sprintf(
			"names tenant %q, but the file is in tenant %q's directory; a tenant's settings live in its own directory", tenant, t.res.Tenant)})
		bad = true
	}
	if bad {
		return
	}
	s := &reconciler.TenantSettings{Source: reconciler.Source{Path: path, Line: doc.root.Line + doc.offset}}
	if v, ok := obj(m["spec"])["maxRetire"]; ok {
		text := str(v)
		if n, ok := v.(json.Number); ok {
			text = n.String()
		}
		b, err := reconciler.ParseRetireBudget(text)
		if err != nil { // the schema admits only what parses
			report(fieldError{pointer: "/spec/maxRetire", msg: err.Error()})
			return
		}
		s.MaxRetire = &b
	}
	site.settings = s
}

// uniqueSettings reports every TenantSettings document of a tenant that
// has more than one, at each place, naming another; otherwise it sets the
// tenant's settings from the one it has, if its file has no problem.
func (t *tenantLoad) uniqueSettings() {
	if len(t.settings) == 1 {
		if s := t.settings[0]; s.settings != nil && !t.failed[s.path] {
			t.res.Settings = s.settings
		}
		return
	}
	for i, s := range t.settings {
		other := t.settings[0]
		if i == 0 {
			other = t.settings[1]
		}
		t.problem(s.path, s.line, s.col, "", fmt.Sprintf(
			"kind: a tenant has at most one TenantSettings document, another is at %s%s:%d:%d; merge them into one",
			t.l.opts.PathPrefix, other.path, other.line, other.col))
	}
}
