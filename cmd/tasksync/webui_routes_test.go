package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/inngest"
)

// TestWebPageRoutes: the daemon serves the web page under /ui/, sends /
// there, keeps answering unknown paths with JSON, and refuses an Inngest
// UI URL that is not http or https.
func TestWebPageRoutes(t *testing.T) {
	promReg := prometheus.NewRegistry()
	ctrl := reconciler.NewController(reconciler.ControllerOptions{Registerer: promReg})
	srv := httptest.NewServer(testRoutes(t, ctrl, promReg, ""))
	t.Cleanup(srv.Close)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/ui/" {
		t.Errorf("GET / = %d %q, want 302 to /ui/", res.StatusCode, res.Header.Get("Location"))
	}
	res, err = c.Get(srv.URL + "/ui/static/style.css")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") || res.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("GET /ui/static/style.css = %d %v", res.StatusCode, res.Header)
	}
	if code, body := get(srv.URL + "/nothing"); code != 404 || !strings.Contains(body, `"error"`) {
		t.Errorf("GET /nothing = %d %s, want the JSON 404", code, body)
	}
	if _, err := routes(ctrl, nil, &inngest.Registry{}, promReg, "", "javascript:alert(1)", slog.New(slog.DiscardHandler)); err == nil {
		t.Errorf("routes accepted a javascript: Inngest UI URL")
	}
}

func TestInngestUIURLDefault(t *testing.T) {
	for _, tc := range []struct{ flag, dev, want string }{
		{"", "", ""},
		{"", "http://127.0.0.1:9999", "http://127.0.0.1:9999"},
		{"", "1", "http://127.0.0.1:8288"},
		{"https://app.inngest.com/env/production", "http://127.0.0.1:9999", "https://app.inngest.com/env/production"},
	} {
		o := &runOptions{inngestUI: tc.flag}
		got := o.inngestUIURL(func(k string) string {
			if k == "INNGEST_DEV" {
				return tc.dev
			}
			return ""
		})
		if got != tc.want {
			t.Errorf("inngestUIURL(flag %q, INNGEST_DEV %q) = %q, want %q", tc.flag, tc.dev, got, tc.want)
		}
	}
}
