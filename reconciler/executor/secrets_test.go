package executor_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/executor"
	"github.com/riveredge/tasksync/reconciler/expr"
)

// TestSecretsGrantedPerTenant: a tenant uses its own secrets, shared
// ones granted to it and granted environment variables, and nothing
// else; a refusal reads the same whether or not the secret exists for
// another tenant.
func TestSecretsGrantedPerTenant(t *testing.T) {
	dir := deftest.WriteTree(t, map[string]string{
		"acme/TOKEN":               "acme-token\n",
		"globex/GLOBEX_TOKEN":      "globex-token",
		"globex/TOKEN":             "globex-own-token",
		"_shared/MAPS":             "maps-key",
		"_shared/MAPS.tenants":     "# shared with\nacme, beta\tgamma\n",
		"_shared/ALL":              "all-key",
		"_shared/ALL.tenants":      "*",
		"_shared/NOBODY":           "nobody-key",
		"LEGACY":                   "global-layout",
		"acme/..data/KUBE":         "kube-value",
		"outside/ELSEWHERE":        "elsewhere",
		"acme/_shared/UNUSED.keep": "",
	})
	for link, target := range map[string]string{
		"acme/KUBE":          "..data/KUBE",            // a Kubernetes volume's link, inside
		"acme/STOLEN":        "../globex/GLOBEX_TOKEN", // another tenant's file
		"acme/ABS":           filepath.Join(dir, "outside", "ELSEWHERE"),
		"acme/SHARED_SNEAKY": "../_shared/NOBODY",
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "acme", "FIFO"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "acme", "BIG"), make([]byte, 65<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"TASKSYNC_SECRET_ENVKEY":    "env-key",
		"TASKSYNC_GRANT_ENVKEY":     "acme",
		"TASKSYNC_SECRET_UNGRANTED": "env-ungranted",
		"TASKSYNC_GRANT_NOVALUE":    "acme", // granted, its value not set here
	}
	s := executor.NewSecrets(dir, func(k string) string { return env[k] })
	cases := []struct {
		tenant, name string
		ok           bool
	}{
		{"acme", "TOKEN", true},
		{"globex", "TOKEN", true},
		{"globex", "GLOBEX_TOKEN", true},
		{"acme", "GLOBEX_TOKEN", false},
		{"evil", "GLOBEX_TOKEN", false},
		{"acme", "MAPS", true},
		{"gamma", "MAPS", true},
		{"globex", "MAPS", false},
		{"evil", "ALL", true},
		{"acme", "NOBODY", false},
		{"acme", "LEGACY", false},
		{"acme", "KUBE", true},
		{"acme", "STOLEN", false},
		{"acme", "ABS", false},
		{"acme", "SHARED_SNEAKY", false},
		{"acme", "FIFO", false},
		{"acme", "BIG", false},
		{"acme", "ENVKEY", true},
		{"globex", "ENVKEY", false},
		{"acme", "UNGRANTED", false},
		{"acme", "NOVALUE", true},
		{"globex", "NOVALUE", false},
		{"acme", "NOPE", false},
		{"_shared", "MAPS", false},
		{"../globex", "GLOBEX_TOKEN", false},
	}
	for _, tc := range cases {
		err := s.Check(tc.tenant, tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("Check(%q, %q) = %v, want ok=%v", tc.tenant, tc.name, err, tc.ok)
		}
	}
	// The refusal of a secret another tenant has is the refusal of one
	// nobody has.
	notFound := s.Check("evil", "NOPE").Error()
	for _, name := range []string{"GLOBEX_TOKEN", "NOBODY", "LEGACY", "UNGRANTED", "MAPS"} {
		got := strings.ReplaceAll(s.Check("evil", name).Error(), name, "NOPE")
		if got != notFound {
			t.Errorf("refusal of %s = %q, want the same as for a secret nobody has: %q", name, got, notFound)
		}
	}
	if !strings.Contains(notFound, "<secrets-dir>/evil/NOPE") || !strings.Contains(notFound, "NOPE.tenants") || !strings.Contains(notFound, "TASKSYNC_GRANT_NOPE") {
		t.Errorf("refusal %q does not say how to grant the secret", notFound)
	}
	names, err := s.Ungranted()
	if err != nil || fmt.Sprint(names) != "[LEGACY]" {
		t.Errorf("Ungranted() = %v, %v, want [LEGACY]", names, err)
	}
}

