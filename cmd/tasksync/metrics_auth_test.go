package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/inngest"
	"github.com/riveredge/tasksync/reconciler/statusapi/statusapitest"
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
		ctrl := reconciler.NewController(reconciler.ControllerOptions{Registerer: promReg})
		errs := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tasksync_test_tenant_counts"}, []string{"tenant"})
		promReg.MustRegister(errs)
		errs.WithLabelValues("globex").Set(3)
		srv := httptest.NewServer(testRoutes(t, ctrl, promReg, tokensFile))
		t.Cleanup(srv.Close)
		return srv
	}
	fetch := func(url, token string) (int, string) { return statusapitest.Request(t, http.MethodGet, url, token) }
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

// TestMetricsRefuseOtherMethods: /metrics, like the status API, answers
// a method other than GET or HEAD with 405 and an Allow header, not with
// 404.
func TestMetricsRefuseOtherMethods(t *testing.T) {
	promReg := prometheus.NewRegistry()
	ctrl := reconciler.NewController(reconciler.ControllerOptions{Registerer: promReg})
	srv := httptest.NewServer(testRoutes(t, ctrl, promReg, ""))
	t.Cleanup(srv.Close)
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		req, err := http.NewRequest(method, srv.URL+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /metrics = %d (Allow %q), want 405 with Allow: GET, HEAD", method, res.StatusCode, res.Header.Get("Allow"))
		}
	}
}

// testRoutes are the daemon's routes without a store or Inngest apps.
func testRoutes(t *testing.T, ctrl *reconciler.Controller, promReg *prometheus.Registry, tokensFile string) http.Handler {
	t.Helper()
	h, err := routes(ctrl, nil, &inngest.Registry{}, promReg, tokensFile, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return h
}
