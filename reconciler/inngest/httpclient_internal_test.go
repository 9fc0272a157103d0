package inngest

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestReadBodiesReturnsConnections: callers that never close a response
// body (as the SDK does on some paths) hold no connection; the client
// reuses a handful, within its bounds.
func TestReadBodiesReturnsConnections(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"ok":true}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	client := withReadBodies(newHTTPClient())
	const requests = 50
	for range requests {
		res, err := client.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status %d", res.StatusCode)
		}
		// The body is neither read nor closed, on purpose.
	}
	if n := conns.Load(); n > 1 {
		t.Errorf("%d requests whose bodies were never closed opened %d connections, want 1", requests, n)
	}
}