// echoServer answers every request with what it received, in its body
// (JSON) and headers, and records each request line.
func echoServer(t *testing.T) (*httptest.Server, *[]string) {
	t.Helper()
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		seen = append(seen, r.URL.String()+" "+fmt.Sprint(r.Header)+" "+string(body))
		echo := map[string]string{"path": r.URL.EscapedPath(), "query": r.URL.RawQuery, "header": r.Header.Get("X-S"), "body": string(body)}
		w.Header().Set("X-Query", r.URL.RawQuery)
		w.Header().Set("X-Body-B64", base64.StdEncoding.EncodeToString(body))
		w.Header().Set("X-Header", r.Header.Get("X-S"))
		switch r.URL.Path {
		case "/redirect":
			// To a refused address, carrying the original URL.
			next := "http://" + r.Host + r.URL.RequestURI()
			http.Redirect(w, r, "http://127.0.0.2:9/login?next="+url.QueryEscape(next), http.StatusFound)
			return
		case "/wrapped":
			// Line-wrapped base64 as Python's encodebytes (76, \n), PEM
			// (64, \n) and MIME (76, \r\n) write it, alone and inside
			// longer texts that move the line breaks.
			w.Header().Set("Content-Type", "text/plain")
			for _, prefix := range []string{"", "x", "xy", strings.Repeat("p", 40)} {
				enc := base64.StdEncoding.EncodeToString([]byte(prefix + r.Header.Get("X-S") + "tail"))
				for _, wrap := range []struct {
					n  int
					nl string
				}{{76, "\n"}, {64, "\n"}, {76, "\r\n"}, {64, "\r\n"}} {
					for i := 0; i < len(enc); i += wrap.n {
						fmt.Fprint(w, enc[i:min(i+wrap.n, len(enc))]+wrap.nl)
					}
					fmt.Fprint(w, wrap.nl)
				}
			}
			return
		case "/number":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"n": %s, "s": "x"}`, r.Header.Get("X-S"))
			return
		}
		if r.URL.Path == "/text" || r.URL.Path == "/fail" {
			w.Header().Set("Content-Type", "text/plain")
			if r.URL.Path == "/fail" {
				w.WriteHeader(500)
			}
			// JSON (Go's and ASCII-only) and base64 of what it was sent,
			// also inside longer texts.
			b, _ := json.Marshal(echo)
			fmt.Fprintf(w, "%s\n%s\n", b, base64.StdEncoding.EncodeToString([]byte("x"+r.Header.Get("X-S")+"y")))
			fmt.Fprintf(w, "%s %s\n", base64.URLEncoding.EncodeToString([]byte("xy"+r.Header.Get("X-S"))), hex.EncodeToString([]byte(r.Header.Get("X-S"))))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		// \u-escape everything, so that only parsing reveals the value.
		var b strings.Builder
		b.WriteString("{")
		first := true
		for k, v := range echo {
			if !first {
				b.WriteString(",")
			}
			first = false
			fmt.Fprintf(&b, "%q:\"", k)
			for _, r := range v {
				if r > 0xffff {
					r -= 0x10000
					fmt.Fprintf(&b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
				} else {
					fmt.Fprintf(&b, `\u%04x`, r)
				}
			}
			b.WriteString(`"`)
		}
		b.WriteString("}")
		fmt.Fprint(w, b.String())
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

// secretTable is secret values with the characters that change form on
// their way: percent-encoding, JSON, quoting, HTML, base64.
var secretTable = []string{
	"acme-s3cr3t+/=tok en-0123",
	"100%-real%2Fpercent-4567",
	`quote"d'single-and-8901`,
	`back\slash\n-not-newline`,
	"<tag>&amp;html-2345-6789",
	"line1\nline2\ttabbed-0000",
	"unicodé-ключ-🔑-secret",
	"prefix-secret-0001",
	"prefix-secret-0001-longer",
}

