package webui_test

import (
	"strings"
	"testing"
)

// TestBadInputIsTheAPIsAnswer: what the status API refuses as the
// caller's error (400) or does not find (404) the page answers the same,
// never with a 500.
func TestBadInputIsTheAPIsAnswer(t *testing.T) {
	srv := fixture(t, "")
	c := client(t)
	for _, tc := range []struct {
		path, want string
		code       int
	}{
		{"/ui/t/acme?cursor=AAAA", "cursor: invalid cursor", 400},
		{"/ui/t/acme?cursor=eyJ4IjoxfQ", "cursor: invalid cursor", 400},
		{"/ui/t/acme?q=%00", "q: must be UTF-8 text", 400},
		{"/ui/t/acme?q=%ff", "q: must be UTF-8 text", 400},
		{"/ui/t/acme/runs?code=%ff", "code: must be UTF-8 text", 400},
		{"/ui/t/acme/runs?code=%00", "code: must be UTF-8 text", 400},
		{"/ui/t/%ff", "tenant not found", 404},
		{"/ui/t/%ff/runs", "tenant not found", 404},
		{"/ui/t/%ff/errors", "tenant not found", 404},
		{"/ui/t/acme/d/%ff", "definition not found", 404},
		{"/ui/t/acme/d/a%00", "definition not found", 404},
		{"/ui/t/acme/d/nightly?runs_cursor=%ff", "cursor", 400},
	} {
		code, body := page(t, c, srv.URL+tc.path)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s = %d, want %d with %q\n%s", tc.path, code, tc.code, tc.want, body)
		}
	}
}
