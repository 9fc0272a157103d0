package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler/loopback"
	"github.com/riveredge/tasksync/reconciler/store"
)

// TestConnectErrorSaidOnce: a database that does not answer is reported
// in one line, once, although the driver tried twice (with TLS, then
// without).
func TestConnectErrorSaidOnce(t *testing.T) {
	addr, err := loopback.FreeAddr() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = store.Open(ctx, "postgres://tasksync:pw@"+addr+"/tasksync", store.Options{})
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || strings.Count(msg, "connection refused") != 1 {
		t.Errorf("Open = %q, want the refusal said once, on one line", msg)
	}
	if strings.Contains(msg, "pw") {
		t.Errorf("Open = %q names the password", msg)
	}
}