// leakForms are the forms in which a test looks for v.
func leakForms(v string) []string {
	b := []byte(v)
	forms := []string{v, url.QueryEscape(v), url.PathEscape(v), strings.ReplaceAll(url.QueryEscape(v), "+", "%20"),
		base64.RawStdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b), hex.EncodeToString(b)}
	j, _ := json.Marshal(v)
	forms = append(forms, string(j[1:len(j)-1]))
	q := fmt.Sprintf("%+q", v)
	forms = append(forms, q[1:len(q)-1])
	for _, embed := range []string{"x" + v + "y", "xy" + v} {
		forms = append(forms, base64.StdEncoding.EncodeToString([]byte(embed)), base64.URLEncoding.EncodeToString([]byte(embed)))
	}
	return forms
}

// assertNoLeak fails when any form of any secret is in what.
func assertNoLeak(t *testing.T, where string, what string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		for _, f := range leakForms(s) {
			if len(f) >= 4 && strings.Contains(what, f) {
				t.Errorf("%s holds %q (a form of secret %q):\n%s", where, f, s, what)
			}
		}
	}
}

// TestRedactionOfEncodedForms sends each secret of the table through every
// field of an api_call to a server that echoes it back in its body (JSON
// with every character \u-escaped, or text with JSON, base64 and hex
// forms) and headers, fails with it, and refuses the connection with it in
// the query: nothing that returns holds it in any form.
func TestRedactionOfEncodedForms(t *testing.T) {
	srv, _ := echoServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	for i, secret := range secretTable {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			env := map[string]string{"TASKSYNC_SECRET_S": secret, "TASKSYNC_GRANT_S": "acme"}
			all := []string{secret}
			if strings.HasPrefix(secret, "prefix-secret-0001-") {
				// A value with another secret as its prefix.
				env["TASKSYNC_SECRET_P"], env["TASKSYNC_GRANT_P"] = "prefix-secret-0001", "acme"
				all = append(all, env["TASKSYNC_SECRET_P"])
			}
			h := newHTTP(t, mustCIDRs(t, "127.0.0.1/32"), env)
			for _, path := range []string{"/json", "/text", "/fail"} {
				c := reconciler.APICall{
					Method:  "POST",
					URL:     srv.URL + path + "/${secret:S}",
					Query:   map[string]string{"q": "${secret:S}", "both": "${secret:S}-and-more"},
					Headers: map[string]string{"X-S": "${secret:S}"},
					Body:    map[string]any{"s": "${secret:S}", "list": []any{"a ${secret:S} b"}},
					Timeout: reconciler.Duration(5 * time.Second),
				}
				if len(all) > 1 {
					c.Body = map[string]any{"s": "${secret:S}", "p": "${secret:P}"}
				}
				res, err := h.Run(context.Background(), "acme", c, expr.Task, nil)
				out, _ := json.Marshal(res)
				msg := ""
				if err != nil {
					msg = err.Error()
				}
				assertNoLeak(t, path+" response and error", string(out)+"\n"+msg, all...)
				if res == nil && err == nil {
					t.Errorf("%s: no response and no error", path)
				}
			}
			// Connection refused, with the secret in the query and path.
			c := reconciler.APICall{Method: "GET", URL: closed + "/${secret:S}", Query: map[string]string{"token": "${secret:S}"}, Timeout: reconciler.Duration(5 * time.Second)}
			_, err := h.Run(context.Background(), "acme", c, expr.Task, nil)
			if err == nil {
				t.Fatal("a call to a closed port succeeded")
			}
			assertNoLeak(t, "connection error", err.Error(), all...)

			// A redirect to a refused address that carries the original
			// URL query-escaped: the secret is percent-encoded twice.
			c = reconciler.APICall{Method: "GET", URL: srv.URL + "/redirect", Query: map[string]string{"token": "${secret:S}"}, Timeout: reconciler.Duration(5 * time.Second)}
			if _, err = h.Run(context.Background(), "acme", c, expr.Task, nil); err == nil {
				t.Fatal("a redirect to 127.0.0.2 succeeded")
			}
			assertNoLeak(t, "redirect error", err.Error(), all...)
			for _, enc := range nestedForms(secret) {
				if strings.Contains(err.Error(), enc) {
					t.Errorf("redirect error holds the nested form %q:\n%s", enc, err)
				}
			}
		})
	}
	// A long value echoed as line-wrapped base64 (Python's encodebytes,
	// PEM, MIME), and a numeric value echoed as a JSON number.
	for _, secret := range []string{strings.Repeat("long+/=s3cr3t é ", 5) + "-end", "12345678901234567890"} {
		env := map[string]string{"TASKSYNC_SECRET_S": secret, "TASKSYNC_GRANT_S": "acme"}
		h := newHTTP(t, mustCIDRs(t, "127.0.0.1/32"), env)
		for _, path := range []string{"/wrapped", "/number"} {
			c := reconciler.APICall{Method: "GET", URL: srv.URL + path, Headers: map[string]string{"X-S": "${secret:S}"}, Timeout: reconciler.Duration(5 * time.Second)}
			res, err := h.Run(context.Background(), "acme", c, expr.Task, nil)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			out, _ := json.Marshal(res)
			joined := strings.NewReplacer(`\r`, "", `\n`, "", "\r", "", "\n", "").Replace(string(out))
			assertNoLeak(t, path+" response", joined, secret)
			for _, core := range base64Cores(secret) {
				if len(core) >= 16 && strings.Contains(joined, core) {
					t.Errorf("%s response holds the base64 %q of the value, once its lines are joined:\n%s", path, core, out)
				}
			}
			if path == "/number" && secret[0] == '1' && !strings.Contains(string(out), `"n":"[redacted]"`) {
				t.Errorf("%s response = %s, want the number redacted", path, out)
			}
		}
	}
}

