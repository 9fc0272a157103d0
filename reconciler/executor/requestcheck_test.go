package executor_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/expr"
)

// TestRenderedRequestChecked: what templates and secrets render into a
// header value or a URL's authority is checked again before the request
// is built: a control character in a header value, a port out of range or
// credentials in the URL fail with a clear error naming the field (never
// the value, which may be a secret), and nothing is sent.
func TestRenderedRequestChecked(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	secret := "tok\r\nX-Evil: 1"
	h := newHTTP(t, mustCIDRs(t, "127.0.0.1"), map[string]string{"TASKSYNC_SECRET_NL": secret, "TASKSYNC_GRANT_NL": "acme"})
	hostPort := strings.TrimPrefix(srv.URL, "http://")
	vars := map[string]any{"event": map[string]any{"data": map[string]any{
		"crlf": "a\r\nX-Injected: yes", "nul": "a\x00b", "port": 99999, "user": "admin:pw",
	}}}
	cases := []struct {
		name string
		call reconciler.APICall
		want string
	}{
		{"template CRLF", reconciler.APICall{URL: srv.URL, Headers: map[string]string{"X-Id": "{{ event.data.crlf }}"}}, `headers.X-Id: the rendered value holds a control character (U+000D)`},
		{"template NUL", reconciler.APICall{URL: srv.URL, Headers: map[string]string{"X-Id": "{{ event.data.nul }}"}}, `headers.X-Id: the rendered value holds a control character (U+0000)`},
		{"secret CRLF", reconciler.APICall{URL: srv.URL, Headers: map[string]string{"Authorization": "Bearer ${secret:NL}"}}, `headers.Authorization: the rendered value holds a control character (U+000D)`},
		{"port", reconciler.APICall{URL: "http://127.0.0.1:{{ event.data.port }}/"}, `url: the rendered URL has port "99999"`},
		{"credentials", reconciler.APICall{URL: "http://{{ event.data.user }}@" + hostPort + "/"}, `url: the rendered URL holds credentials`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.call.Method, tc.call.Timeout = "GET", reconciler.Duration(5*time.Second)
			before := hits.Load()
			_, err := h.Run(context.Background(), "acme", tc.call, expr.Task, vars)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want an error containing %q", err, tc.want)
			}
			for _, leak := range []string{"X-Injected", "X-Evil", "admin:pw", "tok"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error %q quotes the rendered value (%q)", err, leak)
				}
			}
			if n := hits.Load() - before; n != 0 {
				t.Errorf("the server got %d requests, want none", n)
			}
		})
	}
}
