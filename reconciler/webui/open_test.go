package webui_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestOpenDaemonHasNoSignIn: when the status API takes no token, the page
// says it is open and offers no sign-in or out, and the sign-in form's
// POST signs nobody in: it sets no cookie, whatever is sent.
func TestOpenDaemonHasNoSignIn(t *testing.T) {
	srv := fixture(t, "")
	c := client(t)
	code, body := page(t, c, srv.URL+"/ui/")
	if code != 200 || !strings.Contains(body, "no status tokens are configured") || strings.Contains(body, "Sign in") || strings.Contains(body, "Sign out") {
		t.Errorf("open overview = %d\n%s", code, body)
	}
	res := signIn(t, c, srv.URL, "anything at all")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/ui/" || len(res.Cookies()) > 0 {
		t.Errorf("open sign-in = %d %q, cookies %v", res.StatusCode, res.Header.Get("Location"), res.Cookies())
	}
	if code, body := page(t, c, srv.URL+"/ui/"); strings.Contains(body, "Sign out") || code != 200 {
		t.Errorf("after a sign-in POST the open overview = %d\n%s", code, body)
	}
	if res, _ := fetch(t, c, http.MethodGet, srv.URL+"/ui/login", nil, nil); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/ui/" {
		t.Errorf("open sign-in form = %d %q", res.StatusCode, res.Header.Get("Location"))
	}

	// With tokens the page still signs in and out.
	closed := fixture(t, "root-token *\n")
	c = client(t)
	if code, body := page(t, c, closed.URL+"/ui/"); code != 401 || !strings.Contains(body, "Sign in") || strings.Contains(body, "no status tokens") {
		t.Errorf("closed overview = %d\n%s", code, body)
	}
	if res := signIn(t, c, closed.URL, "root-token"); res.StatusCode != http.StatusSeeOther || len(res.Cookies()) != 1 {
		t.Errorf("closed sign-in = %d, cookies %v", res.StatusCode, res.Cookies())
	}
	if code, body := page(t, c, closed.URL+"/ui/"); code != 200 || !strings.Contains(body, "Sign out") {
		t.Errorf("signed-in overview = %d\n%s", code, body)
	}
}