// nestedForms are v percent-encoded twice, JSON-escaped inside percent-
// encoding and percent-encoded inside JSON escaping.
func nestedForms(v string) []string {
	j, _ := json.Marshal(v)
	js := string(j[1 : len(j)-1])
	q := url.QueryEscape(v)
	jq, _ := json.Marshal(url.PathEscape(v))
	return []string{url.QueryEscape(q), url.QueryEscape(url.PathEscape(v)), url.PathEscape(q), url.QueryEscape(js), string(jq[1 : len(jq)-1])}
}

// TestTenantCannotUseAnothersSecret: tenant evil naming globex's secret in
// any field of an api_call reaches nothing and learns nothing, and its
// python_script does not start; globex itself gets its secret.
func TestTenantCannotUseAnothersSecret(t *testing.T) {
	const value = "globex-only-s3cret"
	dir := deftest.WriteTree(t, map[string]string{"globex/GLOBEX_TOKEN": value})
	srv, seen := echoServer(t)
	envs, err := expr.NewEnvs()
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TASKSYNC_SECRET_ENV_TOKEN": value, "TASKSYNC_GRANT_ENV_TOKEN": "globex"}
	h := executor.NewHTTP(executor.NewGuard(mustCIDRs(t, "127.0.0.1/32")), envs, executor.NewSecrets(dir, func(k string) string { return env[k] }))
	actions := &executor.Actions{HTTP: h, Sandbox: sandbox(t)}
	for _, name := range []string{"GLOBEX_TOKEN", "ENV_TOKEN"} {
		ref := "${secret:" + name + "}"
		calls := map[string]reconciler.APICall{
			"url":    {Method: "GET", URL: srv.URL + "/text/" + ref},
			"query":  {Method: "GET", URL: srv.URL + "/text", Query: map[string]string{"q": ref}},
			"header": {Method: "GET", URL: srv.URL + "/text", Headers: map[string]string{"X-S": ref}},
			"body":   {Method: "POST", URL: srv.URL + "/text", Body: map[string]any{"stolen": ref}},
		}
		for field, c := range calls {
			c.Timeout = reconciler.Duration(5 * time.Second)
			out, err := actions.APICall(context.Background(), "evil", c, nil)
			if err == nil || !strings.Contains(err.Error(), `is not granted to tenant "evil"`) {
				t.Errorf("evil's %s naming %s: %v, %v; want a refusal", field, name, out, err)
			}
			if _, err := actions.APICall(context.Background(), "globex", c, nil); err != nil {
				t.Errorf("globex's own %s naming %s: %v", field, name, err)
			}
		}
		for field, py := range map[string]reconciler.PythonScript{
			"args": {Script: "print('ran')", Args: []string{ref}},
			"env":  {Script: "print('ran')", Env: map[string]string{"T": ref}},
		} {
			py.Timeout, py.MemoryMB = reconciler.Duration(20*time.Second), 128
			out, err := actions.PythonScript(context.Background(), "evil", py, nil)
			if out != nil || err == nil || !strings.Contains(err.Error(), `is not granted to tenant "evil"`) {
				t.Errorf("evil's python_script %s naming %s: %v, %v; want a refusal before it runs", field, name, out, err)
			}
		}
	}
	// evil's requests (the server saw none of evil's, only globex's) never
	// carried the value, and globex's did.
	n := 0
	for _, r := range *seen {
		if strings.Contains(r, value) {
			n++
		}
	}
	if n != len(*seen) || n != 8 {
		t.Errorf("the server saw %d requests, %d with the value; want only globex's 8:\n%s", len(*seen), n, strings.Join(*seen, "\n"))
	}
}

