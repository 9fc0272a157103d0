package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/store"
	"github.com/riveredge/tasksync/reconciler/store/storetest"
)

// TestReconcileResultsOneVocabulary: rows run --once wrote as 'failed'
// before the vocabulary was one read as 'error' after the migration, and
// no other word can be stored.
func TestReconcileResultsOneVocabulary(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := pg.NewDatabase(t)
	db, _ := gooseAt(t, url, 3)
	if _, err := db.ExecContext(ctx, `insert into root_reconciles (started_at, finished_at, result, created, updated, retired, unchanged, held, errors)
		values (now(), now(), 'failed', 0, 0, 0, 0, 0, 0)`); err != nil {
		t.Fatal(err)
	}

	s := storetest.Open(t, url, store.Options{})
	rec, err := s.LastReconcile(ctx)
	if err != nil || rec.Result != reconciler.ReconcileError {
		t.Errorf("LastReconcile = %q, %v; want %q", rec.Result, err, reconciler.ReconcileError)
	}
	if err := s.RecordReconcile(ctx, time.Now(), time.Now(), "failed", reconciler.Counts{}, ""); err == nil {
		t.Error("RecordReconcile stored the result \"failed\"; want it refused")
	}
}
