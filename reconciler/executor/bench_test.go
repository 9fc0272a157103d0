package executor_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/executor"
	"github.com/riveredge/tasksync/reconciler/expr"
)

// reportLatency adds p50 and p99 of the samples to the benchmark.
func reportLatency(b *testing.B, samples []time.Duration) {
	slices.Sort(samples)
	if len(samples) == 0 {
		return
	}
	b.ReportMetric(float64(samples[len(samples)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(samples[len(samples)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkAPICall measures the executor's overhead on an api_call to a
// loopback server: templates, secrets, the guarded dial, capture.
func BenchmarkAPICall(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer srv.Close()
	h := newHTTP(b, mustCIDRsB(b, "127.0.0.1/32"), map[string]string{"TASKSYNC_SECRET_TOKEN": "t0k3n", "TASKSYNC_GRANT_TOKEN": "acme"})
	c := reconciler.APICall{Method: "POST", URL: srv.URL + "/run/{{ event.data.id }}", Timeout: reconciler.Duration(5 * time.Second),
		Headers: map[string]string{"Authorization": "Bearer ${secret:TOKEN}"}, Body: map[string]any{"id": "{{ event.data.id }}"}}
	vars := map[string]any{"tenant": "acme", "event": map[string]any{"data": map[string]any{"id": "e-1"}}}
	var samples []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := h.Run(context.Background(), "acme", c, expr.Task, vars); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(start))
	}
	reportLatency(b, samples)
}

// BenchmarkSandboxScript measures a trivial python_script in the sandbox:
// namespaces, limits, interpreter start, capture, clean-up.
func BenchmarkSandboxScript(b *testing.B) {
	s := sandboxB(b)
	var samples []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := s.Run(context.Background(), script("print('ok')"), nil, nil, nil); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(start))
	}
	reportLatency(b, samples)
}

// BenchmarkRedactorAdd measures registering a secret with special
// characters (all its encoded forms, and the replacer built of them), and redacting a 4 KiB text of
// several lines with it.
func BenchmarkRedactorAdd(b *testing.B) {
	text := strings.Repeat("a line of ordinary output, 0123456789 +/=\n", 100)
	b.Run("Add", func(b *testing.B) {
		for b.Loop() {
			r := &executor.Redactor{}
			r.Add("acme-s3cr3t+/=tok en-é<&>\"\\-0123")
			r.String("x") // builds the replacer
		}
	})
	b.Run("String", func(b *testing.B) {
		r := &executor.Redactor{}
		r.Add("acme-s3cr3t+/=tok en-é<&>\"\\-0123")
		r.String("")
		for b.Loop() {
			r.String(text)
		}
	})
}