// TestPythonOutputRedacted runs a script that writes each secret of the
// table raw, JSON-escaped (ensure_ascii on and off), base64 (alone and
// inside a longer text), hex and percent-encoded to stdout, stderr and its
// result, then fails: none of it comes back.
func TestPythonOutputRedacted(t *testing.T) {
	envs, err := expr.NewEnvs()
	if err != nil {
		t.Fatal(err)
	}
	src := `
import base64, json, os, sys, urllib.parse
s = os.environ["S"]
b = s.encode()
forms = [s, json.dumps(s), json.dumps(s, ensure_ascii=False), base64.b64encode(b).decode(),
         base64.urlsafe_b64encode(b).decode(), base64.b64encode(b"x" + b + b"y").decode(),
         base64.b64encode(b"xy" + b).decode(), b.hex(), urllib.parse.quote_plus(s), urllib.parse.quote(s)]
for f in forms:
    print(f)
    print(f, file=sys.stderr)
print(json.dumps({"raw": s, s: 1, "forms": forms, "n": [s]}))
`
	for i, secret := range secretTable {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			env := map[string]string{"TASKSYNC_SECRET_S": secret, "TASKSYNC_GRANT_S": "acme"}
			h := executor.NewHTTP(executor.NewGuard(nil), envs, executor.NewSecrets("", func(k string) string { return env[k] }))
			actions := &executor.Actions{HTTP: h, Sandbox: sandbox(t)}
			py := script(src)
			py.Env = map[string]string{"S": "${secret:S}"}
			out, err := actions.PythonScript(context.Background(), "acme", py, nil)
			if err != nil {
				t.Fatal(err)
			}
			res := out.(*executor.ScriptResult)
			if m, ok := res.Result.(map[string]any); !ok || m["raw"] != executor.Redacted || m[executor.Redacted] != json.Number("1") {
				t.Errorf("result = %#v, want the raw value and the key redacted", res.Result)
			}
			b, _ := json.Marshal(res)
			assertNoLeak(t, "script result", string(b), secret)

			fail := script(src + "\nraise SystemExit(3)\n")
			fail.Env = py.Env
			out, err = actions.PythonScript(context.Background(), "acme", fail, nil)
			if err == nil {
				t.Fatal("a script exiting 3 succeeded")
			}
			b, _ = json.Marshal(out)
			assertNoLeak(t, "failed script's result and error", string(b)+"\n"+err.Error(), secret)
		})
	}
	// A numeric secret printed as a JSON number: parsed as a float64 it
	// would read 12345678901234567000 and pass redaction.
	env := map[string]string{"TASKSYNC_SECRET_S": "12345678901234567890", "TASKSYNC_GRANT_S": "acme"}
	h := executor.NewHTTP(executor.NewGuard(nil), envs, executor.NewSecrets("", func(k string) string { return env[k] }))
	actions := &executor.Actions{HTTP: h, Sandbox: sandbox(t)}
	py := script(`import json, os; print(json.dumps({"n": int(os.environ["S"]), "big": 98765432109876543210, "f": 1.5}))`)
	py.Env = map[string]string{"S": "${secret:S}"}
	out, err := actions.PythonScript(context.Background(), "acme", py, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(out.(*executor.ScriptResult).Result)
	if want := `{"big":98765432109876543210,"f":1.5,"n":"[redacted]"}`; string(b) != want {
		t.Errorf("numeric secret: result = %s, want %s", b, want)
	}
}

