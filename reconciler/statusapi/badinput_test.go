package statusapi_test

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
)

// TestBadInputIsTheCallersError sends, to the API over a real store, the
// paths and query strings a careless or hostile client may send: bytes
// that are not UTF-8, NUL, a cursor that is not one. Each is the caller's
// error (400 naming the parameter) or a 404 like a tenant or definition
// that does not exist: never a 500, never an ERROR line in the log.
func TestBadInputIsTheCallersError(t *testing.T) {
	var logs bytes.Buffer
	srv := fixtureLogged(t, "", slog.New(slog.NewTextHandler(&logs, nil)))

	for _, c := range []struct {
		path  string
		code  int
		param string // the parameter a 400 names
		body  string // a 404's error, as a missing one's
	}{
		{"/v1/tenants/acme/definitions?cursor=AAAA", 400, "cursor", ""},
		{"/v1/tenants/acme/definitions?cursor=abc", 400, "cursor", ""},
		{"/v1/tenants/acme/definitions?cursor=eyJ4IjoxfQ", 400, "cursor", ""},
		{"/v1/tenants/acme/definitions?cursor=%ff", 400, "cursor", ""},
		{"/v1/tenants/acme/definitions?q=%00", 400, "q", ""},
		{"/v1/tenants/acme/definitions?q=a%ffb", 400, "q", ""},
		{"/v1/tenants/acme/runs?code=%ff", 400, "code", ""},
		{"/v1/tenants/acme/runs?code=a%00", 400, "code", ""},
		{"/v1/tenants/acme/definitions/nightly/runs?cursor=%ff", 400, "cursor", ""},
		{"/v1/tenants/%ff/definitions", 404, "", "tenant not found"},
		{"/v1/tenants/%ff/runs", 404, "", "tenant not found"},
		{"/v1/tenants/%ff/errors", 404, "", "tenant not found"},
		{"/v1/tenants/a%00b/definitions", 404, "", "tenant not found"},
		{"/v1/tenants/ACME/definitions", 404, "", "tenant not found"},
		{"/v1/tenants/acme/definitions/%ff", 404, "", "definition not found"},
		{"/v1/tenants/acme/definitions/%ff/runs", 404, "", "definition not found"},
		{"/v1/tenants/%ff/definitions/nightly", 404, "", "definition not found"},
		{"/v1/tenants/acme/definitions/a%00", 404, "", "definition not found"},
	} {
		code, body := call(t, srv, "GET", c.path, "")
		if code != c.code || (c.param != "" && body["parameter"] != c.param) || (c.body != "" && body["error"] != c.body) {
			t.Errorf("%s = %d %v, want %d %q %q", c.path, code, body, c.code, c.param, c.body)
		}
		// A missing one answers the very same: the pattern leaks nothing.
		if c.code == 404 {
			missing := map[string]string{"tenant not found": "/v1/tenants/nosuch/definitions", "definition not found": "/v1/tenants/acme/definitions/nosuch"}[c.body]
			_, want := call(t, srv, "GET", missing, "")
			if _, got := call(t, srv, "GET", c.path, ""); got["error"] != want["error"] || got["status"] != want["status"] {
				t.Errorf("%s = %v, a missing one %v", c.path, got, want)
			}
		}
	}
	if logs.Len() > 0 {
		t.Errorf("bad input was logged:\n%s", logs.String())
	}

	// A valid cursor still pages.
	code, body := call(t, srv, "GET", "/v1/tenants/acme/definitions?limit=2", "")
	if code != 200 || body["next_cursor"] == nil {
		t.Fatalf("first page = %d %v", code, body)
	}
	if code, body := call(t, srv, "GET", "/v1/tenants/acme/definitions?limit=2&cursor="+body["next_cursor"].(string), ""); code != 200 || len(body["definitions"].([]any)) != 2 {
		t.Errorf("second page = %d %v", code, body)
	}
}

// TestTokenIsCheckedFirst: with tokens configured, bad input without a
// token is a 401 before anything else is said about it, and an invalid
// tenant is a tenant token's 403 like any other tenant's.
func TestTokenIsCheckedFirst(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens")
	deftest.WriteFile(t, tokens, "root-token *\nacme-token acme\n")
	srv := fixture(t, tokens)
	for _, path := range []string{"/v1/tenants/%ff/definitions", "/v1/tenants/acme/definitions?cursor=AAAA", "/v1/tenants/acme/definitions/%ff", "/v1/tenants/acme/runs?code=%ff"} {
		if code, body := call(t, srv, "GET", path, ""); code != 401 {
			t.Errorf("%s without a token = %d %v, want 401", path, code, body)
		}
	}
	if code, body := call(t, srv, "GET", "/v1/tenants/%ff/definitions", "acme-token"); code != 403 {
		t.Errorf("an invalid tenant with acme's token = %d %v, want 403", code, body)
	}
	if code, body := call(t, srv, "GET", "/v1/tenants/%ff/definitions", "root-token"); code != 404 || body["error"] != "tenant not found" {
		t.Errorf("an invalid tenant with the root token = %d %v, want 404", code, body)
	}
}
