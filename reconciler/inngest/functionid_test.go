package inngest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// ranRunner records which tenant's definition ran.
type ranRunner struct {
	mu  sync.Mutex
	ran map[string]int // tenant/code → runs
}

func (r *ranRunner) Run(_ context.Context, tenant string, d reconciler.Definition, _ reconciler.RunInput) (any, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ran[tenant+"/"+d.Metadata.Code]++
	return map[string]any{"ok": true}, nil
}

func (r *ranRunner) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ran[key]
}

func (*ranRunner) StepActions() reconciler.Actions { return nil }

func (*ranRunner) RunRecords() reconciler.RunRecorder { return nil }

// TestFunctionIDsDoNotCollide: tenant a with code b-c and tenant a-b with
// code c once shared the function id <prefix>-a-b-c. Against the real dev
// server both register under ids of their own, and an event for each runs
// its own function.
func TestFunctionIDsDoNotCollide(t *testing.T) {
	reg := newRegistry(t)
	runs := &ranRunner{ran: map[string]int{}}
	if err := reg.SetTenant("a", []reconciler.Definition{def("b-c", reconciler.Trigger{Event: "collide/a"})}, runs); err != nil {
		t.Fatal(err)
	}
	if err := reg.SetTenant("a-b", []reconciler.Definition{def("c", reconciler.Trigger{Event: "collide/a-b"})}, runs); err != nil {
		t.Fatal(err)
	}
	if x, y := reg.FunctionID("a", "b-c"), reg.FunctionID("a-b", "c"); x == y {
		t.Errorf("FunctionID(a, b-c) = FunctionID(a-b, c) = %s", x)
	}
	syncAndVerify(t, reg, "a")
	syncAndVerify(t, reg, "a-b")
	// The first app still has its function after the second synced.
	syncAndVerify(t, reg, "a")
	for tenant, code := range map[string]string{"a": "b-c", "a-b": "c"} {
		fns := dev.Functions(t, reg.AppID(tenant))
		if _, ok := fns[reg.FunctionID(tenant, code)]; !ok || len(fns) != 1 {
			t.Errorf("functions of %s = %v, want only %s", reg.AppID(tenant), fns, reg.FunctionID(tenant, code))
		}
	}
	sendEvent(t, "collide/a", map[string]any{"tenant_id": "a"})
	sendEvent(t, "collide/a-b", map[string]any{"tenant_id": "a-b"})
	waittest.For(t, "both functions to run", 30*time.Second, func() bool { return runs.count("a/b-c") == 1 && runs.count("a-b/c") == 1 })
}

// TestLegacyFunctionIDCall: a step call for a run started before the '_'
// separator names the function <app>-<code>; the app serves it with the
// definition now under <app>-_<code>. An id the app does not serve stays
// unknown (410).
func TestLegacyFunctionIDCall(t *testing.T) {
	reg := newRegistry(t)
	runs := &ranRunner{ran: map[string]int{}}
	if err := reg.SetTenant("a", []reconciler.Definition{def("b-c", reconciler.Trigger{Event: "legacy/a"})}, runs); err != nil {
		t.Fatal(err)
	}
	call := func(fnID string) int {
		body := `{"event":{"name":"legacy/a","data":{"tenant_id":"a"}},"events":[{"name":"legacy/a","data":{"tenant_id":"a"}}],"steps":{},"ctx":{"run_id":"01JLEGACY","step_id":"step","attempt":0}}`
		req := httptest.NewRequest(http.MethodPost, "/api/inngest/a?stepId=step&fnId="+url.QueryEscape(fnID), strings.NewReader(body))
		rec := httptest.NewRecorder()
		reg.ServeHTTP(rec, req)
		return rec.Code
	}
	if code := call(reg.AppID("a") + "-b-c"); code != http.StatusOK || runs.count("a/b-c") != 1 {
		t.Errorf("call by the legacy id = %d, runs %d; want 200 and the run", code, runs.count("a/b-c"))
	}
	if code := call(reg.AppID("a") + "-nope"); code != http.StatusGone {
		t.Errorf("call by an unknown id = %d, want 410", code)
	}
}