// TestRedactorForms: the forms are redacted, innocent text is not, parsed
// values are redacted key and value, a value cut short at a size limit
// or by a "..." leaves no beginning behind, and errors.Is still works.
func TestRedactorForms(t *testing.T) {
	r := &executor.Redactor{}
	r.Add("s3cret+/ value-12345")
	r.Add("987654")
	for _, tc := range []struct{ in, want string }{
		{"a s3cret+/ value-12345 b", "a [redacted] b"},
		{"q=s3cret%2B%2F+value-12345&x", "q=[redacted]&x"},
		{"q=s3cret%2b%2f%20value-12345", "q=[redacted]"},
		{"hello world, nothing to see", "hello world, nothing to see"},
		{"cut here: s3cret+/ va...", "cut here: ..."},
		{"Loading... s3c", "Loading... s3c"},
		{"ends with s3c...", "ends with s3c..."},
	} {
		if got := r.String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := r.Truncated("end: s3cret+/ va"); got != "end: " {
		t.Errorf("Truncated = %q, want the cut value removed", got)
	}
	got, _ := json.Marshal(r.Value(map[string]any{"s3cret+/ value-12345": []any{"x s3cret+/ value-12345", 987654.0, true, nil}}))
	if want := `{"[redacted]":["x [redacted]","[redacted]",true,null]}`; string(got) != want {
		t.Errorf("Value = %s, want %s", got, want)
	}
	err := r.Error(fmt.Errorf("GET https://x/?k=s3cret%%2B%%2F+value-12345: %w", executor.ErrRefused))
	if !errors.Is(err, executor.ErrRefused) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Error = %v (Is ErrRefused %v)", err, errors.Is(err, executor.ErrRefused))
	}
	var ue *url.Error
	if errors.As(r.Error(&url.Error{Op: "Get", URL: "https://x/?k=987654", Err: io.EOF}), &ue) {
		t.Errorf("errors.As reaches the unredacted *url.Error: %v", ue)
	}

	// Nested encodings: a URL carried in another URL's query, JSON in a
	// query, a percent-encoded value in JSON, JSON in JSON.
	const v = "acme-s3cr3t+/=tok en"
	r.Add(v)
	next := "http://127.0.0.1:36983/redir?token=" + url.QueryEscape(v)
	got = []byte(r.String("GET http://127.0.0.2:9/login?next=" + url.QueryEscape(next) + ": refused"))
	if want := "GET http://127.0.0.2:9/login?next=http%3A%2F%2F127.0.0.1%3A36983%2Fredir%3Ftoken%3D[redacted]: refused"; string(got) != want {
		t.Errorf("String(double-encoded) = %s, want %s", got, want)
	}
	doc, _ := json.Marshal(map[string]string{"s": v})
	docInDoc, _ := json.Marshal(string(doc))
	for _, in := range append(nestedForms(v), url.QueryEscape(string(doc)), string(docInDoc), url.PathEscape(url.PathEscape(v))) {
		if got := r.String(in); strings.Contains(got, "s3cr3t") || !strings.Contains(got, executor.Redacted) {
			t.Errorf("String(%q) = %q, want the value redacted", in, got)
		}
	}

	// Line-wrapped base64 of a long value, at every alignment: 76 and 64
	// characters a line, "\n" and "\r\n".
	long := strings.Repeat("0123456789abcdef-wrapped-", 4)
	r.Add(long)
	innocent := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("nothing secret here, ", 8)))
	for prefix := range 8 {
		enc := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("p", prefix*7) + long + "tail"))
		for _, width := range []int{76, 64} {
			for _, nl := range []string{"\n", "\r\n"} {
				in := wrapLines(enc, width, nl) + nl + wrapLines(innocent, width, nl)
				got := r.String(in)
				joined := strings.NewReplacer("\r", "", "\n", "").Replace(got)
				for _, f := range append(leakForms(long), base64Cores(long)...) {
					if strings.Contains(joined, f) {
						t.Errorf("prefix %d, %d a line, %q: the output holds %q:\n%s", prefix*7, width, nl, f, got)
					}
				}
				if !strings.Contains(got, wrapLines(innocent, width, nl)) {
					t.Errorf("prefix %d, %d a line, %q: the innocent base64 changed:\n%s", prefix*7, width, nl, got)
				}
			}
		}
	}

	// A numeric value parsed with UseNumber keeps its text.
	r.Add("12345678901234567890")
	if got := r.Value(json.Number("12345678901234567890")); got != executor.Redacted {
		t.Errorf("Value(json.Number) = %v, want %s", got, executor.Redacted)
	}
	if got := r.Value(json.Number("42")); got != json.Number("42") {
		t.Errorf("Value(json.Number(42)) = %#v, want it unchanged", got)
	}
}

