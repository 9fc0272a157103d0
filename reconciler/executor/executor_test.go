package executor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/executor"
	"github.com/riveredge/tasksync/reconciler/expr"
)

// TestGuardTable judges addresses without connecting anywhere.
func TestGuardTable(t *testing.T) {
	g := executor.NewGuard(mustCIDRs(t, "10.1.2.0/24", "fd00:1234::/32"))
	cases := []struct {
		addr    string
		allowed bool
	}{
		{"127.0.0.1", false},
		{"127.255.255.254", false},
		{"::1", false},
		{"10.0.0.1", false},
		{"10.1.2.3", true}, // inside --allow-cidr
		{"172.16.0.1", false},
		{"172.31.255.255", false},
		{"172.32.0.1", true},
		{"192.168.1.1", false},
		{"169.254.169.254", false}, // AWS, GCP, Azure metadata
		{"169.254.170.2", false},   // ECS task metadata
		{"100.100.100.200", false}, // Alibaba metadata (CGNAT range)
		{"100.64.0.1", false},
		{"fd00:ec2::254", false}, // AWS IPv6 metadata
		{"fd00:1234::1", true},   // inside --allow-cidr
		{"fe80::1", false},
		{"224.0.0.1", false},
		{"ff02::1", false},
		{"0.0.0.0", false},
		{"::", false},
		{"255.255.255.255", false},
		{"::ffff:127.0.0.1", false}, // IPv4-mapped loopback
		{"::ffff:169.254.169.254", false},
		{"::ffff:10.1.2.3", true},     // IPv4-mapped form of an allowed address
		{"64:ff9b::a9fe:a9fe", false}, // NAT64 form of 169.254.169.254
		{"8.8.8.8", true},
		{"93.184.216.34", true},
		{"2606:4700:4700::1111", true},
	}
	for _, tc := range cases {
		err := g.Check(netip.MustParseAddr(tc.addr))
		if got := err == nil; got != tc.allowed {
			t.Errorf("Check(%s) = %v, want allowed=%v", tc.addr, err, tc.allowed)
		}
		if err != nil && !errors.Is(err, executor.ErrRefused) {
			t.Errorf("Check(%s) = %v, want ErrRefused", tc.addr, err)
		}
	}
}

// TestGuardTunnelsNeedTheirOwnAddress: --allow-cidr naming an IPv4
// address allows its IPv4-mapped and NAT64 forms (which reach exactly it),
// but not a 6to4, Teredo, ISATAP, IPv4-compatible or IPv4-translated
// address carrying it: those reach a relay or a host of the IPv6 network,
// so the IPv6 address itself must be named.
func TestGuardTunnelsNeedTheirOwnAddress(t *testing.T) {
	byV4 := executor.NewGuard(mustCIDRs(t, "127.0.0.1/32", "10.9.8.7/32"))
	for _, tc := range []struct {
		addr    string
		allowed bool
	}{
		{"::ffff:127.0.0.1", true},             // IPv4-mapped
		{"64:ff9b::7f00:1", true},              // NAT64
		{"2002:7f00:1::1", false},              // 6to4
		{"2002:a09:807::1", false},             // 6to4 of 10.9.8.7
		{"2001:0:7f00:1::1", false},            // Teredo server 127.0.0.1
		{"2001:0:4136:e378::80ff:fffe", false}, // Teredo client 127.0.0.1 (inverted)
		{"2606:4700::5efe:7f00:1", false},      // ISATAP
		{"::ffff:0:7f00:1", false},             // IPv4-translated
		{"::7f00:1", false},                    // IPv4-compatible
	} {
		if err := byV4.Check(netip.MustParseAddr(tc.addr)); (err == nil) != tc.allowed {
			t.Errorf("allow 127.0.0.1: Check(%s) = %v, want allowed=%v", tc.addr, err, tc.allowed)
		}
	}
	byV6 := executor.NewGuard(mustCIDRs(t, "2002:7f00:1::/48", "2001:0:7f00:1::/64", "2606:4700::5efe:7f00:1/128"))
	for _, a := range []string{"2002:7f00:1::1", "2001:0:7f00:1::1", "2606:4700::5efe:7f00:1"} {
		if err := byV6.Check(netip.MustParseAddr(a)); err != nil {
			t.Errorf("allow the IPv6 networks: Check(%s) = %v, want allowed", a, err)
		}
	}
}

func mustCIDRs(t *testing.T, s ...string) []netip.Prefix { return mustCIDRsB(t, s...) }

