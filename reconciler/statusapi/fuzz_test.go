package statusapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/schema"
)

// TestPathPatternsAreTheValidators: the API's rules for a tenant and a
// code are the ones definitions are validated with, so that no path
// naming a real tenant or definition is refused.
func TestPathPatternsAreTheValidators(t *testing.T) {
	if tenantPattern.String() != definitions.TenantPattern.String() {
		t.Errorf("tenant pattern %s, the loader's %s", tenantPattern, definitions.TenantPattern)
	}
	pattern, err := json.Marshal(codePattern.String())
	if err != nil {
		t.Fatal(err)
	}
	found := bytes.Contains(schema.Definition, []byte(`"code": {"type": "string", "pattern": `+string(pattern)))
	if !found {
		t.Errorf("code pattern %s is not the schema's metadata.code pattern", codePattern)
	}
}

// checkingReader is a Reader that fails the test when a string reaches
// it that the store cannot hold (not UTF-8, or with NUL), or a tenant or
// code outside their rules; it finds nothing.
type checkingReader struct{ t *testing.T }

func (c checkingReader) check(what string, vs ...string) {
	for _, v := range vs {
		if !plainText(v) {
			c.t.Errorf("%s: %q reached the store", what, v)
		}
	}
}

func (c checkingReader) names(tenant, code string) {
	if tenant != "" && !tenantPattern.MatchString(tenant) {
		c.t.Errorf("tenant %q reached the store", tenant)
	}
	if code != "" && !codePattern.MatchString(code) {
		c.t.Errorf("code %q reached the store", code)
	}
}

func (c checkingReader) LastReconcile(context.Context) (reconciler.ReconcileRecord, error) {
	return reconciler.ReconcileRecord{}, reconciler.ErrNotFound
}

func (c checkingReader) TenantStatuses(context.Context) ([]reconciler.TenantStatus, error) {
	return nil, nil
}

func (c checkingReader) ListDefinitions(_ context.Context, tenant string, f reconciler.DefinitionFilter) ([]reconciler.DefinitionSummary, error) {
	c.names(tenant, f.After)
	c.check("definitions", tenant, f.Query, f.After, string(f.Kind), f.Type, string(f.TriggerType), string(f.SyncState))
	return nil, nil
}

func (c checkingReader) Definition(_ context.Context, tenant, code string) (reconciler.DefinitionDetail, error) {
	c.names(tenant, code)
	c.check("definition", tenant, code)
	return reconciler.DefinitionDetail{}, reconciler.ErrNotFound
}

func (c checkingReader) DefinitionByUUID(_ context.Context, uuid, tenant string) (reconciler.DefinitionDetail, error) {
	c.check("definition by uuid", uuid, tenant)
	return reconciler.DefinitionDetail{}, reconciler.ErrNotFound
}

func (c checkingReader) Runs(_ context.Context, tenant, code string, _ int, _ int64) ([]reconciler.RunRecord, error) {
	c.names(tenant, code)
	c.check("runs", tenant, code)
	return nil, reconciler.ErrNotFound
}

func (c checkingReader) TenantRuns(_ context.Context, tenant string, f reconciler.RunFilter) ([]reconciler.RunRecord, error) {
	c.names(tenant, "")
	c.check("tenant runs", tenant, f.Code, string(f.Status))
	return nil, nil
}

func (c checkingReader) Run(_ context.Context, runID, tenant string) ([]reconciler.RunRecord, error) {
	c.check("run", runID, tenant)
	return nil, reconciler.ErrNotFound
}

func (c checkingReader) Problems(_ context.Context, tenant string) ([]reconciler.Problem, error) {
	c.names(tenant, "")
	c.check("problems", tenant)
	return nil, nil
}

// FuzzRequests sends any path and query string to the API: it never
// answers 5xx, and nothing the store cannot hold reaches it. Its seeds,
// the review's cases among them, run in every go test.
func FuzzRequests(f *testing.F) {
	for _, s := range [][2]string{
		{"/v1/tenants/acme/definitions", "cursor=AAAA"},
		{"/v1/tenants/acme/definitions", "cursor=abc"},
		{"/v1/tenants/acme/definitions", "cursor=eyJ4IjoxfQ"},
		{"/v1/tenants/acme/definitions", "q=%00"},
		{"/v1/tenants/acme/definitions", "q=%ff&kind=%ff"},
		{"/v1/tenants/acme/runs", "code=%ff"},
		{"/v1/tenants/acme/runs", "since=%ff&until=2026-01-01T00:00:00Z"},
		{"/v1/tenants/%ff/definitions", ""},
		{"/v1/tenants/%ff/runs", ""},
		{"/v1/tenants/%ff/errors", ""},
		{"/v1/tenants/acme/definitions/%ff", ""},
		{"/v1/tenants/acme/definitions/%00/runs", "cursor=%ff"},
		{"/v1/definitions/%ff", ""},
		{"/v1/runs/%ff", ""},
		{"/v1/status", "x=%ff"},
		{"/v1/tenants", ""},
		{"/v1/%ff", "%ff=1"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, path, query string) {
		u, err := url.ParseRequestURI(path)
		if err != nil || u.RawQuery != "" || u.Host != "" {
			return
		}
		u.RawQuery = query
		h := NewHandler(Options{Reader: checkingReader{t}})
		req := &http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}, RequestURI: u.RequestURI()}
		req = req.WithContext(context.Background())
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Errorf("GET %s = %d %s", u, rec.Code, rec.Body)
		}
	})
}