// base64Cores are the base64 characters (standard alphabet) of the
// 3-byte groups wholly inside v, at each of the three alignments v may
// have in a longer encoded text.
func base64Cores(v string) []string {
	var out []string
	for skip := range 3 {
		rest := v[skip:]
		out = append(out, base64.RawStdEncoding.EncodeToString([]byte(rest[:len(rest)/3*3])))
	}
	return out
}

// wrapLines breaks s into lines of width characters ended by nl.
func wrapLines(s string, width int, nl string) string {
	var b strings.Builder
	for i := 0; i < len(s); i += width {
		b.WriteString(s[i:min(i+width, len(s))] + nl)
	}
	return b.String()
}

// TestGrantedSecretWithoutValue: a secret granted by TASKSYNC_GRANT_<NAME>
// passes validation without its value (a CI job has the grants, not the
// secrets), and a run says that the value is what is missing.
func TestGrantedSecretWithoutValue(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	h := newHTTP(t, mustCIDRs(t, "127.0.0.1"), map[string]string{"TASKSYNC_GRANT_NOVALUE": "acme"})
	call := reconciler.APICall{Method: "GET", URL: srv.URL, Headers: map[string]string{"Authorization": "Bearer ${secret:NOVALUE}"}}
	_, err := h.Run(context.Background(), "acme", call, expr.Task, nil)
	if err == nil || !strings.Contains(err.Error(), "granted to tenant \"acme\" by TASKSYNC_GRANT_NOVALUE, but TASKSYNC_SECRET_NOVALUE is not set") {
		t.Errorf("Run = %v, want the missing value named", err)
	}
}

// TestSecretsGrants: without a secrets directory, validate and plan check
// only the references whose grant variable is set (the secrets may live
// elsewhere); the daemon, and a check with a directory, check them all.
func TestSecretsGrants(t *testing.T) {
	env := map[string]string{"TASKSYNC_GRANT_LISTED": "globex"}
	getenv := func(k string) string { return env[k] }
	dir := deftest.WriteTree(t, map[string]string{"globex/OTHER": "x"})
	for _, tc := range []struct {
		name    string
		dir     string
		always  bool
		secret  string
		refused bool
	}{
		{"no directory, no grant variable", "", false, "OTHER", false},
		{"no directory, granted to another tenant", "", false, "LISTED", true},
		{"daemon without a directory", "", true, "OTHER", true},
		{"directory, another tenant's file", dir, false, "OTHER", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := executor.NewSecrets(tc.dir, getenv).Grants(tc.always)("acme", tc.secret)
			var ng *executor.NotGrantedError
			if got := errors.As(err, &ng); got != tc.refused {
				t.Errorf("Grants(%v)(acme, %s) = %v, want refused %v", tc.always, tc.secret, err, tc.refused)
			}
		})
	}
}

