package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/riveredge/tasksync/reconciler/inngest"
)

// TestMetricsNeedATokenForEveryTenant: with a status tokens file, the
// daemon's /metrics (which carries every tenant's counts) answers 401
// without a token, 403 to a tenant's token and the page to a "*" token;
// the health endpoints stay open. Without a tokens file it stays open.
func TestMetricsNeedATokenForEveryTenant(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("all-secret *\nacme-secret acme\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	serve := func(tokensFile string) *httptest.Server {
		promReg := prometheus.NewRegistry()
		d := &daemon{o: &runOptions{tokensFile: tokensFile}, logger: slog.New(slog.DiscardHandler), reg: &inngest.Registry{}, metrics: newDaemonMetrics(promReg)}
		d.metrics.definitionErrors.WithLabelValues("globex").Set(3)
		d.ready.Store(true)
		srv := httptest.NewServer(d.routes(promReg))
		t.Cleanup(srv.Close)
		return srv
	}
	fetch := func(url, token string) (int, string) {
		t.Helper()
		req, err := http.NewRequest("GET", url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	srv := serve(tokens)
	for _, tc := range []struct {
		token string
		want  int
	}{{"", 401}, {"wrong", 401}, {"acme-secret", 403}, {"all-secret", 200}} {
		code, body := fetch(srv.URL+"/metrics", tc.token)
		if code != tc.want {
			t.Errorf("/metrics with token %q = %d, want %d: %s", tc.token, code, tc.want, body)
		}
		if leaked := strings.Contains(body, `tenant="globex"`); leaked != (tc.want == 200) {
			t.Errorf("/metrics with token %q shows globex's counts: %v, want %v", tc.token, leaked, tc.want == 200)
		}
	}
	if code, body := fetch(srv.URL+"/healthz", ""); code != 200 {
		t.Errorf("/healthz without a token = %d, want 200: %s", code, body)
	}
	if code, body := fetch(serve("").URL+"/metrics", ""); code != 200 || !strings.Contains(body, `tenant="globex"`) {
		t.Errorf("/metrics without a tokens file = %d, want the open page: %s", code, body)
	}
}
