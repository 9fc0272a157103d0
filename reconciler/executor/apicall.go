package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/expr"
)

// HTTP runs api_call actions.
type HTTP struct {
	client  *http.Client
	envs    *expr.Envs
	secrets *Secrets
}

// maxRedirects bounds the redirects an api_call follows; each is dialled
// through the guard.
const maxRedirects = 10

// NewHTTP returns an api_call runner whose every connection, redirects
// included, the guard checks. It ignores proxy environment variables: a
// proxy would dial on tasksync's behalf, past the guard.
func NewHTTP(guard *Guard, envs *expr.Envs, secrets *Secrets) *HTTP {
	tr := &http.Transport{
		DialContext:           guard.DialContext,
		Proxy:                 nil,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &HTTP{
		client: &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			// The definition's headers (and the secrets in them) are for the
			// host it names: a redirect elsewhere, or to plain http, gets
			// none of them.
			if first := via[0].URL; req.URL.Host != first.Host || (first.Scheme == "https" && req.URL.Scheme != "https") {
				for k := range req.Header {
					if k != "User-Agent" && k != "Content-Type" {
						req.Header.Del(k)
					}
				}
			}
			return nil
		}},
		envs:    envs,
		secrets: secrets,
	}
}

// Response is an api_call's result: what `steps.<id>` holds in a workflow.
type Response struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	// Body is the parsed JSON body, or the text, capped at 64 KiB.
	Body      any  `json:"body"`
	Truncated bool `json:"truncated,omitempty"`
}

// Run performs tenant's call. Templates are rendered in scope with vars;
// secret references written in the definition (not those a template
// produced) are resolved with the secrets granted to tenant. Errors and
// the response are redacted of secret values, in their encoded forms too.
func (h *HTTP) Run(ctx context.Context, tenant string, call reconciler.APICall, scope expr.Scope, vars map[string]any) (*Response, error) {
	red := &Redactor{}
	resp, err := h.run(ctx, tenant, call, scope, vars, red)
	if err != nil {
		return nil, red.Error(final(err))
	}
	return resp, nil
}

func (h *HTTP) run(ctx context.Context, tenant string, call reconciler.APICall, scope expr.Scope, vars map[string]any, red *Redactor) (*Response, error) {
	str := func(field, s string) (string, error) {
		v, err := h.render(ctx, tenant, scope, s, vars, red)
		if err != nil {
			return "", fmt.Errorf("%s: %w", field, err)
		}
		return expr.Format(v), nil
	}
	rawURL, err := str("url", call.URL)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, reconciler.Final(fmt.Errorf("url %q is not an absolute http or https URL", rawURL))
	}
	if err := checkRenderedURL(u); err != nil {
		return nil, reconciler.Final(err)
	}
	if len(call.Query) > 0 {
		q := u.Query()
		for _, k := range slices.Sorted(maps.Keys(call.Query)) {
			v, err := str("query."+k, call.Query[k])
			if err != nil {
				return nil, err
			}
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
	}
	var body io.Reader
	if call.Body != nil {
		v, err := h.envs.RenderValue(ctx, scope, call.Body, vars, func(text string) (string, error) { return h.secrets.resolve(tenant, text, red) })
		if err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, reconciler.Final(fmt.Errorf("body: %w", err))
		}
		body = bytes.NewReader(b)
	}
	timeout := time.Duration(call.Timeout)
	if timeout <= 0 {
		timeout = time.Duration(reconciler.DefaultAPICallTimeout)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, call.Method, u.String(), body)
	if err != nil {
		return nil, reconciler.Final(err)
	}
	req.Header.Set("User-Agent", "tasksync")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, k := range slices.Sorted(maps.Keys(call.Headers)) {
		v, err := str("headers."+k, call.Headers[k])
		if err != nil {
			return nil, err
		}
		if err := checkRenderedHeader(k, v); err != nil {
			return nil, reconciler.Final(err)
		}
		req.Header.Set(k, v)
	}
	res, err := h.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("%s %s: no response within %s", call.Method, u.Redacted(), timeout)
		}
		return nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, reconciler.MaxResponseCaptureBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the response: %w", call.Method, u.Redacted(), err)
	}
	out := &Response{Status: res.StatusCode, Headers: map[string]string{}}
	for k := range res.Header {
		out.Headers[red.String(strings.ToLower(k))] = red.String(res.Header.Get(k))
	}
	if len(data) > reconciler.MaxResponseCaptureBytes {
		data, out.Truncated = data[:reconciler.MaxResponseCaptureBytes], true
	}
	// The raw body is parsed first and every string in it redacted after:
	// JSON escapes (\u0073...) would otherwise carry a value past
	// redaction of the text.
	text := red.String(string(data))
	if out.Truncated {
		text = red.Truncated(text)
	}
	out.Body = text
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); !out.Truncated && (mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		if v, ok := ParseJSON(data); ok {
			out.Body = red.Value(v)
		}
	}
	if !statusOK(res.StatusCode, call.ExpectStatus) {
		want := "a 2xx status"
		if len(call.ExpectStatus) > 0 {
			want = fmt.Sprint(call.ExpectStatus)
		}
		return out, &StatusError{Status: res.StatusCode, Want: want, Body: snippet(text)}
	}
	return out, nil
}

// StatusError is a response whose status the definition did not expect.
type StatusError struct {
	Status int
	Want   string
	Body   string
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("unexpected status %d (expected %s)", e.Status, e.Want)
	}
	return fmt.Sprintf("unexpected status %d (expected %s): %s", e.Status, e.Want, e.Body)
}

func statusOK(code int, expect []int) bool {
	if len(expect) == 0 {
		return code >= 200 && code < 300
	}
	return slices.Contains(expect, code)
}

func snippet(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// render renders one string: templates in scope, and secret references in
// the literal text only, so that event data can never name a secret. The
// secrets are tenant's.
func (h *HTTP) render(ctx context.Context, tenant string, scope expr.Scope, s string, vars map[string]any, red *Redactor) (any, error) {
	return h.envs.RenderLiteral(ctx, scope, s, vars, func(text string) (string, error) { return h.secrets.resolve(tenant, text, red) })
}