// TestWarnUngranted: files left at the top of the secrets directory (the
// old global layout) are named once, their values never shown; tenant
// directories, _shared and a volume's hidden entries are not named.
func TestWarnUngranted(t *testing.T) {
	dir := t.TempDir()
	deftest.WriteFile(t, filepath.Join(dir, "GLOBEX_TOKEN"), "globex-value-never-logged")
	deftest.WriteFile(t, filepath.Join(dir, "acme", "TOKEN"), "acme-value")
	deftest.WriteFile(t, filepath.Join(dir, "_shared", "MAPS"), "maps-value")
	deftest.WriteFile(t, filepath.Join(dir, "..data"), "hidden")
	var logs bytes.Buffer
	executor.NewSecrets(dir, nil).WarnUngranted(slog.New(slog.NewTextHandler(&logs, nil)))
	got := logs.String()
	if strings.Count(got, "\n") != 1 || !strings.Contains(got, "files=[GLOBEX_TOKEN]") || !strings.Contains(got, "<dir>/<tenant>/NAME") {
		t.Errorf("warning = %q, want one line naming GLOBEX_TOKEN and where to move it", got)
	}
	if strings.Contains(got, "value") {
		t.Errorf("the warning shows a secret's value: %s", got)
	}
	logs.Reset()
	executor.NewSecrets("", nil).WarnUngranted(slog.New(slog.NewTextHandler(&logs, nil)))
	if logs.Len() > 0 {
		t.Errorf("without a secrets directory: %s", logs.String())
	}
}

// TestSecretMessagesHideTheDirectory: what a tenant reads of a refused or
// unusable secret (validation problems, run errors) names the place as
// <secrets-dir>/<tenant>/NAME, never the operator's absolute path.
func TestSecretMessagesHideTheDirectory(t *testing.T) {
	dir := deftest.WriteTree(t, map[string]string{"acme/BIG": strings.Repeat("x", 100<<10)})
	if err := os.Symlink(filepath.Join(dir, "acme", "BIG"), filepath.Join(dir, "acme", "OUT_LINK")); err != nil {
		t.Fatal(err)
	}
	outside := deftest.WriteTree(t, map[string]string{"SECRET": "x"})
	if err := os.Symlink(filepath.Join(outside, "SECRET"), filepath.Join(dir, "acme", "ESCAPE")); err != nil {
		t.Fatal(err)
	}
	s := executor.NewSecrets(dir, func(string) string { return "" })
	for _, name := range []string{"MISSING", "BIG", "ESCAPE"} {
		err := s.Check("acme", name)
		if err == nil {
			t.Fatalf("Check(acme, %s) = nil, want refused", name)
		}
		if strings.Contains(err.Error(), dir) || strings.Contains(err.Error(), outside) {
			t.Errorf("Check(acme, %s) = %q, names the secrets directory", name, err)
		}
	}
	if err := s.Check("acme", "MISSING"); !strings.Contains(err.Error(), "<secrets-dir>/acme/MISSING") {
		t.Errorf("not granted: %q, want it to name <secrets-dir>/acme/MISSING", err)
	}
}

// TestRedactorPythonRepr: a secret as Python's repr writes it (a str in
// an error message, a printed list or dict: quotes and backslashes
// escaped, control characters as \xNN) is redacted too; Python itself
// writes the texts.
func TestRedactorPythonRepr(t *testing.T) {
	for _, secret := range []string{`tok'en"Zq81-Secret-Value`, `only'single-Zq82`, `back\slash"Zq83`, "ctl\x01\tZq84-é"} {
		r := &executor.Redactor{}
		r.Add(secret)
		for _, expr := range []string{"repr(s)", "str([s])", "str({'k': s})", "ascii(s)"} {
			out, err := exec.Command("/usr/bin/python3", "-I", "-c", "import sys; s = sys.argv[1]; print(ValueError('invalid literal: %s' % "+expr+"))", secret).Output()
			if err != nil {
				t.Fatal(err)
			}
			if got := r.String(string(out)); strings.Contains(got, "Zq8") {
				t.Errorf("%s of %q: %q redacts to %q", expr, secret, out, got)
			}
		}
	}
}