func mustCIDRsB(t testing.TB, s ...string) []netip.Prefix {
	t.Helper()
	p, err := executor.ParseCIDRs(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newHTTP(t testing.TB, allow []netip.Prefix, env map[string]string) *executor.HTTP {
	t.Helper()
	envs, err := expr.NewEnvs()
	if err != nil {
		t.Fatal(err)
	}
	return executor.NewHTTP(executor.NewGuard(allow), envs, executor.NewSecrets("", func(k string) string { return env[k] }))
}

func call(url string) reconciler.APICall {
	return reconciler.APICall{Method: "GET", URL: url, Timeout: reconciler.Duration(5 * time.Second)}
}

// TestAPICallGuardedAtConnect: loopback servers are refused by default, by
// address and by name (the check runs on the resolved address), and on a
// redirect; --allow-cidr opens exactly what it names.
func TestAPICallGuardedAtConnect(t *testing.T) {
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	ctx := context.Background()

	denied := newHTTP(t, nil, nil)
	for _, u := range []string{srv.URL, fmt.Sprintf("http://localhost:%d/", port), fmt.Sprintf("http://[::ffff:127.0.0.1]:%d/", port)} {
		if _, err := denied.Run(ctx, "acme", call(u), expr.Task, nil); !errors.Is(err, executor.ErrRefused) {
			t.Errorf("GET %s without allow-cidr: err = %v, want ErrRefused", u, err)
		}
	}
	if hits != 0 {
		t.Fatalf("the server was reached %d times despite the guard", hits)
	}

	allowed := newHTTP(t, mustCIDRs(t, "127.0.0.1/32"), nil)
	res, err := allowed.Run(ctx, "acme", call(srv.URL+"/"), expr.Task, nil)
	if err != nil || res.Status != 200 || res.Body != "ok" {
		t.Fatalf("GET with 127.0.0.1/32 allowed: %+v, %v", res, err)
	}
	// A redirect to another loopback address, not allowed, is refused at
	// connect time.
	to := fmt.Sprintf("http://127.0.0.2:%d/", port)
	if _, err := allowed.Run(ctx, "acme", call(srv.URL+"/redirect?to="+to), expr.Task, nil); !errors.Is(err, executor.ErrRefused) {
		t.Errorf("redirect to %s: err = %v, want ErrRefused", to, err)
	}
}

// TestAPICallRequest: method, headers, query, JSON body with templates and
// secrets, expect_status, capture limit, and secrets redacted from errors.
func TestAPICallRequest(t *testing.T) {
	const secret = "tok-9f8e7d6c5b4a"
	var got *http.Request
	var gotBody string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		switch r.URL.Path {
		case "/big":
			w.Write([]byte(strings.Repeat("x", 70<<10)))
		case "/fail":
			w.WriteHeader(500)
			fmt.Fprintf(w, "bad token %s", r.Header.Get("Authorization"))
		default:
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"ok": true, "n": 2}`)
		}
	}))
	defer srv.Close()
	h := newHTTP(t, mustCIDRs(t, "127.0.0.1"), map[string]string{"TASKSYNC_SECRET_TOKEN": secret, "TASKSYNC_GRANT_TOKEN": "acme"})
	vars := map[string]any{"tenant": "acme", "event": map[string]any{"data": map[string]any{"id": "e-7", "amount": 1200, "evil": "${secret:TOKEN}"}}}
	c := reconciler.APICall{
		Method:  "POST",
		URL:     srv.URL + "/run/{{ event.data.id }}",
		Headers: map[string]string{"Authorization": "Bearer ${secret:TOKEN}", "X-Tenant": "{{ tenant }}"},
		Query:   map[string]string{"tenant": "{{ tenant }}"},
		Body:    map[string]any{"amount": "{{ event.data.amount }}", "note": "{{ event.data.evil }}", "literal": "$${secret:TOKEN}"},
		Timeout: reconciler.Duration(5 * time.Second),
	}
	res, err := h.Run(context.Background(), "acme", c, expr.Task, vars)
	if err != nil {
		t.Fatal(err)
	}
	if got.Method != "POST" || got.URL.Path != "/run/e-7" || got.URL.Query().Get("tenant") != "acme" ||
		got.Header.Get("Authorization") != "Bearer "+secret || got.Header.Get("X-Tenant") != "acme" ||
		got.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request = %s %s %v", got.Method, got.URL, got.Header)
	}
	if want := `{"amount":1200,"literal":"${secret:TOKEN}","note":"${secret:TOKEN}"}`; gotBody != want {
		t.Errorf("body = %s, want %s (a template never resolves a secret)", gotBody, want)
	}
	if m, ok := res.Body.(map[string]any); !ok || m["ok"] != true {
		t.Errorf("response body = %#v, want parsed JSON", res.Body)
	}

	big, err := h.Run(context.Background(), "acme", call(srv.URL+"/big"), expr.Task, nil)
	if err != nil || !big.Truncated || len(big.Body.(string)) != reconciler.MaxResponseCaptureBytes {
		t.Errorf("big response: truncated=%v len=%d err=%v", big.Truncated, len(big.Body.(string)), err)
	}

	fail := c
	fail.URL = srv.URL + "/fail?key=${secret:TOKEN}"
	_, err = h.Run(context.Background(), "acme", fail, expr.Task, vars)
	var se *executor.StatusError
	if !errors.As(err, &se) || se.Status != 500 {
		t.Fatalf("failing call: err = %v, want a StatusError 500", err)
	}
	if strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), executor.Redacted) {
		t.Errorf("error leaks the secret or was not redacted: %v", err)
	}

	missing := c
	missing.Headers = map[string]string{"Authorization": "${secret:NOPE}"}
	if _, err := h.Run(context.Background(), "acme", missing, expr.Task, vars); err == nil || !strings.Contains(err.Error(), "TASKSYNC_SECRET_NOPE") {
		t.Errorf("missing secret: err = %v, want one naming TASKSYNC_SECRET_NOPE", err)
	}

	expect := call(srv.URL + "/")
	expect.ExpectStatus = []int{201}
	if _, err := h.Run(context.Background(), "acme", expect, expr.Task, nil); !errors.As(err, &se) || se.Want != "[201]" {
		t.Errorf("expect_status 201 on a 200: err = %v", err)
	}
}

func TestAPICallTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	h := newHTTP(t, mustCIDRs(t, "127.0.0.1"), nil)
	c := call(srv.URL)
	c.Timeout = reconciler.Duration(200 * time.Millisecond)
	start := time.Now()
	_, err := h.Run(context.Background(), "acme", c, expr.Task, nil)
	if err == nil || !strings.Contains(err.Error(), "no response within 200ms") {
		t.Errorf("err = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the timeout took %v", d)
	}
}

// TestDNSServer: with a DNS server set, names are resolved there and
// nowhere else (here a loopback port where nothing answers).
func TestDNSServer(t *testing.T) {
	envs, _ := expr.NewEnvs()
	g := executor.NewGuard(nil)
	g.UseDNSServer("127.0.0.1:1")
	h := executor.NewHTTP(g, envs, executor.NewSecrets("", func(string) string { return "" }))
	_, err := h.Run(context.Background(), "acme", call("https://tasksync-test.invalid/"), expr.Task, nil)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("err = %v, want a lookup through 127.0.0.1:1", err)
	}
}

// TestRedirectsCarryNoSecrets: a redirect to another host gets none of the
// definition's headers, and secret values echoed in response headers are
// redacted.
func TestRedirectsCarryNoSecrets(t *testing.T) {
	const secret = "hdr-s3cret"
	var gotKey string
	other, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	otherSrv := &httptest.Server{Listener: other, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotKey = r.Header.Get("X-Api-Key")
		w.Header().Set("X-Echo", r.Header.Get("X-Api-Key"))
		fmt.Fprint(w, "landed")
	})}}
	otherSrv.Start()
	defer otherSrv.Close()
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/echo" {
			w.Header().Set("X-Echo", r.Header.Get("X-Api-Key"))
			return
		}
		http.Redirect(w, r, otherSrv.URL+"/", http.StatusFound)
	}))
	defer first.Close()
	h := newHTTP(t, mustCIDRs(t, "127.0.0.0/8"), map[string]string{"TASKSYNC_SECRET_KEY": secret, "TASKSYNC_GRANT_KEY": "acme"})
	c := call(first.URL + "/go")
	c.Headers = map[string]string{"X-Api-Key": "${secret:KEY}"}
	res, err := h.Run(context.Background(), "acme", c, expr.Task, nil)
	if err != nil || res.Body != "landed" {
		t.Fatalf("redirected call: %+v %v", res, err)
	}
	if gotKey != "" {
		t.Errorf("the other host received the definition's header: %q", gotKey)
	}
	c.URL = first.URL + "/echo"
	res, err = h.Run(context.Background(), "acme", c, expr.Task, nil)
	if err != nil || res.Headers["x-echo"] != executor.Redacted {
		t.Errorf("echoed header = %q (%v), want it redacted", res.Headers["x-echo"], err)
	}
}
