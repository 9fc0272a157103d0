package executor_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/executor"
	"github.com/riveredge/tasksync/reconciler/expr"
)

// explosive is an error whose zero value panics in Error, as the Inngest
// SDK's NoRetryError does; the SDK asks errors.Is(err, explosive{}) of
// every error a run returns.
type explosive struct{ err error }

func (e explosive) Error() string { return e.err.Error() }

// TestFinalErrors: an action's error is final (reconciler.ErrNoRetry, and
// its message says it is not retried) when a retry cannot mend it: a
// template or expression failing on the event's data, a refused address,
// a request its rendered values make invalid. What may succeed later (the
// network, the remote's status, a secret not yet granted, the sandbox)
// is not. No error's chain makes errors.Is panic.
func TestFinalErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			http.NotFound(w, r)
		case "/down":
			http.Error(w, "down", http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer srv.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String() + "/"
	closed.Close()

	allowed := newHTTP(t, mustCIDRs(t, "127.0.0.1/32"), nil)
	denied := newHTTP(t, nil, nil)
	event := map[string]any{"data": map[string]any{"n": "text", "u": "not a url", "h": "a\r\nX-Injected: 1"}}
	vars := map[string]any{"event": event, "tenant": "acme"}
	body := func(b any) reconciler.APICall { c := call(srv.URL + "/ok"); c.Method, c.Body = "POST", b; return c }
	for _, tc := range []struct {
		name  string
		http  *executor.HTTP
		call  reconciler.APICall
		final bool
	}{
		{"missing key", allowed, body(map[string]any{"id": "{{ event.data.customer_id }}"}), true},
		{"wrong type", allowed, body(map[string]any{"n": "{{ event.data.n + 1 }}"}), true},
		{"url not absolute", allowed, call("{{ event.data.u }}"), true},
		{"header injection", allowed, func() reconciler.APICall {
			c := call(srv.URL + "/ok")
			c.Headers = map[string]string{"X-Id": "{{ event.data.h }}"}
			return c
		}(), true},
		{"refused address", denied, call(srv.URL + "/ok"), true},
		{"404", allowed, call(srv.URL + "/missing"), false},
		{"503", allowed, call(srv.URL + "/down"), false},
		{"connection refused", allowed, call(closedURL), false},
		{"secret not granted", allowed, func() reconciler.APICall {
			c := call(srv.URL + "/ok")
			c.Headers = map[string]string{"Authorization": "Bearer ${secret:NOPE}"}
			return c
		}(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.http.Run(context.Background(), "acme", tc.call, expr.Task, vars)
			if err == nil {
				t.Fatal("Run = nil error")
			}
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Errorf("errors.Is over %q panicked: %v", err, p)
					}
				}()
				_ = errors.Is(err, explosive{})
			}()
			if got := errors.Is(err, reconciler.ErrNoRetry); got != tc.final {
				t.Errorf("Run: %v; final = %v, want %v", err, got, tc.final)
			}
		})
	}

	// A template in a python_script's args fails before the sandbox.
	acts := &executor.Actions{HTTP: allowed, Sandbox: &executor.Sandbox{Python: "/nonexistent/python3"}}
	_, err = acts.PythonScript(context.Background(), "acme", reconciler.PythonScript{Script: "print(1)", Args: []string{"{{ event.data.customer_id }}"},
		Timeout: reconciler.Duration(time.Second)}, event)
	if !errors.Is(err, reconciler.ErrNoRetry) {
		t.Errorf("python_script with a failing template: %v, want a final error", err)
	}
	_, err = acts.PythonScript(context.Background(), "acme", reconciler.PythonScript{Script: "print(1)", Timeout: reconciler.Duration(time.Second)}, event)
	if err == nil || errors.Is(err, reconciler.ErrNoRetry) {
		t.Errorf("python_script without a sandbox: %v, want an error that is retried", err)
	}
}

// messageIs is an error whose Is compares messages, calling Error on the
// target, as CEL's error values do.
type messageIs struct{ msg string }

func (e *messageIs) Error() string        { return e.msg }
func (e *messageIs) Is(target error) bool { return target.Error() == e.msg }

// TestRedactedErrorIsByIdentity: errors.Is over a redacted error finds
// the sentinels in its chain by identity and never calls the Is of an
// error inside it, whatever that does with the target.
func TestRedactedErrorIsByIdentity(t *testing.T) {
	red := &executor.Redactor{}
	err := red.Error(reconciler.Final(fmt.Errorf("call: %w", errors.Join(&messageIs{"boom"}, executor.ErrRefused))))
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("errors.Is(redacted, explosive{}) panicked: %v", p)
			}
		}()
		if errors.Is(err, explosive{}) {
			t.Errorf("errors.Is(redacted, explosive{}) = true")
		}
	}()
	if !errors.Is(err, executor.ErrRefused) || !errors.Is(err, reconciler.ErrNoRetry) {
		t.Errorf("errors.Is(%v, ErrRefused / ErrNoRetry) = false, want true", err)
	}
	if errors.Is(err, errors.New("boom")) {
		t.Errorf("a redacted error matched another error by its message")
	}
}
