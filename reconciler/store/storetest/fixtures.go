package storetest

import (
	"context"
	"io/fs"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/store"
)

// Apply reconciles the tree fsys holds (one directory per tenant) into
// st, as a reconcile of the whole tree does, and returns its result; the
// test fails when the reconcile does (a file's problems do not fail it).
func Apply(t testing.TB, st *store.Store, fsys fs.FS) *reconciler.Result {
	t.Helper()
	v, err := definitions.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&reconciler.Reconciler{Tree: v.NewLoader(fsys, definitions.Options{}), Store: st, Workers: 2}).Apply(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Current is the applied version of tenant's definition code; the test
// fails when there is none.
func Current(t testing.TB, st *store.Store, tenant, code string) reconciler.AppliedRef {
	t.Helper()
	ref, ok, err := st.Current(context.Background(), tenant, code)
	if err != nil || !ok {
		t.Fatalf("the applied version of %s/%s: %v, %v", tenant, code, ok, err)
	}
	return ref
}

// Attempt records one attempt of a run of ref, started as in says and
// ended as end says, and returns its row's id.
func Attempt(t testing.TB, st *store.Store, ref reconciler.AppliedRef, in reconciler.RunInput, end reconciler.AttemptEnd) int64 {
	t.Helper()
	ctx := context.Background()
	id, err := st.StartRun(ctx, ref, in, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.FinishRun(ctx, ref, id, end); err != nil {
		t.Fatal(err)
	}
	return id
}
